package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/testenv"
)

// stallingBlobs serves bundles half-way, then blocks until the reader's context
// ends: an ingest caught in the middle of copying the bundle.
type stallingBlobs struct {
	blob.Store
	reached chan struct{}
	once    sync.Once
}

func (s *stallingBlobs) Open(ctx context.Context, key string, off int64) (io.ReadCloser, blob.Info, error) {
	rc, info, err := s.Store.Open(ctx, key, off)
	if err != nil || !strings.HasPrefix(key, "bundles/") {
		return rc, info, err
	}
	half := io.LimitReader(rc, info.Size/2)
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(half, stall{ctx, s}), rc}, info, nil
}

type stall struct {
	ctx context.Context
	s   *stallingBlobs
}

func (st stall) Read([]byte) (int, error) {
	st.s.once.Do(func() { close(st.s.reached) })
	<-st.ctx.Done()
	return 0, st.ctx.Err()
}

// countLog counts the records whose message is msg.
type countLog struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (c *countLog) Enabled(context.Context, slog.Level) bool { return true }
func (c *countLog) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[r.Message]++
	return nil
}
func (c *countLog) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countLog) WithGroup(string) slog.Handler      { return c }
func (c *countLog) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[msg]
}

func logCounting(p *Pipeline) *countLog {
	c := &countLog{msgs: map[string]int{}}
	p.Log = slog.New(c)
	return c
}

// createUploaded creates version with data and uploads it to its key.
func createUploaded(t *testing.T, p *Pipeline, blobs blob.Store, version string, data []byte) release.Release {
	t.Helper()
	ctx := context.Background()
	r, _, err := p.Create(ctx, Input{AppID: "app", Version: version, SHA256: sign.SHA256Hex(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Put(ctx, r.BundleKey, bytes.NewReader(data), int64(len(data)), "application/zip"); err != nil {
		t.Fatal(err)
	}
	return r
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// An ingest canceled while it copies the bundle (a shutdown, a client gone) leaves
// nothing in the temp folder and gives its lease back: the next try runs at once.
func TestIngestCanceledHalfwayLeavesNothing(t *testing.T) {
	p, blobs := newPipeline(t)
	p.TempDir = t.TempDir()
	noise := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{7}).Read(noise)
	big := testenv.Zip(t, map[string]string{"index.html": "<html>", "big.bin": string(noise)})
	r := createUploaded(t, p, blobs, "1.0.0", big)
	stalling := &stallingBlobs{Store: blobs, reached: make(chan struct{})}
	p.Blobs = stalling
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Ingest(ctx, r.BundleKey) }()
	select {
	case <-stalling.reached:
	case err := <-done:
		t.Fatalf("ingest ended before the stall: %v", err)
	}
	during := dirEntries(t, p.TempDir)
	if len(during) != 2 || !strings.HasPrefix(during[0], jobPrefix) || !strings.Contains(during[1], "bundle-") {
		t.Fatalf("temp folder while ingesting: %v, want the job folder with the bundle copy", during)
	}
	if held, _ := p.Store.GetRelease(context.Background(), "app", "1.0.0"); held.IngestLease == nil {
		t.Fatal("no ingest lease while ingesting")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ingest: %v", err)
	}
	if left := dirEntries(t, p.TempDir); len(left) != 0 {
		t.Fatalf("temp folder after the canceled ingest: %v", left)
	}
	got, _ := p.Store.GetRelease(context.Background(), "app", "1.0.0")
	if got.Status != release.StatusPending || got.IngestLease != nil {
		t.Fatalf("after the canceled ingest: status %s, lease %+v; want pending, none", got.Status, got.IngestLease)
	}
	p.Blobs = blobs
	if err := p.Ingest(context.Background(), r.BundleKey); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Store.GetRelease(context.Background(), "app", "1.0.0"); got.Status != release.StatusReady {
		t.Fatalf("retry: %s", got.Status)
	}
	if left := dirEntries(t, p.TempDir); len(left) != 0 {
		t.Fatalf("temp folder after the retry: %v", left)
	}
}

// A worker that died holding the ingest lease (a killed process) blocks others
// until its lease expires, then the next call takes over. On an exclusive store
// (otad on its own database) a lease of an earlier run is void at once.
func TestIngestTakesOverDeadWorker(t *testing.T) {
	for _, exclusive := range []bool{false, true} {
		p, blobs := newPipeline(t)
		now := time.Now()
		var mu sync.Mutex
		p.Store = p.Store.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		z := testenv.Zip(t, map[string]string{"index.html": "<html>"})
		r := createUploaded(t, p, blobs, "1.0.0", z)

		dead := NewPipeline(p.Store, blobs, nil) // another process, gone after the claim
		if _, _, err := dead.claim(context.Background(), r, ingestLease, func(*release.Release) bool { return true }); err != nil {
			t.Fatal(err)
		}
		p.Exclusive = exclusive
		err := p.Ingest(context.Background(), r.BundleKey)
		if exclusive {
			if err != nil {
				t.Fatalf("exclusive: %v, want the earlier run's lease ignored", err)
			}
			continue
		}
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("lease held: %v, want ErrBusy", err)
		}
		mu.Lock()
		now = now.Add(DefaultLease + time.Second)
		mu.Unlock()
		if err := p.Ingest(context.Background(), r.BundleKey); err != nil {
			t.Fatalf("after the lease expired: %v", err)
		}
		if got, _ := p.Store.GetRelease(context.Background(), "app", "1.0.0"); got.Status != release.StatusReady || got.IngestLease != nil {
			t.Fatalf("after takeover: %+v", got)
		}
	}
}

// Concurrent identical creations draw one build number, and concurrent ingests
// and precomputations of one release do the work once.
func TestPublishWorkOnce(t *testing.T) {
	p, blobs := newPipeline(t)
	logs := logCounting(p)
	ctx := context.Background()
	if _, err := p.PublishBytes(ctx, Input{AppID: "app", Version: "1.0.0"}, testenv.Zip(t, map[string]string{"index.html": "<html>1", "a.js": "one"})); err != nil {
		t.Fatal(err)
	}
	z := testenv.Zip(t, map[string]string{"index.html": "<html>2", "a.js": "two"})
	in := Input{AppID: "app", Version: "1.0.1", SHA256: sign.SHA256Hex(z), Size: int64(len(z))}
	const n = 20
	var wg sync.WaitGroup
	var builds sync.Map
	var fails atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, up, err := p.Create(ctx, in)
			if err != nil || up == nil {
				t.Errorf("create: %v %v", up, err)
				fails.Add(1)
				return
			}
			builds.Store(r.BuildNumber, true)
		}()
	}
	wg.Wait()
	r, err := p.Store.GetRelease(ctx, "app", "1.0.1")
	if err != nil || r.BuildNumber != 2 {
		t.Fatalf("release: %+v %v", r, err)
	}
	if seq, err := p.Store.BumpSeq(ctx, "app", "build", 0); err != nil || seq != 2 {
		t.Errorf("build numbers drawn: %d %v, want 2", seq, err)
	}
	if err := blobs.Put(ctx, r.BundleKey, bytes.NewReader(z), int64(len(z)), "application/zip"); err != nil {
		t.Fatal(err)
	}
	var busy atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.Ingest(ctx, r.BundleKey)
			if errors.Is(err, ErrBusy) {
				busy.Add(1)
			} else if err != nil {
				t.Errorf("ingest: %v", err)
			}
			if err := p.Precompute(ctx, "app", "1.0.1"); err != nil {
				t.Errorf("precompute: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := p.Precompute(ctx, "app", "1.0.1"); err != nil { // a late duplicate
		t.Fatal(err)
	}
	r, _ = p.Store.GetRelease(ctx, "app", "1.0.1")
	if r.Status != release.StatusReady || r.PrecomputedAt.IsZero() || r.PrecomputeLease != nil {
		t.Fatalf("release after the work: %+v", r)
	}
	t.Logf("%d ingest calls: %d busy; release ready %d, precomputing %d, patches stored %d",
		n, busy.Load(), logs.count("release ready"), logs.count("precomputing patches"), logs.count("patch stored"))
	// 1.0.0's own "release ready" and precomputation (no base, no patch) count too.
	if logs.count("release ready") != 2 || logs.count("precomputing patches") != 2 || logs.count("patch stored") != 2 {
		t.Errorf("release ready %d, precomputing %d, patches stored %d; want 2, 2, 2 (1 and 1 for 1.0.1, 2 kinds of patch)",
			logs.count("release ready"), logs.count("precomputing patches"), logs.count("patch stored"))
	}
}

// SweepTemp with age 0 empties the folder; with an age it keeps entries in use.
func TestSweepTemp(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"job-1/bundle-1.zip", "job-2/patch-2.bin", "put-3"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := SweepTemp(dir, time.Hour); err != nil || n != 0 {
		t.Fatalf("fresh entries swept: %d %v", n, err)
	}
	if n, err := SweepTemp(dir, 0); err != nil || n != 3 || len(dirEntries(t, dir)) != 0 {
		t.Fatalf("sweep all: %d %v, left %v", n, err, dirEntries(t, dir))
	}
	if n, err := SweepTemp(filepath.Join(dir, "missing"), 0); err != nil || n != 0 {
		t.Fatalf("missing folder: %d %v", n, err)
	}
}
