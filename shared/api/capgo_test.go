package api

// Conformance tests for the Capgo adapter: one test per statement of its conformance
// checklist (TestCapgo01 .. TestCapgo17; 18 is in capgo_cli_test.go; channel handling
// by plugin line is in capgo_channel_matrix_test.go).
// Request bodies are the ones @capgo/capacitor-updater 7.x/8.x sends
// (testdata/capgo), and answers are read by the plugin's own rules: every value's
// JSON type is checked the way iOS decodes it strictly.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/testenv"
)

const capgoApp = "com.example.demo"

// ---- helpers

// capgoFixture loads a request body from testdata/capgo and applies overrides (a nil
// value deletes the field).
func capgoFixture(t testing.TB, name string, over map[string]any) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "capgo", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// capgoDevice is an 8.x Android check body for device id, running bundle current
// (current == version_build means the store bundle).
func capgoDevice(t testing.TB, id, current string, over map[string]any) map[string]any {
	t.Helper()
	base := map[string]any{}
	if id != "" {
		base["device_id"] = id
	}
	if current != "" {
		base["version_name"] = current
	}
	for k, v := range over {
		base[k] = v
	}
	return capgoFixture(t, "updates_android_8.json", base)
}

// capgoCheck posts an update check and decodes the answer (numbers kept as json.Number).
func (e *testEnv) capgoCheck(body any) (int, http.Header, map[string]any) {
	e.t.Helper()
	st, h, b := e.do("POST", "/capgo/updates", body, "User-Agent", "CapacitorUpdater/8.51.23 (com.example.demo) android/14")
	return st, h, jsonMap(e.t, b)
}

// capgoTypes checks an update-check answer the way the iOS plugin decodes it
// (AppVersionDec): one wrong type is a decode_error.
func capgoTypes(t testing.TB, m map[string]any) {
	t.Helper()
	for k, v := range m {
		switch k {
		case "version", "checksum", "url", "message", "error", "kind", "session_key", "link", "comment":
			if _, ok := v.(string); !ok {
				t.Errorf("%q must be a string, got %T (%v)", k, v, v)
			}
		case "major", "breaking":
			if _, ok := v.(bool); !ok {
				t.Errorf("%q must be a bool, got %T (%v)", k, v, v)
			}
		case "data":
			d, ok := v.(map[string]any)
			if !ok {
				t.Errorf("data must be an object, got %T", v)
			}
			for dk, dv := range d {
				if _, ok := dv.(string); !ok {
					t.Errorf("data[%q] must be a string, got %T", dk, dv)
				}
			}
		case "manifest":
			l, ok := v.([]any)
			if !ok {
				t.Errorf("manifest must be an array, got %T", v)
			}
			for i, it := range l {
				o, ok := it.(map[string]any)
				if !ok {
					t.Fatalf("manifest[%d] must be an object, got %T", i, it)
				}
				for _, f := range []string{"file_name", "file_hash", "download_url"} {
					if _, ok := o[f].(string); !ok {
						t.Errorf("manifest[%d].%s must be a string, got %T", i, f, o[f])
					}
				}
			}
		}
	}
}

// capgoWantUpdate checks an update answer by the plugin's rules and returns it.
func capgoWantUpdate(t testing.TB, status int, m map[string]any) map[string]any {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("update answer: status %d: %v", status, m)
	}
	capgoTypes(t, m)
	for _, k := range []string{"error", "kind", "message"} {
		if _, ok := m[k]; ok {
			t.Fatalf("an update answer must not have %q (the plugin reads it as no update / JS rejects): %v", k, m)
		}
	}
	if v, _ := m["version"].(string); v == "" {
		t.Fatalf("update answer without version: %v", m)
	}
	capgoAbsURL(t, m["url"])
	if c, _ := m["checksum"].(string); c == "" {
		t.Fatalf("update answer without checksum: %v", m)
	}
	return m
}

func capgoAbsURL(t testing.TB, v any) *url.URL {
	t.Helper()
	s, ok := v.(string)
	if !ok || s == "" {
		t.Fatalf("url must be a non-empty string, got %T %v", v, v)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		t.Fatalf("url %q is not absolute (%v)", s, err)
	}
	return u
}

// capgoWantNoUpdate checks a no-update answer: HTTP 200, error, message, valid kind.
func capgoWantNoUpdate(t testing.TB, status int, h http.Header, m map[string]any, kind, code string) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("no-update answer must be HTTP 200, got %d: %v", status, m)
	}
	if h.Get("Location") != "" || h.Get("Retry-After") != "" {
		t.Fatalf("unexpected headers %v", h)
	}
	capgoTypes(t, m)
	if e, _ := m["error"].(string); e == "" {
		t.Fatalf("no-update answer without error: %v", m)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Fatalf("no-update answer without message: %v", m)
	}
	if k, _ := m["kind"].(string); k != "up_to_date" && k != "blocked" && k != "failed" {
		t.Fatalf("kind %v is not one the plugin knows: %v", m["kind"], m)
	}
	if kind != "" && m["kind"] != kind {
		t.Fatalf("kind = %v, want %s: %v", m["kind"], kind, m)
	}
	if code != "" && m["error"] != code {
		t.Fatalf("error = %v, want %s: %v", m["error"], code, m)
	}
	if _, ok := m["url"]; ok {
		t.Fatalf("no-update answer with url: %v", m)
	}
}

func (e *testEnv) capgoChannel(name string, fn func(c *release.Channel)) release.Channel {
	e.t.Helper()
	c, err := e.store.UpdateChannel(context.Background(), capgoApp, name, "test", "set", func(c *release.Channel, _ bool) error {
		fn(c)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv.state.invalidate(capgoApp)
	return c
}

// capgoItems counts every live item of the store (to prove a refused request wrote nothing).
func (e *testEnv) capgoItems() int {
	e.t.Helper()
	bt, ok := e.store.Table().(*bolt.Table)
	if !ok {
		e.t.Fatalf("store is %T, not bolt", e.store.Table())
	}
	n := 0
	err := bt.DB().View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(_, _ []byte) error { n++; return nil })
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// capgoStat sums today's counter for (version, action) over all channels.
func (e *testEnv) capgoStat(version, action string) int64 {
	e.t.Helper()
	rows, err := e.store.ReadStats(context.Background(), capgoApp, []string{store.Day(e.store.Now())})
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		if r.Version == version && r.Action == action {
			n += r.Count
		}
	}
	return n
}

func (e *testEnv) capgoStats(body any) (int, map[string]any) {
	e.t.Helper()
	st, _, b := e.do("POST", "/capgo/stats", body)
	return st, jsonMap(e.t, b)
}

// capgoStatEvent is one stats event the way the plugin builds it.
func capgoStatEvent(t testing.TB, device, action, version string, ts int64) map[string]any {
	t.Helper()
	m := capgoDevice(t, device, "", map[string]any{"version_name": version, "old_version_name": "", "action": action})
	if ts != 0 {
		m["timestamp"] = ts
	}
	return m
}

var (
	capgoKeyOnce sync.Once
	capgoKey     *rsa.PrivateKey
	capgoKey2    *rsa.PrivateKey
)

// capgoKeys returns the app's RSA-2048 key and another one.
func capgoKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	capgoKeyOnce.Do(func() {
		var err error
		if capgoKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if capgoKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return capgoKey, capgoKey2
}

// capgoPublicPEM is the app config's publicKey (PKCS#1 "RSA PUBLIC KEY").
func capgoPublicPEM(pub *rsa.PublicKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}))
}

// capgoDeviceKeyID is the plugin's calcKeyId: the first 20 characters of the key's
// base64 body, armour and whitespace removed.
func capgoDeviceKeyID(publicPEM string) string {
	s := strings.Join(strings.Fields(publicPEM), "")
	s = strings.ReplaceAll(s, "-----BEGINRSAPUBLICKEY-----", "")
	s = strings.ReplaceAll(s, "-----ENDRSAPUBLICKEY-----", "")
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

// capgoPublicOp is the device's RSA "public decrypt": m = s^e mod n, then strip the
// PKCS#1 v1.5 type-1 padding 00 01 FF..FF 00.
func capgoPublicOp(t testing.TB, pub *rsa.PublicKey, s []byte) []byte {
	t.Helper()
	if len(s) != pub.Size() {
		t.Fatalf("RSA block is %d bytes, want %d", len(s), pub.Size())
	}
	m := new(big.Int).Exp(new(big.Int).SetBytes(s), big.NewInt(int64(pub.E)), pub.N)
	em := m.FillBytes(make([]byte, pub.Size()))
	if em[0] != 0 || em[1] != 1 {
		t.Fatalf("not PKCS#1 type-1 padding: % x", em[:4])
	}
	i := 2
	for i < len(em) && em[i] == 0xff {
		i++
	}
	if i < 10 || i >= len(em) || em[i] != 0 {
		t.Fatalf("bad PKCS#1 type-1 padding")
	}
	return em[i+1:]
}

// capgoDeviceDecrypt is what the plugin does with an encrypted download: recover the
// AES key from session_key with the public key, then AES-128-CBC + PKCS#7.
func capgoDeviceDecrypt(t testing.TB, pub *rsa.PublicKey, sessionKey string, data []byte) []byte {
	t.Helper()
	ivB64, keyB64, ok := strings.Cut(sessionKey, ":")
	if !ok {
		t.Fatalf("session_key %q is not iv:key", sessionKey)
	}
	iv, err := base64.StdEncoding.DecodeString(ivB64)
	if err != nil || len(iv) != aes.BlockSize {
		t.Fatalf("session_key IV: %v (%d bytes)", err, len(iv))
	}
	encKey, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		t.Fatalf("session_key key: %v", err)
	}
	key := capgoPublicOp(t, pub, encKey)
	if len(key) != 16 {
		t.Fatalf("AES key is %d bytes, want 16", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		t.Fatalf("ciphertext length %d is not a multiple of the block size", len(data))
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	pad := int(out[len(out)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("bad PKCS#7 padding")
	}
	return out[:len(out)-pad]
}

// capgoDeviceVerify is the plugin's V3 checksum check: hex → 256 bytes →
// VerifyPKCS1v15(pub, 0, sha256(decrypted zip), checksum).
func capgoDeviceVerify(pub *rsa.PublicKey, zip []byte, checksum string) error {
	if !regexp.MustCompile(`^[0-9a-f]{512}$`).MatchString(checksum) {
		return fmt.Errorf("checksum is not 512 lowercase hex characters: %q", checksum)
	}
	sig, _ := hex.DecodeString(checksum)
	sum := sha256.Sum256(zip)
	return rsa.VerifyPKCS1v15(pub, crypto.Hash(0), sum[:], sig)
}

// capgoPublishEncrypted publishes bytes encrypted for Capgo through the real pipeline
// (create, signed upload, ingest), the way `ota release --capgo-key` does.
func (e *testEnv) capgoPublishEncrypted(version string, enc []byte, sigs release.Signatures, channel string) release.Release {
	e.t.Helper()
	ctx := context.Background()
	in := publish.Input{AppID: capgoApp, Version: version, SHA256: sha256hex(enc), Size: int64(len(enc)), Signatures: sigs}
	_, up, err := e.pipe.Create(ctx, in)
	if err != nil {
		e.t.Fatalf("create encrypted release: %v", err)
	}
	e.upload(up, enc)
	r, err := e.store.GetRelease(ctx, capgoApp, version)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.Status != release.StatusReady {
		e.t.Fatalf("the publish pipeline did not accept a Capgo-encrypted release (status %s, %s): "+
			"publish.Ingest must not inspect encrypted bytes (Signatures.SessionKey set) as a zip", r.Status, r.Error)
	}
	if channel != "" {
		e.setStable(capgoApp, channel, version)
	}
	return r
}

// capgoEncryptedRelease makes an app bundle encrypted with key and publishes it.
func (e *testEnv) capgoEncryptedRelease(version string, key *rsa.PrivateKey) (zip, enc []byte, sigs release.Signatures) {
	e.t.Helper()
	zip = testenv.Zip(e.t, map[string]string{"index.html": "<html>" + version + "</html>", "js/app.js": "CapacitorUpdater.notifyAppReady()"})
	enc, sessionKey, checksum, err := sign.CapgoEncrypt(key, zip)
	if err != nil {
		e.t.Fatal(err)
	}
	sigs = release.Signatures{SessionKey: sessionKey, EncChecksum: checksum, KeyID: sign.CapgoKeyID(capgoPublicPEM(&key.PublicKey))}
	e.capgoPublishEncrypted(version, enc, sigs, "production")
	return zip, enc, sigs
}

// ---- 1. unknown fields accepted; upper-case device_id stored lower-case

func TestCapgo01_UnknownFieldsAndLowercaseDevice(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	e.capgoChannel("beta", func(c *release.Channel) { c.AllowSelfSet = true })

	const upper = "0E7A2F3C-5B1D-4C8E-9A6F-3D2B1C0E9F8A"
	body := capgoFixture(t, "updates_android_8.json", map[string]any{
		"device_id":       upper,
		"future_field":    map[string]any{"nested": []any{1, "x", true}},
		"another_unknown": 12.5,
		"channel":         nil,
	})
	st, _, m := e.capgoCheck(body)
	if got := capgoWantUpdate(t, st, m)["version"]; got != "1.0.1" {
		t.Fatalf("version = %v", got)
	}

	// A channel choice the server stores (plugin lines before 7.34.0 keep it on the
	// server) is stored under the lower-case id.
	set := capgoFixture(t, "updates_android_8.json", map[string]any{"device_id": upper, "channel": "beta", "unknown": "x", "plugin_version": "7.33.4"})
	if st, _, b := e.do("POST", "/capgo/channel_self", set); st != 200 {
		t.Fatalf("channel_self POST: %d %s", st, b)
	}
	ctx := context.Background()
	d, err := e.store.GetDevice(ctx, capgoApp, strings.ToLower(upper))
	if err != nil || d.Channel != "beta" {
		t.Fatalf("device under lower-case id: %+v %v", d, err)
	}
	if _, err := e.store.GetDevice(ctx, capgoApp, upper); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a device record exists under the upper-case id: %v", err)
	}

	// Failure memory too: a report with the upper-case id blocks the lower-case device.
	if st, _ := e.capgoStats([]any{capgoStatEvent(t, upper, "update_fail", "1.0.1", 1795338000000)}); st != 200 {
		t.Fatalf("stats: %d", st)
	}
	d, _ = e.store.GetDevice(ctx, capgoApp, strings.ToLower(upper))
	if _, ok := d.Failed["1.0.1"]; !ok {
		t.Fatalf("failure not remembered under the lower-case id: %+v", d)
	}
	st, h, m := e.capgoCheck(capgoDevice(t, strings.ToLower(upper), "1.0.0", nil))
	capgoWantNoUpdate(t, st, h, m, "blocked", release.ReasonFailedBefore)
}

// ---- 2. version_name "builtin" is version_build

func TestCapgo02_BuiltinVersionNameIsVersionBuild(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.0", "production")

	// A 7.x iOS device on its store bundle, whose native version names the channel head.
	body := capgoFixture(t, "updates_ios_7.json", nil)
	st, h, m := e.capgoCheck(body)
	capgoWantNoUpdate(t, st, h, m, "up_to_date", "no_new_version_available")

	// Same device, older native version: "builtin" is not a version, 1.0.0 is offered.
	body["version_build"] = "0.9.0"
	st, _, m = e.capgoCheck(body)
	if v := capgoWantUpdate(t, st, m)["version"]; v != "1.0.0" {
		t.Fatalf("version = %v", v)
	}
}

// ---- 3. every no-update answer: HTTP 200 with error, message and a valid kind

func TestCapgo03_NoUpdateAnswersAre200WithKind(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.createApp("com.example.empty") // no channel at all
	e.publish(capgoApp, "1.0.1", "production")
	// Channels a device names must be public or open to self-assignment.
	e.capgoChannel("nobundle", func(c *release.Channel) { c.AllowSelfSet = true })
	e.capgoChannel("noemu", func(c *release.Channel) { c.Stable, c.NoEmulator, c.AllowSelfSet = "1.0.1", true, true })
	e.capgoChannel("nodev", func(c *release.Channel) { c.Stable, c.NoDevBuild, c.Public = "1.0.1", true, true })
	pub := capgoPublicPEM(&func() *rsa.PrivateKey { k, _ := capgoKeys(t); return k }().PublicKey)

	dev := "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"
	cases := []struct {
		name, kind, code string
		body             map[string]any
	}{
		{"up to date", "up_to_date", "no_new_version_available", capgoDevice(t, dev, "1.0.1", nil)},
		{"emulator", "blocked", "disable_emulator", capgoDevice(t, dev, "1.0.0", map[string]any{"defaultChannel": "noemu", "is_emulator": true})},
		{"dev build", "blocked", "disable_dev_build", capgoDevice(t, dev, "1.0.0", map[string]any{"defaultChannel": "nodev", "is_prod": false})},
		{"key mismatch", "blocked", "key_id_mismatch", capgoDevice(t, dev, "1.0.0", map[string]any{"key_id": capgoDeviceKeyID(pub)})},
		{"no bundle", "failed", "no_bundle", capgoDevice(t, dev, "1.0.0", map[string]any{"defaultChannel": "nobundle"})},
		{"no channel", "failed", "no_channel", capgoDevice(t, dev, "1.0.0", map[string]any{"app_id": "com.example.empty"})},
		{"unknown app", "failed", "unknown_app", capgoDevice(t, dev, "1.0.0", map[string]any{"app_id": "com.example.nobody"})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, h, m := e.capgoCheck(c.body)
			capgoWantNoUpdate(t, st, h, m, c.kind, c.code)
		})
	}

	// is_prod absent is not a dev build; a dev build on a normal channel is updated.
	st, _, m := e.capgoCheck(capgoDevice(t, dev, "1.0.0", map[string]any{"defaultChannel": "nodev", "is_prod": nil}))
	capgoWantUpdate(t, st, m)

	// Input the server cannot read is not a decided answer: 4xx, but the same shape
	// with kind "failed", which the plugin reads the same way.
	for _, bad := range []struct {
		name, body, code string
		status           int
	}{
		{"not json", `{"app_id":`, "invalid_json", 400},
		{"wrong type", `{"app_id":"com.example.demo","device_id":"x","is_emulator":"no"}`, "invalid_type", 400},
		{"app_id a number", `{"app_id":12}`, "invalid_type", 400},
		{"no app_id", `{"device_id":"x"}`, "missing_app_id", 400},
		{"empty", ``, "empty_body", 400},
		{"oversized", `{"app_id":"com.example.demo","pad":"` + strings.Repeat("x", 1<<20) + `"}`, "body_too_large", 413},
	} {
		t.Run(bad.name, func(t *testing.T) {
			before := e.capgoItems()
			st, h, b := e.do("POST", "/capgo/updates", bad.body)
			m := jsonMap(t, b)
			if st != bad.status || m["error"] != bad.code || m["kind"] != "failed" {
				t.Fatalf("got %d %v, want %d %s with kind failed", st, m, bad.status, bad.code)
			}
			if msg, _ := m["message"].(string); msg == "" || h.Get("Retry-After") != "" {
				t.Fatalf("answer %v headers %v", m, h)
			}
			if after := e.capgoItems(); after != before {
				t.Fatalf("a refused check wrote %d items", after-before)
			}
		})
	}
}

// ---- 4. update answers: string version, absolute url, checksum, no message

func TestCapgo04_UpdateAnswerShape(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	z := testenv.Zip(t, map[string]string{"index.html": "<html>2</html>", "js/app.js": "x"})
	e.publishZip(capgoApp, publish.Input{Version: "1.2.0", Notes: "Fixes the login screen"}, z, "production")

	for _, fixture := range []string{"updates_android_8.json", "updates_ios_7.json"} {
		st, h, m := e.capgoCheck(capgoFixture(t, fixture, nil))
		capgoWantUpdate(t, st, m)
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("Content-Type %q", ct)
		}
		if m["version"] != "1.2.0" || m["comment"] != "Fixes the login screen" {
			t.Fatalf("answer %v", m)
		}
		if _, ok := m["session_key"]; ok {
			t.Fatalf("plain release with a session_key: %v", m)
		}
		if b, ok := m["breaking"]; ok && b != false {
			t.Fatalf("breaking on a plain update: %v", m)
		}
	}
}

// ---- 5. a manifest update still carries a parseable absolute url

func TestCapgo05_ManifestUpdateHasAbsoluteURL(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	_, z := e.publish(capgoApp, "1.0.1", "production")
	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", nil))
	capgoWantUpdate(t, st, m)
	if l, _ := m["manifest"].([]any); len(l) == 0 {
		t.Fatalf("no manifest: %v", m)
	}
	// The url is not a placeholder: it serves the zip.
	u := capgoAbsURL(t, m["url"])
	st, _, b := e.get(u.String())
	if st != 200 || !bytes.Equal(b, z) {
		t.Fatalf("url serves %d, %d bytes", st, len(b))
	}
}

// ---- 6. data values are strings; breaking is a JSON bool

func TestCapgo06_TypesDataStringsBreakingBool(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	z := testenv.Zip(t, map[string]string{"index.html": "<html>3</html>"})
	e.publishZip(capgoApp, publish.Input{Version: "3.0.0", MinNative: "3.0.0", Notes: "needs the new binary", Mandatory: true}, z, "production")

	dev := capgoDevice(t, "", "2.0.0", map[string]any{"version_build": "2.0.0"})
	st, h, m := e.capgoCheck(dev)
	capgoWantNoUpdate(t, st, h, m, "blocked", "disable_auto_update_under_native")
	if b, ok := m["breaking"].(bool); !ok || !b {
		t.Fatalf("breaking must be the JSON bool true: %T %v", m["breaking"], m["breaking"])
	}
	if m["version"] != "3.0.0" {
		t.Fatalf("blocked answer names version %v", m["version"])
	}

	dev["version_build"] = "3.1.0"
	st, _, m = e.capgoCheck(dev)
	capgoWantUpdate(t, st, m)
	if d, ok := m["data"]; ok {
		for k, v := range d.(map[string]any) {
			if _, ok := v.(string); !ok {
				t.Fatalf("data[%s] = %T", k, v)
			}
		}
	}
}

// ---- 7. plain checksum = lowercase hex SHA-256 of the bytes at url

func TestCapgo07_ChecksumIsSHA256OfServedBytes(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	_, z := e.publish(capgoApp, "1.0.1", "production")
	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", nil))
	capgoWantUpdate(t, st, m)
	sum := m["checksum"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
		t.Fatalf("checksum %q is not 64 lowercase hex", sum)
	}
	st, h, b := e.get(m["url"].(string), "Accept-Encoding", "gzip, br")
	if st != 200 {
		t.Fatalf("download: %d", st)
	}
	if sha256hex(b) != sum || sum != sha256hex(z) {
		t.Fatalf("checksum %s, served bytes %s, published %s", sum, sha256hex(b), sha256hex(z))
	}
	if ce := h.Get("Content-Encoding"); ce != "" {
		t.Fatalf("Content-Encoding %q on a zip download", ce)
	}
	if ct := h.Get("Content-Type"); ct != "application/zip" {
		t.Fatalf("Content-Type %q", ct)
	}
}

// ---- 8. encrypted release: stored session_key and 512-hex checksum verbatim

func TestCapgo08_EncryptedReleaseVerbatim(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	key, _ := capgoKeys(t)
	pubPEM := capgoPublicPEM(&key.PublicKey)
	if got, want := sign.CapgoKeyID(pubPEM), capgoDeviceKeyID(pubPEM); got != want {
		t.Fatalf("sign.CapgoKeyID = %q, the plugin computes %q", got, want)
	}
	zip, enc, sigs := e.capgoEncryptedRelease("2.0.0", key)

	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", map[string]any{"key_id": capgoDeviceKeyID(pubPEM)}))
	capgoWantUpdate(t, st, m)
	if m["session_key"] != sigs.SessionKey || m["checksum"] != sigs.EncChecksum {
		t.Fatalf("answer %v\nwant session_key %s checksum %s", m, sigs.SessionKey, sigs.EncChecksum)
	}
	if _, ok := m["manifest"]; ok {
		t.Fatalf("an encrypted release must not carry a manifest (file hashes would need P()): %v", m)
	}
	iv, k, _ := strings.Cut(sigs.SessionKey, ":")
	if len(iv) != 24 || len(k) != 344 {
		t.Fatalf("session_key shape %d:%d, want 24:344", len(iv), len(k))
	}

	// The device: download, decrypt with the public key, verify the checksum.
	st, _, b := e.get(m["url"].(string))
	if st != 200 || !bytes.Equal(b, enc) {
		t.Fatalf("download %d, %d bytes (want the %d encrypted bytes)", st, len(b), len(enc))
	}
	plain := capgoDeviceDecrypt(t, &key.PublicKey, m["session_key"].(string), b)
	if !bytes.Equal(plain, zip) {
		t.Fatal("decrypted bytes differ from the published zip")
	}
	if err := capgoDeviceVerify(&key.PublicKey, plain, m["checksum"].(string)); err != nil {
		t.Fatalf("device checksum check: %v", err)
	}
	// The same through shared/sign's device-side helpers.
	plain2, err := sign.CapgoDecrypt(&key.PublicKey, m["session_key"].(string), b)
	if err != nil || !bytes.Equal(plain2, zip) {
		t.Fatalf("sign.CapgoDecrypt: %v", err)
	}
	sum := sha256.Sum256(plain2)
	if err := sign.CapgoVerifyChecksum(&key.PublicKey, sum[:], m["checksum"].(string)); err != nil {
		t.Fatalf("sign.CapgoVerifyChecksum: %v", err)
	}
}

// ---- 9. a device with a different key_id gets kind blocked

func TestCapgo09_KeyIDMismatchBlocked(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	key, other := capgoKeys(t)
	e.capgoEncryptedRelease("2.0.0", key)

	otherID := capgoDeviceKeyID(capgoPublicPEM(&other.PublicKey))
	if otherID == capgoDeviceKeyID(capgoPublicPEM(&key.PublicKey)) {
		t.Skip("the two random keys share a key_id prefix")
	}
	for name, over := range map[string]map[string]any{
		"other key":       {"key_id": otherID},
		"no key (absent)": {"key_id": nil},
		"no key (empty)":  {"key_id": ""},
	} {
		t.Run(name, func(t *testing.T) {
			st, h, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", over))
			capgoWantNoUpdate(t, st, h, m, "blocked", "key_id_mismatch")
		})
	}

	// And a device with a key is not offered a plain bundle (it would fail download_fail).
	e.publish(capgoApp, "2.0.1", "production")
	st, h, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", map[string]any{"key_id": otherID}))
	capgoWantNoUpdate(t, st, h, m, "blocked", "key_id_mismatch")
}

// ---- 10. current = head → up_to_date; native below the minimum → blocked + breaking

func TestCapgo10_UpToDateAndNativeTooOld(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")

	st, h, m := e.capgoCheck(capgoDevice(t, "", "1.0.1", nil))
	capgoWantNoUpdate(t, st, h, m, "up_to_date", "no_new_version_available")

	z := testenv.Zip(t, map[string]string{"index.html": "<html>2</html>"})
	e.publishZip(capgoApp, publish.Input{Version: "2.0.0", MinNative: "2.0.0"}, z, "production")
	st, h, m = e.capgoCheck(capgoDevice(t, "", "1.0.1", map[string]any{"version_build": "1.9.9"}))
	capgoWantNoUpdate(t, st, h, m, "blocked", "disable_auto_update_under_native")
	if m["breaking"] != true || m["version"] != "2.0.0" {
		t.Fatalf("want breaking:true and version 2.0.0: %v", m)
	}
	st, _, m = e.capgoCheck(capgoDevice(t, "", "1.0.1", map[string]any{"version_build": "2.0.0"}))
	if capgoWantUpdate(t, st, m)["version"] != "2.0.0" {
		t.Fatalf("answer %v", m)
	}
}

// ---- 11. revert answers exactly {"version":"builtin"}

func TestCapgo11_RevertIsExactlyBuiltin(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	e.capgoChannel("production", func(c *release.Channel) { c.Builtin = true })

	st, h, b := e.do("POST", "/capgo/updates", capgoDevice(t, "", "1.0.1", nil))
	if st != 200 || strings.TrimSpace(string(b)) != `{"version":"builtin"}` {
		t.Fatalf("revert answer %d %s", st, b)
	}
	if h.Get("Location") != "" {
		t.Fatal("revert redirected")
	}
	// A device already on its store bundle (8.x: version_name = version_build, 7.x:
	// "builtin") is not told to reset again (the plugin would reload every check).
	for _, current := range []string{"1.0.0", "builtin"} {
		st, h, m := e.capgoCheck(capgoDevice(t, "", current, nil))
		capgoWantNoUpdate(t, st, h, m, "up_to_date", "")
	}
}

// ---- 12. manifest lists every file with its final SHA-256; no Content-Encoding

func TestCapgo12_ManifestListsEveryFile(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	files := map[string]string{
		"www/index.html":        "<html>manifest</html>",
		"www/js/app.js":         "console.log('a')",
		"www/js/vendor.js":      "console.log('a')", // same content as app.js
		"www/assets/logo.svg":   "<svg/>",
		"www/assets/empty.txt":  "",
		"www/assets/deep/x.css": strings.Repeat("body{}", 500),
	}
	z := testenv.Zip(t, files)
	e.publishZip(capgoApp, publish.Input{Version: "1.1.0"}, z, "production")

	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", nil))
	capgoWantUpdate(t, st, m)
	list, _ := m["manifest"].([]any)
	var names []string
	for _, it := range list {
		f := it.(map[string]any)
		name, hash := f["file_name"].(string), f["file_hash"].(string)
		names = append(names, name)
		if strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.Contains(name, `\`) {
			t.Fatalf("unsafe file_name %q", name)
		}
		st, h, b := e.get(capgoAbsURL(t, f["download_url"]).String(), "Accept-Encoding", "br, gzip")
		if st != 200 {
			t.Fatalf("%s: download %d", name, st)
		}
		if ce := h.Get("Content-Encoding"); ce != "" {
			t.Fatalf("%s: Content-Encoding %q", name, ce)
		}
		if strings.HasSuffix(name, ".br") {
			t.Fatalf("%s: the server stores no Brotli copies, it must not name a .br file", name)
		}
		if sha256hex(b) != hash {
			t.Fatalf("%s: file_hash %s, bytes hash %s", name, hash, sha256hex(b))
		}
		if want := files["www/"+name]; string(b) != want {
			t.Fatalf("%s: content %q, want %q", name, b, want)
		}
	}
	var want []string
	for n := range files {
		want = append(want, strings.TrimPrefix(n, "www/"))
	}
	sort.Strings(names)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Fatalf("manifest names %v, want every file %v", names, want)
	}

	// A bundle holding a real ".br" file would be mangled by the plugin (it strips .br
	// and decompresses): such a release is served as the zip alone.
	zb := testenv.Zip(t, map[string]string{"index.html": "<html>br</html>", "js/app.js.br": "\x0b\x02\x80hi\x03"})
	e.publishZip(capgoApp, publish.Input{Version: "1.2.0"}, zb, "production")
	st, _, m = e.capgoCheck(capgoDevice(t, "", "1.1.0", nil))
	capgoWantUpdate(t, st, m)
	if _, ok := m["manifest"]; ok {
		t.Fatalf("manifest sent for a bundle with a .br file: %v", m["manifest"])
	}
}

// ---- 13. Range: bytes=N- answers 206 with a correct Content-Range

func TestCapgo13_RangeResume(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	files := map[string]string{"index.html": "<html>" + strings.Repeat("range ", 100) + "</html>", "js/app.js": strings.Repeat("x", 300)}
	z := testenv.Zip(t, files)
	e.publishZip(capgoApp, publish.Input{Version: "1.0.1"}, z, "production")
	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", nil))
	capgoWantUpdate(t, st, m)

	urls := map[string][]byte{m["url"].(string): z}
	for _, it := range m["manifest"].([]any) {
		f := it.(map[string]any)
		urls[f["download_url"].(string)] = []byte(files[f["file_name"].(string)])
	}
	for u, full := range urls {
		st, h, b := e.get(u, "Range", "bytes=10-")
		if st != http.StatusPartialContent {
			t.Fatalf("Range on %s: status %d", u, st)
		}
		if want := fmt.Sprintf("bytes 10-%d/%d", len(full)-1, len(full)); h.Get("Content-Range") != want {
			t.Fatalf("Content-Range %q, want %q", h.Get("Content-Range"), want)
		}
		if !bytes.Equal(b, full[10:]) {
			t.Fatalf("partial body differs")
		}
		if h.Get("Content-Encoding") != "" {
			t.Fatalf("Content-Encoding on a ranged download")
		}
	}
}

// ---- 14. stats: array and single object, unknown actions, 2xx

func TestCapgo14_StatsArrayAndObject(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")

	batch, err := os.ReadFile(filepath.Join("..", "..", "testdata", "capgo", "stats_batch_android_8.json"))
	if err != nil {
		t.Fatal(err)
	}
	single, err := os.ReadFile(filepath.Join("..", "..", "testdata", "capgo", "stats_single_download_worker.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second time is a retried batch: counted once
		st, m := e.capgoStats(batch)
		if st != 200 || m["status"] != "ok" || len(m) != 1 {
			t.Fatalf("array: %d %v", st, m)
		}
	}
	for _, a := range []string{"download_zip_start", "download_complete", "set", "app_launch_ready", "webview_future_event_kind"} {
		if n := e.capgoStat("1.0.1", a); n != 1 {
			t.Fatalf("%s counted %d times, want 1", a, n)
		}
	}
	if n := e.capgoStat("1.0.1", ActionInstalled); n != 1 {
		t.Fatalf("set did not count as an install: %d", n)
	}
	// A single object without timestamp (download worker): no fingerprint, counted each time.
	for i := 0; i < 2; i++ {
		if st, m := e.capgoStats(single); st != 200 || m["status"] != "ok" {
			t.Fatalf("object: %d %v", st, m)
		}
	}
	if n := e.capgoStat("1.0.1", "download_50"); n != 2 {
		t.Fatalf("download_50 counted %d times, want 2", n)
	}
	// An unknown app is not the device's fault: 2xx (a 4xx would drop its whole batch).
	ev := capgoStatEvent(t, "", "set", "1.0.1", 1795338000000)
	ev["app_id"] = "com.example.nobody"
	if st, m := e.capgoStats([]any{ev}); st != 200 || m["status"] != "ok" {
		t.Fatalf("unknown app: %d %v", st, m)
	}
	if st, m := e.capgoStats([]any{}); st != 200 || m["status"] != "ok" {
		t.Fatalf("empty batch: %d %v", st, m)
	}

	// Garbage is refused with a stable code and writes nothing.
	good := capgoStatEvent(t, "", "set", "1.0.1", 1795338009000)
	goodJSON, _ := json.Marshal(good)
	many := make([]any, capgoMaxEvents+1)
	for i := range many {
		many[i] = capgoStatEvent(t, "", "app_moved_to_foreground", "1.0.1", int64(1795338100000+i))
	}
	manyJSON, _ := json.Marshal(many)
	for _, bad := range []struct {
		name, body, code string
		status           int
	}{
		{"not json", `[{"action":"set"`, "invalid_json", 400},
		{"trailing", `{"action":"set"} {}`, "invalid_json", 400},
		{"not an event", `"set"`, "invalid_type", 400},
		{"array of numbers", `[1,2]`, "invalid_type", 400},
		{"wrong field type", `[` + string(goodJSON) + `,{"app_id":"com.example.demo","action":7}]`, "invalid_type", 400},
		{"wrong timestamp type", `[{"app_id":"com.example.demo","action":"set","timestamp":true}]`, "invalid_type", 400},
		{"oversized", `[{"app_id":"com.example.demo","action":"set","pad":"` + strings.Repeat("x", 1<<20) + `"}]`, "body_too_large", 413},
		{"too many events", string(manyJSON), "too_many_events", 413},
	} {
		t.Run(bad.name, func(t *testing.T) {
			before := e.capgoItems()
			st, m := e.capgoStats(bad.body)
			if st != bad.status || m["error"] != bad.code {
				t.Fatalf("got %d %v, want %d %s", st, m, bad.status, bad.code)
			}
			if after := e.capgoItems(); after != before {
				t.Fatalf("a refused stats body wrote %d items", after-before)
			}
		})
	}
}

// ---- 15. after update_fail for (device, V) that device is never offered V; others are

func TestCapgo15_FailureMemory(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	const a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"

	for _, d := range []string{a, b} {
		st, _, m := e.capgoCheck(capgoDevice(t, d, "1.0.0", nil))
		if capgoWantUpdate(t, st, m)["version"] != "1.0.1" {
			t.Fatalf("before: %v", m)
		}
	}
	// Device a installs 1.0.1, it does not boot (no notifyAppReady), a reverts and reports.
	ev := []any{
		capgoStatEvent(t, a, "set", "1.0.1", 1795338000000),
		capgoStatEvent(t, a, "app_launch_timeout", "1.0.1", 1795338010000),
		capgoStatEvent(t, a, "update_fail", "1.0.1", 1795338010001),
		capgoStatEvent(t, a, "reset", "1.0.0", 1795338010002),
	}
	if st, m := e.capgoStats(ev); st != 200 {
		t.Fatalf("stats %d %v", st, m)
	}
	st, h, m := e.capgoCheck(capgoDevice(t, a, "1.0.0", nil))
	capgoWantNoUpdate(t, st, h, m, "blocked", release.ReasonFailedBefore)
	st, _, m = e.capgoCheck(capgoDevice(t, b, "1.0.0", nil))
	if capgoWantUpdate(t, st, m)["version"] != "1.0.1" {
		t.Fatalf("another device lost 1.0.1: %v", m)
	}
	if n := e.capgoStat("1.0.1", ActionFailed); n != 1 {
		t.Fatalf("failures counted %d", n)
	}

	// A rolling release that failed on a device: that device gets the stable one back.
	e.publish(capgoApp, "2.0.0", "")
	e.capgoChannel("production", func(c *release.Channel) {
		c.Rolling = &release.Rollout{Version: "2.0.0", Percent: 100, Salt: "s1"}
	})
	if st, _ := e.capgoStats([]any{capgoStatEvent(t, b, "update_fail", "2.0.0", 1795338020000)}); st != 200 {
		t.Fatal("stats")
	}
	st, _, m = e.capgoCheck(capgoDevice(t, b, "1.0.0", nil))
	if capgoWantUpdate(t, st, m)["version"] != "1.0.1" {
		t.Fatalf("the device that failed 2.0.0 should get the stable 1.0.1: %v", m)
	}
	c := "cccccccc-0000-4000-8000-000000000003"
	st, _, m = e.capgoCheck(capgoDevice(t, c, "1.0.0", nil))
	if capgoWantUpdate(t, st, m)["version"] != "2.0.0" {
		t.Fatalf("another device lost the rollout: %v", m)
	}

	// Reports that name the RUNNING version (download_fail after a failed check,
	// Android checksum_fail, unzip_fail) never enter failure memory; per-file manifest
	// failures name "<target>:<file>" and do.
	ctx := context.Background()
	running := []any{
		capgoStatEvent(t, c, "download_fail", "1.0.0", 1795338030000),
		capgoStatEvent(t, c, "checksum_fail", "1.0.0", 1795338030001),
		capgoStatEvent(t, c, "unzip_fail", "1.0.0", 1795338030002),
		capgoStatEvent(t, c, "download_manifest_file_fail", "2.0.0:js/app.js", 1795338030003),
	}
	if st, _ := e.capgoStats(running); st != 200 {
		t.Fatal("stats")
	}
	if d, err := e.store.GetDevice(ctx, capgoApp, c); err == nil && len(d.Failed) != 0 {
		t.Fatalf("running-version reports entered failure memory: %v", d.Failed)
	}
	if st, _ := e.capgoStats([]any{capgoStatEvent(t, c, "download_manifest_checksum_fail", "2.0.0:js/app.js", 1795338030004)}); st != 200 {
		t.Fatal("stats")
	}
	d, err := e.store.GetDevice(ctx, capgoApp, c)
	if _, ok := d.Failed["2.0.0"]; err != nil || !ok {
		t.Fatalf("manifest checksum failure not remembered for 2.0.0: %+v %v", d, err)
	}
}

// ---- 16. channel_self POST/PUT/GET/DELETE shapes; GET is a bare array with numeric ids
// (an 8.x device, which keeps its channel itself; every plugin line is in
// capgo_channel_matrix_test.go)

func TestCapgo16_ChannelSelf(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	e.publish(capgoApp, "1.1.0-beta.1", "")
	beta := e.capgoChannel("beta", func(c *release.Channel) { c.AllowSelfSet, c.Stable = true, "1.1.0-beta.1" })
	e.capgoChannel("internal", func(c *release.Channel) { c.Stable = "1.0.1" })
	prod := e.capgoChannel("production", func(c *release.Channel) { c.Public = true })
	const dev = "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"
	body := func(over map[string]any) map[string]any { return capgoDevice(t, dev, "1.0.1", over) }

	// PUT get before any choice: the default channel, no allowSet (as from Capgo).
	st, _, b := e.do("PUT", "/capgo/channel_self", body(nil))
	if m := jsonMap(t, b); st != 200 || m["channel"] != "production" || m["status"] != "default" || m["allowSet"] != nil {
		t.Fatalf("PUT before: %d %v", st, m)
	}

	// POST set to a channel that allows it: validated, nothing stored (the plugin
	// persists the channel and sends it as defaultChannel from now on).
	items := e.capgoItems()
	st, _, b = e.do("POST", "/capgo/channel_self", body(map[string]any{"channel": "beta"}))
	m := jsonMap(t, b)
	if _, bad := m["error"]; st != 200 || bad || m["kind"] != nil || m["status"] != "ok" || m["allowSet"] != true {
		t.Fatalf("POST beta: %d %v", st, m)
	}
	if n := e.capgoItems(); n != items {
		t.Fatalf("POST from an 8.x device wrote %d items", n-items)
	}
	// PUT get: the channel the device sends.
	st, _, b = e.do("PUT", "/capgo/channel_self", body(map[string]any{"defaultChannel": "beta"}))
	if m := jsonMap(t, b); st != 200 || m["channel"] != "beta" || m["status"] != "default" {
		t.Fatalf("PUT after: %d %v", st, m)
	}
	// The device now sends defaultChannel "beta" and is answered from beta.
	st, _, m = e.capgoCheck(body(map[string]any{"defaultChannel": "beta"}))
	if capgoWantUpdate(t, st, m)["version"] != "1.1.0-beta.1" {
		t.Fatalf("check on beta: %v", m)
	}

	// GET list: a bare array, numeric ids, the channels that are public or open to
	// self-assignment.
	q := url.Values{}
	for k, v := range body(nil) {
		q.Set(k, fmt.Sprint(v))
	}
	st, _, b = e.do("GET", "/capgo/channel_self?"+q.Encode(), nil)
	if st != 200 {
		t.Fatalf("GET: %d %s", st, b)
	}
	var list []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("GET list is not a bare array: %v: %s", err, b)
	}
	if len(list) != 2 || list[0]["name"] != "beta" || list[0]["public"] != false || list[0]["allow_self_set"] != true ||
		list[1]["name"] != "production" || list[1]["public"] != true || list[1]["allow_self_set"] != false {
		t.Fatalf("GET list %s", b)
	}
	for i, want := range []int64{beta.ID, prod.ID} {
		if id, ok := list[i]["id"].(json.Number); !ok || id.String() != fmt.Sprint(want) {
			t.Fatalf("id must be the number %d: %T %v", want, list[i]["id"], list[i]["id"])
		}
	}

	// Refusals: {"error","message"} with codes the plugin knows; HTTP 200 for a
	// decided refusal (plugins before 8.x lose the code of a non-2xx answer), 4xx for
	// input the server cannot read, in the form of every Capgo 4xx (kind "failed").
	for _, c := range []struct {
		channel, code string
		status        int
	}{
		{"internal", "channel_self_set_not_allowed", 200},
		{"production", "public_channel_self_set_not_allowed", 200},
		{"nosuch", "channel_not_found", 200},
		{"no/such", "channel_not_found", 200},
		{"", "missing_channel", 400},
		{strings.Repeat("c", 65), "invalid_channel", 400},
	} {
		st, _, b := e.do("POST", "/capgo/channel_self", body(map[string]any{"channel": c.channel}))
		wantKind := any(nil)
		if c.status >= 400 {
			wantKind = capgoFailed
		}
		if m := jsonMap(t, b); st != c.status || m["error"] != c.code || m["message"] == "" || m["kind"] != wantKind {
			t.Fatalf("POST %q: %d %v", c.channel, st, m)
		}
	}

	// DELETE: 8.x unsets locally and never calls it; it answers ok and stores nothing.
	st, _, b = e.do("DELETE", "/capgo/channel_self", body(nil))
	if m := jsonMap(t, b); st != 200 || m["status"] != "ok" {
		t.Fatalf("DELETE: %d %v", st, m)
	}
	if n := e.capgoItems(); n != items {
		t.Fatalf("channel_self from an 8.x device wrote %d items", n-items)
	}

	// A device naming a private channel is refused, whatever it runs.
	st, h, m := e.capgoCheck(body(map[string]any{"defaultChannel": "internal", "version_name": "1.0.0"}))
	capgoWantNoUpdate(t, st, h, m, "blocked", "cannot_update_via_private_channel")

	// A persisted channel that was deleted falls back to the default channel, and PUT
	// reports that channel.
	st, _, m = e.capgoCheck(body(map[string]any{"defaultChannel": "gone", "version_name": "1.0.0"}))
	if capgoWantUpdate(t, st, m)["version"] != "1.0.1" {
		t.Fatalf("check on a missing channel: %v", m)
	}
	st, _, b = e.do("PUT", "/capgo/channel_self", body(map[string]any{"defaultChannel": "gone"}))
	if m := jsonMap(t, b); st != 200 || m["channel"] != "production" || m["status"] != "default" {
		t.Fatalf("PUT on a missing channel: %d %v", st, m)
	}
}

// ---- 17. no 429 / Retry-After unless a block is intended; the check is never redirected

func TestCapgo17_NoRetryAfterNoRedirect(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	bodies := []any{
		capgoDevice(t, "", "1.0.0", nil),                                      // update
		capgoDevice(t, "", "1.0.1", nil),                                      // up to date
		capgoDevice(t, "", "1.0.0", map[string]any{"app_id": "com.x.nobody"}), // failed
		`{"app_id":`, // refused
	}
	for i := 0; i < 60; i++ { // a burst from one device
		st, h, _ := e.do("POST", "/capgo/updates", bodies[i%len(bodies)])
		if st == http.StatusTooManyRequests || h.Get("Retry-After") != "" || (st >= 300 && st < 400) || h.Get("Location") != "" {
			t.Fatalf("request %d: status %d headers %v", i, st, h)
		}
	}
	for _, p := range []string{"/capgo/stats", "/capgo/channel_self"} {
		st, h, _ := e.do("POST", p, capgoDevice(t, "", "1.0.0", nil))
		if st == http.StatusTooManyRequests || h.Get("Retry-After") != "" || (st >= 300 && st < 400) {
			t.Fatalf("%s: status %d headers %v", p, st, h)
		}
	}
}
