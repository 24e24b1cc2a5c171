package publish

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/delta"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/fluxpatch"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Patch kinds.
const (
	KindTree = "ota"  // our tree patch (shared/delta), for our Go client
	KindFlux = "flux" // Flux's XOR/full format over the whole chunk
)

// Precompute makes patches to version from the last PatchBases releases of the same
// app and platform that were ready before it, within Budget: pairs that do not fit
// or cannot pay are skipped (logged at Info), and it stops when ctx ends. It runs
// once per release: the first call claims the release's precompute lease, calls that
// find it held or the work done return nil at once, and a run that did not finish
// (ctx ended, an error) gives the lease back for a later call. Callers run it after
// the release is ready, never inside the request that made it ready.
func (p *Pipeline) Precompute(ctx context.Context, app, version string) error {
	to, err := p.Store.GetRelease(ctx, app, version)
	if err != nil {
		return err
	}
	todo := func(x *release.Release) bool { return x.Status == release.StatusReady && x.PrecomputedAt.IsZero() }
	if !todo(&to) {
		return nil // not ready (or failed): nothing to patch to; or done already
	}
	holder, to, err := p.claim(ctx, to, precomputeLease, todo)
	switch {
	case errors.Is(err, errNothingToDo), errors.Is(err, ErrBusy):
		return nil
	case err != nil:
		return err
	}
	p.Log.Info("precomputing patches", "app", app, "version", version)
	wctx, stop := p.hold(ctx, to, precomputeLease, holder)
	err = p.precompute(wctx, to)
	done := err == nil && wctx.Err() == nil // read before stop cancels wctx
	stop()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, ferr := p.Store.UpdateRelease(fctx, app, version, func(x *release.Release) error {
		if x.PrecomputeLease == nil || x.PrecomputeLease.Holder != holder {
			return store.ErrUnchanged // lost to another worker: its outcome stands
		}
		x.PrecomputeLease = nil
		if done {
			x.PrecomputedAt = p.Store.Now().UTC()
		}
		return nil
	})
	return errors.Join(err, ferr)
}

// precompute is Precompute's work under the lease.
func (p *Pipeline) precompute(ctx context.Context, to release.Release) error {
	ctx, cleanup, err := p.jobTemp(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	app, version := to.AppID, to.Version
	rels, err := p.Store.ListReleases(ctx, app)
	if err != nil {
		return err
	}
	var errs []error
	n := 0
	for _, from := range rels {
		if n >= p.PatchBases {
			break
		}
		if from.Version == to.Version || from.Status != release.StatusReady || from.Platform != to.Platform {
			continue
		}
		if from.ReadyAt.After(to.ReadyAt) {
			continue // ready after to: the bases are those devices could run when to came out
		}
		n++
		kinds := []string{KindTree, KindFlux}
		if from.Format == release.FormatChunk || to.Format == release.FormatChunk || from.Encrypted() || to.Encrypted() {
			kinds = []string{KindFlux} // opaque bytes have no tree
		}
		for _, kind := range kinds {
			if err := ctx.Err(); err != nil {
				p.Log.Info("precompute stopped", "app", app, "version", version, "reason", context.Cause(ctx))
				return errors.Join(append(errs, err)...)
			}
			if _, err := p.ensurePatch(ctx, app, kind, from.Version, to.Version, true); err != nil && !IsPatchSkipped(err) {
				errs = append(errs, fmt.Errorf("%s patch %s->%s: %w", kind, from.Version, to.Version, err))
			}
		}
	}
	return errors.Join(errs...)
}

// EnsurePatch returns the patch record for a pair, computing and storing it if
// needed. A pair the budget rules out before the work (see PatchBudget) is a *Error
// with CodePatchSkipped.
func (p *Pipeline) EnsurePatch(ctx context.Context, app, kind, from, to string) (store.Patch, error) {
	ctx, cleanup, err := p.jobTemp(ctx)
	if err != nil {
		return store.Patch{}, err
	}
	defer cleanup()
	return p.ensurePatch(ctx, app, kind, from, to, false)
}

// ensurePatch is EnsurePatch; with onlyIfWorth (precomputation, which guesses what
// devices will need) a finished patch too close to the full download is dropped too.
// A patch asked for explicitly is kept: its asker chose to have it.
func (p *Pipeline) ensurePatch(ctx context.Context, app, kind, from, to string, onlyIfWorth bool) (store.Patch, error) {
	if rec, err := p.Store.GetPatch(ctx, app, kind, from, to); err == nil {
		return rec, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return rec, err
	}
	if kind != KindTree && kind != KindFlux {
		return store.Patch{}, fmt.Errorf("unknown patch kind %q", kind)
	}
	b := p.Budget.withDefaults()
	fromRel, err := p.Store.GetRelease(ctx, app, from)
	if err != nil {
		return store.Patch{}, err
	}
	toRel, err := p.Store.GetRelease(ctx, app, to)
	if err != nil {
		return store.Patch{}, err
	}
	est := pairEstimate{Kind: kind, OldSize: fromRel.Size, NewSize: toRel.Size}
	skip := func(reason string) error {
		p.Log.Info("patch skipped", "app", app, "kind", kind, "from", from, "to", to, "reason", reason)
		return refuse(fault.Unprocessable, CodePatchSkipped, "%s patch %s->%s: %s", kind, from, to, reason)
	}
	if reason := b.skipReason(est, timeLeft(ctx, b)); reason != "" {
		return store.Patch{}, skip(reason)
	}
	var changes []change
	if kind == KindTree {
		oldM, err := p.manifestOf(ctx, app, from)
		if err != nil {
			return store.Patch{}, err
		}
		newM, err := p.manifestOf(ctx, app, to)
		if err != nil {
			return store.Patch{}, err
		}
		changes = changedFiles(oldM, newM, &est)
		if reason := b.skipReason(est, timeLeft(ctx, b)); reason != "" {
			return store.Patch{}, skip(reason)
		}
	}

	// The patch goes to a temp file: a big one is never held in memory, and a
	// failed or skipped one leaves nothing behind.
	pctx, cancel := context.WithTimeout(ctx, b.PairTimeout)
	defer cancel()
	tmp, err := os.CreateTemp(p.tempDir(ctx), "patch-*.bin")
	if err != nil {
		return store.Patch{}, fmt.Errorf("temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	if kind == KindTree {
		err = p.treePatch(pctx, app, from, to, changes, &est, b, bw)
	} else {
		err = p.fluxPatch(pctx, app, fromRel, toRel, bw)
	}
	var reason skipped
	if errors.As(err, &reason) {
		return store.Patch{}, skip(string(reason))
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			return store.Patch{}, skip(fmt.Sprintf("not done within %s", b.PairTimeout))
		}
		return store.Patch{}, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return store.Patch{}, err
	}
	if onlyIfWorth && b.tooBig(size, toRel.Size) {
		return store.Patch{}, skip(fmt.Sprintf("patch of %s is over %.0f%% of the %s download", mib(size), 100*b.MaxRatio, mib(toRel.Size)))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return store.Patch{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	key := blob.PatchKey(kind, sum)
	// The parent ctx, not the pair's: a write is not cut short by the pair timeout.
	if err := p.Blobs.Put(ctx, key, tmp, size, "application/octet-stream"); err != nil {
		return store.Patch{}, err
	}
	rec := store.Patch{AppID: app, Kind: kind, From: from, To: to, Key: key, Size: size, SHA256: sum, Created: p.Store.Now().UTC()}
	if err := p.Store.PutPatch(ctx, rec); err != nil {
		return rec, err
	}
	p.Log.Info("patch stored", "app", app, "kind", kind, "from", from, "to", to, "bytes", rec.Size)
	return rec, nil
}

// skipped is a budget refusal found while computing (after sampling).
type skipped string

func (s skipped) Error() string { return string(s) }

func (p *Pipeline) treePatch(ctx context.Context, app, from, to string, changes []change, est *pairEstimate, b PatchBudget, w io.Writer) error {
	oldFS, closeOld, err := p.openTree(ctx, app, from)
	if err != nil {
		return err
	}
	defer closeOld()
	newFS, closeNew, err := p.openTree(ctx, app, to)
	if err != nil {
		return err
	}
	defer closeNew()
	if err := sampleChanged(ctx, oldFS, newFS, changes, est); err != nil {
		return err
	}
	if reason := b.skipReason(*est, timeLeft(ctx, b)); reason != "" {
		return skipped(reason)
	}
	_, err = delta.Create(ctx, oldFS, newFS, w, delta.Options{})
	return err
}

// fluxPatch reads both bundles whole (fluxpatch needs them so; MaxFlux bounds them).
func (p *Pipeline) fluxPatch(ctx context.Context, app string, from, to release.Release, w io.Writer) error {
	oldB, err := p.readAll(ctx, blob.BundleKey(app, from.Version, from.BundleKey), from.Size)
	if err != nil {
		return err
	}
	newB, err := p.readAll(ctx, blob.BundleKey(app, to.Version, to.BundleKey), to.Size)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	out, err := fluxpatch.Create(oldB, newB)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// readAll reads an object of a known size into one exactly sized buffer.
func (p *Pipeline) readAll(ctx context.Context, key string, size int64) ([]byte, error) {
	rc, _, err := p.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return buf, nil
}

// openTree opens a release's zip as a file tree rooted where index.html is.
func (p *Pipeline) openTree(ctx context.Context, app, version string) (fs.FS, func(), error) {
	r, err := p.Store.GetRelease(ctx, app, version)
	if err != nil {
		return nil, nil, err
	}
	key := blob.BundleKey(app, version, r.BundleKey)
	rc, _, err := p.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(p.tempDir(ctx), "tree-*.zip")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, rc); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("copy %s: %w", key, err)
	}
	m, err := bundle.Inspect(f, r.Size, p.Limits)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	zr, err := zip.NewReader(f, r.Size)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	var tree fs.FS = zr
	if m.Root != "" {
		if tree, err = fs.Sub(zr, m.Root); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return tree, cleanup, nil
}
