package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/testenv"
)

// POST /capgo/updates/manifest_size answers as Capgo's backend does
// (plugin_runtime/utils/manifest_size.ts): every requested file echoed with its size
// or error "size_unknown", totals over them.
func TestCapgoManifestSizeEdges(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	files := map[string]string{"index.html": "<html>x</html>", "empty.txt": "", "js/app.js": "console.log(1)"}
	e.publishZip(capgoApp, publish.Input{Version: "1.0.1"}, testenv.Zip(t, files), "production")
	sum := func(s string) string { return sha256hex([]byte(s)) }
	entry := func(name, content string) map[string]any {
		return map[string]any{"file_name": name, "file_hash": sum(content), "download_url": "https://cdn.example.com/" + name}
	}
	size := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		req := capgoDevice(t, "", "1.0.0", nil)
		for k, v := range body {
			req[k] = v
		}
		st, _, b := e.do("POST", "/capgo/updates/manifest_size", req)
		return st, jsonMap(t, b)
	}
	totals := func(m map[string]any) string {
		return fmt.Sprint(m["totalSize"], " ", m["knownFiles"], " ", m["unknownFiles"], " ", len(m["files"].([]any)))
	}

	for _, tc := range []struct {
		name string
		body map[string]any
		want string // totalSize knownFiles unknownFiles len(files)
	}{
		{"known files", map[string]any{"version": "1.0.1", "manifest": []any{entry("index.html", files["index.html"]), entry("js/app.js", files["js/app.js"])}}, "28 2 0 2"},
		{"files instead of manifest", map[string]any{"version": "1.0.1", "files": []any{entry("js/app.js", files["js/app.js"])}}, "14 1 0 1"},
		{"a hash the release lacks", map[string]any{"version": "1.0.1", "manifest": []any{entry("other.js", "nope"), entry("js/app.js", files["js/app.js"])}}, "14 1 1 2"},
		{"a zero-byte file is unknown, as Capgo's", map[string]any{"version": "1.0.1", "manifest": []any{entry("empty.txt", "")}}, "0 0 1 1"},
		{"unknown version", map[string]any{"version": "9.9.9", "manifest": []any{entry("js/app.js", files["js/app.js"])}}, "0 0 1 1"},
		{"no version", map[string]any{"manifest": []any{entry("js/app.js", files["js/app.js"])}}, "0 0 1 1"},
		{"unknown app", map[string]any{"app_id": "com.example.nobody", "version": "1.0.1", "manifest": []any{entry("js/app.js", files["js/app.js"])}}, "0 0 1 1"},
		{"repeats listed once", map[string]any{"version": "1.0.1", "manifest": []any{entry("js/app.js", files["js/app.js"]), entry("js/app.js", files["js/app.js"])}}, "14 1 0 1"},
		{"entries without a hash dropped", map[string]any{"version": "1.0.1", "manifest": []any{map[string]any{"file_name": "a"}, "junk", 7, nil, map[string]any{"file_hash": 5}}}, "0 0 0 0"},
		{"manifest not an array", map[string]any{"version": "1.0.1", "manifest": map[string]any{"x": 1}}, "0 0 0 0"},
		{"empty", map[string]any{"version": "1.0.1", "manifest": []any{}}, "0 0 0 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := size(tc.body)
			if st != http.StatusOK {
				t.Fatalf("%d %v", st, m)
			}
			if got := totals(m); got != tc.want {
				t.Fatalf("totals %s, want %s: %v", got, tc.want, m)
			}
			for _, f := range m["files"].([]any) {
				o := f.(map[string]any)
				_, hasSize := o["size"]
				if hasSize == (o["error"] == "size_unknown") {
					t.Fatalf("a file has both or neither of size and error: %v", o)
				}
			}
		})
	}

	// Fields other than strings read as null, as Capgo's typeof checks do.
	st, m := size(map[string]any{"version": "1.0.1", "manifest": []any{map[string]any{"file_hash": sum(files["js/app.js"]), "file_name": 3}}})
	if f := m["files"].([]any)[0].(map[string]any); st != 200 || f["file_name"] != nil || f["download_url"] != nil || f["size"] != json.Number("14") {
		t.Fatalf("%d %v", st, m)
	}

	// Limits on what the device writes.
	long := entry("js/app.js", files["js/app.js"])
	long["download_url"] = "https://cdn.example.com/" + strings.Repeat("x", capgoMaxSizeURL)
	many := make([]any, capgoMaxManifestFiles+1)
	for i := range many {
		many[i] = map[string]any{"file_hash": fmt.Sprint(i)}
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		st   int
		code string
	}{
		{"oversized url", map[string]any{"version": "1.0.1", "manifest": []any{long}}, 400, "invalid_manifest"},
		{"oversized hash", map[string]any{"version": "1.0.1", "manifest": []any{map[string]any{"file_hash": strings.Repeat("a", capgoMaxSizeFileHash+1)}}}, 400, "invalid_manifest"},
		{"too many entries", map[string]any{"version": "1.0.1", "manifest": many}, 413, "too_many_files"},
		{"no app", map[string]any{"app_id": nil, "manifest": []any{}}, 400, "missing_app_id"},
		{"key_id too long", map[string]any{"key_id": strings.Repeat("k", 21), "manifest": []any{}}, 400, "invalid_key_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := size(tc.body)
			if st != tc.st || m["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", st, m, tc.st, tc.code)
			}
		})
	}
	if st, _, b := e.do("POST", "/capgo/updates/manifest_size", `{"app_id":`); st != 400 {
		t.Fatalf("bad JSON: %d %s", st, b)
	}
}
