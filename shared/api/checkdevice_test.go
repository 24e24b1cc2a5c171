package api

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/delta"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
)

// adSRI is the SRI form computed the way a browser/client does.
func adSRI(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

// cdPost posts a check-device body and decodes the answer.
func (e *testEnv) cdPost(app string, body any) (int, map[string]any) {
	e.t.Helper()
	st, _, b := e.do("POST", "/apps/"+app+"/channels/check-device", body)
	var m map[string]any
	if len(b) > 0 && b[0] == '{' {
		m = jsonMap(e.t, b)
	}
	return st, m
}

// cdBody is what our Go client sends.
func cdBody(current string) map[string]string {
	return map[string]string{"device_id": "8b0e2f64-3c1d-4a9e-b7f5-2d6c8a1e0f93", "channel_name": "production", "platform": "android",
		"platform_version": "14", "binary_version": "1.5.0", "current_update_id": current}
}

// ---- conformance checklist (check-device; docs/protocols.md)

func TestSeed09_CheckDeviceOlderCurrentGetsUpdate(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	old, oldZip := e.publish("com.example.app", "1.0.0", "production")
	rel, z := e.publish("com.example.app", "2.0.0", "production")
	st, m := e.cdPost("com.example.app", cdBody(old.ID))
	if st != 200 || m["available"] != true || m["compatible"] != true {
		t.Fatalf("%d %v", st, m)
	}
	if m["update_id"] != rel.ID || m["snapshot"] != rel.ID || m["version"] != "2.0.0" || m["sha256"] != rel.SHA256 ||
		m["min_binary_version"] != "0.0.0" || m["mandatory"] != false || !adIsInt(m["size"]) {
		t.Fatalf("fields %v", m)
	}
	integrity, _ := m["integrity"].(string)
	if !strings.HasPrefix(integrity, "sha256-") || len(integrity) != len("sha256-")+44 || integrity != adSRI(z) {
		t.Fatalf("integrity %q", integrity)
	}
	// url 302s (no-store) to the zip.
	st, h, _ := e.do("GET", m["url"].(string), nil)
	if st != 302 || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("url: %d %v", st, h)
	}
	_, _, b := e.get(h.Get("Location"))
	if adSRI(b) != integrity {
		t.Fatal("zip does not match integrity")
	}
	if _, _, b := e.get(m["artifact_url"].(string)); adSRI(b) != integrity {
		t.Fatal("artifact_url does not match integrity")
	}

	// Our extension: a tree patch from exactly the device's version, applied for real.
	ps, _ := m["patches"].([]any)
	if len(ps) != 1 {
		t.Fatalf("patches %v", m["patches"])
	}
	p := ps[0].(map[string]any)
	if p["from"] != "1.0.0" || !adIsInt(p["size"]) {
		t.Fatalf("patch %v", p)
	}
	_, _, pb := e.get(p["url"].(string))
	if sha256hex(pb) != p["sha256"] {
		t.Fatal("patch bytes do not match sha256")
	}
	zr, err := zip.NewReader(bytes.NewReader(oldZip), int64(len(oldZip)))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := delta.Apply(context.Background(), zr, bytes.NewReader(pb), out); err != nil {
		t.Fatalf("apply patch: %v", err)
	}
	nr, _ := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	for _, f := range nr.File {
		rc, _ := f.Open()
		want, _ := io.ReadAll(rc)
		rc.Close()
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f.Name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("patched %s differs: %v", f.Name, err)
		}
	}

	// Never a patch the device cannot apply: unknown current version, or none.
	for _, cur := range []string{"", "0.0.1", "rel_000000000000"} {
		_, m := e.cdPost("com.example.app", cdBody(cur))
		if m["available"] != true || m["patches"] != nil {
			t.Fatalf("current %q: %v", cur, m)
		}
	}
}

func TestSeed10_CheckDeviceCurrentIsUpToDate(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	rel, _ := e.publish("com.example.app", "2.0.0", "production")
	for _, cur := range []string{rel.ID, rel.Version} {
		st, _, b := e.do("POST", "/apps/com.example.app/channels/check-device", cdBody(cur))
		if st != 200 || string(bytes.TrimSpace(b)) != `{"available":false,"compatible":true}` {
			t.Fatalf("current %s: %d %s", cur, st, b)
		}
	}
}

func TestSeed11_CheckDeviceBinaryTooOld(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	rel, _ := e.adPublishWith("com.example.app", publish.Input{Version: "2.0.0", MinNative: "2.0.0"}, "production")
	st, m := e.cdPost("com.example.app", cdBody(""))
	if st != 200 || m["available"] != true || m["compatible"] != false || m["update_id"] != rel.ID || m["version"] != "2.0.0" || m["min_binary_version"] != "2.0.0" {
		t.Fatalf("%d %v", st, m)
	}
	for _, k := range []string{"url", "manifest_url", "artifact_url", "patches", "integrity"} {
		if _, ok := m[k]; ok {
			t.Errorf("incompatible answer has %s", k)
		}
	}
	body := cdBody("")
	body["binary_version"] = "2.0.0"
	if _, m := e.cdPost("com.example.app", body); m["compatible"] != true || m["url"] == nil {
		t.Fatalf("binary at the minimum: %v", m)
	}
}

func TestSeed12_CheckDeviceSnapshotIDAccepted(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	old, _ := e.publish("com.example.app", "1.0.0", "production")
	rel, _ := e.publish("com.example.app", "2.0.0", "production")
	body := map[string]string{"device_id": "d1", "platform": "ios", "binary_version": "1.5.0", "snapshot_id": rel.ID}
	if _, m := e.cdPost("com.example.app", body); m["available"] != false || m["compatible"] != true {
		t.Fatalf("snapshot_id = current: %v", m)
	}
	body["snapshot_id"] = old.ID
	if _, m := e.cdPost("com.example.app", body); m["available"] != true || m["version"] != "2.0.0" {
		t.Fatalf("snapshot_id older: %v", m)
	}
}

func TestSeed13_CheckDeviceBadInput(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	cases := []struct {
		app, body string
		want      int
	}{
		{"com.example.app", `{"device_id":"d1",`, 400},
		{"com.example.app", `{"device_id":5}`, 400},
		{"com.example.app", `{"binary_version":1.5}`, 400},
		{"com.example.app", `{"current_update_id":["x"]}`, 400},
		{"com.example.app", `{"channel_name":"a b"}`, 400},
		{"com.example.app", `{"platform":"iOS 17!"}`, 400},
		{"com.example.app", `"x"`, 400},
		{"com.example.app", ``, 400},
		{"com.example.nope", `{"device_id":"d1"}`, 404},
	}
	for _, c := range cases {
		st, _, b := e.do("POST", "/apps/"+c.app+"/channels/check-device", c.body)
		if st != c.want || !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s %s: %d %s", c.app, c.body, st, b)
		}
	}
	// Nothing is written by a check, good or bad.
	if _, err := e.store.GetDevice(ctx, "com.example.app", "d1"); err == nil {
		t.Fatal("a check wrote a device record")
	}
	// A protected app: no token or a wrong one → 401, the right one → an answer.
	st, _, b := e.do("PATCH", "/v1/apps/com.example.app", map[string]string{"device_token": "device-token-0123456789"}, "Authorization", "Bearer "+e.admin)
	if st != 200 || !strings.Contains(string(b), `"protected":true`) || strings.Contains(string(b), "device-token-0123456789") {
		t.Fatalf("protect app: %d %s", st, b)
	}
	body := `{"device_id":"d1","channel_name":"production","platform":"android"}`
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong-token-0123456789"}, {"Authorization", "device-token-0123456789"}} {
		if st, _, b := e.do("POST", "/apps/com.example.app/channels/check-device", body, hdr...); st != 401 || !strings.Contains(string(b), `"error":"unauthorized"`) {
			t.Errorf("protected app with %v: %d %s", hdr, st, b)
		}
		if st, _, _ := e.do("GET", "/apps/com.example.app/snapshots/2.0.0/zip", nil, hdr...); st != 401 {
			t.Errorf("protected snapshot with %v: %d", hdr, st)
		}
	}
	if st, _, b := e.do("POST", "/apps/com.example.app/channels/check-device", body, "Authorization", "Bearer device-token-0123456789"); st != 200 {
		t.Fatalf("protected app with its token: %d %s", st, b)
	}
}

func TestSeed14_PerFileManifestIntegrity(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	rel, z := e.publish("com.example.app", "2.0.0", "production")
	_, m := e.cdPost("com.example.app", cdBody(""))
	st, _, b := e.do("GET", m["manifest_url"].(string), nil)
	if st != 200 {
		t.Fatalf("manifest: %d %s", st, b)
	}
	man := jsonMap(t, b)
	if man["version"].(interface{ String() string }).String() != "2" || man["timestamp"] == "" {
		t.Fatalf("manifest header: %v", man)
	}
	files := man["files"].(map[string]any)
	zr, _ := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if len(files) != len(zr.File) || len(files) != rel.Files {
		t.Fatalf("%d files listed, zip has %d", len(files), len(zr.File))
	}
	for name, v := range files {
		f := v.(map[string]any)
		st, _, body := e.get(f["url"].(string))
		if st != 200 || adSRI(body) != f["integrity"] || f["size"].(interface{ String() string }).String() != adItoa(len(body)) {
			t.Errorf("%s: %d %v", name, st, f)
		}
	}
	// Snapshots resolve by id and by version; unknown → 404.
	for _, id := range []string{rel.ID, rel.Version} {
		if st, h, _ := e.do("GET", "/apps/com.example.app/snapshots/"+id+"/zip", nil); st != 302 || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("snapshot %s: %d", id, st)
		}
	}
	for _, p := range []string{"/apps/com.example.app/snapshots/rel_ffffffffffff/zip", "/apps/com.example.app/snapshots/9.9.9/manifest",
		"/apps/com.example.nope/snapshots/2.0.0/zip"} {
		if st, _, _ := e.do("GET", p, nil); st != 404 {
			t.Fatalf("%s: %d", p, st)
		}
	}
}

func TestCheckDeviceRevertAndRolling(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.publish("com.example.app", "1.0.0", "production")
	e.publish("com.example.app", "2.0.0", "")
	e.adSetRolling("com.example.app", "production", "2.0.0", 100)
	// Without device_id: the stable release only.
	if _, m := e.cdPost("com.example.app", map[string]string{"platform": "android"}); m["version"] != "1.0.0" {
		t.Fatalf("no device id: %v", m)
	}
	if _, m := e.cdPost("com.example.app", cdBody("")); m["version"] != "2.0.0" {
		t.Fatalf("device in rollout: %v", m)
	}
	e.adUpdateChannel("com.example.app", "production", func(c *release.Channel) { c.Builtin = true })
	st, _, b := e.do("POST", "/apps/com.example.app/channels/check-device", cdBody("1.0.0"))
	if st != 200 || string(bytes.TrimSpace(b)) != `{"available":true,"compatible":true,"revert_to_builtin":true}` {
		t.Fatalf("revert: %d %s", st, b)
	}
}

// A pair that was not precomputed: the device gets the full bundle at once, the pair
// is computed in the background, and the next check offers the patch.
func TestCheckDeviceRequestsMissingPatch(t *testing.T) {
	e := newTestEnv(t)
	e.createApp("com.example.app")
	e.pipe.PatchBases = 0 // nothing precomputed
	e.publish("com.example.app", "1.0.0", "")
	e.publish("com.example.app", "1.0.1", "production")
	body := map[string]string{"device_id": "d1", "channel_name": "production", "platform": "android", "current_update_id": "1.0.0"}
	_, _, b := e.do("POST", "/apps/com.example.app/channels/check-device", body)
	if m := jsonMap(t, b); m["available"] != true || m["patches"] != nil {
		t.Fatalf("first check: %s", b)
	}
	e.srv.patchJobs.wait()
	_, _, b = e.do("POST", "/apps/com.example.app/channels/check-device", body)
	ps, _ := jsonMap(t, b)["patches"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["from"] != "1.0.0" {
		t.Fatalf("second check offers no patch from 1.0.0: %s", b)
	}
}
