package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/otakit/ota/shared/publish"
)

// patchJobTimeout bounds one in-process patch job (the pipeline's budget bounds
// each pair well below it).
const patchJobTimeout = 15 * time.Minute

// maxPatchJobs bounds the jobs waiting for their turn: beyond it new ones are
// dropped (a missing patch is requested again by the next device that needs it).
const maxPatchJobs = 64

// patchJobs runs patch work in this process when no patch function does it (otad):
// precomputation after a release becomes ready, and requested patches. At most one
// job per key, one computation at a time. A job keeps the values of the request that
// started it (request id, logger attributes) but not its cancellation: the request
// is answered before the job runs. drain stops it at shutdown.
type patchJobs struct {
	mu      sync.Mutex
	running map[string]bool
	closed  bool
	sem     chan struct{}
	wg      sync.WaitGroup
	stop    chan struct{}      // closed by drain: jobs not started yet give up
	base    context.Context    // canceled when drain gives up, which cancels every job
	cancel  context.CancelFunc // cancels base
}

// Why start did not take a job.
var (
	errPatchJobsFull    = errors.New("too many background patch jobs queued")
	errPatchJobsDrained = errors.New("background patch jobs stopped (shutting down)")
)

func newPatchJobs() *patchJobs {
	base, cancel := context.WithCancel(context.Background())
	return &patchJobs{running: map[string]bool{}, sem: make(chan struct{}, 1), stop: make(chan struct{}),
		base: base, cancel: cancel}
}

// start runs fn for key in the background unless a job for key is queued or running
// already (nil: that one will do), too many are queued, or the jobs are drained. fn's
// context carries parent's values; it ends on the job's own timeout or when drain
// gives up, never because parent (a request's context) ends.
func (j *patchJobs) start(parent context.Context, key string, fn func(ctx context.Context)) error {
	j.mu.Lock()
	switch {
	case j.closed:
		j.mu.Unlock()
		return errPatchJobsDrained
	case j.running[key]:
		j.mu.Unlock()
		return nil
	case len(j.running) >= maxPatchJobs:
		j.mu.Unlock()
		return errPatchJobsFull
	}
	j.running[key] = true
	j.wg.Add(1)
	j.mu.Unlock()
	parent = context.WithoutCancel(parent)
	go func() {
		defer func() {
			j.mu.Lock()
			delete(j.running, key)
			j.mu.Unlock()
			j.wg.Done()
		}()
		select {
		case j.sem <- struct{}{}:
		case <-j.stop:
			return
		}
		defer func() { <-j.sem }()
		select {
		case <-j.stop: // drained while waiting for the semaphore
			return
		default:
		}
		ctx, cancel := context.WithTimeout(parent, patchJobTimeout)
		defer cancel()
		defer context.AfterFunc(j.base, cancel)() // drain giving up cancels the job
		fn(ctx)
	}()
	return nil
}

// wait blocks until every started job has finished (tests).
func (j *patchJobs) wait() { j.wg.Wait() }

// drain stops taking jobs, drops those not started, and waits for the running one
// until ctx ends; then it cancels it and returns ctx's error.
func (j *patchJobs) drain(ctx context.Context) error {
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.stop)
	}
	j.mu.Unlock()
	done := make(chan struct{})
	go func() { j.wg.Wait(); close(done) }()
	select {
	case <-done:
		j.cancel()
		return nil
	case <-ctx.Done():
		j.cancel()
		return fmt.Errorf("background patch jobs still running: %w", ctx.Err())
	}
}

// DrainJobs stops background patch work and waits for the job in progress until
// ctx ends (then cancels it). otad calls it at shutdown before closing the store.
func (s *Server) DrainJobs(ctx context.Context) error {
	return s.patchJobs.drain(ctx)
}

// precomputeLater precomputes patches to a release that just became ready, in the
// background (otad), so that the upload request answers at once.
// ctx is the request's: the job keeps its values, not its cancellation.
func (s *Server) precomputeLater(ctx context.Context, app, version string) {
	if s.Pipeline == nil || !s.inProcessPatches() {
		return
	}
	// One job per release: uploads and completions of one release all ask for it.
	err := s.patchJobs.start(ctx, "precompute/"+app+"/"+version, s.sweepAfter(func(ctx context.Context) {
		if err := s.Pipeline.Precompute(ctx, app, version); err != nil {
			s.Log.Warn("precompute patches failed", "app", app, "version", version, "err", err)
		}
	}))
	if err != nil {
		s.Log.Warn("precompute not scheduled", "app", app, "version", version, "err", err)
	}
}

// inProcessPatches reports whether this process computes requested patches itself.
func (s *Server) inProcessPatches() bool { return s.PatchInProcess || s.LocalBlobs != nil }

// requestPatch asks for a missing patch (publish.Pipeline.RequestPatch) and, on otad,
// computes it in the background. Failures are logged only: the caller has answered
// without a patch already, and the next request asks again.
func (s *Server) requestPatch(ctx context.Context, app, kind, from, to string) {
	if s.Pipeline == nil {
		return
	}
	if err := s.Pipeline.RequestPatch(ctx, app, kind, from, to); err != nil {
		if !errors.Is(err, publish.ErrBadPatchRequest) {
			s.Log.Warn("patch request failed", "app", app, "kind", kind, "from", from, "to", to, "err", err)
		}
		return
	}
	if !s.inProcessPatches() {
		return // the marker's S3 notification runs the patch function
	}
	key, err := publish.PatchRequestKey(app, kind, from, to)
	if err != nil {
		return
	}
	err = s.patchJobs.start(ctx, key, s.sweepAfter(func(ctx context.Context) {
		defer s.state.forgetPatch(app, kind, from, to) // checks see the patch at once
		var perr *publish.Error
		if err := s.Pipeline.HandlePatchRequest(ctx, key); errors.As(err, &perr) {
			s.Log.Info("patch request dropped", "key", key, "err", err)
		} else if err != nil {
			s.Log.Warn("patch request failed", "key", key, "err", err)
		}
	}))
	if err != nil {
		// The marker stays; it is rewritten once stale, which asks again.
		s.Log.Warn("patch request not scheduled", "key", key, "err", err)
	}
}

// tempSweepAge: an entry of the pipeline's temp folder unchanged that long is no
// running work's (an upload or a job writes to it all along).
const tempSweepAge = time.Hour

// sweepAfter runs fn, then removes what was left in the pipeline's temp folder by
// work that died without cleaning up (each job removes its own folder as it ends;
// otad sweeps the rest at start). Without a folder of its own (TempDir "": the
// system's temp folder, shared) nothing is swept.
func (s *Server) sweepAfter(fn func(ctx context.Context)) func(ctx context.Context) {
	return func(ctx context.Context) {
		fn(ctx)
		if s.Pipeline == nil || s.Pipeline.TempDir == "" {
			return
		}
		if n, err := publish.SweepTemp(s.Pipeline.TempDir, tempSweepAge); err != nil {
			s.Log.Warn("sweep temp folder", "dir", s.Pipeline.TempDir, "err", err)
		} else if n > 0 {
			s.Log.Info("removed stale temp files", "count", n)
		}
	}
}
