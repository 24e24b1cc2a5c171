package bundle

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// badFixtures maps every file in testdata/bad to the code Inspect must give.
var badFixtures = map[string]string{
	"absolute.zip":            CodePathAbsolute,
	"backslash.zip":           CodePathInvalid,
	"bomb_ratio.zip":          CodeCompressionRatio,
	"drive_letter.zip":        CodePathAbsolute,
	"duplicate.zip":           CodeDuplicatePath,
	"duplicate_case.zip":      CodeDuplicatePath,
	"duplicate_dot.zip":       CodeDuplicatePath,
	"empty.zip":               CodeZipEmpty,
	"empty_segment.zip":       CodePathInvalid,
	"encrypted.zip":           CodeEncryptedEntry,
	"file_dir_clash.zip":      CodeDuplicatePath,
	"local_name_mismatch.zip": CodeZipInvalid,
	"lying_size.zip":          CodeZipInvalid,
	"macosx_bomb.zip":         CodeCompressionRatio,
	"macosx_slip.zip":         CodePathTraversal,
	"no_index.zip":            CodeNoIndexHTML,
	"not_a_zip.zip":           CodeZipInvalid,
	"nul_byte.zip":            CodePathInvalid,
	"only_folders.zip":        CodeZipEmpty,
	"overlap.zip":             CodeZipInvalid,
	"symlink.zip":             CodeSymlink,
	"trailing_data.zip":       CodeZipInvalid,
	"truncated.zip":           CodeZipInvalid,
	"two_tops.zip":            CodeNoIndexHTML,
	"unsupported_method.zip":  CodeZipInvalid,
	"zip_slip.zip":            CodePathTraversal,
}

func TestInspectBadFixtures(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(badFixtures) {
		t.Errorf("testdata/bad has %d files, the table %d: keep them in step", len(names), len(badFixtures))
	}
	for _, full := range names {
		name := filepath.Base(full)
		t.Run(name, func(t *testing.T) {
			want, ok := badFixtures[name]
			if !ok {
				t.Fatalf("no expected code for %s", name)
			}
			m, err := inspectBytes(readFixture(t, "bad", name), DefaultLimits())
			if got := CodeOf(err); got != want {
				t.Fatalf("code %q (%v), want %q", got, err, want)
			}
			if m != nil {
				t.Errorf("manifest returned with error")
			}
		})
	}
}

const fixtureIndex = "<!doctype html><title>app</title><script src=\"js/app.js\"></script>\n"

func TestInspectGoodFixtures(t *testing.T) {
	tests := []struct {
		name     string
		root     string
		files    []File
		treeHash string // golden: guards the TreeHash format
	}{
		{
			name: "flat.zip",
			files: []File{
				fileOf("css/app.css", "body{margin:0}\n"),
				fileOf("index.html", fixtureIndex),
				fileOf("js/app.js", "console.log('hello')\n"),
			},
			treeHash: "e1348eb2f0a8fcb862f39153d6e7942b0695df41e551c9b64e161f06b84cdaaa",
		},
		{
			name: "top_folder.zip",
			root: "dist",
			files: []File{
				fileOf("index.html", fixtureIndex),
				fileOf("js/app.js", "console.log('hello')\n"),
			},
			treeHash: "f19c8a3c8e69db00d8752c5304a3482854e3a265a396243091a7e5619c6166eb",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := inspectBytes(readFixture(t, "good", tt.name), DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			want := &Manifest{Files: tt.files, TreeHash: tt.treeHash, Root: tt.root}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("manifest\n got %+v\nwant %+v", m, want)
			}
		})
	}
}

func TestInspectLimits(t *testing.T) {
	index := zentry{name: "index.html", data: "<p>hi</p>", method: zip.Deflate}
	app := zentry{name: "app.js", data: strings.Repeat("x", 1000), method: zip.Store}
	zeros := zentry{name: "zeros.bin", data: string(make([]byte, 2<<20)), method: zip.Deflate}
	small := zentry{name: "small.bin", data: string(make([]byte, 64<<10)), method: zip.Deflate}
	tests := []struct {
		name    string
		entries []zentry
		lim     Limits
		code    string
	}{
		{"within defaults", []zentry{index, app}, Limits{}, ""},
		{"too many entries", []zentry{index, app}, Limits{MaxEntries: 1}, CodeTooManyEntries},
		{"folder entries count", []zentry{{name: "js/"}, index}, Limits{MaxEntries: 1}, CodeTooManyEntries},
		{"file too large", []zentry{index, app}, Limits{MaxFile: 999}, CodeFileTooLarge},
		{"file at the limit", []zentry{index, app}, Limits{MaxFile: 1000}, ""},
		{"total too large", []zentry{index, app}, Limits{MaxTotal: 1005}, CodeTooLarge},
		{"entry ratio", []zentry{index, zeros}, Limits{}, CodeCompressionRatio},
		{"entry ratio raised", []zentry{index, zeros}, Limits{MaxRatio: 2000}, ""},
		{"small files may exceed the ratio", []zentry{index, small}, Limits{}, ""},
		{"unix folder without slash", []zentry{index, {name: "js", mode: fs.ModeDir | 0o755}}, Limits{}, CodeZipInvalid},
		{"fifo", []zentry{index, {name: "pipe", mode: fs.ModeNamedPipe | 0o644}}, Limits{}, CodeSymlink},
		{"only litter", []zentry{{name: ".DS_Store", data: "x"}, {name: "__MACOSX/._a", data: "y"}}, Limits{}, CodeZipEmpty},
		{"index.html is a folder", []zentry{{name: "index.html/"}, app}, Limits{}, CodeNoIndexHTML},
		{"file beside top folder", []zentry{{name: "dist/index.html", data: "x"}, app}, Limits{}, CodeNoIndexHTML},
		{"nested two deep", []zentry{{name: "a/b/index.html", data: "x"}}, Limits{}, CodeNoIndexHTML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inspectBytes(zipOf(t, tt.entries...), tt.lim)
			if got := CodeOf(err); got != tt.code {
				t.Errorf("code %q (%v), want %q", got, err, tt.code)
			}
		})
	}
}

// The overall ratio uses the archive's size, so many modest entries cannot
// add up to a bomb.
func TestInspectOverallRatio(t *testing.T) {
	entries := []zentry{{name: "index.html", data: "x", method: zip.Deflate}}
	for i := range 8 {
		entries = append(entries, zentry{name: fmt.Sprintf("z%d.bin", i), data: string(make([]byte, 512<<10)), method: zip.Deflate})
	}
	_, err := inspectBytes(zipOf(t, entries...), Limits{})
	if got := CodeOf(err); got != CodeCompressionRatio {
		t.Errorf("code %q (%v), want %q", got, err, CodeCompressionRatio)
	}
}

func TestInspectZip64(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 65536-entry archive")
	}
	// archive/zip switches to zip64 end records at 65535 entries.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 65536 {
		name := fmt.Sprintf("f/%d", i)
		if i == 0 {
			name = "index.html"
		}
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if !bytes.Contains(b[len(b)-200:], []byte("PK\x06\x06")) {
		t.Fatal("expected a zip64 end record")
	}
	m, err := inspectBytes(b, Limits{MaxEntries: 70000})
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.IsSortedFunc(m.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	if len(m.Files) != 65536 || !sorted {
		t.Errorf("got %d files, sorted %v; want 65536 sorted", len(m.Files), sorted)
	}
}

func TestInspectNegativeSize(t *testing.T) {
	if _, err := Inspect(bytes.NewReader(nil), -1, Limits{}); CodeOf(err) != CodeZipInvalid {
		t.Errorf("got %v, want zip_invalid", err)
	}
}

// TestFixturesSmall keeps the committed fixtures small (go run ./testdata/gen
// refuses to write larger ones too).
func TestFixturesSmall(t *testing.T) {
	for _, set := range []string{"bad", "good"} {
		entries, err := os.ReadDir(filepath.Join("..", "..", "testdata", set))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.Size() >= 50<<10 {
				t.Errorf("%s/%s is %d bytes, keep fixtures under 50 KiB", set, e.Name(), info.Size())
			}
		}
	}
}
