package blob

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidKey holds ValidKey to what it promises: a key it accepts stays inside the
// objects folder, names a file (no empty, "." or ".." segment), is canonical and has
// no byte S3 or a URL would read differently. A campaign:
// go test -run '^$' -fuzz FuzzValidKey -fuzztime 5m ./shared/blob/
func FuzzValidKey(f *testing.F) {
	for _, k := range []string{"bundles/com.example.demo/1.0.0.zip", "files/ab/" + strings.Repeat("a", 64), "", "/abs", "a/../b",
		"..", "a/./b", "a//b", "a\\b", "a\x00b", "a?b", "a#b", "a%2Fb", strings.Repeat("k", 512), strings.Repeat("k", 513), "a/", "é/ü"} {
		f.Add(k)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, key string) {
		ParseBundleKey(key) // never panics, whatever the key
		if !ValidKey(key) {
			return
		}
		if len(key) > 512 || strings.ContainsAny(key, "\x00\\?#%") || path.Clean(key) != key || path.IsAbs(key) {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
		full := filepath.Join(dir, filepath.FromSlash(key))
		if rel, err := filepath.Rel(dir, full); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t.Fatalf("key %q leaves the folder: %s", key, full)
		}
	})
}
