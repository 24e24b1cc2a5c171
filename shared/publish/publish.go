// Package publish is the release pipeline shared by otad and the Lambdas: create a
// pending release with a presigned upload, then (on the S3 event, or otad's upload
// route) verify and unpack the bundle and mark it ready, then precompute patches.
package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/diskfull"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
)

// Pipeline holds what publishing needs.
type Pipeline struct {
	Store  *store.Store
	Blobs  blob.Store
	Log    *slog.Logger
	Limits bundle.Limits
	// PatchBases is K: patches are precomputed from the last K ready releases.
	PatchBases int
	// Budget bounds the time and memory of each patch (zero fields: defaults).
	Budget PatchBudget
	// UploadTTL is the lifetime of presigned upload URLs.
	UploadTTL time.Duration
	// MaxBundle is the largest zip accepted.
	MaxBundle int64
	// TempDir holds bundles while they are checked and patches while they are made,
	// each call in a folder of its own ("" = os.TempDir, /tmp on Lambda).
	TempDir string
	// Lease is how long a claim on a release's ingest or precomputation lasts
	// without renewal (0: DefaultLease): how soon work a dead worker held is retried.
	Lease time.Duration
	// Exclusive says no other process uses the store (otad on its embedded database,
	// which it locks): leases left by an earlier run are then void at once.
	Exclusive bool
	// PatchRequestStale is the age after which RequestPatch rewrites a marker that
	// is still there (0: DefaultPatchRequestStale).
	PatchRequestStale time.Duration

	instance string // prefix of this pipeline's lease holders
}

// NewPipeline fills in defaults.
func NewPipeline(st *store.Store, blobs blob.Store, log *slog.Logger) *Pipeline {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{Store: st, Blobs: blobs, Log: log, Limits: bundle.DefaultLimits(), PatchBases: 5,
		UploadTTL: 15 * time.Minute, MaxBundle: 256 << 20, instance: newToken()}
}

// Input is a release the CLI asks to publish.
type Input struct {
	AppID       string             `json:"-"`
	Version     string             `json:"version"`
	SHA256      string             `json:"sha256"`
	Size        int64              `json:"size"`
	Platform    string             `json:"platform,omitempty"`
	MinNative   string             `json:"min_native,omitempty"`
	Notes       string             `json:"notes,omitempty"`
	Mandatory   bool               `json:"mandatory,omitempty"`
	BuildNumber int64              `json:"build_number,omitempty"`
	Signatures  release.Signatures `json:"signatures,omitzero"`
	Format      string             `json:"format,omitempty"` // release.FormatChunk for opaque bytes (Flux chunks)
	CreatedBy   string             `json:"-"`
}

// Error is a refusal with a stable code. Its Kind says what went wrong; the API
// alone maps kinds to HTTP statuses.
type Error struct {
	Kind fault.Kind
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// FaultKind makes a refusal's kind visible to fault.KindOf.
func (e *Error) FaultKind() fault.Kind { return e.Kind }

func refuse(kind fault.Kind, code, format string, a ...any) *Error {
	return &Error{Kind: kind, Code: code, Msg: fmt.Sprintf(format, a...)}
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Create records a pending release and returns where to upload its bytes. Asking
// again for the same version and bytes is safe: a pending release gets a fresh URL
// (for the same object key), a ready one gets no URL (nothing to do). A build number
// is drawn only by the request that created the record, so concurrent identical
// publishes use one.
func (p *Pipeline) Create(ctx context.Context, in Input) (release.Release, *blob.Upload, error) {
	if err := release.ValidVersion(in.Version); err != nil {
		return release.Release{}, nil, refuse(fault.Invalid, "invalid_version", "%v", err)
	}
	if !sha256Re.MatchString(in.SHA256) {
		return release.Release{}, nil, refuse(fault.Invalid, "invalid_sha256", "sha256 must be 64 lowercase hex characters")
	}
	if in.Size <= 0 || in.Size > p.MaxBundle {
		return release.Release{}, nil, refuse(fault.Invalid, "invalid_size", "size must be between 1 and %d bytes", p.MaxBundle)
	}
	if in.Format != "" && in.Format != release.FormatChunk {
		return release.Release{}, nil, refuse(fault.Invalid, "invalid_format", "format must be empty (a zip bundle) or %q (opaque bytes, e.g. a Flux chunk)", release.FormatChunk)
	}
	if in.MinNative != "" && !versionLike(in.MinNative) {
		return release.Release{}, nil, refuse(fault.Invalid, "invalid_min_native", "min_native must look like 1.2.3")
	}
	if sig := in.Signatures; sig.SessionKey != "" && (sig.EncChecksum == "" || sig.KeyID == "") {
		return release.Release{}, nil, refuse(fault.Invalid, "incomplete_encryption", "an encrypted release needs session_key, enc_checksum and key_id")
	}
	if _, err := p.Store.GetApp(ctx, in.AppID); errors.Is(err, store.ErrNotFound) {
		return release.Release{}, nil, refuse(fault.NotFound, "app_not_found", "app %s does not exist", in.AppID)
	} else if err != nil {
		return release.Release{}, nil, err
	}
	r := release.Release{AppID: in.AppID, Version: in.Version, ID: "rel_" + in.SHA256[:12], Platform: in.Platform,
		Status: release.StatusPending, SHA256: in.SHA256, Size: in.Size, MinNative: in.MinNative, Mandatory: in.Mandatory,
		Notes: in.Notes, BuildNumber: in.BuildNumber, Signatures: in.Signatures, Format: in.Format, CreatedAt: p.Store.Now().UTC(), CreatedBy: in.CreatedBy,
		BundleKey: blob.NewBundleKey(in.AppID, in.Version, newToken())}
	err := p.Store.CreateRelease(ctx, r)
	switch {
	case err == nil:
		if r.BuildNumber == 0 {
			if r, err = p.assignBuildNumber(ctx, r); err != nil {
				return r, nil, err
			}
		}
	case errors.Is(err, store.ErrExists):
		if r, err = p.existing(ctx, in); err != nil || r.Status == release.StatusReady {
			return r, nil, err
		}
	default:
		return r, nil, err
	}
	up, err := p.Blobs.PresignPut(ctx, blob.BundleKey(r.AppID, r.Version, r.BundleKey), r.SHA256, r.Size, p.UploadTTL)
	if err != nil {
		return r, nil, fmt.Errorf("presign upload: %w", err)
	}
	return r, &up, nil
}

// existing is Create for a version that has a record already: the same bytes are
// that release (a failed one gets another try), other bytes are refused.
func (p *Pipeline) existing(ctx context.Context, in Input) (release.Release, error) {
	old, err := p.Store.GetRelease(ctx, in.AppID, in.Version)
	if err != nil {
		return old, err
	}
	if old.SHA256 != in.SHA256 || old.Size != in.Size {
		return old, refuse(fault.Conflict, "version_exists", "version %s already exists with other bytes; versions are immutable, publish a new one", in.Version)
	}
	if old.Status != release.StatusFailed {
		return old, nil
	}
	// Same bytes again: let the upload be retried (to the same key).
	return p.Store.UpdateRelease(ctx, in.AppID, in.Version, func(x *release.Release) error {
		if x.Status != release.StatusFailed {
			return store.ErrUnchanged
		}
		x.Status, x.Error = release.StatusPending, ""
		return nil
	})
}

// assignBuildNumber gives a release created without one the next number. It runs
// after the record is created, by the one request that created it: numbers drawn
// before would be lost by every concurrent request that finds the version taken.
func (p *Pipeline) assignBuildNumber(ctx context.Context, r release.Release) (release.Release, error) {
	n, err := p.nextBuildNumber(ctx, r.AppID)
	if err != nil {
		return r, fmt.Errorf("build number: %w", err)
	}
	got, err := p.Store.UpdateRelease(ctx, r.AppID, r.Version, func(x *release.Release) error {
		if x.BuildNumber != 0 || x.BundleKey != r.BundleKey {
			return store.ErrUnchanged
		}
		x.BuildNumber = n
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("build number: %w", err)
	}
	return got, nil
}

// nextBuildNumber is the app's highest build number + 1 (Flux devices only update to
// a higher one), also when releases were published with explicit numbers.
func (p *Pipeline) nextBuildNumber(ctx context.Context, app string) (int64, error) {
	n, err := p.Store.NextSeq(ctx, app, "build")
	if err != nil {
		return 0, err
	}
	rels, err := p.Store.ListReleases(ctx, app)
	if err != nil {
		return 0, err
	}
	var hi int64
	for _, r := range rels {
		hi = max(hi, r.BuildNumber)
	}
	if n <= hi {
		return p.Store.BumpSeq(ctx, app, "build", hi+1-n)
	}
	return n, nil
}

var versionLikeRe = regexp.MustCompile(`^v?\d+(\.\d+){0,3}([-+][0-9A-Za-z.-]+)?$`)

func versionLike(s string) bool { return versionLikeRe.MatchString(s) }

// ErrNoRelease: an uploaded object has no release record (nothing was asked for it).
var ErrNoRelease = errors.New("no release record for uploaded object")

// ErrStaleUpload: an uploaded object is not at its release's bundle key: an upload
// URL of an earlier creation of that version, used after the version was deleted
// and published again.
var ErrStaleUpload = errors.New("upload for an earlier creation of this release")

// ErrUploadDone: the release has its bytes already (it is ready); an upload of the
// same bytes need not be stored.
var ErrUploadDone = errors.New("release already has its bytes")

// CheckUpload tells otad's upload route, before it reads the body, whether an upload
// signed for key is still wanted: nil when key is the bundle key of a pending
// release; ErrUploadDone when that release is ready; ErrNoRelease or ErrStaleUpload
// when no release reads key; a *Error when that release failed validation.
func (p *Pipeline) CheckUpload(ctx context.Context, key string) error {
	r, err := p.releaseOf(ctx, key)
	if err != nil {
		return err
	}
	switch r.Status {
	case release.StatusPending:
		return nil
	case release.StatusReady:
		return ErrUploadDone
	}
	return refuse(fault.Conflict, "release_failed", "release %s failed validation: %s (publish it again to retry)", r.Version, r.Error)
}

// releaseOf is the release whose bundle key is key.
func (p *Pipeline) releaseOf(ctx context.Context, key string) (release.Release, error) {
	app, version, ok := blob.ParseBundleKey(key)
	if !ok {
		return release.Release{}, fmt.Errorf("%s: not a bundle key", key)
	}
	r, err := p.Store.GetRelease(ctx, app, version)
	if errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("%s: %w", key, ErrNoRelease)
	}
	if err != nil {
		return r, err
	}
	if blob.BundleKey(r.AppID, r.Version, r.BundleKey) != key {
		return r, fmt.Errorf("%s: %w", key, ErrStaleUpload)
	}
	return r, nil
}

// Ingest processes an uploaded bundle object: verify the bytes, validate the archive,
// store its files content-addressed and its manifest, then mark the release ready
// with a conditional write. It runs once per release: it first claims the release's
// ingest lease, and a call that finds it held returns ErrBusy (the holder finishes).
// Duplicate or late calls for a ready release do nothing and return nil; a run that
// dies half-way leaves the release pending, and a retry takes over once its lease is
// given back or expired. An object that no release reads (ErrNoRelease,
// ErrStaleUpload) is deleted: only a replayed upload URL can have written it.
func (p *Pipeline) Ingest(ctx context.Context, key string) error {
	r, err := p.releaseOf(ctx, key)
	if errors.Is(err, ErrNoRelease) || errors.Is(err, ErrStaleUpload) {
		p.Log.Warn("upload refused: no release reads this key", "key", key, "err", err)
		if derr := p.Blobs.Delete(ctx, key); derr != nil {
			p.Log.Warn("delete refused upload", "key", key, "err", derr)
		}
	}
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if r.Status != release.StatusPending {
		p.Log.Info("ingest: release already processed", "app", r.AppID, "version", r.Version, "status", r.Status)
		return nil
	}
	// Not uploaded yet (a "complete" while another publish of it is still uploading):
	// answered without writing a lease.
	if _, err := p.Blobs.Stat(ctx, key); err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	holder, r, err := p.claim(ctx, r, ingestLease, func(x *release.Release) bool {
		return x.Status == release.StatusPending && x.BundleKey == r.BundleKey
	})
	switch {
	case errors.Is(err, errNothingToDo):
		return nil
	case errors.Is(err, ErrBusy):
		p.Log.Info("ingest: another worker is on it", "app", r.AppID, "version", r.Version)
		return fmt.Errorf("ingest %s: %w", key, err)
	case err != nil:
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	wctx, stop := p.hold(ctx, r, ingestLease, holder)
	err = p.ingest(wctx, key, r)
	if cause := context.Cause(wctx); err != nil && errors.Is(cause, ErrBusy) {
		err = fmt.Errorf("%w (%w)", err, cause) // lost the lease: the new holder finishes
	}
	stop()
	if err != nil {
		p.letGo(ctx, r, ingestLease, holder)
	}
	return err
}

// ingest is Ingest's work under the lease; markReady and fail end the lease.
func (p *Pipeline) ingest(ctx context.Context, key string, r release.Release) error {
	ctx, cleanup, err := p.jobTemp(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	if r.BuildNumber == 0 { // the creating request died before it drew one
		if r, err = p.assignBuildNumber(ctx, r); err != nil {
			return err
		}
	}
	f, err := p.fetch(ctx, key, r)
	if err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			return p.fail(ctx, r, perr)
		}
		return p.failIfFull(ctx, r, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	if r.Format == release.FormatChunk || r.Encrypted() {
		// Opaque bytes (a Flux chunk, a Capgo-encrypted zip): nothing to unpack.
		return p.failIfFull(ctx, r, p.markReady(ctx, r, "", 0))
	}
	m, err := bundle.Inspect(f, r.Size, p.Limits)
	if err != nil {
		var berr *bundle.Error
		if errors.As(err, &berr) {
			return p.fail(ctx, r, refuse(fault.Unprocessable, berr.Code, "%s", berr.Msg))
		}
		return fmt.Errorf("ingest %s: inspect: %w", key, err)
	}
	if err := p.storeFiles(ctx, f, r, m); err != nil {
		return p.failIfFull(ctx, r, fmt.Errorf("ingest %s: %w", key, err))
	}
	return p.failIfFull(ctx, r, p.markReady(ctx, r, m.TreeHash, len(m.Files)))
}

// failIfFull marks the release failed (insufficient_storage) when err is a lack of
// storage space: no retry succeeds until space is freed, and a release left pending
// keeps the CLI polling. Publishing the same bytes again after a cleanup resets it
// to pending. Other errors are returned as they are (the release stays pending for
// a retry).
func (p *Pipeline) failIfFull(ctx context.Context, r release.Release, err error) error {
	if err == nil || !diskfull.Is(err) {
		return err
	}
	p.Log.Warn("ingest: out of storage space", "app", r.AppID, "version", r.Version, "err", err)
	ferr := p.fail(ctx, r, refuse(fault.StorageFull, diskfull.Code, "%s", diskfull.Advice))
	var refusal *Error
	if errors.As(ferr, &refusal) {
		return ferr // recorded on the release
	}
	return errors.Join(err, ferr) // the database is full too: still a lack of space
}

// markReady is the one conditional write that makes a release visible; it ends the
// ingest lease. Patches are not precomputed here: that can take minutes on a big
// bundle, and Ingest runs inside an upload request on otad. The caller schedules
// Precompute (otad: a background job; the patch Lambda: after Ingest, within its
// deadline).
func (p *Pipeline) markReady(ctx context.Context, r release.Release, treeHash string, files int) error {
	won := false
	_, err := p.Store.UpdateRelease(ctx, r.AppID, r.Version, func(x *release.Release) error {
		won = false
		if x.Status != release.StatusPending || x.BundleKey != r.BundleKey {
			return store.ErrUnchanged // another worker finished first, or the release was replaced
		}
		won = true
		x.Status, x.TreeHash, x.Files, x.ReadyAt = release.StatusReady, treeHash, files, p.Store.Now().UTC()
		x.IngestLease = nil
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark %s@%s ready: %w", r.AppID, r.Version, err)
	}
	if won {
		p.Log.Info("release ready", "app", r.AppID, "version", r.Version, "files", files, "bytes", r.Size)
	}
	return nil
}

// PublishBytes publishes a release whose bytes the server already holds (Flux's
// inline chunk upload): create, store, ingest and precompute, in one call. Unlike
// the upload path it precomputes before returning: Flux's upload answer reports the
// patches generated, and the chunk (at most MaxUploadBody) is already in memory;
// Budget bounds the work.
func (p *Pipeline) PublishBytes(ctx context.Context, in Input, data []byte) (release.Release, error) {
	in.SHA256, in.Size = sign.SHA256Hex(data), int64(len(data))
	r, up, err := p.Create(ctx, in)
	if err != nil {
		return r, err
	}
	if up != nil {
		key := blob.BundleKey(r.AppID, r.Version, r.BundleKey)
		if err := p.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), blob.ContentType(key)); err != nil {
			return r, err
		}
		if err := p.ingestWait(ctx, key); err != nil {
			return r, err
		}
		if err := p.Precompute(ctx, r.AppID, r.Version); err != nil {
			p.Log.Warn("precompute patches failed", "app", r.AppID, "version", r.Version, "err", err)
		}
	}
	return p.Store.GetRelease(ctx, r.AppID, r.Version)
}

// ingestWait is Ingest that, when another worker holds the release, waits for it to
// finish (or to give up, then takes over): the caller answers with the outcome.
func (p *Pipeline) ingestWait(ctx context.Context, key string) error {
	wait := 20 * time.Millisecond
	for {
		err := p.Ingest(ctx, key)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// fetch copies the object into a temp file, checking size and SHA-256.
func (p *Pipeline) fetch(ctx context.Context, key string, r release.Release) (*os.File, error) {
	rc, info, err := p.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer rc.Close()
	if info.Size != r.Size {
		return nil, refuse(fault.Unprocessable, "size_mismatch", "uploaded %d bytes, release declares %d", info.Size, r.Size)
	}
	f, err := os.CreateTemp(p.tempDir(ctx), "bundle-*.zip")
	if err != nil {
		return nil, fmt.Errorf("temp file: %w", err)
	}
	sum, n, err := sign.SHA256HexReader(io.TeeReader(io.LimitReader(rc, r.Size+1), f))
	if err == nil && (n != r.Size || sum != r.SHA256) {
		err = refuse(fault.Unprocessable, "checksum_mismatch", "uploaded bytes do not match the declared sha256")
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// storeFiles writes every file content-addressed (skipping ones already stored) and
// then the manifest.
func (p *Pipeline) storeFiles(ctx context.Context, f *os.File, r release.Release, m *bundle.Manifest) error {
	err := bundle.Walk(f, r.Size, m, func(bf bundle.File, rd io.Reader) error {
		key := blob.FileKey(bf.SHA256)
		if _, err := p.Blobs.Stat(ctx, key); err == nil {
			return nil
		} else if !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		return p.Blobs.Put(ctx, key, rd, bf.Size, blob.ContentType(key))
	})
	if err != nil {
		return fmt.Errorf("store files: %w", err)
	}
	// The manifest is per version, not per creation: do not write it for a release
	// that was deleted (and maybe published again) while this ran.
	if cur, err := p.Store.GetRelease(ctx, r.AppID, r.Version); err != nil {
		return err
	} else if cur.BundleKey != r.BundleKey || cur.Status != release.StatusPending {
		return fmt.Errorf("%s@%s changed while ingesting: %w", r.AppID, r.Version, ErrStaleUpload)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return p.Blobs.Put(ctx, blob.ManifestKey(r.AppID, r.Version), bytes.NewReader(b), int64(len(b)), "application/json")
}

// fail marks a pending release failed with the refusal's code; it ends the ingest
// lease.
func (p *Pipeline) fail(ctx context.Context, r release.Release, e *Error) error {
	p.Log.Warn("release rejected", "app", r.AppID, "version", r.Version, "code", e.Code, "msg", e.Msg)
	_, err := p.Store.UpdateRelease(ctx, r.AppID, r.Version, func(x *release.Release) error {
		if x.Status != release.StatusPending || x.BundleKey != r.BundleKey {
			return store.ErrUnchanged
		}
		x.Status, x.Error, x.IngestLease = release.StatusFailed, e.Code+": "+e.Msg, nil
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark failed: %w", err)
	}
	return e
}
