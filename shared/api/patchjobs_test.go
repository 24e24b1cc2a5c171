package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/fluxpatch"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/store"
)

// A pair that was not precomputed: 404 at once (the Flux client falls back to the
// full chunk), then, after the background work, 200 with a valid patch.
func TestFluxMissingPatchComputedInBackground(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	e.pipe.PatchBases = 0 // nothing precomputed
	e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	ctx := context.Background()
	if _, err := e.store.GetPatch(ctx, "com.example.notes", publish.KindFlux, "1.0.0", "1.1.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("patch precomputed with PatchBases 0: %v", err)
	}
	path := "/flux/patches/com.example.notes/1.0.0/1.1.0"
	st, m, _ := e.fluxGet(path)
	if st != 404 || m["error"] != "Patch not found: com.example.notes:1.0.0:1.1.0" {
		t.Fatalf("first request: %d %v", st, m)
	}
	e.srv.patchJobs.wait()
	st, h, p := e.do("GET", path, nil)
	if st != 200 || h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("after the background work: %d %v", st, h)
	}
	if got, err := fluxClientApply(t, fluxOld, p); err != nil || !bytes.Equal(got, fluxNew) {
		t.Fatalf("client apply: %v", err)
	}
	if got, err := fluxpatch.Apply(fluxOld, p); err != nil || !bytes.Equal(got, fluxNew) {
		t.Fatalf("fluxpatch.Apply: %v", err)
	}
	if keys, _ := e.blobs.List(ctx, publish.PatchRequestPrefix); len(keys) != 0 {
		t.Errorf("markers left: %q", keys)
	}
	// Unknown pairs request nothing.
	e.fluxGet("/flux/patches/com.example.notes/1.0.0/9.9.9")
	e.fluxGet("/flux/patches/com.example.notes/1.0.0/1.0.0")
	e.srv.patchJobs.wait()
	if keys, _ := e.blobs.List(ctx, publish.PatchRequestPrefix); len(keys) != 0 {
		t.Errorf("markers for unknown pairs: %q", keys)
	}
}

// Without in-process patches (the check Lambda) a missing patch only leaves its
// marker; the patch function (here called directly, as s3event does) computes it.
func TestFluxMissingPatchOnLambdaLeavesMarker(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	e.pipe.PatchBases = 0
	e.fluxPush(key, "com.example.notes", "1.0.0", 1, fluxOld)
	e.fluxPush(key, "com.example.notes", "1.1.0", 2, fluxNew)
	ctx := context.Background()
	// The check Lambda's view: same storage, no local blobs, check routes only.
	var puts atomic.Int64
	blobs := &countingPuts{Store: e.blobs, puts: &puts}
	pipe := publish.NewPipeline(e.store, blobs, nil)
	check := New(Deps{Store: e.store, Blobs: blobs, URLs: cdn.Local{Signer: e.signer, BaseURL: e.http.URL}, Pipeline: pipe},
		Config{StateTTL: time.Nanosecond}).Handler(GroupCheck)
	get := func() (int, string) {
		w := httptest.NewRecorder()
		check.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/flux/patches/com.example.notes/1.1.0/1.0.0", nil))
		return w.Code, w.Header().Get("Location")
	}
	for range 3 {
		if st, _ := get(); st != 404 {
			t.Fatalf("missing patch: %d", st)
		}
	}
	marker := "patch-requests/flux/com.example.notes/1.1.0/1.0.0"
	if keys, _ := e.blobs.List(ctx, publish.PatchRequestPrefix); len(keys) != 1 || keys[0] != marker {
		t.Fatalf("markers %q, want [%s]", keys, marker)
	}
	if n := puts.Load(); n != 1 {
		t.Errorf("%d puts for 3 requests, want the one marker (requests are idempotent)", n)
	}
	if _, err := e.store.GetPatch(ctx, "com.example.notes", publish.KindFlux, "1.1.0", "1.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the check path computed the patch: %v", err)
	}
	if err := pipe.HandlePatchRequest(ctx, marker); err != nil {
		t.Fatal(err)
	}
	// No bytes through a Lambda: the patch is a redirect to its signed URL.
	st, loc := get()
	if st != http.StatusFound || loc == "" {
		t.Fatalf("after the patch function: %d, Location %q; want 302 to the patch", st, loc)
	}
	if resp, err := http.Get(loc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("following the redirect: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := e.blobs.Stat(ctx, marker); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("marker not deleted: %v", err)
	}
}

type countingPuts struct {
	blob.Store
	puts *atomic.Int64
}

func (c *countingPuts) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, r, size, ct)
}

// One job per pair at a time, one computation at a time.
func TestPatchJobsBounded(t *testing.T) {
	j := newPatchJobs()
	release := make(chan struct{})
	var mu sync.Mutex
	var runs []string
	var active, maxActive atomic.Int32
	job := func(name string) func(context.Context) {
		return func(ctx context.Context) {
			n := active.Add(1)
			for {
				m := maxActive.Load()
				if n <= m || maxActive.CompareAndSwap(m, n) {
					break
				}
			}
			mu.Lock()
			runs = append(runs, name)
			mu.Unlock()
			if _, ok := ctx.Deadline(); !ok {
				t.Error("job context has no deadline")
			}
			<-release
			active.Add(-1)
		}
	}
	j.start(context.Background(), "a", job("a1"))
	j.start(context.Background(), "a", job("a2")) // dropped: a is running (or queued)
	j.start(context.Background(), "b", job("b1"))
	close(release)
	j.wait()
	if len(runs) != 2 || maxActive.Load() != 1 {
		t.Errorf("runs %q, max concurrent %d; want a1 and b1, one at a time", runs, maxActive.Load())
	}
	// Finished jobs can run again.
	j.start(context.Background(), "a", func(context.Context) { runs = append(runs, "a3") })
	j.wait()
	if runs[len(runs)-1] != "a3" {
		t.Errorf("runs %q", runs)
	}
}

// drain waits for the running job, drops the queued ones and refuses new ones; when
// its deadline passes first it cancels the running job.
func TestPatchJobsDrain(t *testing.T) {
	j := newPatchJobs()
	started, release := make(chan struct{}), make(chan struct{})
	var finished, queuedRan atomic.Bool
	j.start(context.Background(), "running", func(ctx context.Context) {
		close(started)
		<-release
		finished.Store(ctx.Err() == nil)
	})
	<-started
	j.start(context.Background(), "queued", func(context.Context) { queuedRan.Store(true) })
	go func() { time.Sleep(10 * time.Millisecond); close(release) }()
	if err := j.drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() || queuedRan.Load() {
		t.Errorf("running job finished normally: %v; queued job ran: %v", finished.Load(), queuedRan.Load())
	}
	if err := j.start(context.Background(), "late", func(context.Context) { t.Error("a job ran after drain") }); !errors.Is(err, errPatchJobsDrained) {
		t.Errorf("start after drain: %v", err)
	}
	j.wait()

	// A job that outlives the deadline is canceled.
	j = newPatchJobs()
	canceled := make(chan struct{})
	started = make(chan struct{})
	j.start(context.Background(), "slow", func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		close(canceled)
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.drain(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("drain past its deadline: %v", err)
	}
	<-canceled
	j.wait()
}

// Jobs beyond maxPatchJobs are refused, not queued without bound.
func TestPatchJobsQueueBounded(t *testing.T) {
	j := newPatchJobs()
	release := make(chan struct{})
	for i := range maxPatchJobs {
		if err := j.start(context.Background(), fmt.Sprint(i), func(context.Context) { <-release }); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if err := j.start(context.Background(), "one more", func(context.Context) {}); !errors.Is(err, errPatchJobsFull) {
		t.Errorf("job over the bound: %v", err)
	}
	if err := j.start(context.Background(), "0", func(context.Context) {}); err != nil {
		t.Errorf("a key already queued: %v, want nil (that job will do)", err)
	}
	close(release)
	j.wait()
}

// A job started from a request keeps the request's values but outlives its
// cancellation: the request is answered (and its context canceled) before the job
// runs.
func TestPatchJobOutlivesRequest(t *testing.T) {
	type requestIDKey struct{}
	j := newPatchJobs()
	// Hold the one slot so that the request's job waits until after the request ends.
	hold, held := make(chan struct{}), make(chan struct{})
	j.start(context.Background(), "hold", func(context.Context) { close(held); <-hold })
	<-held

	req, endRequest := context.WithCancel(context.WithValue(context.Background(), requestIDKey{}, "req-42"))
	var sawID any
	var errDuring, errAfterWait error
	var hasDeadline bool
	done := make(chan struct{})
	if err := j.start(req, "job", func(ctx context.Context) {
		defer close(done)
		sawID = ctx.Value(requestIDKey{})
		_, hasDeadline = ctx.Deadline()
		errDuring = ctx.Err()
		select { // a job waiting on I/O: the request's end must not wake it
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		errAfterWait = ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	endRequest()
	close(hold)
	<-done
	j.wait()
	if sawID != "req-42" {
		t.Errorf("job saw request id %v, want req-42", sawID)
	}
	if errDuring != nil || errAfterWait != nil {
		t.Errorf("job context ended with the request: %v, %v", errDuring, errAfterWait)
	}
	if !hasDeadline {
		t.Error("job context has no timeout of its own")
	}
}
