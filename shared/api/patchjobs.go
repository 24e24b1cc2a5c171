package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/otakit/ota/shared/publish"
)

// patchJobTimeout bounds one in-process patch computation.
const patchJobTimeout = 15 * time.Minute

// patchJobs computes requested patches in this process when no patch function does
// it (otad): at most one job per pair, one computation at a time, on a context not
// tied to the request that asked.
type patchJobs struct {
	mu      sync.Mutex
	running map[string]bool
	sem     chan struct{}
	wg      sync.WaitGroup
}

func newPatchJobs() *patchJobs {
	return &patchJobs{running: map[string]bool{}, sem: make(chan struct{}, 1)}
}

// start runs fn for key in the background unless a job for key is running already.
func (j *patchJobs) start(key string, fn func(ctx context.Context)) {
	j.mu.Lock()
	if j.running[key] {
		j.mu.Unlock()
		return
	}
	j.running[key] = true
	j.wg.Add(1)
	j.mu.Unlock()
	go func() {
		defer func() {
			j.mu.Lock()
			delete(j.running, key)
			j.mu.Unlock()
			j.wg.Done()
		}()
		j.sem <- struct{}{}
		defer func() { <-j.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), patchJobTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// wait blocks until every started job has finished (tests).
func (j *patchJobs) wait() { j.wg.Wait() }

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
	s.patchJobs.start(key, func(ctx context.Context) {
		var perr *publish.Error
		if err := s.Pipeline.HandlePatchRequest(ctx, key); errors.As(err, &perr) {
			s.Log.Info("patch request dropped", "key", key, "err", err)
		} else if err != nil {
			s.Log.Warn("patch request failed", "key", key, "err", err)
		}
	})
}
