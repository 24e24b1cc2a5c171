package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Retention: delete old releases nobody points at, then every object no remaining
// release needs. Content-addressed files and patch objects are shared between
// releases and between apps, so they are only removed when no manifest or patch
// record of any app names them, and never while they might be in use by a publish
// that is still running.

const (
	// CleanupHistoryDepth: releases named by one of a channel's last entries of
	// history are kept too, a margin for `ota rollback --to` beyond the release a
	// plain `ota rollback` goes back to (always kept, see Reachable).
	CleanupHistoryDepth = 20
	// CleanupMinAge: an unreferenced object younger than this is kept (an ingest or a
	// patch computation may be about to reference it).
	CleanupMinAge = time.Hour
	// IngestWindow: a pending release whose bundle was uploaded less than this ago
	// may still be ingested (S3 events are retried for up to an hour). While one
	// exists anywhere, files are not swept: an ingest skips files that already
	// exist, so a file deleted under it would be missing from its release.
	IngestWindow = 2 * time.Hour
	// cleanupBatch is how many objects are deleted between two in-flight checks.
	cleanupBatch = 200
)

// clockSlack allows for clocks of different machines (ingest and cleanup) disagreeing.
const clockSlack = 5 * time.Minute

// The guards in effect (tests shorten them).
var (
	minObjectAge = CleanupMinAge
	ingestWindow = IngestWindow
)

// CleanupOptions tune a cleanup.
type CleanupOptions struct {
	Keep   int  // the newest Keep ready releases are kept, and failed ones newer than them (at least 1)
	DryRun bool // report what would be deleted; delete nothing
	// Now reclaims space at once (after a disk-full): objects of gone releases are
	// deleted however young, except what a publish in progress may use (see
	// sweepObjects for the rule).
	Now bool
}

// KeptRelease is an older release cleanup kept, and why.
type KeptRelease struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// Report says what a cleanup did (or, dry, would do).
type Report struct {
	App     string        `json:"app"`
	Keep    int           `json:"keep"`
	DryRun  bool          `json:"dry_run,omitempty"`
	Now     bool          `json:"now,omitempty"` // young objects of gone releases were not spared
	Deleted []string      `json:"deleted"`       // releases deleted (record, bundle, manifest)
	Kept    []KeptRelease `json:"kept"`          // every release kept, with the reason
	// Patches counts patch records deleted (to or from a release that is gone, or
	// whose object is missing).
	Patches int `json:"patches"`
	// Objects deleted beyond the releases' own bundles and manifests.
	Files        int `json:"files"`         // content-addressed files no manifest names
	PatchObjects int `json:"patch_objects"` // patch objects no patch record names
	Orphans      int `json:"orphans"`       // bundles/manifests of this app without a release record
	// Restored counts files put back from their bundle because a publish that ran
	// during the sweep needed them (see repairFiles).
	Restored int `json:"restored,omitempty"`
	// RecentObjects counts unreferenced objects kept because they are younger than CleanupMinAge.
	RecentObjects int `json:"recent_objects"`
	// RecentReason says, with Now, why young files were kept all the same.
	RecentReason string `json:"recent_reason,omitempty"`
	// FileSweep is "done", or why files were not swept this time (the next run retries).
	FileSweep string `json:"file_sweep"`
	// Errors lists deletions that failed; they are retried by the next cleanup.
	Errors []string `json:"errors,omitempty"`
}

// Cleanup deletes the app's ready and failed releases older than its newest keep
// ready ones that no channel can reach (Reachable: served, rolled out, the target of
// a rollback, or named by recent history), with their bundles, manifests and
// patches, then the objects nothing references any more. Pending releases are never
// deleted.
func (p *Pipeline) Cleanup(ctx context.Context, app string, keep int) (Report, error) {
	return p.CleanupWith(ctx, app, CleanupOptions{Keep: keep})
}

// CleanupWith is Cleanup with options (dry run, now).
func (p *Pipeline) CleanupWith(ctx context.Context, app string, o CleanupOptions) (Report, error) {
	rep := Report{App: app, Keep: o.Keep, DryRun: o.DryRun, Now: o.Now, Deleted: []string{}, Kept: []KeptRelease{}, FileSweep: "done"}
	if o.Keep < 1 {
		return rep, refuse(fault.Invalid, "invalid_keep", "keep must be at least 1")
	}
	if _, err := p.Store.GetApp(ctx, app); errors.Is(err, store.ErrNotFound) {
		return rep, refuse(fault.NotFound, "app_not_found", "app %s does not exist", app)
	} else if err != nil {
		return rep, err
	}
	rels, err := p.Store.ListReleases(ctx, app) // newest first
	if err != nil {
		return rep, err
	}
	isReady := map[string]bool{}
	for _, r := range rels {
		isReady[r.Version] = r.Status == release.StatusReady
	}
	chs, err := p.readChannels(ctx, app, nil)
	if err != nil {
		return rep, err
	}
	refs := Reachable(chs, func(v string) bool { return isReady[v] }, CleanupHistoryDepth)
	gone := map[string]bool{}
	ready := 0 // ready releases seen so far, newest first
	for _, r := range rels {
		reason := ""
		switch {
		case r.Status == release.StatusPending:
			reason = "pending (being published)"
		case r.Status == release.StatusReady && ready < o.Keep:
			reason = "newest"
			ready++
		case r.Status == release.StatusFailed && ready < o.Keep:
			reason = "newest (failed: kept so the error stays visible)"
		case refs[r.Version] != "":
			reason = refs[r.Version]
		}
		if reason != "" {
			rep.Kept = append(rep.Kept, KeptRelease{Version: r.Version, Reason: reason})
			continue
		}
		if !o.DryRun {
			kept, err := p.deleteRelease(ctx, r, chs, func(v string) bool { return isReady[v] && !gone[v] })
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("release %s: %v", r.Version, err))
				rep.Kept = append(rep.Kept, KeptRelease{Version: r.Version, Reason: "delete failed"})
				continue
			}
			if kept != "" {
				rep.Kept = append(rep.Kept, KeptRelease{Version: r.Version, Reason: kept})
				continue
			}
			p.Log.Info("cleanup: release deleted", "app", app, "version", r.Version)
		}
		rep.Deleted = append(rep.Deleted, r.Version)
		gone[r.Version] = true
	}
	// exists says whether a release is still there (asking the store about versions
	// this run did not list: they may have been published meanwhile).
	exists := map[string]bool{}
	for _, r := range rels {
		exists[r.Version] = !gone[r.Version]
	}
	existsNow := func(v string) (bool, error) {
		if e, ok := exists[v]; ok {
			return e, nil
		}
		_, err := p.Store.GetRelease(ctx, app, v)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		exists[v] = err == nil
		return exists[v], nil
	}
	// Patch records to or from a release that no longer exists (this run or earlier).
	// dead remembers when each one's object was made, for the sweep (see sweepObjects).
	dead := map[string]time.Time{}
	for _, kind := range []string{KindTree, KindFlux} {
		ps, err := p.Store.ListPatches(ctx, app, kind)
		if err != nil {
			return rep, err
		}
		for _, pt := range ps {
			from, err := existsNow(pt.From)
			if err != nil {
				return rep, err
			}
			to, err := existsNow(pt.To)
			if err != nil {
				return rep, err
			}
			if from && to {
				// Also drop a record whose object is gone, so the patch is computed again.
				if _, err := p.Blobs.Stat(ctx, pt.Key); !errors.Is(err, blob.ErrNotFound) {
					continue
				}
			}
			if !o.DryRun {
				if err := p.Store.DeletePatch(ctx, app, kind, pt.From, pt.To); err != nil && !goneErr(err) {
					rep.Errors = append(rep.Errors, fmt.Sprintf("patch %s %s->%s: %v", kind, pt.From, pt.To, err))
					continue
				}
			}
			if !from || !to {
				dead[pt.Key] = pt.Created
			}
			rep.Patches++
		}
	}
	if err := p.sweepObjects(ctx, app, gone, dead, o, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// ChannelRefs is a channel with its history (newest first, at most
// store.RollbackHistoryDepth entries): what retention needs to know what it can reach.
type ChannelRefs struct {
	Channel release.Channel
	History []store.ChannelEvent
}

// Reachable names every release a channel can still serve or reach in one step, with
// the reason: its stable release and its rollout (also halted), the release a plain
// rollback would go back to (the first of store.RollbackCandidates that is ready, as
// the rollback picks it), and the stable and rolling releases of its last recent
// history entries. ready says whether a version is a ready release. Device overrides
// pin devices to channels, not releases, so they reach nothing of their own.
func Reachable(chs []ChannelRefs, ready func(version string) bool, recent int) map[string]string {
	refs := map[string]string{}
	add := func(v, why string) {
		if v != "" && refs[v] == "" {
			refs[v] = why
		}
	}
	for _, c := range chs {
		add(c.Channel.Stable, "channel "+c.Channel.Name+" (stable)")
		if ro := c.Channel.Rolling; ro != nil {
			add(ro.Version, "channel "+c.Channel.Name+" (rollout)")
		}
	}
	for _, c := range chs {
		for _, v := range store.RollbackCandidates(c.History, c.Channel.Stable) {
			if ready(v) {
				add(v, "channel "+c.Channel.Name+" history (rollback target)")
				break
			}
		}
	}
	for _, c := range chs {
		for _, e := range c.History[:min(recent, len(c.History))] {
			add(e.Channel.Stable, "channel "+c.Channel.Name+" history (recent)")
			if e.Channel.Rolling != nil {
				add(e.Channel.Rolling.Version, "channel "+c.Channel.Name+" history (recent)")
			}
		}
	}
	return refs
}

// readChannels reads app's channels with their histories. A channel found as it was
// in prev keeps the history read then (history only changes with its channel).
func (p *Pipeline) readChannels(ctx context.Context, app string, prev []ChannelRefs) ([]ChannelRefs, error) {
	chs, err := p.Store.ListChannels(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("list channels of %s: %w", app, err)
	}
	out := make([]ChannelRefs, 0, len(chs))
	for _, c := range chs {
		i := slices.IndexFunc(prev, func(x ChannelRefs) bool { return reflect.DeepEqual(x.Channel, c) })
		if i >= 0 {
			out = append(out, prev[i])
			continue
		}
		hist, err := p.Store.ChannelHistory(ctx, app, c.Name, store.RollbackHistoryDepth)
		if err != nil {
			return nil, fmt.Errorf("read history of channel %s/%s: %w", app, c.Name, err)
		}
		out = append(out, ChannelRefs{Channel: c, History: hist})
	}
	return out, nil
}

// deleteRelease removes a release record, then its bundle and manifest. If a channel
// came to need the release meanwhile (chs is what the run started from, ready says
// which other releases are still there), the record is put back before any object is
// touched, and the reason is returned.
func (p *Pipeline) deleteRelease(ctx context.Context, r release.Release, chs []ChannelRefs, ready func(string) bool) (kept string, err error) {
	if err := p.Store.DeleteRelease(ctx, r.AppID, r.Version); err != nil && !goneErr(err) {
		return "", err
	}
	now, err := p.readChannels(ctx, r.AppID, chs)
	if err == nil {
		refs := Reachable(now, func(v string) bool { return v == r.Version || ready(v) }, CleanupHistoryDepth)
		if why := refs[r.Version]; why != "" {
			if err := p.Store.CreateRelease(ctx, r); err != nil && !errors.Is(err, store.ErrExists) {
				return "", fmt.Errorf("%s took the release during cleanup and restoring it failed: %w", why, err)
			}
			return why + " (taken during cleanup)", nil
		}
	}
	if err != nil {
		if rerr := p.Store.CreateRelease(ctx, r); rerr != nil && !errors.Is(rerr, store.ErrExists) {
			return "", fmt.Errorf("re-check channels: %w; restoring the release failed: %v", err, rerr)
		}
		return "", fmt.Errorf("re-check channels: %w", err)
	}
	var errs []error
	for _, key := range []string{blob.BundleKey(r.AppID, r.Version, r.BundleKey), blob.ManifestKey(r.AppID, r.Version)} {
		if err := p.Blobs.Delete(ctx, key); err != nil && !errors.Is(err, blob.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return "", errors.Join(errs...)
}

// goneErr: a delete found nothing to delete (another cleanup was first).
func goneErr(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict)
}

// sweepObjects deletes unreferenced objects: this app's bundles and manifests without
// a release, patch objects no patch record of any app names, and content-addressed
// files no manifest of any app names. gone are this app's releases deleted by this
// run (or, dry, that would be), dead the patch records it deleted (key: the
// record's creation).
//
// Objects younger than CleanupMinAge are kept: a publish may be about to reference
// them. With o.Now that grace is skipped where no publish can:
//   - bundles and manifests no release record names: a publish creates its record
//     before anything can be uploaded, so no publish references them;
//   - patch objects of patch records this run deleted, unless written again after
//     that record was made (a computation in progress writes its object before its
//     record, and patch objects are content-addressed);
//   - content-addressed files no manifest names, when once they are listed no
//     release of any app is pending with an uploaded bundle, however old (an
//     ingest, or a retried one, writes a release's files before its manifest and
//     skips files that exist: a file shared with a publish in progress must not
//     go). Files of releases that became ready since the manifests were read are
//     kept, and the sweep stops if such an upload appears. A publish whose upload
//     lands later writes the files it misses; one that raced the sweep gets them
//     back from its bundle (repairFiles).
//
// Other young objects (a patch object with no deleted record naming it: possibly a
// computation in progress) keep the grace.
func (p *Pipeline) sweepObjects(ctx context.Context, app string, gone map[string]bool, dead map[string]time.Time, o CleanupOptions, rep *Report) error {
	now, dry := p.Store.Now(), o.DryRun
	sw := &sweeper{p: p, rep: rep, dry: dry, now: now}
	always := func(string, blob.Info) bool { return o.Now }

	// This app's bundles and manifests whose release record is gone.
	for _, kind := range []struct{ prefix, ext string }{{"bundles/" + app + "/", ".zip"}, {"manifests/" + app + "/", ".json"}} {
		keys, err := p.Blobs.List(ctx, kind.prefix)
		if err != nil {
			return fmt.Errorf("list %s: %w", kind.prefix, err)
		}
		for _, k := range keys {
			v, ok := strings.CutSuffix(strings.TrimPrefix(k, kind.prefix), kind.ext)
			v, _, _ = strings.Cut(v, "/") // <version>/<nonce>.zip: a bundle key since keys name one creation
			if !ok || gone[v] || release.ValidVersion(v) != nil {
				continue // gone: counted with its release
			}
			if r, err := p.Store.GetRelease(ctx, app, v); !errors.Is(err, store.ErrNotFound) {
				if err != nil {
					return err
				}
				if kind.ext != ".zip" || blob.BundleKey(app, v, r.BundleKey) == k {
					continue // a release has it (not a bundle an earlier creation's upload URL wrote)
				}
			}
			sw.consider(ctx, k, &rep.Orphans, always)
		}
	}

	apps, err := p.Store.ListApps(ctx)
	if err != nil {
		return err
	}
	// Patch objects: a patch computation writes the object before the record, and
	// rewrites it each time, so the age guard covers computations in progress.
	patchKeys := map[string]bool{}
	for _, a := range apps {
		for _, kind := range []string{KindTree, KindFlux} {
			ps, err := p.Store.ListPatches(ctx, a.ID, kind)
			if err != nil {
				return err
			}
			for _, pt := range ps {
				if dry && a.ID == app && (gone[pt.From] || gone[pt.To]) {
					continue // would be deleted above
				}
				patchKeys[pt.Key] = true
			}
		}
	}
	keys, err := p.Blobs.List(ctx, "patches/")
	if err != nil {
		return fmt.Errorf("list patches/: %w", err)
	}
	deadPatch := func(key string, info blob.Info) bool {
		made, ok := dead[key]
		return o.Now && ok && !info.ModTime.After(made.Add(clockSlack))
	}
	for _, k := range keys {
		if !patchKeys[k] {
			sw.consider(ctx, k, &rep.PatchObjects, deadPatch)
		}
	}

	// Content-addressed files.
	if why, err := p.ingestInFlight(ctx, apps, now, ingestWindow); err != nil || why != "" {
		if err != nil {
			why = err.Error()
		}
		rep.FileSweep = "skipped: " + why
		return nil
	}
	since := p.Store.Now()
	files, why, err := p.referencedFiles(ctx, apps, app, gone)
	if err != nil {
		return err
	}
	if why != "" {
		rep.FileSweep = "skipped: " + why
		return nil
	}
	keys, err = p.Blobs.List(ctx, "files/")
	if err != nil {
		return fmt.Errorf("list files/: %w", err)
	}
	window, young := ingestWindow, false
	if o.Now {
		if young, err = p.youngFilesSafe(ctx, apps, since, files, rep); err != nil {
			return err
		}
		if young {
			window = anyAge // from now on any pending upload stops the sweep
		}
	}
	deleted := map[string]bool{}
	defer func() {
		if len(deleted) > 0 && !dry {
			p.repairFiles(ctx, since, deleted, rep)
		}
	}()
	for _, k := range keys {
		if files[k] {
			continue
		}
		if len(deleted) > 0 && len(deleted)%cleanupBatch == 0 {
			// A publish may have started since: stop rather than delete under it.
			if why, err := p.ingestInFlight(ctx, apps, p.Store.Now(), window); err != nil || why != "" {
				if err != nil {
					why = err.Error()
				}
				rep.FileSweep = "stopped early: " + why
				return nil
			}
		}
		if sw.consider(ctx, k, &rep.Files, func(string, blob.Info) bool { return young }) {
			deleted[k] = true
		}
	}
	return nil
}

// repairFiles closes the one race the in-flight check leaves open: an ingest that
// started after the check found a file present (so did not store it) just before the
// sweep deleted it. Every release that may have been ingested since the manifests
// were read (pending with a fresh upload, or ready since) gets the deleted files it
// names put back from its own bundle.
func (p *Pipeline) repairFiles(ctx context.Context, since time.Time, deleted map[string]bool, rep *Report) {
	apps, err := p.Store.ListApps(ctx)
	if err != nil {
		rep.Errors = append(rep.Errors, "repair: "+err.Error())
		return
	}
	now := p.Store.Now()
	for _, a := range apps {
		rels, err := p.Store.ListReleases(ctx, a.ID)
		if err != nil {
			rep.Errors = append(rep.Errors, "repair: "+err.Error())
			return
		}
		for _, r := range rels {
			if r.Format == release.FormatChunk || r.Encrypted() {
				continue // no files
			}
			switch r.Status {
			case release.StatusReady:
				if r.ReadyAt.Before(since.Add(-clockSlack)) {
					continue // its manifest was read before the sweep
				}
			case release.StatusPending:
				info, err := p.Blobs.Stat(ctx, blob.BundleKey(r.AppID, r.Version, r.BundleKey))
				if err != nil || now.Sub(info.ModTime) >= ingestWindow {
					continue // not being ingested
				}
			default:
				continue
			}
			n, err := p.restoreFiles(ctx, r, deleted)
			rep.Restored += n
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("repair %s@%s: %v", r.AppID, r.Version, err))
			}
		}
	}
}

// restoreFiles puts back the files of r's bundle that are in deleted and missing.
func (p *Pipeline) restoreFiles(ctx context.Context, r release.Release, deleted map[string]bool) (int, error) {
	f, err := p.fetch(ctx, blob.BundleKey(r.AppID, r.Version, r.BundleKey), r)
	if err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			return 0, nil // bytes that do not match: this release never becomes ready
		}
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	m, err := bundle.Inspect(f, r.Size, p.Limits)
	if err != nil {
		return 0, nil // not a valid bundle: never ready, names no files
	}
	n := 0
	err = bundle.Walk(f, r.Size, m, func(bf bundle.File, rd io.Reader) error {
		key := blob.FileKey(bf.SHA256)
		if !deleted[key] {
			return nil
		}
		if _, err := p.Blobs.Stat(ctx, key); err == nil {
			return nil
		} else if !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		if err := p.Blobs.Put(ctx, key, rd, bf.Size, blob.ContentType(key)); err != nil {
			return err
		}
		n++
		p.Log.Warn("cleanup: file restored for a release published during the sweep", "app", r.AppID, "version", r.Version, "key", key)
		return nil
	})
	return n, err
}

type sweeper struct {
	p   *Pipeline
	rep *Report
	dry bool
	now time.Time
}

// consider deletes key when it is old enough, or noGrace says its age does not
// matter, and counts it; it reports whether it deleted (or, dry, would delete).
func (s *sweeper) consider(ctx context.Context, key string, count *int, noGrace func(key string, info blob.Info) bool) bool {
	info, err := s.p.Blobs.Stat(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return false
	}
	if err != nil {
		s.rep.Errors = append(s.rep.Errors, fmt.Sprintf("stat %s: %v", key, err))
		return false
	}
	if s.now.Sub(info.ModTime) < minObjectAge && !noGrace(key, info) {
		s.rep.RecentObjects++
		return false
	}
	if !s.dry {
		if err := s.p.Blobs.Delete(ctx, key); err != nil && !errors.Is(err, blob.ErrNotFound) {
			s.rep.Errors = append(s.rep.Errors, fmt.Sprintf("delete %s: %v", key, err))
			return false
		}
	}
	*count++
	return true
}

// anyAge is an ingest window that takes every pending upload, however old, as
// possibly being ingested (a retried ingest can start at any time).
const anyAge = time.Duration(math.MaxInt64)

// ingestInFlight names a pending release (of any app) that may be being ingested:
// its bundle was uploaded less than window (IngestWindow, or anyAge) ago. Releases
// created since apps was listed are found by listing again.
func (p *Pipeline) ingestInFlight(ctx context.Context, apps []release.App, now time.Time, window time.Duration) (string, error) {
	fresh, err := p.Store.ListApps(ctx)
	if err != nil {
		return "", err
	}
	for _, a := range fresh {
		if !slices.ContainsFunc(apps, func(x release.App) bool { return x.ID == a.ID }) {
			return "app " + a.ID + " was created during cleanup", nil
		}
	}
	for _, a := range apps {
		rels, err := p.Store.ListReleases(ctx, a.ID)
		if err != nil {
			return "", err
		}
		for _, r := range rels {
			if r.Status != release.StatusPending {
				continue
			}
			info, err := p.Blobs.Stat(ctx, blob.BundleKey(r.AppID, r.Version, r.BundleKey))
			if errors.Is(err, blob.ErrNotFound) {
				continue // not uploaded yet: nothing is being ingested
			}
			if err != nil {
				return "", err
			}
			if now.Sub(info.ModTime) < window {
				return fmt.Sprintf("release %s@%s is being published", r.AppID, r.Version), nil
			}
		}
	}
	return "", nil
}

// youngFilesSafe reports whether files younger than the grace may go (cleanup
// --now): no release of any app is pending with an uploaded bundle, and the files of
// releases that became ready since the manifests were read (at since) are added to
// files. It runs after the files are listed, so an ingest that wrote any of them is
// seen here (still pending, or ready since). Why not is left in rep.RecentReason.
func (p *Pipeline) youngFilesSafe(ctx context.Context, apps []release.App, since time.Time, files map[string]bool, rep *Report) (bool, error) {
	why, err := p.ingestInFlight(ctx, apps, p.Store.Now(), anyAge)
	if err != nil {
		return false, err
	}
	if why != "" {
		rep.RecentReason = why + " (pending with its upload: finish or delete it to reclaim young files now)"
		return false, nil
	}
	for _, a := range apps {
		rels, err := p.Store.ListReleases(ctx, a.ID)
		if err != nil {
			return false, fmt.Errorf("list releases of %s: %w", a.ID, err)
		}
		for _, r := range rels {
			if r.Status != release.StatusReady || r.ReadyAt.Before(since.Add(-clockSlack)) {
				continue
			}
			key := blob.ManifestKey(r.AppID, r.Version)
			m, err := p.readManifest(ctx, key)
			if errors.Is(err, blob.ErrNotFound) {
				continue // chunk and encrypted releases have none
			}
			if err != nil {
				rep.RecentReason = fmt.Sprintf("manifest %s unreadable: %v", key, err)
				return false, nil
			}
			for _, f := range m.Files {
				if sha256Re.MatchString(f.SHA256) {
					files[blob.FileKey(f.SHA256)] = true
				}
			}
		}
	}
	return true, nil
}

// referencedFiles reads the manifest of every release of every app (but the gone ones
// of app) and returns the
// file keys they name. A manifest that cannot be read (other than absent: chunk and
// encrypted releases have none) makes the sweep unsafe: why says so.
func (p *Pipeline) referencedFiles(ctx context.Context, apps []release.App, app string, gone map[string]bool) (map[string]bool, string, error) {
	files := map[string]bool{}
	for _, a := range apps {
		rels, err := p.Store.ListReleases(ctx, a.ID)
		if err != nil {
			return nil, "", err
		}
		for _, r := range rels {
			if a.ID == app && gone[r.Version] {
				continue // deleted by this run (or, dry, would be)
			}
			key := blob.ManifestKey(r.AppID, r.Version)
			m, err := p.readManifest(ctx, key)
			if errors.Is(err, blob.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Sprintf("manifest %s unreadable: %v", key, err), nil
			}
			for _, f := range m.Files {
				if sha256Re.MatchString(f.SHA256) {
					files[blob.FileKey(f.SHA256)] = true
				}
			}
		}
	}
	return files, "", nil
}

type manifestFiles struct {
	Files []struct {
		Path   string `json:"path"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"files"`
}

func (p *Pipeline) readManifest(ctx context.Context, key string) (manifestFiles, error) {
	var m manifestFiles
	rc, _, err := p.Blobs.Open(ctx, key, 0)
	if err != nil {
		return m, err
	}
	defer rc.Close()
	err = json.NewDecoder(io.LimitReader(rc, 256<<20)).Decode(&m)
	return m, err
}
