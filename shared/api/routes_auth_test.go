package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// openRoutes are the routes that do not take the management API's rule (an API key
// in the Authorization header), with the rule each keeps instead. Adding a route that needs no API key means adding it here: a
// conscious act, reviewed with the route.
var openRoutes = map[string]AuthKind{
	"POST /capgo/updates":                                       AuthNone,
	"POST /capgo/updates/manifest_size":                         AuthNone,
	"POST /capgo/channel_self":                                  AuthNone,
	"PUT /capgo/channel_self":                                   AuthNone,
	"GET /capgo/channel_self":                                   AuthNone,
	"DELETE /capgo/channel_self":                                AuthNone,
	"POST /capgo/stats":                                         AuthNone,
	"POST /v1/device/report":                                    AuthNone,
	"GET /native-update/{appId}/check":                          AuthNone,
	"GET /native-update/{appId}/bundles/{version}":              AuthNone,
	"GET /api/v1/updates/check":                                 AuthNone,
	"GET /api/v1/bundles/{version}":                             AuthNone,
	"POST /api/v1/updates/confirm":                              AuthNone,
	"GET /api/v1/native/bundle/manifest":                        AuthNone,
	"GET /api/v1/native/bundle/download":                        AuthNone,
	"GET /seed/{appId}/{channel}/api/v1/native/bundle/manifest": AuthNone,
	"GET /seed/{appId}/{channel}/api/v1/native/bundle/download": AuthNone,
	"POST /apps/{appId}/channels/check-device":                  AuthDeviceToken,
	"GET /apps/{appId}/snapshots/{id}/zip":                      AuthDeviceToken,
	"GET /apps/{appId}/snapshots/{id}/manifest":                 AuthDeviceToken,
	"POST /flux/releases":                                       AuthFluxUpload,
	"POST /flux/k/{key}/releases":                               AuthFluxUpload,
	"GET /flux/releases/{appId}/latest":                         AuthFluxPathKey,
	"GET /flux/releases/{appId}/{version}":                      AuthFluxPathKey,
	"GET /flux/chunks/{appId}/{version}":                        AuthFluxPathKey,
	"GET /flux/patches/{appId}/{from}/{to}":                     AuthFluxPathKey,
	"GET /flux/health":                                          AuthFluxPathKey,
	"GET /flux/k/{key}/releases/{appId}/latest":                 AuthFluxPathKey,
	"GET /flux/k/{key}/releases/{appId}/{version}":              AuthFluxPathKey,
	"GET /flux/k/{key}/chunks/{appId}/{version}":                AuthFluxPathKey,
	"GET /flux/k/{key}/patches/{appId}/{from}/{to}":             AuthFluxPathKey,
	"GET /flux/k/{key}/health":                                  AuthFluxPathKey,
	"GET /healthz":                                              AuthNone, // otad only
	"GET /dl/{key...}":                                          AuthNone, // signed URL
	"HEAD /dl/{key...}":                                         AuthNone, // signed URL
	"PUT /blob/{key...}":                                        AuthNone, // signed URL
}

// TestRoutesAuth walks the whole route table: every route that needs an API key
// answers 401 without one and with a revoked one, 403 with a key that does not
// reach it, and the same answer for an existing and a missing app or version
// whatever the bad key, so a caller without access learns nothing.
func TestRoutesAuth(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.createApp("app-a")
	e.createApp("app-b")
	e.publish("app-a", "1.0.0", "production")

	revoked := "ota_" + strings.Repeat("0", 48)
	k, err := e.store.CreateKey(ctx, revoked, "revoked", []string{"*"}, true, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	otherApp := "ota_" + strings.Repeat("1", 48)
	if _, err := e.store.CreateKey(ctx, otherApp, "app-b only", []string{"app-b"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	notAdmin := "ota_" + strings.Repeat("2", 48)
	if _, err := e.store.CreateKey(ctx, notAdmin, "every app, not admin", []string{"*"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	bearer := func(secret string) []string {
		if secret == "" {
			return nil
		}
		return []string{"Authorization", "Bearer " + secret}
	}

	// fill names a route's resources: existing ones, or missing ones.
	fill := func(path string, existing bool) string {
		app, version := "app-a", "1.0.0"
		if !existing {
			app, version = "app-zz", "9.9.9"
		}
		return strings.NewReplacer("{app}", app, "{version}", version, "{channel}", "production",
			"{action}", "pause", "{id}", k.ID).Replace(path)
	}

	seen := map[string]bool{}
	for _, r := range Routes() {
		p := r.Pattern()
		seen[p] = true
		if !r.Auth.NeedsAPIKey() {
			want, ok := openRoutes[p]
			if !ok {
				t.Errorf("%s needs no API key (Auth %v) but is not in openRoutes", p, r.Auth)
			} else if want != r.Auth {
				t.Errorf("%s: Auth %v, openRoutes says %v", p, r.Auth, want)
			}
			continue
		}
		if _, ok := openRoutes[p]; ok {
			t.Errorf("%s is in openRoutes but needs an API key (Auth %v)", p, r.Auth)
		}
		type bad struct {
			name, secret string
			status       int
		}
		bads := []bad{{"no key", "", http.StatusUnauthorized}, {"revoked key", revoked, http.StatusUnauthorized}}
		switch r.Auth {
		case AuthKeyApp:
			bads = append(bads, bad{"key for another app", otherApp, http.StatusForbidden})
		case AuthKeyAdmin:
			bads = append(bads, bad{"key without admin", notAdmin, http.StatusForbidden})
		}
		for _, b := range bads {
			var answers [2]string
			for i, existing := range []bool{true, false} {
				// An invalid body: the key is refused before any body is read.
				status, _, body := e.do(r.Method, fill(r.Path, existing), "{", bearer(b.secret)...)
				if status != b.status {
					t.Errorf("%s with %s (existing=%v): status %d, want %d: %s", p, b.name, existing, status, b.status, body)
				}
				answers[i] = string(body)
			}
			if answers[0] != answers[1] {
				t.Errorf("%s with %s: existing and missing resources answer differently:\n%s\n%s", p, b.name, answers[0], answers[1])
			}
		}
	}
	for p := range openRoutes {
		if !seen[p] {
			t.Errorf("openRoutes lists %s, which is not in the route table", p)
		}
	}

	// The Flux rule: under /flux/k/{key} a revoked key, or one for another app, is
	// refused in Flux's shape (401 whatever the reason, existing app or not), and an
	// upload needs a key under either mount.
	for _, secret := range []string{revoked, otherApp} {
		var answers []string
		for _, u := range []string{"/flux/k/" + secret + "/releases/app-a/latest", "/flux/k/" + secret + "/releases/app-zz/latest", "/flux/k/" + secret + "/chunks/app-a/1.0.0"} {
			status, _, body := e.do("GET", u, nil)
			if status != http.StatusUnauthorized {
				t.Errorf("GET %s: status %d, want 401: %s", u, status, body)
			}
			answers = append(answers, string(body))
		}
		if answers[0] != answers[1] {
			t.Errorf("Flux with a bad key: existing and missing apps answer differently:\n%s\n%s", answers[0], answers[1])
		}
	}
	// A protected app's device token is checked before the body is read.
	if status, _, b := e.do("PATCH", "/v1/apps/app-a", map[string]any{"device_token": "device-token-0123456789"}, bearer(e.admin)...); status != http.StatusOK {
		t.Fatalf("protect app-a: %d %s", status, b)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "/apps/app-a/channels/check-device"},
		{"GET", "/apps/app-a/snapshots/1.0.0/zip"},
		{"GET", "/apps/app-a/snapshots/1.0.0/manifest"},
	} {
		for _, hdr := range [][]string{nil, bearer("wrong-token-0123456789"), bearer(e.admin)} {
			if status, _, b := e.do(c.method, c.path, "{", hdr...); status != http.StatusUnauthorized {
				t.Errorf("%s %s (protected) with %v: status %d, want 401: %s", c.method, c.path, hdr, status, b)
			}
		}
	}

	for _, c := range []struct {
		method, path string
		hdr          []string
		want         int
	}{
		{"GET", "/flux/k/" + revoked + "/health", nil, http.StatusUnauthorized},
		{"GET", "/flux/k/" + otherApp + "/health", nil, http.StatusOK}, // any valid key
		{"GET", "/flux/health", nil, http.StatusOK},
		{"POST", "/flux/releases", nil, http.StatusUnauthorized},
		{"POST", "/flux/releases", bearer(revoked), http.StatusUnauthorized},
		{"POST", "/flux/k/" + revoked + "/releases", nil, http.StatusUnauthorized},
	} {
		var body any
		if c.method == "POST" {
			body = "{" // refused before the body is read
		}
		if status, _, b := e.do(c.method, c.path, body, c.hdr...); status != c.want {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, status, c.want, b)
		}
	}
}
