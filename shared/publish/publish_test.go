package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/testenv"
	"github.com/otakit/ota/shared/urlsign"
)

// flakyBlobs fails every Put after the first okPuts, like a process dying mid-ingest.
type flakyBlobs struct {
	blob.Store
	okPuts int64
	puts   atomic.Int64
}

var errInjected = errors.New("injected failure")

func (f *flakyBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	if f.puts.Add(1) > f.okPuts {
		return errInjected
	}
	return f.Store.Put(ctx, key, r, size, ct)
}

func newPipeline(t *testing.T) (*Pipeline, *blob.Local) {
	t.Helper()
	dir := t.TempDir()
	tbl, err := bolt.Open(filepath.Join(dir, "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(tbl)
	t.Cleanup(func() { st.Close() })
	signer, _ := urlsign.New(bytes.Repeat([]byte("x"), 32))
	blobs, err := blob.NewLocal(filepath.Join(dir, "o"), signer, "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApp(context.Background(), release.App{ID: "app", DefaultChannel: "production", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return NewPipeline(st, blobs, nil), blobs
}

// TestCrashHalfwayThenRetry: an ingest that dies after storing some files leaves the
// release pending (invisible); the retried event finishes it.
func TestCrashHalfwayThenRetry(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	z := testenv.Zip(t, map[string]string{"index.html": "<html>", "a.js": "a", "b.js": "b", "c.css": "c"})
	in := Input{AppID: "app", Version: "1.0.0", SHA256: sign.SHA256Hex(z), Size: int64(len(z))}
	created, _, err := p.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	key := blob.BundleKey("app", "1.0.0", created.BundleKey)
	if err := blobs.Put(ctx, key, bytes.NewReader(z), int64(len(z)), "application/zip"); err != nil {
		t.Fatal(err)
	}
	p.Blobs = &flakyBlobs{Store: blobs, okPuts: 2}
	if err := p.Ingest(ctx, key); !errors.Is(err, errInjected) {
		t.Fatalf("ingest with failing storage: %v", err)
	}
	r, _ := p.Store.GetRelease(ctx, "app", "1.0.0")
	if r.Status != release.StatusPending {
		t.Fatalf("after a crash the release is %s, want pending", r.Status)
	}
	p.Blobs = blobs
	if err := p.Ingest(ctx, key); err != nil {
		t.Fatal(err)
	}
	r, _ = p.Store.GetRelease(ctx, "app", "1.0.0")
	if r.Status != release.StatusReady || r.Files != 4 {
		t.Fatalf("after retry: %+v", r)
	}
}

func TestIngestRejects(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	cases := []struct {
		name, code string
		declared   []byte
		uploaded   []byte
	}{
		{"not a zip", "zip_invalid", []byte("hello, not a zip"), []byte("hello, not a zip")},
		{"no index.html", "no_index_html", testenv.Zip(t, map[string]string{"app.js": "x"}), testenv.Zip(t, map[string]string{"app.js": "x"})},
		{"other bytes", "checksum_mismatch", testenv.Zip(t, map[string]string{"index.html": "1"}), testenv.Zip(t, map[string]string{"index.html": "2"})},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := "1.0." + string(rune('0'+i))
			created, _, err := p.Create(ctx, Input{AppID: "app", Version: v, SHA256: sign.SHA256Hex(tc.declared), Size: int64(len(tc.declared))})
			if err != nil {
				t.Fatal(err)
			}
			key := blob.BundleKey("app", v, created.BundleKey)
			blobs.Put(ctx, key, bytes.NewReader(tc.uploaded), int64(len(tc.uploaded)), "")
			var pe *Error
			if err := p.Ingest(ctx, key); !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("ingest: %v, want code %s", err, tc.code)
			}
			r, _ := p.Store.GetRelease(ctx, "app", v)
			if r.Status != release.StatusFailed || !strings.HasPrefix(r.Error, tc.code) {
				t.Fatalf("release: %+v", r)
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	p, _ := newPipeline(t)
	ctx := context.Background()
	good := strings.Repeat("a", 64)
	cases := []struct {
		in   Input
		code string
	}{
		{Input{AppID: "app", Version: "../x", SHA256: good, Size: 1}, "invalid_version"},
		{Input{AppID: "app", Version: "latest", SHA256: good, Size: 1}, "invalid_version"},
		{Input{AppID: "app", Version: "1.0.0", SHA256: "ABC", Size: 1}, "invalid_sha256"},
		{Input{AppID: "app", Version: "1.0.0", SHA256: good, Size: 0}, "invalid_size"},
		{Input{AppID: "app", Version: "1.0.0", SHA256: good, Size: 1, MinNative: "soon"}, "invalid_min_native"},
		{Input{AppID: "nope", Version: "1.0.0", SHA256: good, Size: 1}, "app_not_found"},
		{Input{AppID: "app", Version: "1.0.0", SHA256: good, Size: 1, Signatures: release.Signatures{SessionKey: "x"}}, "incomplete_encryption"},
	}
	for _, tc := range cases {
		var pe *Error
		if _, _, err := p.Create(ctx, tc.in); !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%+v: %v, want %s", tc.in, err, tc.code)
		}
	}
	rels, _ := p.Store.ListReleases(ctx, "app")
	if len(rels) != 0 {
		t.Fatalf("refused input wrote %d releases", len(rels))
	}
}

func TestCreateIsIdempotentAndVersionsImmutable(t *testing.T) {
	p, _ := newPipeline(t)
	ctx := context.Background()
	z := testenv.Zip(t, map[string]string{"index.html": "x"})
	in := Input{AppID: "app", Version: "1.0.0"}
	r, err := p.PublishBytes(ctx, in, z)
	if err != nil || r.Status != release.StatusReady {
		t.Fatalf("publish: %+v %v", r, err)
	}
	if _, err := p.PublishBytes(ctx, in, z); err != nil {
		t.Fatalf("same bytes again: %v", err)
	}
	var pe *Error
	if _, err := p.PublishBytes(ctx, in, testenv.Zip(t, map[string]string{"index.html": "y"})); !errors.As(err, &pe) || pe.Code != "version_exists" {
		t.Fatalf("other bytes: %v", err)
	}
	r2, _ := p.PublishBytes(ctx, Input{AppID: "app", Version: "1.0.1", BuildNumber: 40}, testenv.Zip(t, map[string]string{"index.html": "z"}))
	r3, _ := p.PublishBytes(ctx, Input{AppID: "app", Version: "1.0.2"}, testenv.Zip(t, map[string]string{"index.html": "w"}))
	if r2.BuildNumber != 40 || r3.BuildNumber != 41 {
		t.Fatalf("build numbers %d, %d: want 40 then 41 (highest + 1)", r2.BuildNumber, r3.BuildNumber)
	}
}
