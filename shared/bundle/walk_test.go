package bundle

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

func TestWalkFixtures(t *testing.T) {
	for _, name := range []string{"flat.zip", "top_folder.zip"} {
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, "good", name)
			m, err := inspectBytes(b, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			var got []File
			err = Walk(bytes.NewReader(b), int64(len(b)), m, func(f File, rd io.Reader) error {
				data, err := io.ReadAll(rd)
				if err != nil {
					return err
				}
				got = append(got, File{Path: f.Path, SHA256: sha(string(data)), Size: int64(len(data))})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(m.Files) {
				t.Fatalf("walked %d files, manifest has %d", len(got), len(m.Files))
			}
			for i := range got {
				if got[i] != m.Files[i] {
					t.Errorf("file %d: got %+v, want %+v", i, got[i], m.Files[i])
				}
			}
		})
	}
}

// lyingZip holds index.html whose header declares the 9 bytes of "<p>hi</p>"
// while its deflate stream inflates to 1 MiB.
func lyingZip(t *testing.T) []byte {
	t.Helper()
	var stream bytes.Buffer
	fw, _ := flate.NewWriter(&stream, flate.BestCompression)
	fw.Write(bytes.Repeat([]byte("x"), 1<<20))
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "index.html", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE([]byte("<p>hi</p>")),
		CompressedSize64: uint64(stream.Len()), UncompressedSize64: 9,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(stream.Bytes())
	zw.Close()
	return buf.Bytes()
}

func TestWalkRejects(t *testing.T) {
	good := zipOf(t, zentry{name: "index.html", data: "<p>hi</p>", method: zip.Deflate})
	goodManifest := &Manifest{Files: []File{fileOf("index.html", "<p>hi</p>")}}
	tests := []struct {
		name string
		zip  []byte
		m    *Manifest
	}{
		{"header lies about size", lyingZip(t), goodManifest},
		{"same size, other bytes", zipOf(t, zentry{name: "index.html", data: "<p>HI</p>", method: zip.Deflate}), goodManifest},
		{"manifest size too small", good, &Manifest{Files: []File{{Path: "index.html", SHA256: sha("<p>hi</p>"), Size: 4}}}},
		{"manifest size too large", good, &Manifest{Files: []File{{Path: "index.html", SHA256: sha("<p>hi</p>"), Size: 10}}}},
		{"file missing from zip", good, &Manifest{Files: []File{fileOf("app.js", "x")}}},
		{"root missing from zip", good, &Manifest{Files: goodManifest.Files, Root: "dist"}},
	}
	for _, tt := range tests {
		for _, mode := range []string{"read all", "read nothing"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var handed int64
				err := Walk(bytes.NewReader(tt.zip), int64(len(tt.zip)), tt.m, func(f File, rd io.Reader) error {
					if mode == "read nothing" {
						return nil
					}
					n, err := io.Copy(io.Discard, rd)
					handed += n
					return err
				})
				if CodeOf(err) != CodeZipInvalid {
					t.Errorf("got %v, want zip_invalid", err)
				}
				if limit := tt.m.Files[0].Size; handed > limit {
					t.Errorf("fn received %d bytes, more than the %d in the manifest", handed, limit)
				}
			})
		}
	}
}

func TestWalkReturnsFnError(t *testing.T) {
	b := readFixture(t, "good", "flat.zip")
	m, err := inspectBytes(b, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	err = Walk(bytes.NewReader(b), int64(len(b)), m, func(File, io.Reader) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("got %v after %d calls, want stop after 1", err, calls)
	}
	if err := Walk(bytes.NewReader(b), int64(len(b)), nil, nil); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("nil manifest: got %v", err)
	}
}
