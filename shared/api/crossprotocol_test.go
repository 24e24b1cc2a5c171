package api

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// One published release, seen by every P0 client plus check-device, each checking
// the bytes the way that client does (protocols/README.md checklist 1-3).

const (
	crossApp    = "com.example.app"
	crossSecret = "app-flux-secret"
	crossDevice = "5f0c8a1e-2b3d-4c5e-8f90-a1b2c3d4e5f6"
)

// crossCapgo is what @capgo/capacitor-updater 8.x posts.
func (e *testEnv) crossCapgo(native, current string) (int, map[string]any) {
	e.t.Helper()
	body := map[string]any{"app_id": crossApp, "device_id": strings.ToUpper(crossDevice), "platform": "android",
		"version_name": current, "version_build": native, "version_code": "12", "version_os": "14",
		"plugin_version": "8.51.23", "custom_id": "", "defaultChannel": "", "is_emulator": false, "is_prod": true}
	st, _, b := e.do("POST", "/capgo/updates", body, "User-Agent", "CapacitorUpdater/8.51.23 ("+crossApp+") android/14")
	if st == 404 && strings.Contains(string(b), "route_not_found") {
		e.t.Skip("POST /capgo/updates is not mounted yet")
	}
	return st, jsonMap(e.t, b)
}

func crossSetup(t *testing.T) (*testEnv, release.Release, []byte) {
	t.Helper()
	e := newTestEnv(t)
	e.createApp(crossApp)
	if _, err := e.store.UpdateApp(context.Background(), crossApp, func(a *release.App) error { a.FluxSecret = crossSecret; return nil }); err != nil {
		t.Fatal(err)
	}
	e.srv.state.invalidate(crossApp)
	z := adBundleZip(t, "2.0.0")
	// `ota release` signs at publish time: RSA forms for native-update, HMAC for Flux.
	sigs := adSignatures(t, z)
	sigs.Flux = adHMACHex(crossSecret, z)
	rel := e.publishZip(crossApp, publish.Input{Version: "2.0.0", MinNative: "1.0.0", Notes: "cross", Signatures: sigs}, z, "production")
	return e, rel, z
}

func TestCrossOneReleaseEveryClient(t *testing.T) {
	e, rel, z := crossSetup(t)
	got := map[string][]byte{}

	// Capgo: checksum = lowercase hex SHA-256 of the bytes at url.
	t.Run("capgo", func(t *testing.T) {
		e := *e
		e.t = t
		st, m := e.crossCapgo("1.2.0", "builtin")
		if st != 200 || m["version"] != "2.0.0" {
			t.Fatalf("%d %v", st, m)
		}
		_, _, b := e.get(m["url"].(string))
		if sha256hex(b) != m["checksum"] {
			t.Fatal("checksum mismatch")
		}
		got["capgo"] = b
	})

	// native-update: checksum by exact string, PSS salt 32 over the zip.
	_, m := e.nuDevice(crossApp, "production")
	_, _, b := e.get(m["url"].(string))
	d := sha256.Sum256(b)
	sig, _ := base64.StdEncoding.DecodeString(m["signature"].(string))
	if sha256hex(b) != m["checksum"] || rsa.VerifyPSS(adClientPublicKey(t), crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}) != nil {
		t.Fatal("native-update: checksum or signature")
	}
	got["native-update"] = b

	// Flux: VersionInfo signature = HMAC(app secret, chunk), chunk = the zip bytes.
	st, info, _ := e.fluxGet("/flux/releases/" + crossApp + "/latest")
	if st != 200 || info["version"] != "2.0.0" || info["chunkSize"].(json.Number).String() != adItoa(len(z)) ||
		info["buildNumber"].(json.Number).String() != adItoa(int(rel.BuildNumber)) {
		t.Fatalf("flux latest: %d %v", st, info)
	}
	_, _, chunk := e.fluxGet("/flux/chunks/" + crossApp + "/2.0.0")
	if s, _ := info["signature"].(string); !hmac.Equal([]byte(s), []byte(adHMACHex(crossSecret, chunk))) {
		t.Fatal("flux: HMAC mismatch")
	}
	got["flux"] = chunk

	// Seed manifest: url resolved against the origin, checksum = SHA-256 hex.
	_, sm := e.seedGet("/seed/" + crossApp + "/production/api/v1/native/bundle/manifest")
	_, _, b = e.get(adResolveOrigin(t, e.http.URL+"/seed/"+crossApp+"/production/api/v1", sm["url"].(string)))
	if sha256hex(b) != sm["checksum"] || sm["minNativeVersion"] != "1.0.0" {
		t.Fatalf("seed: %v", sm)
	}
	got["seed"] = b

	// check-device: SRI integrity over the zip behind the 302.
	_, cd := e.cdPost(crossApp, map[string]string{"device_id": crossDevice, "platform": "android", "binary_version": "1.2.0"})
	_, _, b = e.get(cd["url"].(string))
	if adSRI(b) != cd["integrity"] {
		t.Fatalf("check-device: %v", cd)
	}
	got["check-device"] = b

	for client, b := range got {
		if !bytes.Equal(b, z) {
			t.Errorf("%s received other bytes", client)
		}
	}
}

func TestCrossMinNativeWithheld(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(crossApp)
	e.adPublishWith(crossApp, publish.Input{Version: "3.0.0", MinNative: "2.0.0"}, "production")

	// Adapters that receive a native version withhold the release, each in its own form.
	t.Run("capgo", func(t *testing.T) {
		e := *e
		e.t = t
		st, m := e.crossCapgo("1.5.0", "builtin")
		if st != 200 || m["kind"] != "blocked" || m["breaking"] != true || m["url"] != nil {
			t.Fatalf("native below minimum: %d %v", st, m)
		}
		if _, m := e.crossCapgo("2.0.0", "builtin"); m["version"] != "3.0.0" || m["url"] == nil {
			t.Fatalf("native at minimum: %v", m)
		}
	})
	_, m := e.cdPost(crossApp, map[string]string{"device_id": crossDevice, "binary_version": "1.5.0"})
	if m["available"] != true || m["compatible"] != false || m["url"] != nil {
		t.Fatalf("check-device below minimum: %v", m)
	}
	if _, m := e.cdPost(crossApp, map[string]string{"device_id": crossDevice, "binary_version": "2.1.0"}); m["compatible"] != true {
		t.Fatalf("check-device above minimum: %v", m)
	}

	// Adapters that receive none publish the minimum for the app to enforce.
	if _, m := e.nuDevice(crossApp, "production"); m["minNativeVersion"] != "2.0.0" || m["minAppVersion"] != "2.0.0" {
		t.Fatalf("native-update: %v", m)
	}
	if _, m := e.seedGet("/api/v1/native/bundle/manifest?appId=" + crossApp); m["minNativeVersion"] != "2.0.0" {
		t.Fatalf("seed: %v", m)
	}
	// Flux sends no native version and has no such field (minVmVersion is client-side only).
	if st, _, _ := e.fluxGet("/flux/releases/" + crossApp + "/latest"); st != 200 {
		t.Fatalf("flux: %d", st)
	}
}

func TestCrossRollingNeverWithoutDeviceID(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(crossApp)
	e.publish(crossApp, "1.0.0", "production")
	e.publish(crossApp, "2.0.0", "")
	e.adSetRolling(crossApp, "production", "2.0.0", 100)

	versions := map[string]any{}
	_, m := e.nuDevice(crossApp, "production")
	versions["native-update device"] = m["version"]
	_, m = e.adGetJSON("/api/v1/updates/check?appId=" + crossApp + "&currentVersion=0.9.0&platform=ios")
	versions["native-update api"] = m["version"]
	_, m = e.seedGet("/api/v1/native/bundle/manifest?appId=" + crossApp)
	versions["seed"] = m["version"]
	_, m, _ = e.fluxGet("/flux/releases/" + crossApp + "/latest")
	versions["flux"] = m["version"]
	_, m = e.cdPost(crossApp, map[string]string{"platform": "android", "binary_version": "1.0.0"})
	versions["check-device"] = m["version"]
	for client, v := range versions {
		if v != "1.0.0" {
			t.Errorf("%s without device id got %v", client, v)
		}
	}
	// The rollout is live for clients that do send a device id.
	if _, m := e.cdPost(crossApp, map[string]string{"device_id": crossDevice}); m["version"] != "2.0.0" {
		t.Fatalf("check-device with device id: %v", m)
	}
	t.Run("capgo", func(t *testing.T) {
		e := *e
		e.t = t
		if _, m := e.crossCapgo("1.0.0", "1.0.0"); m["version"] != "2.0.0" {
			t.Fatalf("capgo with device id: %v", m)
		}
	})
}

// adStoreFingerprint is everything a request to these adapters could write.
func adStoreFingerprint(t *testing.T, e *testEnv, devices []string) string {
	t.Helper()
	ctx := context.Background()
	fp := map[string]any{}
	for _, app := range []string{crossApp, "com.example.nope"} {
		rels, _ := e.store.ListReleases(ctx, app)
		chs, _ := e.store.ListChannels(ctx, app)
		fps, _ := e.store.ListPatches(ctx, app, publish.KindFlux)
		tps, _ := e.store.ListPatches(ctx, app, publish.KindTree)
		aud, _ := e.store.ListAudit(ctx, app, 100)
		stats, _ := e.store.ReadStats(ctx, app, []string{store.Day(time.Now())})
		fp[app] = []any{rels, chs, fps, tps, aud, stats}
		for _, d := range devices {
			dev, err := e.store.GetDevice(ctx, app, d)
			fp[app+"/"+d] = []any{dev, err == nil}
		}
	}
	b, _ := json.Marshal(fp)
	return string(b)
}

// Bad input on every route of these adapters: a clear 4xx and nothing written.
func TestCrossBadInputNothingWritten(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(crossApp)
	if _, err := e.store.UpdateApp(context.Background(), crossApp, func(a *release.App) error { a.FluxSecret = crossSecret; return nil }); err != nil {
		t.Fatal(err)
	}
	e.srv.state.invalidate(crossApp)
	e.publish(crossApp, "1.0.0", "production")
	key := store.NewKeySecret()
	if _, err := e.store.CreateKey(context.Background(), key, "flux", []string{crossApp}, false, "test"); err != nil {
		t.Fatal(err)
	}
	devices := []string{"dev-1", crossDevice}
	before := adStoreFingerprint(t, e, devices)
	cases := []struct {
		method, path, body string
		want               int
	}{
		// native-update
		{"GET", "/native-update/" + crossApp + "/check?channel=pro*d", "", 400},
		{"GET", "/native-update/bad%20app/check?channel=production", "", 400},
		{"GET", "/api/v1/updates/check?channel=production", "", 400},
		{"GET", "/api/v1/updates/check?appId=" + crossApp + "&channel=a/b", "", 400},
		{"GET", "/api/v1/updates/check?appId=" + crossApp + "&deviceId=a%20b", "", 400},
		{"GET", "/api/v1/updates/check?appId=" + crossApp + "&platform=Windows%2095", "", 400},
		{"GET", "/api/v1/bundles/1.0.0", "", 400},
		{"GET", "/api/v1/bundles/..%2F..%2Fetc?appId=" + crossApp, "", 404},
		{"GET", "/native-update/" + crossApp + "/bundles/0.0.0", "", 404},
		{"POST", "/api/v1/updates/confirm", `{"appId":"` + crossApp + `","version":"1.0.0","success":"no","deviceId":"dev-1"}`, 400},
		{"POST", "/api/v1/updates/confirm", `{"appId":"` + crossApp + `","version":"1.0.0","success":false,"deviceId":"dev 1"}`, 400},
		{"POST", "/api/v1/updates/confirm", `{"appId":"` + crossApp + `","version":"../x","success":false,"deviceId":"dev-1"}`, 400},
		{"POST", "/api/v1/updates/confirm", `{"appId":"com.example.nope","version":"1.0.0","success":false,"deviceId":"dev-1"}`, 404},
		{"POST", "/api/v1/updates/confirm", `{"appId":"` + crossApp + `","version":"3.0.0","success":false,"deviceId":"dev-1"}`, 404},
		// Flux
		{"POST", "/flux/releases", `{"appId":"` + crossApp + `","version":"1.1.0","buildNumber":2,"chunk":[1,2,3]}`, 401},
		{"POST", "/flux/k/" + key + "/releases", `{"appId":"` + crossApp + `","version":"1.1.0","buildNumber":2,"chunk":"AQID"}`, 400},
		{"POST", "/flux/k/" + key + "/releases", `{"appId":"` + crossApp + `","version":"latest","buildNumber":2,"chunk":[1]}`, 400},
		{"POST", "/flux/k/" + key + "/releases", `{"appId":"` + crossApp + `","version":"1.0.0","buildNumber":2,"chunk":[1]}`, 409},
		{"POST", "/flux/k/" + key + "/releases", `{"appId":"com.example.nope","version":"1.1.0","buildNumber":2,"chunk":[1]}`, 401},
		{"POST", "/flux/k/" + key + "/releases", strings.Repeat(" ", 10) + `{"appId":1}`, 400},
		{"GET", "/flux/k/wrong/releases/" + crossApp + "/latest", "", 401},
		{"GET", "/flux/releases/" + crossApp + "/0.0.1", "", 404},
		{"GET", "/flux/chunks/" + crossApp + "/0.0.1", "", 404},
		{"GET", "/flux/patches/" + crossApp + "/1.0.0/1.0.0", "", 404},
		{"GET", "/flux/patches/" + crossApp + "/0.0.1/1.0.0", "", 404},
		// seed
		{"GET", "/api/v1/native/bundle/manifest", "", 400},
		{"GET", "/api/v1/native/bundle/manifest?appId=" + crossApp + "&channel=%3Cx%3E", "", 400},
		{"GET", "/api/v1/native/bundle/download?appId=" + crossApp + "&version=0.0.1", "", 404},
		{"GET", "/seed/" + crossApp + "/nochannel/api/v1/native/bundle/manifest", "", 404},
		// check-device
		{"POST", "/apps/" + crossApp + "/channels/check-device", `{"device_id":true}`, 400},
		{"POST", "/apps/" + crossApp + "/channels/check-device", `{"device_id":"dev-1"`, 400},
		{"POST", "/apps/com.example.nope/channels/check-device", `{"device_id":"dev-1"}`, 404},
		{"GET", "/apps/" + crossApp + "/snapshots/nope/zip", "", 404},
		{"GET", "/apps/" + crossApp + "/snapshots/nope/manifest", "", 404},
	}
	for _, c := range cases {
		var body any
		if c.body != "" {
			body = c.body
		}
		st, h, b := e.do(c.method, c.path, body)
		if st != c.want {
			t.Errorf("%s %s: %d %s", c.method, c.path, st, b)
			continue
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || !json.Valid(b) {
			t.Errorf("%s %s: not a JSON error: %q %s", c.method, c.path, h.Get("Content-Type"), b)
		}
	}
	if after := adStoreFingerprint(t, e, devices); after != before {
		t.Fatalf("bad input wrote to the store:\nbefore %s\nafter  %s", before, after)
	}
}

// Every route of these adapters is in the one route table, each in its group.
func TestCrossRoutesInTable(t *testing.T) {
	want := map[string]Group{
		"GET /native-update/{appId}/check":                          GroupCheck,
		"GET /native-update/{appId}/bundles/{version}":              GroupCheck,
		"GET /api/v1/updates/check":                                 GroupCheck,
		"GET /api/v1/bundles/{version}":                             GroupCheck,
		"POST /api/v1/updates/confirm":                              GroupConfirm,
		"POST /flux/releases":                                       GroupUpload,
		"POST /flux/k/{key}/releases":                               GroupUpload,
		"GET /flux/releases/{appId}/latest":                         GroupCheck,
		"GET /flux/k/{key}/releases/{appId}/{version}":              GroupCheck,
		"GET /flux/chunks/{appId}/{version}":                        GroupCheck,
		"GET /flux/patches/{appId}/{from}/{to}":                     GroupCheck,
		"GET /flux/k/{key}/health":                                  GroupCheck,
		"GET /api/v1/native/bundle/manifest":                        GroupCheck,
		"GET /seed/{appId}/{channel}/api/v1/native/bundle/download": GroupCheck,
		"POST /apps/{appId}/channels/check-device":                  GroupCheck,
		"GET /apps/{appId}/snapshots/{id}/zip":                      GroupCheck,
		"GET /apps/{appId}/snapshots/{id}/manifest":                 GroupCheck,
	}
	have := map[string]Group{}
	for _, r := range Routes() {
		have[r.Pattern()] = r.Group
	}
	for p, g := range want {
		if have[p] != g {
			t.Errorf("%s: group %q, want %q", p, have[p], g)
		}
	}
	// The whole table mounts without ServeMux pattern conflicts.
	mux := http.NewServeMux()
	for _, r := range Routes() {
		mux.HandleFunc(r.Pattern(), func(http.ResponseWriter, *http.Request) {})
	}
}
