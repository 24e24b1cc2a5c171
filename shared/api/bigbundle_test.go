package api

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// bigBundleSize is the incompressible file of TestBigBundlePublishDoesNotWaitForPatches:
// the size that made otad's upload request hang for 15 minutes at 2.4 GB RSS while it
// computed a patch inline.
const bigBundleSize = 150 << 20

// writeBigZip writes a stored (not deflated: the content is random) zip of index.html
// and big.bin, n pseudo-random bytes from a fixed seed with the byte at flip (if >= 0)
// inverted, and returns its path, size and SHA-256. Nothing of it is held in memory.
func writeBigZip(t *testing.T, dir, name string, n, flip int64) (string, int64, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	zw := zip.NewWriter(io.MultiWriter(f, h))
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "index.html", Method: zip.Store})
	if err == nil {
		_, err = io.WriteString(w, "<html>big</html>")
	}
	if err == nil {
		w, err = zw.CreateHeader(&zip.FileHeader{Name: "big.bin", Method: zip.Store})
	}
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{42}))
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), n-off)]
		for i := 0; i < len(chunk); i += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && i+k < len(chunk); k++ {
				chunk[i+k] = byte(v >> (8 * k))
			}
		}
		if flip >= off && flip < off+int64(len(chunk)) {
			chunk[flip-off] ^= 0xff
		}
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return p, st.Size(), hex.EncodeToString(h.Sum(nil))
}

// skipLog records the reasons of "patch skipped" log lines.
type skipLog struct {
	slog.Handler
	mu      sync.Mutex
	reasons []string
}

func (l *skipLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *skipLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "patch skipped" && r.Level == slog.LevelInfo {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" {
				l.mu.Lock()
				l.reasons = append(l.reasons, a.Value.String())
				l.mu.Unlock()
			}
			return true
		})
	}
	return nil
}

func (l *skipLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reasons...)
}

// A 150 MB incompressible bundle, then the same with one byte changed, are both
// ready when their upload request answers, although no patch work could run before:
// a job holds the one background slot the whole time. Once it is let go, the pairs
// over the budget are skipped with their reason logged.
func TestBigBundlePublishDoesNotWaitForPatches(t *testing.T) {
	if testing.Short() {
		t.Skip("150 MB bundle: skipped in -short mode")
	}
	e := newTestEnv(t)
	skips := &skipLog{Handler: slog.DiscardHandler}
	e.pipe.Log = slog.New(skips)
	e.pipe.TempDir = t.TempDir()
	const app = "com.example.big"
	e.createApp(app)
	ctx := context.Background()

	hold, held := make(chan struct{}), make(chan struct{})
	if err := e.srv.patchJobs.start(context.Background(), "test/hold", func(context.Context) { close(held); <-hold }); err != nil {
		t.Fatal(err)
	}
	<-held
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()

	dir := t.TempDir()
	for i, v := range []string{"1.0.0", "1.0.1"} {
		flip := int64(-1)
		if i == 1 {
			flip = bigBundleSize / 2
		}
		path, size, sum := writeBigZip(t, dir, v+".zip", bigBundleSize, flip)
		_, up, err := e.pipe.Create(ctx, publish.Input{AppID: app, Version: v, SHA256: sum, Size: size})
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(up.Method, up.URL, f)
		req.ContentLength = size
		for k, v := range up.Headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("upload %s: HTTP %d", v, resp.StatusCode)
		}
		os.Remove(path)
		if r, err := e.store.GetRelease(ctx, app, v); err != nil || r.Status != release.StatusReady {
			t.Fatalf("release %s when its upload answered: %+v %v", v, r, err)
		}
	}
	// Nothing was precomputed before the answers: the slot was held throughout.
	if got := skips.got(); len(got) != 0 {
		t.Fatalf("patch work ran inside the upload request: %q", got)
	}
	for _, kind := range []string{publish.KindTree, publish.KindFlux} {
		if _, err := e.store.GetPatch(ctx, app, kind, "1.0.0", "1.0.1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s patch before the background work: %v", kind, err)
		}
	}

	close(hold)
	released = true
	e.srv.patchJobs.wait()
	got := skips.got()
	want := []string{"changed file of 150.0 MiB over the 32.0 MiB cap", "flux patches hold both bundles in memory: 150.0 MiB over the 64.0 MiB cap"}
	if len(got) != len(want) {
		t.Fatalf("skips logged %q, want %q", got, want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("skip %d: %q, want %q", i, got[i], want[i])
		}
	}
	if left, _ := os.ReadDir(e.pipe.TempDir); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}
