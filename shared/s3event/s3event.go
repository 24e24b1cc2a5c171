// Package s3event turns S3 ObjectCreated notifications into publish.Pipeline calls:
// what the patch Lambda does, kept out of its main.go so it can be tested. A bundle
// (bundles/<app>/<version>/<nonce>.zip, or bundles/<app>/<version>.zip for releases
// made before keys had a nonce) is ingested (Pipeline.Ingest), then patches to it are
// precomputed (Pipeline.Precompute) in the same invocation, within what is left of
// the Lambda deadline minus a margin; nothing waits on that (the CLI polls the
// release, which is ready already). A patch request marker
// (patch-requests/<kind>/<app>/<from>/<to>, written by the check function for a patch
// that was not precomputed) is computed (Pipeline.HandlePatchRequest).
//
// S3 invokes the function asynchronously; an error return makes Lambda retry the
// whole event (twice by default). Both calls run once per release (the pipeline
// claims the work with a lease on the release record), so duplicate events are cheap:
// one that finds another invocation validating the bundle waits for it, and takes
// over if that one dies (its lease expires). Only retryable failures are returned: a
// key that is neither a bundle nor a valid patch request, an upload nobody asked for
// (publish.ErrNoRelease), one through an upload URL of an earlier creation of the
// release (publish.ErrStaleUpload: presigned URLs cannot be revoked, so S3 stored it;
// the pipeline deletes it) or a bundle or request the pipeline refused
// (*publish.Error; a refused bundle's release is then marked failed) are logged and
// dropped.
package s3event

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
)

// Ingester is the part of *publish.Pipeline the handler needs.
type Ingester interface {
	Ingest(ctx context.Context, key string) error
}

// PatchRequester is the part of *publish.Pipeline that serves patch requests.
type PatchRequester interface {
	HandlePatchRequest(ctx context.Context, key string) error
}

// Precomputer is the part of *publish.Pipeline that precomputes patches to a release.
type Precomputer interface {
	Precompute(ctx context.Context, app, version string) error
}

// DefaultPrecomputeMargin is kept free before the invocation's deadline: precomputing
// stops that much earlier, so a patch is never cut off by the Lambda timeout while
// it is being written (the pipeline's estimate skips pairs that would not fit).
const DefaultPrecomputeMargin = 20 * time.Second

// Handler processes S3 events.
type Handler struct {
	Ingester Ingester
	// PatchRequests handles patch request markers; nil: the Ingester, when it
	// implements PatchRequester (*publish.Pipeline does).
	PatchRequests PatchRequester
	// Precompute runs after a successful Ingest; nil: the Ingester, when it
	// implements Precomputer (*publish.Pipeline does).
	Precompute Precomputer
	// PrecomputeMargin is left before ctx's deadline by patch work, precomputed or
	// requested (0: DefaultPrecomputeMargin).
	PrecomputeMargin time.Duration
	// Bucket, when set, is the only bucket whose records are processed (others are
	// logged and dropped).
	Bucket string
	Log    *slog.Logger
}

// Key decodes an S3 event object key: keys in S3 notifications are URL-encoded
// with '+' for a space.
func Key(raw string) (string, error) {
	return url.QueryUnescape(raw)
}

// Permanent reports whether an Ingest error will not go away by retrying.
func Permanent(err error) bool {
	var perr *publish.Error
	return errors.Is(err, publish.ErrNoRelease) || errors.Is(err, publish.ErrStaleUpload) || errors.As(err, &perr)
}

// Handle ingests every ObjectCreated record of ev. It processes all records and
// returns the retryable failures joined (nil when there are none).
func (h Handler) Handle(ctx context.Context, ev events.S3Event) error {
	log := h.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for i, rec := range ev.Records {
		if err := h.record(ctx, log, rec); err != nil {
			errs = append(errs, fmt.Errorf("record %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (h Handler) record(ctx context.Context, log *slog.Logger, rec events.S3EventRecord) error {
	bucket, raw := rec.S3.Bucket.Name, rec.S3.Object.Key
	if !strings.HasPrefix(rec.EventName, "ObjectCreated:") {
		log.Info("s3 event ignored: not an object creation", "event", rec.EventName, "bucket", bucket, "key", raw)
		return nil
	}
	if h.Bucket != "" && bucket != h.Bucket {
		log.Warn("s3 event ignored: unexpected bucket", "bucket", bucket, "want", h.Bucket, "key", raw)
		return nil
	}
	key, err := Key(raw)
	if err != nil {
		log.Warn("s3 event ignored: undecodable key", "bucket", bucket, "key", raw, "err", err)
		return nil
	}
	if strings.HasPrefix(key, publish.PatchRequestPrefix) {
		return h.patchRequest(ctx, log, key)
	}
	if _, _, ok := blob.ParseBundleKey(key); !ok || !blob.ValidKey(key) {
		log.Warn("s3 event ignored: not a bundle key", "bucket", bucket, "key", key)
		return nil
	}
	err = h.ingest(ctx, log, key)
	switch {
	case err == nil:
		log.Info("ingested", "key", key, "size", rec.S3.Object.Size)
		h.precompute(ctx, log, key)
		return nil
	case Permanent(err):
		log.Warn("ingest refused, dropped", "key", key, "err", err)
		return nil
	default:
		log.Error("ingest failed, will retry", "key", key, "err", err)
		return err
	}
}

// ingest runs Ingest; while another invocation holds the release (a duplicate
// event) it waits for that one to finish, and takes over if it dies, within the
// invocation's deadline minus the margin: past it the error is returned and Lambda
// retries the event later.
func (h Handler) ingest(ctx context.Context, log *slog.Logger, key string) error {
	wctx, cancel, ok := h.budget(ctx)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		err := h.Ingester.Ingest(ctx, key)
		if !errors.Is(err, publish.ErrBusy) || !ok {
			return err
		}
		log.Info("ingest in progress elsewhere, waiting", "key", key)
		select {
		case <-wctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (h Handler) patchRequest(ctx context.Context, log *slog.Logger, key string) error {
	if _, _, _, _, err := publish.ParsePatchRequestKey(key); err != nil {
		log.Warn("s3 event ignored: invalid patch request key", "key", key, "err", err)
		return nil
	}
	pr := h.PatchRequests
	if pr == nil {
		pr, _ = h.Ingester.(PatchRequester)
	}
	if pr == nil {
		log.Warn("s3 event ignored: no handler for patch requests", "key", key)
		return nil
	}
	ctx, cancel, ok := h.budget(ctx)
	defer cancel()
	if !ok {
		log.Warn("patch request not handled: no time left in this invocation, will retry", "key", key)
		return fmt.Errorf("patch request %s: no time left in this invocation", key)
	}
	err := pr.HandlePatchRequest(ctx, key)
	switch {
	case err == nil:
		log.Info("patch request done", "key", key)
		return nil
	case Permanent(err):
		log.Warn("patch request refused, dropped", "key", key, "err", err)
		return nil
	default:
		log.Error("patch request failed, will retry", "key", key, "err", err)
		return err
	}
}

// precompute makes patches to the release just ingested, within the invocation's
// deadline minus the margin. Its failures are logged, never returned: the release is
// ready, and retrying the whole event for an optional patch is not worth it (a
// missing patch is asked for again by the next device that needs it). Duplicate
// events do not repeat it: Precompute runs once per release.
func (h Handler) precompute(ctx context.Context, log *slog.Logger, key string) {
	pc := h.Precompute
	if pc == nil {
		pc, _ = h.Ingester.(Precomputer)
	}
	if pc == nil {
		return
	}
	app, version, _ := blob.ParseBundleKey(key)
	ctx, cancel, ok := h.budget(ctx)
	defer cancel()
	if !ok {
		log.Info("precompute skipped: no time left in this invocation", "key", key)
		return
	}
	if err := pc.Precompute(ctx, app, version); err != nil {
		log.Warn("precompute patches failed", "key", key, "err", err)
		return
	}
	log.Info("patches precomputed", "key", key)
}

// budget is ctx with its deadline (the invocation's) moved PrecomputeMargin earlier,
// so patch work ends, written or abandoned, before Lambda stops the function; false
// when that leaves no time.
func (h Handler) budget(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	margin := h.PrecomputeMargin
	if margin <= 0 {
		margin = DefaultPrecomputeMargin
	}
	d, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}, true
	}
	if time.Until(d) <= margin {
		return ctx, func() {}, false
	}
	ctx, cancel := context.WithDeadline(ctx, d.Add(-margin))
	return ctx, cancel, true
}
