package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// A release's background work (validating its upload, precomputing patches to it)
// runs once however many uploads, completions and S3 events ask for it: the worker
// first takes a lease on the release record with a conditional write, renews it while
// it works, and drops it when done. Other callers see it held and leave the work to
// it (ErrBusy). A worker that dies stops renewing, and once the lease expires the
// next caller (the CLI polling the release, an S3 event retry) takes over.

// DefaultLease is how long a lease lasts without renewal (renewed every third).
const DefaultLease = time.Minute

// ErrBusy: another worker holds the release's lease for that work.
var ErrBusy = errors.New("another worker is on this release")

// errNothingToDo: the work is done (or not wanted) already; no lease was taken.
var errNothingToDo = errors.New("nothing to do")

// leaseField picks one of a release's leases.
type leaseField func(r *release.Release) **release.Lease

func ingestLease(r *release.Release) **release.Lease     { return &r.IngestLease }
func precomputeLease(r *release.Release) **release.Lease { return &r.PrecomputeLease }

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (p *Pipeline) leaseTTL() time.Duration {
	if p.Lease > 0 {
		return p.Lease
	}
	return DefaultLease
}

// heldByOther reports whether l is a live claim of another worker. On an exclusive
// store a lease of another instance is a leftover of an earlier run (this process is
// the only one using the store), so it does not count.
func (p *Pipeline) heldByOther(l *release.Lease, now time.Time) bool {
	if !l.Held(now) {
		return false
	}
	if p.Exclusive && !strings.HasPrefix(l.Holder, p.instance+".") {
		return false
	}
	return true
}

// claim takes the lease field of r's record if want still holds on the record and
// no live lease is there. It returns the holder token and the record as written;
// ErrBusy when another worker holds it, errNothingToDo when want refuses.
func (p *Pipeline) claim(ctx context.Context, r release.Release, field leaseField, want func(x *release.Release) bool) (string, release.Release, error) {
	holder := p.instance + "." + newToken()
	var why error
	got, err := p.Store.UpdateRelease(ctx, r.AppID, r.Version, func(x *release.Release) error {
		now := p.Store.Now()
		switch {
		case !want(x):
			why = errNothingToDo
		case p.heldByOther(*field(x), now):
			why = ErrBusy
		default:
			why = nil
			*field(x) = &release.Lease{Holder: holder, Until: now.Add(p.leaseTTL()).UTC()}
			return nil
		}
		return store.ErrUnchanged
	})
	if err != nil {
		return "", got, fmt.Errorf("claim %s@%s: %w", r.AppID, r.Version, err)
	}
	return holder, got, why
}

// hold renews the lease every third of its length while the work runs. If the lease
// is lost (taken over after this worker stalled past its expiry, or the record
// changed) the returned ctx is canceled: someone else does the work now. stop ends
// the renewals; it does not give the lease back (the work's last write does).
func (p *Pipeline) hold(ctx context.Context, r release.Release, field leaseField, holder string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(p.leaseTTL() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			lost := false
			_, err := p.Store.UpdateRelease(ctx, r.AppID, r.Version, func(x *release.Release) error {
				l := *field(x)
				if l == nil || l.Holder != holder || x.BundleKey != r.BundleKey {
					lost = true
					return store.ErrUnchanged
				}
				lost = false
				*field(x) = &release.Lease{Holder: holder, Until: p.Store.Now().Add(p.leaseTTL()).UTC()}
				return nil
			})
			if lost {
				cancel(fmt.Errorf("%s@%s: lease lost: %w", r.AppID, r.Version, ErrBusy))
				return
			}
			if err != nil && ctx.Err() == nil {
				p.Log.Warn("lease renewal failed", "app", r.AppID, "version", r.Version, "err", err)
			}
		}
	}()
	return ctx, func() {
		close(done)
		<-stopped
		cancel(nil)
	}
}

// letGo gives the lease back if this worker still holds it, so that a retry does not
// wait for it to expire. It runs on a context of its own: it is often called because
// ctx ended.
func (p *Pipeline) letGo(ctx context.Context, r release.Release, field leaseField, holder string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := p.Store.UpdateRelease(ctx, r.AppID, r.Version, func(x *release.Release) error {
		if l := *field(x); l == nil || l.Holder != holder {
			return store.ErrUnchanged
		}
		*field(x) = nil
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.Log.Warn("lease release failed (it expires on its own)", "app", r.AppID, "version", r.Version, "err", err)
	}
}
