package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/release"
)

// Native fuzz targets, one per parser and per device route. Plain `go test` runs each
// seed corpus; a campaign: go test -run '^$' -fuzz FuzzCapgoUpdates -fuzztime 5m ./shared/api/
//
// Every target holds the same invariants: no panic, no 5xx, no error log, an answer
// of bounded size, and every 4xx in its protocol's error form with a code from the
// route's fixed list.

// fuzzMaxAnswer bounds any answer to a fuzzed device request: no error echoes more
// than a bounded field, and the fixtures' update answers are a few KB.
const fuzzMaxAnswer = 64 << 10

// Codes of the decoding and limits, common to every JSON route.
var fuzzDecodeCodes = []string{"invalid_json", "invalid_type", "empty_body", codeBodyUnreadable,
	codeBodyTooLarge, codeTooDeep, codeTooManyItems, codeFieldTooLong}

// fuzzSeeds adds the plugin fixtures and shapes at and around the limits.
func fuzzSeeds(f *testing.F, fixtures ...string) {
	for _, name := range fixtures {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "capgo", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{``, `{}`, `[]`, `null`, `"x"`, `{"app_id":`, `{"app_id":"com.example.demo"} {}`,
		`{"app_id":"com.example.demo","x":` + string(nested(capgoMaxDepth)) + `}`,
		`{"app_id":"com.example.demo","x":"` + strings.Repeat("s", capgoMaxString+1) + `"}`,
		`{"app_id":"com.example.demo","x":[` + strings.Repeat("0,", capgoMaxItems) + `0]}`,
		`{"app_id":"com.example.demo","device_id":"` + strings.Repeat("d", capgoMaxDeviceID+1) + `"}`,
		`{"app_id":"com.example.demo","platform":"` + strings.Repeat("p", 400<<10) + `"}`,
		`{"app_id":"com.example.demo","version_name":"\u0000\ud800","is_emulator":"yes"}`,
	} {
		f.Add([]byte(s))
	}
}

// fuzzCheck holds the invariants of one answer. form is capgo, management, flux,
// nu or seed; maxAnswer bounds its size; codes lists the route's 4xx codes.
func fuzzCheck(t *testing.T, e *limitsEnv, rec *httptest.ResponseRecorder, form string, maxAnswer int, codes []string) {
	t.Helper()
	if logs := e.errorLogs.take(); len(logs) > 0 {
		t.Fatalf("error logs %v for an answer %d %.300s", logs, rec.Code, rec.Body)
	}
	if rec.Code >= 500 {
		t.Fatalf("%d %.300s", rec.Code, rec.Body)
	}
	if rec.Body.Len() > maxAnswer {
		t.Fatalf("answer of %d bytes", rec.Body.Len())
	}
	if rec.Code < 400 {
		return
	}
	m := decodeObject(rec.Body.Bytes())
	code, _ := m["error"].(string)
	if form == "seed" {
		code, _ = m["detail"].(string)
	}
	if !slices.Contains(codes, code) && !slices.Contains(fuzzDecodeCodes, code) {
		t.Fatalf("%d with code %q, not one of the route's: %.300s", rec.Code, code, rec.Body)
	}
	switch form {
	case "capgo":
		if m["kind"] != capgoFailed || m["message"] == "" || len(m) != 3 {
			t.Fatalf("not the Capgo form: %.300s", rec.Body)
		}
	case "management":
		if m["message"] == "" || len(m) != 2 {
			t.Fatalf("not the management form: %.300s", rec.Body)
		}
	case "flux", "seed":
		if len(m) != 1 {
			t.Fatalf("not the %s form: %.300s", form, rec.Body)
		}
	case "nu":
		if m["available"] != false || m["updateAvailable"] != false || len(m) != 3 {
			t.Fatalf("not the native-update form: %.300s", rec.Body)
		}
	}
}

var capgoCodes = []string{"missing_app_id", "invalid_app_id", "invalid_device_id", "invalid_key_id", "invalid_channel",
	"invalid_plugin_version", "missing_device_id", "app_not_found", "missing_channel", "too_many_events", codeQueryTooLong}

func FuzzCapgoUpdates(f *testing.F) {
	fuzzSeeds(f, "updates_android_8.json", "updates_ios_7.json")
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(h, "POST", "/capgo/updates", bytes.NewReader(body))
		fuzzCheck(t, e, rec, "capgo", fuzzMaxAnswer, capgoCodes)
		// Stable: the same request gets the same answer's status and code.
		again := serve(h, "POST", "/capgo/updates", bytes.NewReader(body))
		if again.Code != rec.Code || decodeObject(again.Body.Bytes())["error"] != decodeObject(rec.Body.Bytes())["error"] {
			t.Fatalf("answers differ: %d %.200s then %d %.200s", rec.Code, rec.Body, again.Code, again.Body)
		}
	})
}

func FuzzCapgoStats(f *testing.F) {
	fuzzSeeds(f, "stats_batch_android_8.json", "stats_single_download_worker.json")
	f.Add([]byte(`[{"app_id":"com.example.demo","action":"set","timestamp":1e400,"metadata":[1,{"a":null}]}]`))
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzCheck(t, e, serve(h, "POST", "/capgo/stats", bytes.NewReader(body)), "capgo", fuzzMaxAnswer, capgoCodes)
	})
}

func FuzzCapgoChannelSelf(f *testing.F) {
	fuzzSeeds(f, "updates_android_8.json", "updates_ios_7.json")
	f.Add([]byte(`{"app_id":"com.example.demo","device_id":"d1","plugin_version":"6.0.0","channel":"production"}`))
	f.Add([]byte(`{"app_id":"com.example.demo","device_id":"d1","plugin_version":"garbage","channel":"no/such"}`))
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, method := range []string{"POST", "PUT", "DELETE"} {
			fuzzCheck(t, e, serve(h, method, "/capgo/channel_self", bytes.NewReader(body)), "capgo", fuzzMaxAnswer, capgoCodes)
		}
		// GET carries its fields in the query: the body as one.
		fuzzCheck(t, e, serveQuery(h, "/capgo/channel_self", string(body)), "capgo", fuzzMaxAnswer, capgoCodes)
	})
}

// serveQuery sends GET path with rawQuery as is (what a client may put there).
func serveQuery(h http.Handler, path, rawQuery string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "http://ota.test/", nil)
	req.URL = &url.URL{Path: path, RawQuery: rawQuery}
	req.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func FuzzNativeUpdateQuery(f *testing.F) {
	for _, q := range []string{"", "channel=production", "channel=beta&version=1.0.0&appId=x&platform=ios",
		"appId=com.example.demo&channel=production&currentVersion=0.9.0&deviceId=ABC&platform=android",
		"appId=com.example.demo&deviceId=%00", "channel=%zz", "channel=a;b", "appId=" + strings.Repeat("a", 129),
		"x=" + strings.Repeat("a", nuMaxQuery)} {
		f.Add(q)
	}
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	codes := []string{"app_id_required", "invalid_app_id", "invalid_channel", "invalid_current_version", "invalid_device_id",
		"invalid_platform", codeQueryTooLong}
	f.Fuzz(func(t *testing.T, q string) {
		for _, path := range []string{"/native-update/" + capgoApp + "/check", "/api/v1/updates/check"} {
			rec := serveQuery(h, path, q)
			if rec.Code == http.StatusNotFound { // nothing to offer: the protocol's own answer
				if m := decodeObject(rec.Body.Bytes()); m["available"] != false {
					t.Fatalf("%s?%s: %d %s", path, q, rec.Code, rec.Body)
				}
				continue
			}
			fuzzCheck(t, e, rec, "nu", fuzzMaxAnswer, codes)
		}
		rec := serveQuery(h, "/api/v1/native/bundle/manifest", q)
		if rec.Code != http.StatusNotFound {
			fuzzCheck(t, e, rec, "seed", fuzzMaxAnswer, []string{seedAppRequired, "INVALID_APP_ID", "INVALID_CHANNEL", "INVALID_VERSION", seedQueryTooLong})
		}
	})
}

func FuzzCheckDevice(f *testing.F) {
	for _, s := range []string{`{"device_id":"8b0e2f64-3c1d-4a9e-b7f5-2d6c8a1e0f93","channel_name":"production","platform":"android","platform_version":"14","binary_version":"1.5.0","current_update_id":""}`,
		`{"current_update_id":"1.0.0"}`, `{"snapshot_id":"rel_0123456789ab"}`, `{"binary_version":1.5}`, `{"channel_name":"a b"}`, `[]`, ``,
		`{"device_id":"` + strings.Repeat("d", cdLimits.String+1) + `"}`} {
		f.Add([]byte(s))
	}
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	codes := []string{"invalid_app_id", "invalid_channel", "invalid_device_id", "invalid_platform", "invalid_field", "app_not_found", "unauthorized"}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzCheck(t, e, serve(h, "POST", "/apps/"+capgoApp+"/channels/check-device", bytes.NewReader(body)), "management", fuzzMaxAnswer, codes)
		fuzzCheck(t, e, serve(h, "POST", "/apps/"+limitsProtectedApp+"/channels/check-device", bytes.NewReader(body)), "management", fuzzMaxAnswer, codes)
	})
}

func FuzzCreateRelease(f *testing.F) {
	for _, s := range []string{`{"version":"2.0.0","sha256":"` + strings.Repeat("a", 64) + `","size":10}`,
		`{"version":"2.0.1","sha256":"` + strings.Repeat("b", 64) + `","size":10,"platform":"ios","min_native":"1.2.3","notes":"n","mandatory":true,"build_number":7,"format":"chunk","signatures":{"pss":"x","session_key":"a:b","enc_checksum":"c","key_id":"d"}}`,
		`{"version":"latest"}`, `{"size":-1}`, `{"signatures":{"statement":1}}`, `{"notes":"` + strings.Repeat("n", manageMaxNotes+1) + `"}`} {
		f.Add([]byte(s))
	}
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	codes := []string{"invalid_version", "invalid_sha256", "invalid_size", "invalid_format", "invalid_min_native", "incomplete_encryption",
		"version_exists", "conflict", "release_exists", "app_not_found"}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(h, "POST", "/v1/apps/"+capgoApp+"/releases", bytes.NewReader(body), "Authorization", "Bearer "+e.admin)
		// A release echoes its notes and signatures, each escaped at worst 6 times.
		fuzzCheck(t, e, rec, "management", 6*manageMaxBody, codes)
	})
}

// FuzzFluxUploadBody holds the streaming upload parser to encoding/json: what it
// accepts is valid JSON and decodes to the same fields, the scope is checked once,
// with the appId, and every refusal is a 4xx with a stable code.
func FuzzFluxUploadBody(f *testing.F) {
	for _, s := range []string{fluxBody(limitsFluxApp, "1.0.0", 1, []byte("FLUX\x01hello")),
		`{"chunk":[0,1,255],"appId":"com.example.notes","version":"1.0.0"}`,
		`{"appId":"com.example.other","version":"1.0.0","chunk":[1]}`,
		`{"appId":"com.example.notes","version":"1.0.0","buildNumber":null,"chunk":[1],"x":{"y":[true,false,null,-1.5e3,"\u00e9"]}}`,
		`{"appId":"com.example.notes","appId":"com.example.other","version":"1.0.0","chunk":[1]}`,
		`{"appId":"com.example.notes","version":"1.0.0","chunk":[01]}`, `{"appId":"com.example.notes","version":"1.0.0","chunk":[1,]}`,
		`{"appId":"com.example.notes","version":"1.0.0","buildNumber":7.0,"chunk":[1]}`, ` {} `, `[1]`, ``, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	codes := []string{"invalid_json", "invalid_type", "empty_body", "invalid_chunk", "invalid_app_id", "missing_field", "version_reserved",
		"invalid_version", "invalid_build_number", "empty_chunk", "duplicate_field", "app_id_first", "unauthorized",
		codeBodyTooLarge, codeTooDeep, codeTooManyItems, codeFieldTooLong}
	f.Fuzz(func(t *testing.T, body []byte) {
		var scoped []string
		scope := func(app string) error {
			scoped = append(scoped, app)
			if app == "com.example.other" {
				return errUnauthorized
			}
			return nil
		}
		var b fluxUploadBody
		err := decodeFluxUpload(bytes.NewReader(body), 1<<20, scope, &b)
		if len(scoped) > 1 || (len(scoped) == 1 && release.ValidAppID(scoped[0]) != nil) {
			t.Fatalf("scope called with %q", scoped)
		}
		if err != nil {
			var br *badRequest
			if !errors.As(err, &br) || br.Status < 400 || br.Status > 499 || !slices.Contains(codes, br.Code) {
				t.Fatalf("refusal %v is not a 4xx with a known code", err)
			}
			if len(scoped) == 1 && scoped[0] == "com.example.other" && br.Code != "unauthorized" && br.Code != "duplicate_field" {
				t.Fatalf("a foreign appId ended in %v", err)
			}
			return
		}
		// Accepted: valid JSON whose fields encoding/json reads the same.
		var m map[string]json.RawMessage
		if !json.Valid(body) || json.Unmarshal(body, &m) != nil {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var app, version string
		var chunk []int
		if json.Unmarshal(m["appId"], &app) != nil || json.Unmarshal(m["version"], &version) != nil || json.Unmarshal(m["chunk"], &chunk) != nil {
			t.Fatalf("accepted %q, which encoding/json cannot read", body)
		}
		if app != b.AppID || version != b.Version || len(chunk) != len(b.Chunk) || len(scoped) != 1 || scoped[0] != app {
			t.Fatalf("read %q as %q %q %d bytes (scope %q); encoding/json: %q %q %d", body, b.AppID, b.Version, len(b.Chunk), scoped, app, version, len(chunk))
		}
		for i, v := range chunk {
			if v != int(b.Chunk[i]) {
				t.Fatalf("chunk byte %d: %d, encoding/json %d", i, b.Chunk[i], v)
			}
		}
		if raw, ok := m["buildNumber"]; ok && string(raw) != "null" {
			var n int64
			if json.Unmarshal(raw, &n) != nil || b.BuildNumber == nil || *b.BuildNumber != n {
				t.Fatalf("buildNumber %s read as %v", raw, b.BuildNumber)
			}
		}
	})
}

// FuzzJSONLimits holds the shape check to a reference walk with encoding/json:
// on valid JSON it refuses exactly what nests too deep or holds too many items, and
// what it lets through has no longer string.
func FuzzJSONLimits(f *testing.F) {
	for _, s := range []string{`{}`, `[[[[1]]]]`, `[[[[[1]]]]]`, `[1,2,3,4,5,6,7,8]`, `[1,2,3,4,5,6,7,8,9]`, `{"a":"0123456789abcdef"}`,
		`{"a":"0123456789abcdefg"}`, `"\"[[[[[["`, `{"k\"":[{},{},[]]}`, `]]]][[`, `"unterminated`} {
		f.Add([]byte(s))
	}
	lim := jsonLimits{Depth: 4, Items: 8, String: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := lim.check(data)
		if !json.Valid(data) {
			return // the decoder refuses it; check only must not panic
		}
		depth, items, str := jsonShape(t, data)
		var br *badRequest
		switch {
		case err == nil:
			if depth > lim.Depth || items > lim.Items || str > lim.String {
				t.Fatalf("%q passed with depth %d, items %d, string %d", data, depth, items, str)
			}
		case !errors.As(err, &br):
			t.Fatalf("%q: %v", data, err)
		case br.Code == codeTooDeep && depth <= lim.Depth, br.Code == codeTooManyItems && items <= lim.Items:
			t.Fatalf("%q refused (%s) with depth %d, items %d", data, br.Code, depth, items)
		}
	})
}

// jsonShape is the deepest nesting, the most items (elements of an array, members of
// an object) of one container and the longest string (in runes) of a valid JSON value.
func jsonShape(t *testing.T, data []byte) (depth, items, str int) {
	type frame struct {
		object, wantKey bool
		count           int
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return depth, items, str
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == ']' || v == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].wantKey = true // the container was a member's value
				}
				continue
			}
			if top != nil && !top.object {
				top.count++
			}
			stack = append(stack, frame{object: v == '{', wantKey: true})
			depth = max(depth, len(stack))
		default:
			if s, ok := v.(string); ok {
				// Runes: each takes at least one byte as sent (an invalid byte decodes
				// to U+FFFD, three bytes).
				str = max(str, utf8.RuneCountInString(s))
			}
			switch {
			case top == nil:
			case top.object && top.wantKey:
				top.count++
				top.wantKey = false
			case top.object:
				top.wantKey = true
			default:
				top.count++
			}
		}
		for _, fr := range stack {
			items = max(items, fr.count)
		}
	}
}

// FuzzLocalKeyPath sends otad's signed download and upload routes any path: never a
// 5xx or an error log, a 400 invalid_key for what names no valid key, and no key
// accepted that could leave the objects folder.
func FuzzLocalKeyPath(f *testing.F) {
	for _, p := range []string{"bundles/com.example.demo/1.0.0.zip", "%00", "%2F", "..%2Fx", "a%2Fb", "bundles/..%2F..%2Fx",
		"%2e%2e/x", "a/../b", "a//b", "%25", "a%5Cb", strings.Repeat("k", 513), "files/ab/" + strings.Repeat("a", 64)} {
		f.Add(p)
	}
	e := newLimitsEnv(f)
	h := e.srv.Handler()
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, p string) {
		for _, c := range []struct{ method, prefix string }{{"GET", cdn.DownloadPath}, {"PUT", blob.UploadPath}} {
			// As the server reads a request line: a target it cannot parse never
			// reaches a handler.
			u, err := url.ParseRequestURI(c.prefix + p)
			if err != nil {
				return
			}
			u.RawQuery = "exp=1&sig=x&sha256=" + strings.Repeat("a", 64) + "&size=1"
			req := httptest.NewRequest(c.method, "http://ota.test/", strings.NewReader("x"))
			req.URL, req.RequestURI = u, u.RequestURI()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			fuzzCheck(t, e, rec, "management", fuzzMaxAnswer, []string{"invalid_key", "signature_invalid", "url_expired", "not_found", "route_not_found"})
			if key, err := localKey(req, c.prefix); err == nil {
				full := filepath.Join(dir, filepath.FromSlash(key))
				if rel, err := filepath.Rel(dir, full); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
					t.Fatalf("key %q of %q leaves the folder: %s", key, p, full)
				}
			}
		}
	})
}
