package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Input limits (decode.go and each protocol's limits): every field and body a
// device or client sends is bounded, with a 4xx, a stable code and the protocol's
// error form; keys are checked before bodies are read; invalid object keys are 4xx.

const (
	limitsFluxApp      = "com.example.notes"
	limitsProtectedApp = "com.example.locked"
	limitsDeviceToken  = "device-token-0123456789"
)

// limitsEnv is a server with a Capgo app (release 1.0.0 on production), a Flux app
// and its key, a protected check-device app, and a recorder of error logs.
type limitsEnv struct {
	*testEnv
	fluxKey   string // scoped to limitsFluxApp
	otherKey  string // scoped to capgoApp only
	emptyKey  string // scoped to no app
	errorLogs *errorLog
}

func newLimitsEnv(t testing.TB) *limitsEnv {
	e := &limitsEnv{testEnv: newTestEnv(t)}
	ctx := context.Background()
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.0", "production")
	e.fluxKey = e.fluxApp(limitsFluxApp, fluxDevSecret)
	e.createApp(limitsProtectedApp)
	if _, err := e.store.UpdateApp(ctx, limitsProtectedApp, func(a *release.App) error {
		a.DeviceTokenHash = store.HashKey(limitsDeviceToken)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		secret *string
		apps   []string
	}{{&e.otherKey, []string{capgoApp}}, {&e.emptyKey, []string{}}} {
		*k.secret = store.NewKeySecret()
		if _, err := e.store.CreateKey(ctx, *k.secret, "limits", k.apps, false, "test"); err != nil {
			t.Fatal(err)
		}
	}
	e.errorLogs = &errorLog{}
	e.srv.Log = slog.New(e.errorLogs)
	return e
}

// errorLog records the messages of error-level log records.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errorLog) WithGroup(string) slog.Handler            { return l }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.msgs = append(l.msgs, r.Message)
	}
	return nil
}

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.msgs
	l.msgs = nil
	return m
}

// countingBody is a request body that counts what the handler read of it.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingBody) Close() error { return nil }

// serve runs one request through the whole handler stack, without a listener, so
// that fuzz targets can call it (it never calls testing methods).
func serve(h http.Handler, method, target string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://ota.test/", body)
	// The target goes in as sent on the wire: httptest.NewRequest would refuse some.
	req.RequestURI = target
	if u, err := req.URL.Parse(target); err == nil {
		req.URL = u
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeObject(b []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// capgoBody is a plugin's device description with over applied.
func capgoBody(t testing.TB, over map[string]any) []byte {
	m := capgoDevice(t, "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d", "1.0.0", over)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every device-written Capgo field is bounded on every Capgo route: one byte over
// its limit is a 4xx with its code and kind "failed"; at the limit it passes.
func TestCapgoEveryFieldLimited(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	fields := []struct {
		name string
		max  int
		code string
	}{
		{"app_id", capgoMaxAppID, "invalid_app_id"},
		{"device_id", capgoMaxDeviceID, "invalid_device_id"},
		{"defaultChannel", capgoMaxChannel, "invalid_channel"},
		{"plugin_version", capgoMaxPluginVersion, "invalid_plugin_version"},
		{"key_id", capgoMaxKeyID, "invalid_key_id"},
		{"platform", capgoMaxPlatform, codeFieldTooLong},
		{"version_name", capgoMaxVersionName, codeFieldTooLong},
		{"version_build", capgoMaxNative, codeFieldTooLong},
		{"version_code", capgoMaxNative, codeFieldTooLong},
		{"version_os", capgoMaxNative, codeFieldTooLong},
		{"custom_id", capgoMaxCustomID, codeFieldTooLong},
		{"install_source", capgoMaxInstallSource, codeFieldTooLong},
	}
	routes := []struct{ method, path string }{
		{"POST", "/capgo/updates"},
		{"POST", "/capgo/updates/manifest_size"},
		{"POST", "/capgo/channel_self"},
		{"PUT", "/capgo/channel_self"},
		{"DELETE", "/capgo/channel_self"},
		{"POST", "/capgo/stats"},
	}
	for _, rt := range routes {
		for _, f := range fields {
			for _, n := range []int{f.max, f.max + 1} {
				over := map[string]any{f.name: strings.Repeat("a", n), "channel": "production", "action": "get"}
				rec := serve(h, rt.method, rt.path, bytes.NewReader(capgoBody(t, over)))
				m := decodeObject(rec.Body.Bytes())
				refused := rec.Code >= 400 && m["error"] == f.code
				if n > f.max && (!refused || m["kind"] != capgoFailed || m["message"] == "") {
					t.Errorf("%s %s %s of %d bytes: %d %s, want 4xx %s kind failed", rt.method, rt.path, f.name, n, rec.Code, rec.Body, f.code)
				}
				if n == f.max && refused && f.code == codeFieldTooLong {
					t.Errorf("%s %s %s at its limit refused: %s", rt.method, rt.path, f.name, rec.Body)
				}
				if rec.Code >= 500 {
					t.Errorf("%s %s %s: %d %s", rt.method, rt.path, f.name, rec.Code, rec.Body)
				}
			}
		}
	}
	// Stats events have fields of their own.
	metadata := map[string]string{} // each value under the string limit, the whole over its own
	for i := range capgoMaxMetadata/capgoMaxString + 1 {
		metadata[fmt.Sprint(i)] = strings.Repeat("x", capgoMaxString-100)
	}
	for _, f := range []struct {
		name  string
		value any
	}{
		{"action", strings.Repeat("a", capgoMaxAction+1)},
		{"old_version_name", strings.Repeat("1", capgoMaxVersionName+1)},
		{"metadata", metadata},
	} {
		rec := serve(h, "POST", "/capgo/stats", bytes.NewReader(capgoBody(t, map[string]any{f.name: f.value})))
		if m := decodeObject(rec.Body.Bytes()); rec.Code != 400 || m["error"] != codeFieldTooLong || m["kind"] != capgoFailed {
			t.Errorf("stats %s: %d %s", f.name, rec.Code, rec.Body)
		}
	}
	rec := serve(h, "POST", "/capgo/stats", strings.NewReader(`{"app_id":"com.example.demo","action":"get","timestamp":`+strings.Repeat("1", capgoMaxTimestamp+1)+`}`))
	if m := decodeObject(rec.Body.Bytes()); rec.Code != 400 || m["error"] != codeFieldTooLong {
		t.Errorf("stats timestamp: %d %s", rec.Code, rec.Body)
	}
	if logs := e.errorLogs.take(); len(logs) > 0 {
		t.Errorf("error logs: %v", logs)
	}
}

// The stress run's finding: big device-written fields on channel_self. They are
// refused before anything is looked up, and nothing is written.
func TestCapgoChannelSelfBigFieldsWriteNothing(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	device := "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"
	before := limitsFingerprint(t, e, device)
	for _, size := range []int{capgoMaxBody - 1024, 390 << 10, 410 << 10} {
		for _, f := range []string{"platform", "version_name"} {
			body := capgoBody(t, map[string]any{f: strings.Repeat("x", size), "channel": "production", "plugin_version": "6.0.0"})
			rec := serve(h, "POST", "/capgo/channel_self", bytes.NewReader(body))
			if rec.Code != 400 && rec.Code != 413 {
				t.Fatalf("%s of %d bytes: %d %s", f, size, rec.Code, rec.Body)
			}
		}
	}
	if after := limitsFingerprint(t, e, device); after != before {
		t.Fatalf("refused requests wrote:\n%s\n%s", before, after)
	}
}

func limitsFingerprint(t testing.TB, e *limitsEnv, device string) string {
	ctx := context.Background()
	dev, err := e.store.GetDevice(ctx, capgoApp, device)
	n, _ := e.store.DeviceChannelOverrides(ctx, capgoApp)
	chs, _ := e.store.ListChannels(ctx, capgoApp)
	b, _ := json.Marshal([]any{dev, err == nil, n, chs})
	return string(b)
}

// jsonRoute is a route that reads a JSON body, with a body it accepts and the form
// of its errors.
type jsonRoute struct {
	method, path string
	hdr          []string
	base         map[string]any // a body it reads through
	lim          jsonLimits
	form         string // capgo | management
}

func limitsJSONRoutes(e *limitsEnv) []jsonRoute {
	admin := []string{"Authorization", "Bearer " + e.admin}
	capgo := func(path string) jsonRoute {
		var m map[string]any
		_ = json.Unmarshal(capgoBody(e.t, map[string]any{"channel": "production", "action": "get"}), &m)
		lim := capgoLimits
		switch path {
		case "/capgo/stats":
			lim = capgoStatsLimits
		case "/capgo/updates/manifest_size":
			lim = capgoSizeLimits
		}
		return jsonRoute{"POST", path, nil, m, lim, "capgo"}
	}
	return []jsonRoute{
		capgo("/capgo/updates"),
		capgo("/capgo/stats"),
		capgo("/capgo/channel_self"),
		capgo("/capgo/updates/manifest_size"),
		{"POST", "/api/v1/updates/confirm", nil, map[string]any{"appId": capgoApp, "version": "1.0.0", "success": true}, nuConfirmLimits, "management"},
		{"POST", "/apps/" + capgoApp + "/channels/check-device", nil, map[string]any{"device_id": "d1", "channel_name": "production"}, cdLimits, "management"},
		{"POST", "/v1/device/report", nil, map[string]any{"app_id": capgoApp, "device_id": "d1", "version": "1.0.0", "status": "installed"}, deviceLimits, "management"},
		{"POST", "/v1/apps", admin, map[string]any{"id": "com.example.new"}, manageLimits, "management"},
		{"PATCH", "/v1/apps/" + capgoApp, admin, map[string]any{"name": "Demo"}, manageLimits, "management"},
		{"POST", "/v1/apps/" + capgoApp + "/releases", admin, map[string]any{"version": "2.0.0", "sha256": strings.Repeat("a", 64), "size": 10}, manageLimits, "management"},
		{"PUT", "/v1/apps/" + capgoApp + "/channels/beta", admin, map[string]any{"public": true}, manageLimits, "management"},
		{"POST", "/v1/keys", admin, map[string]any{"name": "ci", "apps": []string{capgoApp}}, manageLimits, "management"},
		{"PUT", "/v1/apps/" + capgoApp + "/channels/production/rollout", admin, map[string]any{"version": "1.0.0", "percent": 10}, manageLimits, "management"},
		{"POST", "/v1/apps/" + capgoApp + "/channels/production/rollback", admin, map[string]any{"to": "1.0.0"}, manageLimits, "management"},
		{"POST", "/v1/apps/" + capgoApp + "/cleanup", admin, map[string]any{"keep": 5, "dry_run": true}, manageLimits, "management"},
	}
}

// nested is an unknown field nested depth levels deep.
func nested(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat("[", depth) + strings.Repeat("]", depth))
}

// Every JSON route bounds the body, its nesting, its arrays and objects and its
// strings, unknown fields included, each with its stable code in the route's form.
func TestJSONShapeLimits(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	for _, rt := range limitsJSONRoutes(e) {
		with := func(k string, v any) []byte {
			m := map[string]any{}
			for k, v := range rt.base {
				m[k] = v
			}
			m[k] = v
			b, _ := json.Marshal(m)
			return b
		}
		items := make([]int, rt.lim.Items+1)
		cases := []struct {
			name     string
			body     []byte
			status   int
			code     string
			refusing bool
		}{
			{"nesting at the limit", with("x", nested(rt.lim.Depth-1)), 0, "", false},
			{"nesting over", with("x", nested(rt.lim.Depth)), 400, codeTooDeep, true},
			{"items at the limit", with("x", items[1:]), 0, "", false},
			{"items over", with("x", items), 413, codeTooManyItems, true},
			{"string at the limit", with("x", strings.Repeat("s", rt.lim.String)), 0, "", false},
			{"string over", with("x", strings.Repeat("s", rt.lim.String+1)), 400, codeFieldTooLong, true},
			{"body over", append(with("x", ""), bytes.Repeat([]byte(" "), int(rt.lim.Body))...), 413, codeBodyTooLarge, true},
		}
		for _, c := range cases {
			rec := serve(h, rt.method, rt.path, bytes.NewReader(c.body), rt.hdr...)
			m := decodeObject(rec.Body.Bytes())
			if rec.Code >= 500 {
				t.Errorf("%s %s %s: %d %s", rt.method, rt.path, c.name, rec.Code, rec.Body)
				continue
			}
			if !c.refusing {
				if m["error"] == codeTooDeep || m["error"] == codeTooManyItems || m["error"] == codeFieldTooLong || m["error"] == codeBodyTooLarge {
					t.Errorf("%s %s %s refused: %d %s", rt.method, rt.path, c.name, rec.Code, rec.Body)
				}
				continue
			}
			if rec.Code != c.status || m["error"] != c.code || m["message"] == "" {
				t.Errorf("%s %s %s: %d %.200s, want %d %s", rt.method, rt.path, c.name, rec.Code, rec.Body, c.status, c.code)
			}
			if rt.form == "capgo" && m["kind"] != capgoFailed {
				t.Errorf("%s %s %s: not in the Capgo form: %s", rt.method, rt.path, c.name, rec.Body)
			}
		}
	}
	if logs := e.errorLogs.take(); len(logs) > 0 {
		t.Errorf("error logs: %v", logs)
	}
}

// Query strings are bounded before they are parsed, in each protocol's form.
func TestQueryLimits(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	long := func(n int) string { return "x=" + strings.Repeat("a", n-2) }
	for _, c := range []struct {
		path  string
		limit int
		want  map[string]any
	}{
		{"/native-update/" + capgoApp + "/check", nuMaxQuery, map[string]any{"available": false, "updateAvailable": false, "error": codeQueryTooLong}},
		{"/api/v1/updates/check", nuMaxQuery, map[string]any{"available": false, "updateAvailable": false, "error": codeQueryTooLong}},
		{"/api/v1/native/bundle/manifest", seedMaxQuery, map[string]any{"detail": seedQueryTooLong}},
		{"/seed/" + capgoApp + "/production/api/v1/native/bundle/download", seedMaxQuery, map[string]any{"detail": seedQueryTooLong}},
		{"/capgo/channel_self", capgoMaxQuery, map[string]any{"error": codeQueryTooLong, "kind": capgoFailed}},
	} {
		rec := serve(h, "GET", c.path+"?"+long(c.limit+1), nil)
		m := decodeObject(rec.Body.Bytes())
		if rec.Code != 400 {
			t.Errorf("%s: %d %s", c.path, rec.Code, rec.Body)
		}
		for k, v := range c.want {
			if m[k] != v {
				t.Errorf("%s: %s is %v, want %v (%s)", c.path, k, m[k], v, rec.Body)
			}
		}
		if rec := serve(h, "GET", c.path+"?"+long(c.limit), nil); rec.Code >= 500 || strings.Contains(strings.ToLower(rec.Body.String()), codeQueryTooLong) {
			t.Errorf("%s at the limit: %d %s", c.path, rec.Code, rec.Body)
		}
	}
	rec := serve(h, "DELETE", "/capgo/channel_self?"+long(capgoMaxQuery+1), nil)
	if m := decodeObject(rec.Body.Bytes()); rec.Code != 400 || m["error"] != codeQueryTooLong || m["kind"] != capgoFailed {
		t.Errorf("DELETE channel_self: %d %s", rec.Code, rec.Body)
	}
}

// Management and device bodies bound each field a client writes.
func TestFieldLimits(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	admin := []string{"Authorization", "Bearer " + e.admin}
	apps := make([]string, manageMaxKeyApps+1)
	for i := range apps {
		apps[i] = fmt.Sprintf("com.example.a%d", i)
	}
	release := func(over map[string]any) map[string]any {
		m := map[string]any{"version": "2.0.0", "sha256": strings.Repeat("a", 64), "size": 10}
		for k, v := range over {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct {
		name, method, path string
		hdr                []string
		body               any
		status             int
		code               string
	}{
		{"app name", "POST", "/v1/apps", admin, map[string]any{"id": "com.example.n1", "name": strings.Repeat("n", manageMaxName+1)}, 400, codeFieldTooLong},
		{"app flux secret", "PATCH", "/v1/apps/" + capgoApp, admin, map[string]any{"flux_secret": strings.Repeat("s", manageMaxSecret+1)}, 400, codeFieldTooLong},
		{"app device token", "PATCH", "/v1/apps/" + capgoApp, admin, map[string]any{"device_token": strings.Repeat("s", cdMaxDeviceToken+1)}, 400, codeFieldTooLong},
		{"key name", "POST", "/v1/keys", admin, map[string]any{"name": strings.Repeat("n", manageMaxName+1), "apps": []string{"*"}}, 400, codeFieldTooLong},
		{"key apps", "POST", "/v1/keys", admin, map[string]any{"name": "ci", "apps": apps}, 413, codeTooManyItems},
		{"release notes", "POST", "/v1/apps/" + capgoApp + "/releases", admin, release(map[string]any{"notes": strings.Repeat("n", manageMaxNotes+1)}), 400, codeFieldTooLong},
		{"release platform", "POST", "/v1/apps/" + capgoApp + "/releases", admin, release(map[string]any{"platform": strings.Repeat("p", manageMaxPlatform+1)}), 400, codeFieldTooLong},
		{"release signature", "POST", "/v1/apps/" + capgoApp + "/releases", admin, release(map[string]any{"signatures": map[string]string{"pss": strings.Repeat("s", manageMaxSignature+1)}}), 400, codeFieldTooLong},
		{"release statement", "POST", "/v1/apps/" + capgoApp + "/releases", admin, release(map[string]any{"signatures": map[string]string{"statement": strings.Repeat("s", manageMaxSignature+1)}}), 400, codeFieldTooLong},
		{"channel version", "PUT", "/v1/apps/" + capgoApp + "/channels/beta", admin, map[string]any{"version": strings.Repeat("1", 3000)}, 400, "invalid_version"},
		{"path version", "GET", "/v1/apps/" + capgoApp + "/releases/" + strings.Repeat("1", 3000), admin, nil, 400, "invalid_version"},
		{"path version delete", "DELETE", "/v1/apps/" + capgoApp + "/releases/" + strings.Repeat("1", 3000), admin, nil, 400, "invalid_version"},
		{"path version complete", "POST", "/v1/apps/" + capgoApp + "/releases/" + strings.Repeat("1", 3000) + "/complete", admin, nil, 400, "invalid_version"},
		{"path channel", "GET", "/v1/apps/" + capgoApp + "/channels/" + strings.Repeat("c", 3000), admin, nil, 400, "invalid_channel"},
		{"API key", "GET", "/v1/apps", []string{"Authorization", "Bearer " + strings.Repeat("k", maxAPIKey+1)}, nil, 401, "unauthorized"},
		{"report detail", "POST", "/v1/device/report", nil, map[string]any{"app_id": capgoApp, "device_id": "d1", "version": "1.0.0", "status": "installed", "detail": strings.Repeat("d", deviceMaxDetail+1)}, 400, codeFieldTooLong},
		{"device token", "POST", "/apps/" + limitsProtectedApp + "/channels/check-device", []string{"Authorization", "Bearer " + strings.Repeat("t", cdMaxDeviceToken+1)}, map[string]any{}, 401, "unauthorized"},
	} {
		var body io.Reader
		if c.body != nil {
			b, _ := json.Marshal(c.body)
			body = bytes.NewReader(b)
		}
		rec := serve(h, c.method, c.path, body, c.hdr...)
		if m := decodeObject(rec.Body.Bytes()); rec.Code != c.status || m["error"] != c.code || m["message"] == "" {
			t.Errorf("%s: %d %.300s, want %d %s", c.name, rec.Code, rec.Body, c.status, c.code)
		}
	}
	if logs := e.errorLogs.take(); len(logs) > 0 {
		t.Errorf("error logs: %v", logs)
	}
}

// pathValues fills a route pattern's wildcards.
func pathValues(pattern string, values map[string]string) string {
	for k, v := range values {
		pattern = strings.ReplaceAll(pattern, "{"+k+"}", v)
		pattern = strings.ReplaceAll(pattern, "{"+k+"...}", v)
	}
	return pattern
}

// Every route of the management API and the uploads checks the API key before it
// reads a byte of the body.
func TestKeyCheckedBeforeBody(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	values := map[string]string{"app": capgoApp, "channel": "production", "version": "1.0.0", "id": "key_0", "action": "promote"}
	n := 0
	for _, rt := range Routes() {
		if (rt.Group != GroupAdmin && rt.Group != GroupUpload) || rt.Method == "GET" || rt.Method == "HEAD" {
			continue
		}
		for _, auth := range [][]string{nil, {"Authorization", "Bearer ota_wrong"}, {"Authorization", "Bearer " + e.emptyKey}} {
			path := pathValues(rt.Path, map[string]string{"key": "ota_wrong"})
			if auth != nil && strings.Contains(rt.Path, "{key}") {
				path = pathValues(rt.Path, map[string]string{"key": strings.TrimPrefix(auth[1], "Bearer ")})
			}
			path = pathValues(path, values)
			body := &countingBody{r: strings.NewReader(`{"version":"1.0.0","percent":5,"keep":1,"name":"x","apps":["*"],"id":"com.example.x","appId":"` + capgoApp + `","chunk":[1]}`)}
			rec := serve(h, rt.Method, path, body, auth...)
			want := http.StatusUnauthorized
			if auth != nil && auth[1] == "Bearer "+e.emptyKey && !strings.HasPrefix(rt.Path, "/flux") {
				want = http.StatusForbidden // a valid key without the scope
			}
			if rec.Code != want || body.n.Load() != 0 {
				t.Errorf("%s %s with %v: %d %s after reading %d bytes of the body", rt.Method, path, auth, rec.Code, rec.Body, body.n.Load())
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d requests: the route table changed shape", n)
	}
}

// fluxBodyStream streams a Flux upload body of about n bytes without holding it:
// head, then "255," repeated, then tail.
type fluxBodyStream struct {
	head, tail string
	n, off     int64
}

func (g *fluxBodyStream) Read(p []byte) (int, error) {
	fill := g.n - int64(len(g.head)) - int64(len(g.tail))
	i := 0
	for ; i < len(p) && g.off < g.n; i, g.off = i+1, g.off+1 {
		switch {
		case g.off < int64(len(g.head)):
			p[i] = g.head[g.off]
		case g.off < int64(len(g.head))+fill:
			p[i] = "255,"[(g.off-int64(len(g.head)))%4]
		default:
			p[i] = g.tail[g.off-int64(len(g.head))-fill]
		}
	}
	if i == 0 {
		return 0, io.EOF
	}
	return i, nil
}

// A Flux upload with a key for another app is refused after reading only what comes
// before the chunk: the stress run buffered 630 MB for three such 100 MB uploads.
func TestFluxUploadScopeBeforeChunk(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	const size = 64 << 20
	for _, c := range []struct {
		name     string
		key      string
		head     string
		tail     string
		status   int
		code     string
		maxBytes int64
	}{
		{"foreign key, appId first", e.otherKey, `{"appId":"` + limitsFluxApp + `","version":"9.0.0","chunk":[`, `0]}`, 401, "unauthorized", 128 << 10},
		{"key allowing no app", e.emptyKey, `{"appId":"` + limitsFluxApp + `","version":"9.0.0","chunk":[`, `0]}`, 401, "unauthorized", 0},
		{"unknown key", "ota_wrong", `{"appId":"` + limitsFluxApp + `","version":"9.0.0","chunk":[`, `0]}`, 401, "unauthorized", 0},
		{"unknown app", e.fluxKey, `{"appId":"com.example.nope","version":"9.0.0","chunk":[`, `0]}`, 401, "unauthorized", 128 << 10},
		{"chunk before appId", e.fluxKey, `{"version":"9.0.0","chunk":[`, `0],"appId":"` + limitsFluxApp + `"}`, 413, "app_id_first", fluxMaxBeforeScope + 128<<10},
	} {
		body := &countingBody{r: &fluxBodyStream{head: c.head, tail: c.tail, n: size}}
		rec := serve(h, "POST", "/flux/k/"+c.key+"/releases", body)
		if got := strings.TrimSpace(rec.Body.String()); rec.Code != c.status || got != `{"error":"`+c.code+`"}` {
			t.Errorf("%s: %d %s, want %d %s", c.name, rec.Code, got, c.status, c.code)
		}
		if n := body.n.Load(); n > c.maxBytes {
			t.Errorf("%s: read %d bytes of the body, want at most %d", c.name, n, c.maxBytes)
		}
	}
	// A small body may put its chunk first; a larger one with appId first is read whole.
	small := `{"version":"1.0.0","buildNumber":1,"chunk":` + fluxByteArray(fluxOld) + `,"appId":"` + limitsFluxApp + `"}`
	if rec := serve(h, "POST", "/flux/k/"+e.fluxKey+"/releases", strings.NewReader(small)); rec.Code != 200 {
		t.Fatalf("small chunk first: %d %s", rec.Code, rec.Body)
	}
	big := &fluxBodyStream{head: `{"appId":"` + limitsFluxApp + `","version":"2.0.0","buildNumber":2,"chunk":[`, tail: `0]}`, n: 8 << 20}
	if rec := serve(h, "POST", "/flux/k/"+e.fluxKey+"/releases", big); rec.Code != 200 {
		t.Fatalf("8 MB upload: %d %s", rec.Code, rec.Body)
	}
	if logs := e.errorLogs.take(); len(logs) > 0 {
		t.Errorf("error logs: %v", logs)
	}
}

// The Flux body's own limits: duplicate fields (a second appId would escape the
// scope check), strings, numbers, nesting.
func TestFluxUploadBodyLimits(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	head := `{"appId":"` + limitsFluxApp + `","version":"1.0.0","buildNumber":1,"chunk":[70]`
	for _, c := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"second appId", head + `,"appId":"` + capgoApp + `"}`, 400, "duplicate_field"},
		{"second chunk", head + `,"chunk":[1]}`, 400, "duplicate_field"},
		{"long string", head + `,"x":"` + strings.Repeat("s", fluxMaxString+1) + `"}`, 400, codeFieldTooLong},
		{"long key", head + `,"` + strings.Repeat("s", fluxMaxString+1) + `":1}`, 400, codeFieldTooLong},
		{"long number", head + `,"x":` + strings.Repeat("1", fluxMaxNumber+1) + `}`, 400, codeFieldTooLong},
		{"deep", head + `,"x":` + string(nested(fluxMaxDepth)) + `}`, 400, codeTooDeep},
		{"many items", head + `,"x":[` + strings.Repeat("0,", fluxMaxItems) + `0]}`, 413, codeTooManyItems},
		{"buildNumber overflow", `{"appId":"` + limitsFluxApp + `","version":"1.0.0","buildNumber":99999999999999999999,"chunk":[70]}`, 400, "invalid_type"},
	} {
		rec := serve(h, "POST", "/flux/k/"+e.fluxKey+"/releases", strings.NewReader(c.body))
		if got := strings.TrimSpace(rec.Body.String()); rec.Code != c.status || got != `{"error":"`+c.code+`"}` {
			t.Errorf("%s: %d %.200s, want %d %s", c.name, rec.Code, got, c.status, c.code)
		}
	}
	deepOK := head + `,"x":` + string(nested(fluxMaxDepth-1)) + `,"y":{"a":[1,"b",null,true,false,-1.5e3]}}`
	if rec := serve(h, "POST", "/flux/k/"+e.fluxKey+"/releases", strings.NewReader(deepOK)); rec.Code != 200 {
		t.Errorf("unknown fields within the limits: %d %s", rec.Code, rec.Body)
	}
}

// A protected app's device token is checked before the check-device body is read.
func TestCheckDeviceTokenBeforeBody(t *testing.T) {
	e := newLimitsEnv(t)
	h := e.srv.Handler()
	body := &countingBody{r: strings.NewReader(`{"device_id":` + strings.Repeat("[", 100))}
	rec := serve(h, "POST", "/apps/"+limitsProtectedApp+"/channels/check-device", body)
	if m := decodeObject(rec.Body.Bytes()); rec.Code != 401 || m["error"] != "unauthorized" || body.n.Load() != 0 {
		t.Fatalf("%d %s after reading %d bytes", rec.Code, rec.Body, body.n.Load())
	}
	rec = serve(h, "POST", "/apps/"+limitsProtectedApp+"/channels/check-device", strings.NewReader(`{}`), "Authorization", "Bearer "+limitsDeviceToken)
	if rec.Code != 200 {
		t.Fatalf("with the token: %d %s", rec.Code, rec.Body)
	}
}

// Paths that name no valid object key are a 400 with a stable code on otad's signed
// upload and download routes, answered without an error log.
func TestLocalInvalidKeys(t *testing.T) {
	e := newLimitsEnv(t)
	for _, p := range []string{"%00", "a%00b", "%2F", "a%2Fb", "..%2Fx", "bundles/..%2F..%2Fx", "%2e%2e%2Fx", "%25", "a%5Cb", strings.Repeat("k", 513), "bundles/" + strings.Repeat("k", 505)} {
		for _, method := range []string{"PUT", "GET", "HEAD"} {
			prefix := "/dl/"
			if method == "PUT" {
				prefix = "/blob/"
			}
			// Over HTTP, as sent by a client: the raw path reaches the server as is.
			st, _, b := e.do(method, prefix+p+"?exp=1&sig=x&sha256="+strings.Repeat("a", 64)+"&size=1", "x")
			if method == "HEAD" {
				if st != 400 {
					t.Errorf("%s %s%.40s: %d", method, prefix, p, st)
				}
				continue
			}
			if m := decodeObject(b); st != 400 || m["error"] != "invalid_key" {
				t.Errorf("%s %s%.40s: %d %s", method, prefix, p, st, b)
			}
		}
	}
	if logs := e.errorLogs.take(); len(logs) > 0 {
		t.Errorf("error logs: %v", logs)
	}
}
