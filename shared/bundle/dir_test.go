package bundle

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var sampleTree = map[string]string{
	"index.html":              "<!doctype html><p>hi</p>\n",
	"js/app.js":               "console.log(1)\n",
	"js/app.js.map":           `{"version":3}`,
	"a.js":                    "sorts before a/ but after A",
	"assets/img/logo.svg":     "<svg/>",
	"assets/empty.txt":        "",
	"ünïcode.txt":             "utf-8 names set the zip UTF-8 flag",
	".DS_Store":               "litter",
	"js/.DS_Store":            "litter",
	"__MACOSX/._index.html":   "litter",
	"deep/er/still/deeper.js": "1",
}

func zipDirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := ZipDir(dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZipDirDeterministic(t *testing.T) {
	a := writeTree(t, sampleTree)
	b := writeTree(t, sampleTree)
	// Different timestamps and permissions must not leak into the zip.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(b, "js", "app.js"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(b, "index.html"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := zipDirBytes(t, a)
	for name, got := range map[string][]byte{"same folder again": zipDirBytes(t, a), "copy of the tree": zipDirBytes(t, b)} {
		if !bytes.Equal(first, got) {
			t.Errorf("%s: zip differs", name)
		}
	}

	zr, err := zip.NewReader(bytes.NewReader(first), int64(len(first)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Method != zip.Deflate || len(f.Extra) != 0 || f.Mode() != 0o644 ||
			f.ModifiedDate != dosEpochDate || f.ModifiedTime != 0 {
			t.Errorf("%s: method %d, extra %d bytes, mode %v, date %#x time %#x",
				f.Name, f.Method, len(f.Extra), f.Mode(), f.ModifiedDate, f.ModifiedTime)
		}
	}
	want := []string{
		"a.js", "assets/empty.txt", "assets/img/logo.svg", "deep/er/still/deeper.js",
		"index.html", "js/app.js", "js/app.js.map", "ünïcode.txt",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entries\n got %q\nwant %q", names, want)
	}
}

func TestZipDirMatchesReadDirManifest(t *testing.T) {
	dir := writeTree(t, sampleTree)
	fromDir, err := ReadDirManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	fromZip, err := inspectBytes(zipDirBytes(t, dir), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromDir, fromZip) {
		t.Errorf("manifests differ\n dir %+v\n zip %+v", fromDir, fromZip)
	}
	if got := fromDir.Files[0]; got != fileOf("a.js", sampleTree["a.js"]) {
		t.Errorf("first file %+v", got)
	}
}

func TestDirRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) error
		code  string
	}{
		{"symlink to file", func(t *testing.T, dir string) error {
			return os.Symlink("index.html", filepath.Join(dir, "link.html"))
		}, CodeSymlink},
		{"symlink to folder", func(t *testing.T, dir string) error {
			return os.Symlink("js", filepath.Join(dir, "linked"))
		}, CodeSymlink},
		{"backslash in name", func(t *testing.T, dir string) error {
			return os.WriteFile(filepath.Join(dir, `js\evil.js`), nil, 0o644)
		}, CodePathInvalid},
		{"names differing by case", func(t *testing.T, dir string) error {
			if err := os.WriteFile(filepath.Join(dir, "JS.js"), []byte("a"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "js.js"), []byte("b"), 0o644)
		}, CodeDuplicatePath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"index.html": "x", "js/app.js": "y"})
			if err := tt.setup(t, dir); err != nil {
				t.Skipf("cannot set up on this file system: %v", err)
			}
			if tt.code == CodeDuplicatePath {
				if entries, _ := os.ReadDir(dir); len(entries) < 4 {
					t.Skip("case-insensitive file system")
				}
			}
			if err := ZipDir(dir, new(bytes.Buffer)); CodeOf(err) != tt.code {
				t.Errorf("ZipDir: got %v, want %s", err, tt.code)
			}
			if _, err := ReadDirManifest(dir); CodeOf(err) != tt.code {
				t.Errorf("ReadDirManifest: got %v, want %s", err, tt.code)
			}
		})
	}
}

func TestDirMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if err := ZipDir(missing, new(bytes.Buffer)); err == nil {
		t.Error("ZipDir of a missing folder succeeded")
	}
	if _, err := ReadDirManifest(missing); err == nil {
		t.Error("ReadDirManifest of a missing folder succeeded")
	}
}

func TestTreeHash(t *testing.T) {
	hashOf := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	a := File{Path: "a.js", SHA256: sha("a")}
	b := File{Path: "b/c.js", SHA256: sha("b")}
	tests := []struct {
		name  string
		files []File
		want  string
	}{
		{"empty", nil, hashOf("")},
		{"one", []File{a}, hashOf("a.js\x00" + a.SHA256 + "\n")},
		{"sorted", []File{a, b}, hashOf("a.js\x00" + a.SHA256 + "\nb/c.js\x00" + b.SHA256 + "\n")},
		{"unsorted input", []File{b, a}, hashOf("a.js\x00" + a.SHA256 + "\nb/c.js\x00" + b.SHA256 + "\n")},
		{"size is not hashed", []File{{Path: "a.js", SHA256: sha("a"), Size: 99}}, hashOf("a.js\x00" + a.SHA256 + "\n")},
	}
	for _, tt := range tests {
		if got := TreeHash(tt.files); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
	in := []File{b, a}
	TreeHash(in)
	if in[0] != b {
		t.Error("TreeHash reordered its input")
	}
}
