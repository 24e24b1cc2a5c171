package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
)

// seedGet is what the app sends: GET with Accept: application/json, nothing else.
func (e *testEnv) seedGet(path string) (int, map[string]any) {
	e.t.Helper()
	return e.adGetJSON(path, "Accept", "application/json")
}

// adResolveOrigin is the app's new URL(url, origin of serverUrl).
func adResolveOrigin(t *testing.T, serverURL, u string) string {
	t.Helper()
	base, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	origin := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: "/"}
	ref, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return origin.ResolveReference(ref).String()
}

// seedForms are the three ways to reach the manifest of com.example.app/production.
func seedForms(e *testEnv) map[string]string {
	e.srv.cfg.DefaultApp = "com.example.app"
	return map[string]string{
		"query": "/api/v1/native/bundle/manifest?appId=com.example.app&channel=production",
		"path":  "/seed/com.example.app/production/api/v1/native/bundle/manifest",
		"bare":  "/api/v1/native/bundle/manifest",
	}
}

// ---- conformance checklist (seed manifest, see docs/protocols.md)

func TestSeed01_ManifestThreeForms(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	rel, _ := e.publish("com.example.app", "2.0.0", "production")
	for form, p := range seedForms(e) {
		st, m := e.seedGet(p)
		if st != 200 {
			t.Fatalf("%s: %d %v", form, st, m)
		}
		for _, k := range []string{"version", "url", "checksum", "minNativeVersion"} {
			if _, ok := m[k].(string); !ok {
				t.Errorf("%s: %s is %T", form, k, m[k])
			}
		}
		if m["version"] != "2.0.0" || m["checksum"] != rel.SHA256 || !adHex64.MatchString(m["checksum"].(string)) {
			t.Errorf("%s: %v", form, m)
		}
	}
}

func TestSeed02_MinNativeDefault(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "2.0.0", "production")
	p := seedForms(e)["path"]
	if _, m := e.seedGet(p); m["minNativeVersion"] != "0.0.0" {
		t.Fatalf("unset: %v", m["minNativeVersion"])
	}
	e.adPublishWith("com.example.app", publish.Input{Version: "2.1.0", MinNative: "1.5.0"}, "production")
	if _, m := e.seedGet(p); m["minNativeVersion"] != "1.5.0" {
		t.Fatalf("set: %v", m["minNativeVersion"])
	}
}

func TestSeed03_NotAvailable404(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.adUpdateChannel("com.example.app", "production", func(c *release.Channel) {}) // a channel without a release
	cases := []string{
		"/api/v1/native/bundle/manifest?appId=com.example.app&channel=production",
		"/api/v1/native/bundle/manifest?appId=com.example.app&channel=beta",
		"/api/v1/native/bundle/manifest?appId=com.example.nope",
		"/seed/com.example.nope/production/api/v1/native/bundle/manifest",
		"/api/v1/native/bundle/download?appId=com.example.app&version=1.0.0",
		"/api/v1/native/bundle/download?appId=com.example.app",
	}
	for _, p := range cases {
		st, m := e.seedGet(p)
		if st != 404 || m["detail"] != "NATIVE_OTA_BUNDLE_NOT_AVAILABLE" {
			t.Errorf("%s: %d %v", p, st, m)
		}
	}
	// No app anywhere and no default: 400 NATIVE_APP_REQUIRED.
	for _, p := range []string{"/api/v1/native/bundle/manifest", "/api/v1/native/bundle/download?version=1.0.0"} {
		if st, m := e.seedGet(p); st != 400 || m["detail"] != "NATIVE_APP_REQUIRED" {
			t.Errorf("%s: %d %v", p, st, m)
		}
	}
}

func TestSeed04_URLResolvedAgainstOriginMatchesChecksum(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	_, z := e.publish("com.example.app", "2.0.0", "production")
	for form, p := range seedForms(e) {
		serverURL := e.http.URL + strings.TrimSuffix(p[:strings.Index(p+"?", "?")], "/native/bundle/manifest")
		_, m := e.seedGet(p)
		u := adResolveOrigin(t, serverURL, m["url"].(string))
		if pu, _ := url.Parse(m["url"].(string)); !pu.IsAbs() {
			t.Errorf("%s: url not absolute: %v", form, m["url"])
		}
		st, _, b := e.get(u)
		if st != 200 || sha256hex(b) != m["checksum"] || !bytes.Equal(b, z) {
			t.Errorf("%s: %d sha %s", form, st, sha256hex(b))
		}
	}
}

func TestSeed05_URLPinnedToVersion(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	_, z1 := e.publish("com.example.app", "2.0.0", "production")
	p := seedForms(e)["path"]
	_, m1 := e.seedGet(p)
	_, z2 := e.publish("com.example.app", "2.1.0", "production")
	_, m2 := e.seedGet(p)
	if m2["version"] != "2.1.0" || m2["url"] == m1["url"] {
		t.Fatalf("manifest did not move: %v", m2)
	}
	if _, _, b := e.get(m1["url"].(string)); !bytes.Equal(b, z1) {
		t.Fatal("old URL no longer serves the old bytes")
	}
	if _, _, b := e.get(m2["url"].(string)); !bytes.Equal(b, z2) {
		t.Fatal("new URL")
	}
	if !strings.Contains(m1["url"].(string), "version=2.0.0") {
		t.Fatalf("not pinned: %v", m1["url"])
	}
}

func TestSeed06_CachingAndHeaders(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	rel, z := e.publish("com.example.app", "2.0.0", "production")
	for _, p := range seedForms(e) {
		st, h, _ := e.do("GET", p, nil, "Accept", "application/json")
		if st != 200 || h.Get("Cache-Control") != "no-cache" {
			t.Fatalf("manifest %s: %d %q", p, st, h.Get("Cache-Control"))
		}
		_, m := e.seedGet(p)
		st, h, b := e.do("GET", m["url"].(string), nil)
		if st != 200 || h.Get("Content-Type") != "application/zip" || h.Get("Content-Length") != strconv.Itoa(len(z)) || len(b) != len(z) {
			t.Fatalf("download: %d %v", st, h)
		}
		if cc := h.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Fatalf("pinned download Cache-Control %q", cc)
		}
		if h.Get("ETag") != `"`+rel.SHA256+`"` || h.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("ETag %q Accept-Ranges %q", h.Get("ETag"), h.Get("Accept-Ranges"))
		}
		// Revalidation with the ETag.
		if st, _, _ := e.do("GET", m["url"].(string), nil, "If-None-Match", h.Get("ETag")); st != 304 {
			t.Fatalf("If-None-Match: %d", st)
		}
	}
	// Unpinned download: the current head, never cached as immutable.
	st, h, b := e.do("GET", "/seed/com.example.app/production/api/v1/native/bundle/download", nil)
	if st != 200 || !bytes.Equal(b, z) || h.Get("Cache-Control") != "no-cache" {
		t.Fatalf("unpinned: %d %q", st, h.Get("Cache-Control"))
	}
	if st, _, _ := e.do("HEAD", "/api/v1/native/bundle/download?appId=com.example.app&version=2.0.0", nil); st != 200 {
		t.Fatalf("HEAD: %d", st)
	}
}

func TestSeed07_RangeResume(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	_, z := e.publish("com.example.app", "2.0.0", "production")
	for _, u := range []string{"/api/v1/native/bundle/download?appId=com.example.app&version=2.0.0",
		"/seed/com.example.app/production/api/v1/native/bundle/download?version=2.0.0"} {
		st, h, b := e.do("GET", u, nil, "Range", "bytes=100-")
		if st != 206 || !bytes.Equal(b, z[100:]) || h.Get("Content-Range") != "bytes 100-"+strconv.Itoa(len(z)-1)+"/"+strconv.Itoa(len(z)) {
			t.Fatalf("%s: %d %q", u, st, h.Get("Content-Range"))
		}
		st, _, b = e.do("GET", u, nil, "Range", "bytes=10-19")
		if st != 206 || !bytes.Equal(b, z[10:20]) {
			t.Fatalf("%s: closed range %d", u, st)
		}
	}
}

func TestSeed08_StatementPassthrough(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "2.0.0", "production")
	p := seedForms(e)["query"]
	if _, m := e.seedGet(p); m["statement"] != nil || m["signature"] != nil {
		t.Fatalf("invented statement/signature: %v", m)
	}
	// The build's signer made a statement and an ECDSA P-256 signature over it.
	z := adBundleZip(t, "2.1.0")
	stmt := `{"version":"2.1.0","sha256":"` + sha256hex(z) + `","minNativeVersion":"1.0.0"}`
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte(stmt))
	der, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.StdEncoding.EncodeToString(der)
	e.publishZip("com.example.app", publish.Input{Version: "2.1.0", MinNative: "1.0.0",
		Signatures: release.Signatures{Statement: stmt, StatementSig: sig}}, z, "production")
	_, m := e.seedGet(p)
	if m["statement"] != stmt || m["signature"] != sig {
		t.Fatalf("passthrough: %v", m)
	}
	raw, _ := base64.StdEncoding.DecodeString(m["signature"].(string))
	d2 := sha256.Sum256([]byte(m["statement"].(string)))
	if !ecdsa.VerifyASN1(&k.PublicKey, d2[:], raw) {
		t.Fatal("statement signature does not verify")
	}
}

// A rolling release never reaches this client (it sends no device id).
func TestSeedRollingInvisible(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	e.publish("com.example.app", "2.0.0", "")
	e.adSetRolling("com.example.app", "production", "2.0.0", 100)
	for form, p := range seedForms(e) {
		if _, m := e.seedGet(p); m["version"] != "1.0.0" {
			t.Errorf("%s: %v", form, m["version"])
		}
	}
}

func TestSeedBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	for _, p := range []string{
		"/api/v1/native/bundle/manifest?appId=com.example.app&channel=a%20b",
		"/api/v1/native/bundle/manifest?appId=..%2F..",
		"/api/v1/native/bundle/download?appId=com.example.app&version=..%2F1",
		"/seed/com.example.app/b%24d/api/v1/native/bundle/manifest",
	} {
		if st, m := e.seedGet(p); st != 400 || m["detail"] == nil {
			t.Errorf("%s: %d %v", p, st, m)
		}
	}
}
