package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/fluxpatch"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Vectors from the Flux client and server sources (flux_updater 1.0).
var (
	fluxOld       = []byte("FLUX\x01hello world v1")
	fluxNew       = []byte("FLUX\x01hello world v2!")
	fluxDevSecret = "dev-secret-key"
	fluxNewHMAC   = "db23fac0153ba928ec122007a597de90ebe571949b05ff7afa7f01b1f56dcec4"
)

// fluxApp creates an app with a Flux secret and returns an API key scoped to it.
func (e *testEnv) fluxApp(id, secret string) string {
	e.t.Helper()
	ctx := context.Background()
	e.createApp(id)
	if secret != "" {
		if _, err := e.store.UpdateApp(ctx, id, func(a *release.App) error { a.FluxSecret = secret; return nil }); err != nil {
			e.t.Fatal(err)
		}
		e.srv.state.invalidate(id)
	}
	k := store.NewKeySecret()
	if _, err := e.store.CreateKey(ctx, k, "flux "+id, []string{id}, false, "test"); err != nil {
		e.t.Fatal(err)
	}
	return k
}

// fluxByteArray is how the Flux CLI encodes a chunk: a JSON array of byte values.
func fluxByteArray(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(c)))
	}
	sb.WriteByte(']')
	return sb.String()
}

func fluxBody(app, version string, build int, chunk []byte) string {
	return `{"appId":"` + app + `","version":"` + version + `","buildNumber":` + strconv.Itoa(build) + `,"chunk":` + fluxByteArray(chunk) + `}`
}

// fluxPush uploads through the key-in-URL prefix, the way the Flux CLI does (no headers).
func (e *testEnv) fluxPush(key, app, version string, build int, chunk []byte) (int, map[string]any) {
	e.t.Helper()
	st, _, b := e.do("POST", "/flux/k/"+key+"/releases", fluxBody(app, version, build, chunk))
	var m map[string]any
	if st == 200 {
		m = jsonMap(e.t, b)
	}
	return st, m
}

// fluxGet is a Flux client read: no headers, only 200 counts.
func (e *testEnv) fluxGet(path string) (int, map[string]any, []byte) {
	e.t.Helper()
	st, _, b := e.do("GET", path, nil)
	var m map[string]any
	if len(b) > 0 && b[0] == '{' {
		m = jsonMap(e.t, b)
	}
	return st, m, b
}

func adHMACHex(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// fluxClientApply is the Dart client's apply, written from the spec (independent of fluxpatch).
func fluxClientApply(t *testing.T, old, patch []byte) ([]byte, error) {
	t.Helper()
	if len(patch) < 9 {
		return nil, errors.New("short")
	}
	oldLen, newLen := binary.BigEndian.Uint32(patch[0:4]), binary.BigEndian.Uint32(patch[4:8])
	if int(oldLen) != len(old) {
		return nil, errors.New("base length mismatch")
	}
	zr, err := gzip.NewReader(bytes.NewReader(patch[9:]))
	if err != nil {
		return nil, err
	}
	d, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	if patch[8] != 0 {
		return d, nil
	}
	out := make([]byte, newLen)
	for i := range out {
		var o, x byte
		if i < len(old) {
			o = old[i]
		}
		if i < len(d) {
			x = d[i]
		}
		out[i] = o ^ x
	}
	return out, nil
}

func adReleaseCount(t *testing.T, e *testEnv, app string) int {
	t.Helper()
	rs, err := e.store.ListReleases(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}

// ---- conformance checklist (Flux; docs/protocols.md)

func TestFlux01_UploadWithKey(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	// Authorization header form.
	st, _, b := e.do("POST", "/flux/releases", fluxBody("com.example.notes", "1.0.0", 1, fluxOld), "Authorization", "Bearer "+key)
	if st != 200 {
		t.Fatalf("upload: %d %s", st, b)
	}
	m := jsonMap(t, b)
	if m["success"] != true || m["version"] != "1.0.0" || !adHex64.MatchString(m["signature"].(string)) || !adIsInt(m["patchesGenerated"]) {
		t.Fatalf("answer %v", m)
	}
	if m["patchesGenerated"].(interface{ String() string }).String() != "0" {
		t.Fatalf("first release generated patches: %v", m["patchesGenerated"])
	}
	// Key-in-URL form; the second upload gets a patch from the first.
	st, m = e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	if st != 200 || m["success"] != true || !adIsInt(m["patchesGenerated"]) || m["patchesGenerated"].(interface{ String() string }).String() != "1" {
		t.Fatalf("second upload: %d %v", st, m)
	}
}

func TestFlux02_NoKeyOrBadChunkRefused(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	other := e.fluxApp("com.example.other", fluxDevSecret)
	noSecret := e.fluxApp("com.example.nosecret", "")
	good := fluxBody("com.example.notes", "1.0.0", 1, fluxOld)
	unauth := []struct{ path, auth string }{
		{"/flux/releases", ""},
		{"/flux/releases", "Bearer ota_wrong"},
		{"/flux/releases", "Bearer " + other},
		{"/flux/k/ota_wrong/releases", ""},
		{"/flux/k/" + other + "/releases", ""},
	}
	for _, c := range unauth {
		var hdr []string
		if c.auth != "" {
			hdr = []string{"Authorization", c.auth}
		}
		st, _, b := e.do("POST", c.path, good, hdr...)
		if st != 401 || string(bytes.TrimSpace(b)) != `{"error":"unauthorized"}` {
			t.Errorf("%s %q: %d %s", c.path, c.auth, st, b)
		}
	}
	bad := map[string]string{
		"base64 chunk":     `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":"RkxVWAFoZWxsbw=="}`,
		"value 256":        `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,76,256]}`,
		"negative":         `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,-1]}`,
		"float":            `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,1.5]}`,
		"float integral":   `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,1.0]}`,
		"exponent":         `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,1e2]}`,
		"string element":   `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,"76"]}`,
		"null element":     `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[70,null]}`,
		"nested":           `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[[70]]}`,
		"empty chunk":      `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1,"chunk":[]}`,
		"no chunk":         `{"appId":"com.example.notes","version":"1.0.0","buildNumber":1}`,
		"build float":      `{"appId":"com.example.notes","version":"1.0.0","buildNumber":7.0,"chunk":[70]}`,
		"build string":     `{"appId":"com.example.notes","version":"1.0.0","buildNumber":"7","chunk":[70]}`,
		"build negative":   `{"appId":"com.example.notes","version":"1.0.0","buildNumber":-3,"chunk":[70]}`,
		"version type":     `{"appId":"com.example.notes","version":1,"buildNumber":1,"chunk":[70]}`,
		"bad version":      `{"appId":"com.example.notes","version":"1.0 0","buildNumber":1,"chunk":[70]}`,
		"bad json":         `{"appId":"com.example.notes",`,
		"not an object":    `[1,2,3]`,
		"empty body":       ``,
		"trailing garbage": good + `x`,
	}
	for name, body := range bad {
		st, _, b := e.do("POST", "/flux/k/"+key+"/releases", body)
		m := map[string]any{}
		if st == 400 {
			m = jsonMap(t, b)
		}
		if st != 400 || m["error"] == nil || len(m) != 1 {
			t.Errorf("%s: %d %s", name, st, b)
		}
	}
	st, _, b := e.do("POST", "/flux/k/"+noSecret+"/releases", fluxBody("com.example.nosecret", "1.0.0", 1, fluxOld))
	if st != 400 || !strings.Contains(string(b), `"flux_secret_not_set"`) {
		t.Errorf("no secret: %d %s", st, b)
	}
	for _, app := range []string{"com.example.notes", "com.example.other", "com.example.nosecret"} {
		if n := adReleaseCount(t, e, app); n != 0 {
			t.Fatalf("%s: refused uploads stored %d releases", app, n)
		}
		if chs, _ := e.store.ListChannels(context.Background(), app); len(chs) != 0 {
			t.Fatalf("%s: refused uploads moved channels", app)
		}
	}
}

func TestFlux03_VersionsImmutable(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	st, first := e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	if st != 200 {
		t.Fatal(st)
	}
	st, again := e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	if st != 200 || again["signature"] != first["signature"] {
		t.Fatalf("identical re-upload: %d %v", st, again)
	}
	st, _, b := e.do("POST", "/flux/k/"+key+"/releases", fluxBody("com.example.notes", "1.0.0", 1, fluxNew))
	if st != 409 || string(bytes.TrimSpace(b)) != `{"error":"version_exists"}` {
		t.Fatalf("other bytes: %d %s", st, b)
	}
	_, _, chunk := e.fluxGet("/flux/chunks/com.example.notes/1.0.0")
	if !bytes.Equal(chunk, fluxOld) {
		t.Fatal("a refused upload changed the stored chunk")
	}
}

func TestFlux04_LatestIsDefaultChannelStable(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	st, m, _ := e.fluxGet("/flux/releases/com.example.notes/latest")
	if st != 404 || m["error"] != "No releases for app: com.example.notes" {
		t.Fatalf("no releases: %d %v", st, m)
	}
	if st, m, _ := e.fluxGet("/flux/releases/com.example.nope/latest"); st != 404 || m["error"] != "No releases for app: com.example.nope" {
		t.Fatalf("unknown app: %d %v", st, m)
	}
	// Forward-only publishing: latest is the highest buildNumber.
	for i, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if st, _ := e.fluxPush(key, "com.example.notes", v, 10+i, append([]byte("FLUX\x01"), v...)); st != 200 {
			t.Fatal(st)
		}
	}
	// An older build uploaded later does not move latest backwards.
	if st, _ := e.fluxPush(key, "com.example.notes", "1.0.1", 5, []byte("FLUX\x01late")); st != 200 {
		t.Fatal(st)
	}
	_, m, _ = e.fluxGet("/flux/releases/com.example.notes/latest")
	if m["version"] != "1.2.0" || m["buildNumber"].(interface{ String() string }).String() != "12" {
		t.Fatalf("latest: %v", m)
	}
	rs, _ := e.store.ListReleases(context.Background(), "com.example.notes")
	var max int64
	for _, r := range rs {
		max = adMaxInt64(max, r.BuildNumber)
	}
	if max != 12 {
		t.Fatalf("highest build %d", max)
	}
	// latest is the default channel's stable release: a rollback shows through.
	e.setStable("com.example.notes", "production", "1.1.0")
	if _, m, _ = e.fluxGet("/flux/releases/com.example.notes/latest"); m["version"] != "1.1.0" {
		t.Fatalf("after rollback: %v", m)
	}
	// A release published by `ota release` to the default channel is latest too.
	rel, _ := e.publish("com.example.notes", "2.0.0", "production")
	if _, m, _ = e.fluxGet("/flux/releases/com.example.notes/latest"); m["version"] != "2.0.0" || m["buildNumber"].(interface{ String() string }).String() != strconv.FormatInt(rel.BuildNumber, 10) {
		t.Fatalf("zip release: %v", m)
	}
}

func adMaxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

var fluxTimeRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestFlux05_VersionInfoTypes(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	e.fluxPush(key, "com.example.notes", "1.1.0", 7, fluxNew)
	for _, p := range []string{"/flux/releases/com.example.notes/latest", "/flux/releases/com.example.notes/1.1.0"} {
		st, h, b := e.do("GET", p, nil)
		if st != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %v", p, st, h)
		}
		m := jsonMap(t, b)
		if m["appId"] != "com.example.notes" || m["version"] != "1.1.0" {
			t.Errorf("%s: ids %v", p, m)
		}
		if !adIsInt(m["buildNumber"]) || !adIsInt(m["chunkSize"]) || m["chunkSize"].(interface{ String() string }).String() != "20" {
			t.Errorf("%s: integers %v %v", p, m["buildNumber"], m["chunkSize"])
		}
		if hp, ok := m["hasPatch"].(bool); !ok || hp {
			t.Errorf("%s: hasPatch %v", p, m["hasPatch"])
		}
		for _, k := range []string{"patchSize", "patchBaseVersion"} {
			if v, ok := m[k]; !ok || v != nil {
				t.Errorf("%s: %s = %v (present %v)", p, k, v, ok)
			}
		}
		if s, _ := m["createdAt"].(string); !fluxTimeRe.MatchString(s) {
			t.Errorf("%s: createdAt %q", p, s)
		}
	}
	st, m, _ := e.fluxGet("/flux/releases/com.example.notes/9.9.9")
	if st != 404 || m["error"] != "Version not found: com.example.notes@9.9.9" {
		t.Fatalf("unknown version: %d %v", st, m)
	}
	// A release published without a Flux signature omits the field.
	e.publish("com.example.notes", "2.0.0", "")
	if _, m, _ := e.fluxGet("/flux/releases/com.example.notes/2.0.0"); m["signature"] != nil {
		t.Fatalf("invented signature: %v", m)
	}
}

func TestFlux06_ChunkSizeMatchesChunk(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	chunk := append([]byte("FLUX\x01"), bytes.Repeat([]byte{0, 1, 2, 253, 254, 255}, 5000)...)
	if st, _ := e.fluxPush(key, "com.example.notes", "1.0.0", 1, chunk); st != 200 {
		t.Fatal(st)
	}
	_, info, _ := e.fluxGet("/flux/releases/com.example.notes/latest")
	st, h, b := e.do("GET", "/flux/chunks/com.example.notes/1.0.0", nil)
	if st != 200 || h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("chunk: %d %v", st, h)
	}
	if !bytes.Equal(b, chunk) || h.Get("Content-Length") != strconv.Itoa(len(chunk)) || info["chunkSize"].(interface{ String() string }).String() != strconv.Itoa(len(b)) {
		t.Fatalf("sizes: body %d, Content-Length %s, chunkSize %v", len(b), h.Get("Content-Length"), info["chunkSize"])
	}
	if st, m, _ := e.fluxGet("/flux/chunks/com.example.notes/9.9.9"); st != 404 || m["error"] != "Version not found: com.example.notes@9.9.9" {
		t.Fatalf("unknown chunk: %d %v", st, m)
	}
}

func TestFlux07_SignatureVector(t *testing.T) {
	if got := adHMACHex(fluxDevSecret, fluxNew); got != fluxNewHMAC {
		t.Fatalf("vector itself: %s", got)
	}
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	st, m := e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	if st != 200 || m["signature"] != fluxNewHMAC {
		t.Fatalf("upload answer: %d %v", st, m)
	}
	_, info, _ := e.fluxGet("/flux/releases/com.example.notes/latest")
	_, _, chunk := e.fluxGet("/flux/chunks/com.example.notes/1.1.0")
	// The manager: HMAC over the full chunk, constant-time, case-sensitive.
	sig, _ := info["signature"].(string)
	if !hmac.Equal([]byte(sig), []byte(adHMACHex(fluxDevSecret, chunk))) || sig != strings.ToLower(sig) {
		t.Fatalf("VersionInfo signature %q", sig)
	}
	// Each app has its own secret.
	key2 := e.fluxApp("com.example.other", "another-secret")
	_, m = e.fluxPush(key2, "com.example.other", "1.1.0", 2, fluxNew)
	if m["signature"] != adHMACHex("another-secret", fluxNew) {
		t.Fatalf("per-app secret: %v", m["signature"])
	}
}

func TestFlux08_PatchVector(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	st, h, p := e.do("GET", "/flux/patches/com.example.notes/1.0.0/1.1.0", nil)
	if st != 200 || h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Length") != strconv.Itoa(len(p)) {
		t.Fatalf("patch: %d %v", st, h)
	}
	if want := []byte{0, 0, 0, 0x13, 0, 0, 0, 0x14, 0}; !bytes.Equal(p[:9], want) {
		t.Fatalf("header % x", p[:9])
	}
	zr, err := gzip.NewReader(bytes.NewReader(p[9:]))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(make([]byte, 18), 0x03, 0x21); !bytes.Equal(payload, want) {
		t.Fatalf("payload % x", payload)
	}
}

func TestFlux09_PatchesApply(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	chunks := map[string][]byte{
		"1.0.0": fluxOld,
		"1.1.0": fluxNew,
		"2.0.0": append([]byte("FLUX\x01"), bytes.Repeat([]byte("0123456789"), 5)...), // 55 B: ratio vs 19/20 <= 0.5
		"2.1.0": append([]byte("FLUX\x01"), bytes.Repeat([]byte("0123456789"), 6)...), // 65 B
		"3.0.0": bytes.Repeat([]byte{0xAB}, 38),                                       // exactly 0.5 vs 19 B
	}
	order := []string{"1.0.0", "1.1.0", "2.0.0", "2.1.0", "3.0.0"}
	for i, v := range order {
		if st, _ := e.fluxPush(key, "com.example.notes", v, i+1, chunks[v]); st != 200 {
			t.Fatal(v, st)
		}
	}
	for i, from := range order {
		for j, to := range order {
			if from == to {
				continue
			}
			st, _, p := e.do("GET", "/flux/patches/com.example.notes/"+from+"/"+to, nil)
			if j < i {
				// Only patches to a newer release are precomputed; the others are
				// requested by the first 404 and computed in the background.
				if st != 404 {
					t.Fatalf("%s->%s (not precomputed): %d, want 404 first", from, to, st)
				}
				e.srv.patchJobs.wait()
				st, _, p = e.do("GET", "/flux/patches/com.example.notes/"+from+"/"+to, nil)
			}
			if st != 200 {
				t.Fatalf("%s->%s: %d", from, to, st)
			}
			got, err := fluxClientApply(t, chunks[from], p)
			if err != nil || !bytes.Equal(got, chunks[to]) {
				t.Fatalf("%s->%s: client apply: %v", from, to, err)
			}
			if got, err := fluxpatch.Apply(chunks[from], p); err != nil || !bytes.Equal(got, chunks[to]) {
				t.Fatalf("%s->%s: fluxpatch.Apply: %v", from, to, err)
			}
			a, b := float64(len(chunks[from])), float64(len(chunks[to]))
			if min(a, b)/max(a, b) <= 0.5 && p[8] != 1 {
				t.Fatalf("%s->%s: ratio %.2f, mode %d", from, to, min(a, b)/max(a, b), p[8])
			}
		}
	}
	// An empty side is always mode 1 (an empty chunk cannot be uploaded, so check the writer).
	for _, pair := range [][2][]byte{{nil, fluxNew}, {fluxOld, nil}} {
		p, err := fluxpatch.Create(pair[0], pair[1])
		if err != nil || p[8] != 1 {
			t.Fatalf("empty side: mode %d %v", p[8], err)
		}
	}
}

func TestFlux10_ApplyRejectsWrongBase(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	_, _, p := e.do("GET", "/flux/patches/com.example.notes/1.0.0/1.1.0", nil)
	if _, err := fluxpatch.Apply(fluxNew, p); err == nil {
		t.Fatal("patch applied to a base of another length")
	}
	if _, err := fluxpatch.Apply(fluxOld, p[:8]); err == nil {
		t.Fatal("short patch applied")
	}
	if _, err := fluxClientApply(t, fluxNew, p); err == nil {
		t.Fatal("the client's rule accepts it")
	}
}

func TestFlux11_UnknownPatch404(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	for _, c := range [][3]string{
		{"com.example.notes", "1.0.0", "1.0.0"},
		{"com.example.notes", "0.9.0", "1.1.0"},
		{"com.example.notes", "1.0.0", "9.9.9"},
		{"com.example.nope", "1.0.0", "1.1.0"},
	} {
		st, m, _ := e.fluxGet("/flux/patches/" + c[0] + "/" + c[1] + "/" + c[2])
		if st != 404 || m["error"] != "Patch not found: "+c[0]+":"+c[1]+":"+c[2] {
			t.Errorf("%v: %d %v", c, st, m)
		}
	}
	// Every non-200 the client can meet is non-2xx (it treats anything but 200 as failure).
	for _, p := range []string{"/flux/releases/com.example.nope/latest", "/flux/releases/com.example.notes/0.0.1",
		"/flux/chunks/com.example.notes/0.0.1", "/flux/unknown"} {
		if st, _, _ := e.fluxGet(p); st/100 == 2 {
			t.Errorf("%s: %d", p, st)
		}
	}
}

func TestFlux12_LatestCannotBePublished(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	st, _, b := e.do("POST", "/flux/k/"+key+"/releases", fluxBody("com.example.notes", "latest", 1, fluxOld))
	if st != 400 || !strings.Contains(string(b), `"error"`) {
		t.Fatalf("%d %s", st, b)
	}
	if adReleaseCount(t, e, "com.example.notes") != 0 {
		t.Fatal("stored a release named latest")
	}
}

func TestFlux13_PrefixAnswersIdentically(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	other := e.fluxApp("com.example.other", fluxDevSecret)
	e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	paths := []string{
		"/health",
		"/releases/com.example.notes/latest",
		"/releases/com.example.notes/1.0.0",
		"/releases/com.example.notes/7.7.7",
		"/chunks/com.example.notes/1.1.0",
		"/chunks/com.example.notes/7.7.7",
		"/patches/com.example.notes/1.0.0/1.1.0",
		"/patches/com.example.notes/1.0.0/1.0.0",
	}
	for _, p := range paths {
		s1, h1, b1 := e.do("GET", "/flux"+p, nil)
		s2, h2, b2 := e.do("GET", "/flux/k/"+key+p, nil)
		if s1 != s2 || !bytes.Equal(b1, b2) || h1.Get("Content-Type") != h2.Get("Content-Type") || h1.Get("Content-Length") != h2.Get("Content-Length") {
			t.Errorf("%s: %d %q vs %d %q", p, s1, b1, s2, b2)
		}
		// Under the prefix the key must be valid (for the app).
		for _, k := range []string{"ota_wrong", other} {
			if p == "/health" && k == other {
				continue // any valid key may ask for health
			}
			if st, _, b := e.do("GET", "/flux/k/"+k+p, nil); st != 401 || string(bytes.TrimSpace(b)) != `{"error":"unauthorized"}` {
				t.Errorf("%s with key %s: %d %s", p, k[:6], st, b)
			}
		}
	}
	if st, h, b := e.do("GET", "/flux/health", nil); st != 200 || string(b) != "OK" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("health: %d %q %v", st, b, h)
	}
	// The key in the URL never reaches the logs.
	if got := redactPath("/flux/k/" + key + "/releases"); strings.Contains(got, key) {
		t.Fatalf("key not redacted: %s", got)
	}
}

func TestFluxChunkParse(t *testing.T) {
	good := map[string][]byte{`[]`: {}, `[0]`: {0}, ` [ 1 ,2, 255 ] `: {1, 2, 255}, "[\n70,\t76\r\n]": {70, 76}}
	for in, want := range good {
		if got, err := parseByteArray([]byte(in)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{`"AQID"`, `{}`, `[256]`, `[1000]`, `[10000]`, `[-1]`, `[-0]`, `[1.0]`, `[1e2]`, `[1E2]`, `[true]`, `[null]`, `[[1]]`, `[1,]`, `[1`, `null`} {
		if _, err := parseByteArray([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
