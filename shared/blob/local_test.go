package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/urlsign"
)

func newLocal(t *testing.T) (*Local, string) {
	t.Helper()
	dir := t.TempDir()
	signer, err := urlsign.New(bytes.Repeat([]byte("s"), 32))
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLocal(dir, signer, "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

// failingReader returns some bytes, then an error (a client that went away).
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

// Uploads that fail (cut short, wrong bytes) leave no temp file and no object.
func TestReceiveUploadFailuresLeaveNothing(t *testing.T) {
	l, dir := newLocal(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("bundle"), 100000)
	sum := "5f" + strings.Repeat("0", 62) // not the bytes' checksum
	key := BundleKey("app", "1.0.0", "")
	for name, body := range map[string]io.Reader{
		"cut short":   &failingReader{n: len(data) / 2},
		"other bytes": bytes.NewReader(data),
	} {
		up, err := l.PresignPut(ctx, key, sum, int64(len(data)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		path, query, _ := strings.Cut(strings.TrimPrefix(up.URL, "http://127.0.0.1"), "?")
		q := map[string][]string{}
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			q[k] = append(q[k], v)
		}
		if _, err := l.ReceiveUpload(ctx, path, q, body); err == nil {
			t.Fatalf("%s: upload accepted", name)
		}
		if left, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(left) != 0 {
			t.Errorf("%s: temp files left: %v", name, left)
		}
		if _, err := l.Stat(ctx, key); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: object stored: %v", name, err)
		}
	}
}

// SweepTemp removes only upload temp files older than the age given.
func TestSweepTemp(t *testing.T) {
	l, dir := newLocal(t)
	tmp := filepath.Join(dir, ".tmp")
	old := time.Now().Add(-2 * time.Hour)
	for name, mtime := range map[string]time.Time{"put-old": old, "put-new": time.Now(), "other-old": old} {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	n, err := l.SweepTemp(time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("SweepTemp = %d, %v; want 1", n, err)
	}
	var left []string
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, ",") != "other-old,put-new" {
		t.Errorf("left %q", left)
	}
}
