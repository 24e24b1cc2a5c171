package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// TestCheckStoreCallsEveryProtocol is the store-call budget of every protocol's check
// path in steady state (warm caches, the same release on offer): under 0.05 table
// calls per check on each backend. The figures it logs are README's Performance row.
func TestCheckStoreCallsEveryProtocol(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		ct := store.Counting(b.open(t))
		e := newTestEnvWith(t, ct, envOptions{ttl: Config{}.withDefaults().StateTTL})
		e.createApp(crossApp)
		if _, err := e.store.UpdateApp(context.Background(), crossApp, func(a *release.App) error { a.FluxSecret = crossSecret; return nil }); err != nil {
			t.Fatal(err)
		}
		e.srv.state.invalidate(crossApp)
		old, _ := e.publish(crossApp, "1.0.0", "production")
		z := adBundleZip(t, "2.0.0")
		sigs := adSignatures(t, z)
		sigs.Flux = adHMACHex(crossSecret, z)
		cur := e.publishZip(crossApp, publish.Input{Version: "2.0.0", MinNative: "1.0.0", Signatures: sigs}, z, "production")

		capgo := func(i int) bool {
			body := map[string]any{"app_id": crossApp, "device_id": fmt.Sprintf("0b0e2f64-3c1d-4a9e-b7f5-%012d", i), "platform": "android",
				"version_name": "1.0.0", "version_build": "1.2.0", "version_code": "12", "version_os": "14",
				"plugin_version": "8.51.23", "custom_id": "", "defaultChannel": "", "is_emulator": false, "is_prod": true}
			st, _, b := e.do("POST", "/capgo/updates", body, "User-Agent", "CapacitorUpdater/8.51.23 ("+crossApp+") android/14")
			return st == 200 && strings.Contains(string(b), `"2.0.0"`)
		}
		get := func(path string, want int, hdr ...string) func(int) bool {
			return func(int) bool { st, _, _ := e.do("GET", path, nil, hdr...); return st == want }
		}
		// check-device devices send back the release ids they were handed (or a version).
		checkDevice := func(current string) func(int) bool {
			return func(i int) bool {
				st, m := e.cdPost(crossApp, map[string]string{"device_id": fmt.Sprintf("8b0e2f64-3c1d-4a9e-b7f5-%012d", i), "channel_name": "production",
					"platform": "android", "binary_version": "1.2.0", "current_update_id": current})
				return st == 200 && m["version"] == "2.0.0"
			}
		}
		routes := []struct {
			name  string
			check func(i int) bool
		}{
			{"capgo POST /capgo/updates", capgo},
			{"native-update GET /native-update/{app}/check", get("/native-update/"+crossApp+"/check?channel=production", 200, "User-Agent", okhttpUA)},
			{"native-update GET /api/v1/updates/check", get("/api/v1/updates/check?appId="+crossApp+"&currentVersion=0.9.0&platform=ios", 200)},
			{"seed GET /seed/{app}/{channel}/.../manifest", get("/seed/"+crossApp+"/production/api/v1/native/bundle/manifest", 200, "Accept", "application/json")},
			{"flux GET /flux/releases/{app}/latest", get("/flux/releases/"+crossApp+"/latest", 200)},
			{"flux GET /flux/releases/{app}/{version}", get("/flux/releases/"+crossApp+"/2.0.0", 200)},
			{"check-device POST /apps/{app}/channels/check-device (current: release id)", checkDevice(old.ID)},
			{"check-device POST /apps/{app}/channels/check-device (current: version)", checkDevice(old.Version)},
			{"check-device GET /apps/{app}/snapshots/{id}/zip (release id)", get("/apps/"+crossApp+"/snapshots/"+cur.ID+"/zip", http.StatusFound)},
			{"check-device GET /apps/{app}/snapshots/{id}/zip (version)", get("/apps/"+crossApp+"/snapshots/2.0.0/zip", http.StatusFound)},
			{"check-device GET /apps/{app}/snapshots/{id}/manifest (release id)", get("/apps/"+crossApp+"/snapshots/"+cur.ID+"/manifest", 200)},
		}
		// Warm up: the first checks load state and ask for the 1.0.0 -> 2.0.0 patch,
		// which otad computes in the background; steady state is once it exists.
		for _, r := range routes {
			if !r.check(-1) {
				t.Fatalf("%s: warm-up check failed", r.name)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := e.store.GetPatch(context.Background(), crossApp, publish.KindTree, "1.0.0", "2.0.0"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the tree patch 1.0.0 -> 2.0.0 was never computed")
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, r := range routes {
			r.check(-2)
		}

		const checks = 500
		for _, r := range routes {
			ct.Reads.Store(0)
			ct.Writes.Store(0)
			ct.Queries.Store(0)
			start := time.Now()
			for i := range checks {
				if !r.check(i) {
					t.Fatalf("%s: check %d failed", r.name, i)
				}
			}
			took := time.Since(start)
			per := float64(ct.Total()) / checks
			t.Logf("%s, %s: %.4f store calls per check (%d reads, %d queries, %d writes for %d checks in %v)",
				b.name, r.name, per, ct.Reads.Load(), ct.Queries.Load(), ct.Writes.Load(), checks, took.Round(time.Millisecond))
			if per >= 0.05 {
				t.Errorf("%s: %.4f store calls per check, want < 0.05", r.name, per)
			}
		}
	})
}

// TestCheckCacheBounded sends 100k distinct unknown app ids and channel names through
// the check routes: the state cache stays at its cap (entries, not bytes), and a known
// channel is still served.
func TestCheckCacheBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("100k checks")
	}
	e := newTestEnvWith(t, tableBackends()[0].open(t), envOptions{ttl: time.Hour})
	e.createApp(crossApp)
	e.publish(crossApp, "1.0.0", "production")
	h := e.srv.Handler()
	serve := func(method, path, body string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const n = 100_000
	for i := range n {
		app := fmt.Sprintf("com.unknown.a%06d", i)
		ch := fmt.Sprintf("c%06d", i)
		var st int
		switch i % 4 {
		case 0: // Capgo, unknown app
			st = serve("POST", "/capgo/updates", `{"app_id":"`+app+`","device_id":"0b0e2f64-3c1d-4a9e-b7f5-2d6c8a1e0f93","platform":"android",`+
				`"version_name":"1.0.0","version_build":"1.0.0","plugin_version":"8.51.23","is_emulator":false,"is_prod":true}`)
		case 1: // native-update, known app, device-chosen channel
			st = serve("GET", "/native-update/"+crossApp+"/check?channel="+ch, "")
		case 2: // seed, known app, channel from the URL
			st = serve("GET", "/seed/"+crossApp+"/"+ch+"/api/v1/native/bundle/manifest", "")
		case 3: // check-device, unknown app
			st = serve("POST", "/apps/"+app+"/channels/check-device", `{"device_id":"8b0e2f64-3c1d-4a9e-b7f5-2d6c8a1e0f93","channel_name":"`+ch+`"}`)
		}
		if st >= 500 {
			t.Fatalf("check %d: HTTP %d", i, st)
		}
	}
	c := e.srv.state
	t.Logf("after %d checks: %d apps, %d channels, %d releases, %d patches, %d override counts (cap %d each)",
		n, c.apps.Len(), c.chans.Len(), c.rels.Len(), c.patches.Len(), c.devChs.Len(), stateEntries)
	if c.apps.Len() != stateEntries || c.chans.Len() != stateEntries {
		t.Fatalf("apps %d, channels %d: want both at the cap %d", c.apps.Len(), c.chans.Len(), stateEntries)
	}
	if got := c.entries(); got > 5*stateEntries {
		t.Fatalf("%d entries, want at most %d", got, 5*stateEntries)
	}
	if st, m := e.nuDevice(crossApp, "production"); st != 200 || m["version"] != "1.0.0" {
		t.Fatalf("known channel after the flood: %d %v", st, m)
	}
}
