package api

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/testenv"
)

// ---- helpers for the adapter tests (native-update, Flux, seed, check-device, cross)

// okhttpUA is what an Android native-update device sends, and nothing else.
const okhttpUA = "okhttp/4.12.0"

var (
	adRSAOnce sync.Once
	adRSAKey  *rsa.PrivateKey
)

// adRSA is the publisher's key (made once per test binary).
func adRSA(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	adRSAOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		adRSAKey = k
	})
	return adRSAKey
}

// adSignatures signs a zip the way our CLI does at publish time (shared/sign).
func adSignatures(t testing.TB, z []byte) release.Signatures {
	t.Helper()
	k := adRSA(t)
	d := sha256.Sum256(z)
	pss, err := sign.SignPSS(k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	pk1, err := sign.SignPKCS1(k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return release.Signatures{PSS: pss, PKCS1: pk1}
}

// adClientPublicKey is the key as an app configures it (SPKI PEM), parsed back the
// way the plugin does.
func adClientPublicKey(t testing.TB) *rsa.PublicKey {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&adRSA(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	blk, _ := pem.Decode(p)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*rsa.PublicKey)
}

// adBundleZip is a small valid bundle whose content depends on version.
func adBundleZip(t testing.TB, version string) []byte {
	return testenv.Zip(t, map[string]string{
		"index.html":      "<!doctype html><html><body>" + version + "</body></html>",
		"js/app.js":       "console.log('" + version + "');" + strings.Repeat("/* padding */", 40),
		"assets/logo.svg": "<svg/>",
	})
}

// adPublishWith publishes a generated bundle with extra input fields.
func (e *testEnv) adPublishWith(app string, in publish.Input, channel string) (release.Release, []byte) {
	e.t.Helper()
	z := adBundleZip(e.t, in.Version)
	return e.publishZip(app, in, z, channel), z
}

// adSetRolling puts version on channel's rollout at percent.
func (e *testEnv) adSetRolling(app, channel, version string, percent float64) {
	e.t.Helper()
	_, err := e.store.UpdateChannel(context.Background(), app, channel, "test", "rollout", func(c *release.Channel, _ bool) error {
		c.Rolling = &release.Rollout{Version: version, Percent: percent, Salt: "salt", StartedAt: time.Now().UTC()}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv.state.invalidate(app)
}

// adUpdateChannel changes a channel directly.
func (e *testEnv) adUpdateChannel(app, channel string, fn func(c *release.Channel)) {
	e.t.Helper()
	_, err := e.store.UpdateChannel(context.Background(), app, channel, "test", "set", func(c *release.Channel, _ bool) error {
		fn(c)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv.state.invalidate(app)
}

// getAs sends a GET with the given headers and decodes a JSON object answer (nil if not JSON).
func (e *testEnv) adGetJSON(path string, hdr ...string) (int, map[string]any) {
	e.t.Helper()
	st, _, b := e.do("GET", path, nil, hdr...)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		m = nil
	}
	return st, m
}

// adIsInt reports whether v is a JSON integer (no decimal point, no exponent).
func adIsInt(v any) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	_, err := n.Int64()
	return err == nil && !strings.ContainsAny(n.String(), ".eE")
}

var adHex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// nuDevice is exactly what a native-update device sends.
func (e *testEnv) nuDevice(app, channel string) (int, map[string]any) {
	e.t.Helper()
	return e.adGetJSON("/native-update/"+app+"/check?channel="+channel, "User-Agent", okhttpUA)
}

// androidSeesUpdate is the Android reading rule: any 2xx with a JSON object body.
func androidSeesUpdate(status int, m map[string]any) bool { return status/100 == 2 && m != nil }

// iosSeesUpdate is the iOS reading rule: JSON with top-level available == true.
func iosSeesUpdate(m map[string]any) bool { return m != nil && m["available"] == true }

// ---- conformance checklist (native-update, see docs/protocols.md)

func TestNativeUpdate01_DeviceCheckOffersRelease(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	rel, _ := e.publish("com.example.app", "1.0.0", "production")
	st, m := e.nuDevice("com.example.app", "production")
	if st != 200 || m["available"] != true {
		t.Fatalf("status %d body %v", st, m)
	}
	if m["version"] != "1.0.0" || m["url"] == "" || m["checksum"] != rel.SHA256 {
		t.Fatalf("body %v", m)
	}
	if !androidSeesUpdate(st, m) || !iosSeesUpdate(m) {
		t.Fatal("a client would not see the update")
	}
	// Missing channel = the app's default channel.
	if st, m := e.adGetJSON("/native-update/com.example.app/check", "User-Agent", "CFNetwork/1490 Darwin/23.2.0"); st != 200 || m["channel"] != "production" {
		t.Fatalf("default channel: %d %v", st, m)
	}
}

func TestNativeUpdate02_NothingToOfferIs404(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	e.adUpdateChannel("com.example.app", "empty", func(c *release.Channel) {})
	e.adUpdateChannel("com.example.app", "revert", func(c *release.Channel) { c.Builtin = true })
	cases := map[string]string{
		"unknown app":        "/native-update/com.example.nope/check?channel=production",
		"unknown channel":    "/native-update/com.example.app/check?channel=beta",
		"channel no release": "/native-update/com.example.app/check?channel=empty",
		"builtin channel":    "/native-update/com.example.app/check?channel=revert",
	}
	for name, path := range cases {
		st, m := e.adGetJSON(path, "User-Agent", okhttpUA)
		if st != 404 || m == nil || m["available"] != false || m["updateAvailable"] != false {
			t.Errorf("%s: %d %v", name, st, m)
		}
		if androidSeesUpdate(st, m) || iosSeesUpdate(m) {
			t.Errorf("%s: a client would see an update", name)
		}
	}
	// Malformed input: 400, still available:false.
	st, m := e.adGetJSON("/native-update/com.example.app/check?channel=pro%20d", "User-Agent", okhttpUA)
	if st != 400 || m["available"] != false || m["error"] != "invalid_channel" {
		t.Fatalf("bad channel: %d %v", st, m)
	}
}

func TestNativeUpdate03_SupersetFields(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	z := adBundleZip(t, "2.3.1")
	e.publishZip("com.example.app", publish.Input{Version: "2.3.1", Notes: "Faster sync", MinNative: "2.0.0", Mandatory: true,
		Signatures: adSignatures(t, z)}, z, "production")
	st, m := e.nuDevice("com.example.app", "production")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	strs := []string{"version", "latestVersion", "url", "downloadUrl", "bundleUrl", "notes", "description", "releaseNotes",
		"checksum", "signature", "signaturePss", "signaturePkcs1", "signatureAlgorithm", "minAppVersion", "minNativeVersion", "channel"}
	for _, k := range strs {
		if _, ok := m[k].(string); !ok {
			t.Errorf("%s: want string, got %T %v", k, m[k], m[k])
		}
	}
	for _, k := range []string{"available", "updateAvailable", "mandatory"} {
		if _, ok := m[k].(bool); !ok {
			t.Errorf("%s: want bool, got %T", k, m[k])
		}
	}
	if !adIsInt(m["size"]) || m["size"].(json.Number).String() != adItoa(len(z)) {
		t.Errorf("size: %v", m["size"])
	}
	if m["notes"] != "Faster sync" || m["description"] != "Faster sync" || m["releaseNotes"] != "Faster sync" || m["mandatory"] != true ||
		m["latestVersion"] != "2.3.1" || m["channel"] != "production" {
		t.Errorf("values: %v", m)
	}

	// Without signatures: no signature field at all, every other field still there.
	e.publish("com.example.app", "2.3.2", "production")
	_, m = e.nuDevice("com.example.app", "production")
	for _, k := range []string{"signature", "signaturePss", "signaturePkcs1", "signatureAlgorithm"} {
		if _, ok := m[k]; ok {
			t.Errorf("unsigned release has %s", k)
		}
	}
	for _, k := range []string{"available", "updateAvailable", "version", "latestVersion", "url", "downloadUrl", "bundleUrl", "notes",
		"description", "releaseNotes", "checksum", "size", "mandatory", "minAppVersion", "minNativeVersion", "channel"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
}

func adItoa(n int) string { return strconv.Itoa(n) }

func TestNativeUpdate04_URLsIdenticalAndDownloadMatchesChecksum(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	_, z := e.publish("com.example.app", "1.0.0", "production")
	_, m := e.nuDevice("com.example.app", "production")
	u, _ := m["url"].(string)
	if u == "" || m["downloadUrl"] != u || m["bundleUrl"] != u {
		t.Fatalf("urls differ: %v", m)
	}
	pu, err := url.Parse(u)
	if err != nil || !pu.IsAbs() {
		t.Fatalf("url not absolute: %q", u)
	}
	// The native download: a plain GET, redirects followed.
	st, h, b := e.get(u, "User-Agent", okhttpUA)
	if st != 200 || sha256hex(b) != m["checksum"] || !bytes.Equal(b, z) {
		t.Fatalf("download: %d, sha %s vs %v", st, sha256hex(b), m["checksum"])
	}
	if h.Get("Content-Type") != "application/zip" || h.Get("Content-Length") != adItoa(len(z)) {
		t.Fatalf("download headers: %v", h)
	}
}

func TestNativeUpdate05_ChecksumIsBareLowercaseHex(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	_, m := e.nuDevice("com.example.app", "production")
	if c, _ := m["checksum"].(string); !adHex64.MatchString(c) {
		t.Fatalf("checksum %q", c)
	}
}

func TestNativeUpdate06_PSSSalt32Verifies(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	z := adBundleZip(t, "1.0.0")
	sigs := adSignatures(t, z)
	e.publishZip("com.example.app", publish.Input{Version: "1.0.0", Signatures: sigs}, z, "production")
	_, m := e.nuDevice("com.example.app", "production")
	if m["signatureAlgorithm"] != "RSA-PSS-SHA256" || m["signature"] != m["signaturePss"] {
		t.Fatalf("signature fields: %v", m)
	}
	_, _, got := e.get(m["url"].(string))
	d := sha256.Sum256(got)
	sig, err := base64.StdEncoding.DecodeString(m["signaturePss"].(string))
	if err != nil {
		t.Fatal(err)
	}
	pub := adClientPublicKey(t)
	if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}); err != nil {
		t.Fatalf("device rejects the PSS signature: %v", err)
	}
	// A signature made with nil options (maximum salt) is what every client rejects.
	maxSalt, err := rsa.SignPSS(rand.Reader, adRSA(t), crypto.SHA256, d[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if rsa.VerifyPSS(pub, crypto.SHA256, d[:], maxSalt, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}) == nil {
		t.Fatal("a max-salt signature verified with salt 32")
	}
	// The server-side helper agrees with the device on both.
	if err := sign.VerifyPSS(pub, d[:], m["signaturePss"].(string)); err != nil {
		t.Fatalf("sign.VerifyPSS: %v", err)
	}
	if sign.VerifyPSS(pub, d[:], base64.StdEncoding.EncodeToString(maxSalt)) == nil {
		t.Fatal("sign.VerifyPSS accepted a max-salt signature")
	}
}

func TestNativeUpdate07_PKCS1Verifies(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	z := adBundleZip(t, "1.0.0")
	sigs := adSignatures(t, z)
	sigs.PSS = "" // a capacitor-native-update 2.0 publisher
	e.publishZip("com.example.app", publish.Input{Version: "1.0.0", Signatures: sigs}, z, "production")
	_, m := e.nuDevice("com.example.app", "production")
	if m["signatureAlgorithm"] != "RSA-PKCS1-SHA256" || m["signature"] != m["signaturePkcs1"] {
		t.Fatalf("signature fields: %v", m)
	}
	if _, ok := m["signaturePss"]; ok {
		t.Fatal("signaturePss without a PSS signature")
	}
	_, _, got := e.get(m["url"].(string))
	d := sha256.Sum256(got)
	sig, _ := base64.StdEncoding.DecodeString(m["signaturePkcs1"].(string))
	if err := rsa.VerifyPKCS1v15(adClientPublicKey(t), crypto.SHA256, d[:], sig); err != nil {
		t.Fatalf("PKCS#1 v1.5 signature: %v", err)
	}
}

var adSemverRe = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

func TestNativeUpdate08_MinVersionsAreSemver(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	_, m := e.nuDevice("com.example.app", "production")
	if m["minNativeVersion"] != "0.0.0" || m["minAppVersion"] != "0.0.0" {
		t.Fatalf("unset minimum: %v %v", m["minNativeVersion"], m["minAppVersion"])
	}
	e.adPublishWith("com.example.app", publish.Input{Version: "1.1.0", MinNative: "2.1.0"}, "production")
	_, m = e.nuDevice("com.example.app", "production")
	for _, k := range []string{"minNativeVersion", "minAppVersion"} {
		if s, _ := m[k].(string); s != "2.1.0" || !adSemverRe.MatchString(s) {
			t.Fatalf("%s = %v", k, m[k])
		}
	}
}

func TestNativeUpdate09_RollingReleaseInvisibleWithoutDeviceID(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	e.publish("com.example.app", "2.0.0", "")
	e.adSetRolling("com.example.app", "production", "2.0.0", 100)
	if _, m := e.nuDevice("com.example.app", "production"); m["version"] != "1.0.0" {
		t.Fatalf("device route: %v", m["version"])
	}
	if _, m := e.adGetJSON("/api/v1/updates/check?appId=com.example.app&channel=production"); m["version"] != "1.0.0" {
		t.Fatalf("api route without deviceId: %v", m["version"])
	}
	// The deviceId extension opts into the rollout.
	if _, m := e.adGetJSON("/api/v1/updates/check?appId=com.example.app&channel=production&deviceId=dev-1"); m["version"] != "2.0.0" {
		t.Fatalf("api route with deviceId: %v", m["version"])
	}
}

// adNoURLQueries drops the signature/expiry of URLs (they depend on the clock).
func adNoURLQueries(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "http") {
			v, _, _ = strings.Cut(s, "?")
		}
		out[k] = v
	}
	return out
}

func TestNativeUpdate10_WebFallbackExtrasIgnored(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	_, base := e.nuDevice("com.example.app", "production")
	st, web := e.adGetJSON("/native-update/com.example.app/check?channel=production&version=0.9.0&appId=com.other.app&platform=web",
		"X-App-Version", "0.9.0", "X-App-Id", "com.other.app", "User-Agent", "Mozilla/5.0")
	if st != 200 {
		t.Fatalf("status %d", st)
	}
	a, _ := json.Marshal(adNoURLQueries(base))
	b, _ := json.Marshal(adNoURLQueries(web))
	if !bytes.Equal(a, b) {
		t.Fatalf("answers differ:\n%s\n%s", a, b)
	}
}

func TestNativeUpdate11_APICheckCurrentVersion(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "")
	e.publish("com.example.app", "1.1.0", "production")
	st, m := e.adGetJSON("/api/v1/updates/check?appId=com.example.app&currentVersion=1.1.0&platform=ios&channel=production")
	if st != 404 || m["available"] != false {
		t.Fatalf("current = head: %d %v", st, m)
	}
	st, m = e.adGetJSON("/api/v1/updates/check?appId=com.example.app&currentVersion=1.0.0&platform=android&channel=production")
	if st != 200 || m["available"] != true || m["version"] != "1.1.0" {
		t.Fatalf("older current: %d %v", st, m)
	}
	// No appId: 400 without a default app, the default app with one.
	if st, m := e.adGetJSON("/api/v1/updates/check?channel=production"); st != 400 || m["available"] != false {
		t.Fatalf("no appId: %d %v", st, m)
	}
	e.srv.cfg.DefaultApp = "com.example.app"
	if st, m := e.adGetJSON("/api/v1/updates/check?channel=production"); st != 200 || m["version"] != "1.1.0" {
		t.Fatalf("default app: %d %v", st, m)
	}
}

func TestNativeUpdate12_BundleDownloadRoutes(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	_, z := e.publish("com.example.app", "1.0.0", "production")
	for _, p := range []string{"/api/v1/bundles/1.0.0?appId=com.example.app", "/native-update/com.example.app/bundles/1.0.0"} {
		st, h, _ := e.do("GET", p, nil)
		if st != 302 || h.Get("Location") == "" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v", p, st, h)
		}
		st, _, b := e.get(h.Get("Location"))
		if st != 200 || !bytes.Equal(b, z) {
			t.Fatalf("%s: follow: %d", p, st)
		}
		// The signed URL supports Range (the bytes behind the redirect).
		st, rh, part := e.get(h.Get("Location"), "Range", "bytes=5-")
		if st != 206 || !bytes.Equal(part, z[5:]) || rh.Get("Content-Range") == "" {
			t.Fatalf("%s: range: %d", p, st)
		}
	}
	for _, p := range []string{"/api/v1/bundles/9.9.9?appId=com.example.app", "/native-update/com.example.app/bundles/9.9.9",
		"/api/v1/bundles/1.0.0?appId=com.example.nope"} {
		if st, _, _ := e.do("GET", p, nil); st != 404 {
			t.Fatalf("%s: %d", p, st)
		}
	}
	if st, _, _ := e.do("GET", "/api/v1/bundles/1.0.0", nil); st != 400 {
		t.Fatalf("no appId: %d", st)
	}
}

func TestNativeUpdate13_ConfirmRecordsFailure(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.createApp("com.example.app")
	e.publish("com.example.app", "2.3.1", "production")
	dev := "c0ffee12-0000-4000-8000-000000000001"
	// Wrong types, missing fields, unknown app/version: nothing is written.
	bad := []struct {
		body string
		want int
	}{
		{`{"appId":"com.example.app","version":"2.3.1","platform":"ios","success":"false","deviceId":"` + dev + `"}`, 400},
		{`{"appId":5,"version":"2.3.1","success":false,"deviceId":"` + dev + `"}`, 400},
		{`{"appId":"com.example.app","version":231,"success":false,"deviceId":"` + dev + `"}`, 400},
		{`{"appId":"com.example.app","version":"2.3.1","success":false,"deviceId":42}`, 400},
		{`{"appId":"com.example.app","version":"2.3.1","deviceId":"` + dev + `"}`, 400},
		{`{"appId":"com.example.app","version":"2.3.1","success":false`, 400},
		{`[]`, 400},
		{``, 400},
		{`{"appId":"com.example.nope","version":"2.3.1","success":false,"deviceId":"` + dev + `"}`, 404},
		{`{"appId":"com.example.app","version":"9.9.9","success":false,"deviceId":"` + dev + `"}`, 404},
	}
	for _, c := range bad {
		if st, _, b := e.do("POST", "/api/v1/updates/confirm", c.body); st != c.want {
			t.Errorf("%s: %d %s", c.body, st, b)
		}
	}
	if n, _ := e.store.FailureCount(ctx, "com.example.app", "2.3.1"); n != 0 {
		t.Fatalf("bad input wrote a failure")
	}
	if _, err := e.store.GetDevice(ctx, "com.example.app", dev); err == nil {
		t.Fatal("bad input wrote a device record")
	}
	st, _, b := e.do("POST", "/api/v1/updates/confirm", map[string]any{"appId": "com.example.app", "version": "2.3.1", "platform": "ios", "success": false, "deviceId": dev})
	if st != 200 || jsonMap(t, b)["status"] != "ok" {
		t.Fatalf("confirm: %d %s", st, b)
	}
	d, err := e.store.GetDevice(ctx, "com.example.app", dev)
	if err != nil || !d.FailedRecently("2.3.1", time.Now()) {
		t.Fatalf("failure memory: %+v %v", d, err)
	}
	if n, _ := e.store.FailureCount(ctx, "com.example.app", "2.3.1"); n != 1 {
		t.Fatalf("failure count %d", n)
	}
	// That device is no longer offered the version; another device is.
	if st, _ := e.adGetJSON("/api/v1/updates/check?appId=com.example.app&deviceId=" + dev); st != 404 {
		t.Fatalf("failed device offered the version again: %d", st)
	}
	if st, _ := e.adGetJSON("/api/v1/updates/check?appId=com.example.app&deviceId=other"); st != 200 {
		t.Fatalf("other device: %d", st)
	}
	// success:true is counted, not remembered as a failure.
	st, _, _ = e.do("POST", "/api/v1/updates/confirm", map[string]any{"appId": "com.example.app", "version": "2.3.1", "success": true, "deviceId": "dev-ok"})
	if st != 200 {
		t.Fatalf("success confirm: %d", st)
	}
	if d, err := e.store.GetDevice(ctx, "com.example.app", "dev-ok"); err != nil || len(d.Failed) != 0 || d.Version != "2.3.1" {
		t.Fatalf("success: device record %+v %v, want version 2.3.1 (adoption) and no failure memory", d, err)
	}
}

func TestNativeUpdate14_ServedZipHasIndexAtRoot(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	_, m := e.nuDevice("com.example.app", "production")
	_, _, b := e.get(m["url"].(string))
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range zr.File {
		found = found || f.Name == "index.html"
	}
	if !found {
		t.Fatal("no index.html at the archive root")
	}
}

// A Flux chunk is not a zip: zip clients are never offered one.
func TestNativeUpdateChunkReleaseNotOffered(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	if _, err := e.pipe.PublishBytes(context.Background(), publish.Input{AppID: "com.example.app", Version: "1.0.0", Format: release.FormatChunk}, []byte("FLUX\x01abc")); err != nil {
		t.Fatal(err)
	}
	e.setStable("com.example.app", "production", "1.0.0")
	if st, _ := e.nuDevice("com.example.app", "production"); st != 404 {
		t.Fatalf("chunk offered to a zip client: %d", st)
	}
	if st, _, _ := e.do("GET", "/native-update/com.example.app/bundles/1.0.0", nil); st != 404 {
		t.Fatalf("chunk served as a bundle: %d", st)
	}
}

// The app's signature setting: validated by the admin API, reset by "".
func TestNativeUpdateSignatureSetting(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	patch := func(v any) (int, map[string]any) {
		st, _, b := e.do("PATCH", "/v1/apps/com.example.app", map[string]any{"native_update_signature": v}, "Authorization", "Bearer "+e.admin)
		return st, jsonMap(t, b)
	}
	if st, m := patch("rsa"); st != 400 || m["error"] != "invalid_native_update_signature" {
		t.Fatalf("bad scheme: %d %v", st, m)
	}
	if st, _ := patch(1); st != 400 {
		t.Fatalf("wrong type: %d", st)
	}
	if st, m := patch("pkcs1"); st != 200 || m["native_update_signature"] != "pkcs1" {
		t.Fatalf("pkcs1: %d %v", st, m)
	}
	if a, _ := e.store.GetApp(context.Background(), "com.example.app"); a.NativeUpdateSignature != release.SigPKCS1 {
		t.Fatalf("stored %q", a.NativeUpdateSignature)
	}
	if st, m := patch(""); st != 200 || m["native_update_signature"] != nil {
		t.Fatalf("reset: %d %v", st, m)
	}
}

// What `signature` carries for each setting and each set of forms a release has.
func TestNativeUpdateSignatureChoice(t *testing.T) {
	both := release.Signatures{PSS: "pss-sig", PKCS1: "pkcs1-sig"}
	tests := []struct {
		scheme       string
		sigs         release.Signatures
		wantSig, alg string
	}{
		{"", both, "pss-sig", nuAlgPSS},
		{"", release.Signatures{PKCS1: "pkcs1-sig"}, "pkcs1-sig", nuAlgPKCS1},
		{"", release.Signatures{}, "", ""},
		{release.SigPSS, both, "pss-sig", nuAlgPSS},
		{release.SigPKCS1, both, "pkcs1-sig", nuAlgPKCS1},
		// A chosen scheme the release lacks: no signature rather than the other scheme.
		{release.SigPSS, release.Signatures{PKCS1: "pkcs1-sig"}, "", ""},
		{release.SigPKCS1, release.Signatures{PSS: "pss-sig"}, "", ""},
	}
	for _, tc := range tests {
		sig, alg := nuSignature(tc.sigs, tc.scheme)
		if sig != tc.wantSig || alg != tc.alg {
			t.Errorf("scheme %q, %+v: got %q %q, want %q %q", tc.scheme, tc.sigs, sig, alg, tc.wantSig, tc.alg)
		}
	}
}
