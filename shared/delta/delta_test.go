package delta

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

type tree map[string]string

func (t tree) fs() fstest.MapFS {
	m := fstest.MapFS{}
	for p, c := range t {
		m[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	return m
}

func randText(r *rand.Rand, n int) string {
	words := []string{"function", "return", "const", "import", "export", "default", "=>", "{", "}", "(", ")", ";", "\n", "this", "value", "props", "useState", "render", "0", "1", "null"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.Intn(len(words))])
		b.WriteByte(' ')
		if r.Intn(20) == 0 {
			fmt.Fprintf(&b, "v%d", r.Intn(100000))
		}
	}
	return b.String()
}

func randBinary(r *rand.Rand, n int) string {
	b := make([]byte, n)
	r.Read(b)
	return string(b)
}

// roundTrip creates a patch from old to new, applies it and compares.
func roundTrip(t *testing.T, old, new tree) []byte {
	t.Helper()
	var buf bytes.Buffer
	st, err := Create(context.Background(), old.fs(), new.fs(), &buf, Options{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if st.PatchSize != int64(buf.Len()) || st.Files != len(new) {
		t.Fatalf("stats %+v, patch %d bytes", st, buf.Len())
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Apply(context.Background(), old.fs(), bytes.NewReader(buf.Bytes()), out); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := readDir(t, out)
	if len(got) != len(new) {
		t.Fatalf("got %d files, want %d", len(got), len(new))
	}
	for p, c := range new {
		if got[p] != c {
			t.Fatalf("%s differs (%d bytes, want %d)", p, len(got[p]), len(c))
		}
	}
	h, err := ReadHeader(bytes.NewReader(buf.Bytes()))
	if err != nil || h.Files != len(new) || h.NewTreeHash != st.NewTreeHash || h.OldTreeHash != st.OldTreeHash {
		t.Fatalf("header %+v %v", h, err)
	}
	return buf.Bytes()
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sampleTrees() (tree, tree) {
	r := rand.New(rand.NewSource(42))
	vendor := randText(r, 40000)
	app := randText(r, 8000)
	logo := randBinary(r, 3000)
	old := tree{
		"index.html":                `<script src="assets/index-3f2a9c1b.js"></script>`,
		"assets/index-3f2a9c1b.js":  app + `import "./vendor-Bx12_kq9.js"`,
		"assets/vendor-Bx12_kq9.js": vendor,
		"assets/chunk.BvX3_kq.js":   randText(r, 3000),
		"assets/logo.png":           logo,
		"assets/old/removed.txt":    "gone in the new version",
		"deep/a/b/c/d.json":         `{"a":1}`,
		"empty.txt":                 "",
		"moved/data.bin":            randBinary(r, 5000),
		"same.css":                  "body{margin:0}",
	}
	newVendor := vendor[:20000] + "/* patched */" + vendor[20000:]
	new := tree{
		"index.html":                `<script src="assets/index-9be04d77.js"></script>`,
		"assets/index-9be04d77.js":  app[:4000] + "console.log(1);" + app[4000:] + `import "./vendor-CxZ9-aa1.js"`,
		"assets/vendor-CxZ9-aa1.js": newVendor,
		"assets/chunk.Qm7Y_pz.js":   old["assets/chunk.BvX3_kq.js"][100:] + "more",
		"assets/logo.png":           logo,
		"assets/img/logo-copy.png":  logo,
		"deep/a/b/c/d.json":         `{"a":2}`,
		"deep/new/file.txt":         "brand new",
		"empty.txt":                 "",
		"other-empty":               "",
		"renamed/data.bin":          old["moved/data.bin"],
		"same.css":                  "body{margin:0}",
		"bin/random.dat":            randBinary(r, 4000),
	}
	return old, new
}

func TestRoundTrip(t *testing.T) {
	old, new := sampleTrees()
	patch := roundTrip(t, old, new)
	if len(patch) > 6000 {
		t.Errorf("patch is %d bytes, expected the references to be found", len(patch))
	}
}

func TestRoundTripCases(t *testing.T) {
	old, new := sampleTrees()
	cases := map[string][2]tree{
		"identical":       {old, old},
		"empty old":       {tree{}, new},
		"empty new":       {old, tree{}},
		"both empty":      {tree{}, tree{}},
		"only deletions":  {old, tree{"index.html": old["index.html"]}},
		"only empty file": {tree{"a": "x"}, tree{"a": ""}},
		"reverse":         {new, old},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { roundTrip(t, c[0], c[1]) })
	}
}

func TestIdenticalTreeIsSmall(t *testing.T) {
	old, _ := sampleTrees()
	if p := roundTrip(t, old, old); len(p) > 100 {
		t.Errorf("identical trees: %d byte patch", len(p))
	}
}

func TestRandomTrees(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 20; i++ {
		old, new := tree{}, tree{}
		for j := 0; j < r.Intn(30); j++ {
			old[fmt.Sprintf("d%d/f%d-%x.js", r.Intn(3), j, r.Int31())] = randText(r, r.Intn(3000))
		}
		for p, c := range old {
			switch r.Intn(4) {
			case 0: // deleted
			case 1:
				new[p] = c
			case 2:
				new[p+".renamed"] = c
			default:
				if len(c) > 10 {
					k := r.Intn(len(c))
					new[p] = c[:k] + randText(r, 20) + c[k:]
				} else {
					new[p] = c + "x"
				}
			}
		}
		new["x/bin"] = randBinary(r, r.Intn(2000))
		roundTrip(t, old, new)
	}
}

func TestZipTree(t *testing.T) {
	old, new := sampleTrees()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for p, c := range old {
		w, _ := zw.Create(p)
		w.Write([]byte(c))
	}
	zw.Close()
	zr, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Create(context.Background(), zr, new.fs(), &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Apply(context.Background(), zr, &buf, out); err != nil {
		t.Fatal(err)
	}
	if got := readDir(t, out); got["assets/vendor-CxZ9-aa1.js"] != new["assets/vendor-CxZ9-aa1.js"] {
		t.Fatal("zip round trip differs")
	}
}

func TestWrongOldTree(t *testing.T) {
	old, new := sampleTrees()
	var buf bytes.Buffer
	if _, err := Create(context.Background(), old.fs(), new.fs(), &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	other := tree{}
	for p, c := range old {
		other[p] = c
	}
	other["same.css"] = "body{margin:1}"
	out := filepath.Join(t.TempDir(), "out")
	err := Apply(context.Background(), other.fs(), bytes.NewReader(buf.Bytes()), out)
	if !errors.Is(err, ErrOldTree) || !strings.Contains(err.Error(), "old tree hash mismatch") {
		t.Fatalf("want old tree hash mismatch, got %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("output folder exists after a failed apply")
	}
}

func TestTamperedPatch(t *testing.T) {
	old, new := sampleTrees()
	var buf bytes.Buffer
	if _, err := Create(context.Background(), old.fs(), new.fs(), &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	dir := t.TempDir()
	accepted := 0
	for i := 6; i < len(good); i += 1 + len(good)/97 {
		for _, flip := range []byte{0x01, 0x80} {
			bad := append([]byte(nil), good...)
			bad[i] ^= flip
			out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", i, flip))
			if err := Apply(context.Background(), old.fs(), bytes.NewReader(bad), out); err == nil {
				// Only possible where the byte does not matter (the range
				// coder's last flushed bytes): the result was verified.
				if got := readDir(t, out); len(got) != len(new) || got["assets/vendor-CxZ9-aa1.js"] != new["assets/vendor-CxZ9-aa1.js"] {
					t.Fatalf("tampered byte %d accepted with a wrong result", i)
				}
				accepted++
				os.RemoveAll(out)
				continue
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("tampered byte %d left %s behind", i, out)
			}
		}
	}
	if accepted > 4 {
		t.Errorf("%d tampered patches accepted", accepted)
	}
	// truncated and extended
	for _, bad := range [][]byte{good[:len(good)-1], good[:len(good)/2], append(append([]byte(nil), good...), 0)} {
		out := filepath.Join(dir, "out-trunc")
		if err := Apply(context.Background(), old.fs(), bytes.NewReader(bad), out); err == nil {
			t.Fatal("truncated or extended patch accepted")
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestOutDirRules(t *testing.T) {
	old, new := sampleTrees()
	var buf bytes.Buffer
	if _, err := Create(context.Background(), old.fs(), new.fs(), &buf, Options{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	if err := Apply(context.Background(), old.fs(), bytes.NewReader(buf.Bytes()), full); err == nil {
		t.Fatal("non-empty output folder accepted")
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	if err := Apply(context.Background(), old.fs(), bytes.NewReader(buf.Bytes()), empty); err != nil {
		t.Fatalf("empty output folder: %v", err)
	}
}

func TestTreeHash(t *testing.T) {
	// sha256 over "path\x00sha256hex(content)\n" lines, sorted.
	files, err := walkTree(tree{"b/x": "1", "a": ""}.fs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := treeHash(files)
	lines := "a\x00e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
		"b/x\x006b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b\n"
	if exp := sha256hex([]byte(lines)); got != exp {
		t.Fatalf("tree hash %s, want %s", got, exp)
	}
}

func FuzzApply(f *testing.F) {
	old, new := sampleTrees()
	var buf bytes.Buffer
	if _, err := Create(context.Background(), old.fs(), new.fs(), &buf, Options{}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("OTAP"))
	f.Add([]byte{})
	oldFS := old.fs()
	f.Fuzz(func(t *testing.T, patch []byte) {
		out := filepath.Join(t.TempDir(), "out")
		_ = Apply(context.Background(), oldFS, bytes.NewReader(patch), out)
	})
}

func FuzzLZDecode(f *testing.F) {
	f.Add([]byte("hello"), []byte{0, 1, 2, 3, 4, 5, 6, 7}, 100)
	f.Fuzz(func(t *testing.T, dict, in []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		_, _ = lzDecompress(defaultLC, dict, in, n)
	})
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
