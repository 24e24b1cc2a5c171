package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Patches that were not precomputed are asked for, not computed, on the read path: a
// request for a missing pair gets the full bundle at once (the caller answers 404 or
// offers no patch), and RequestPatch leaves a marker object
//
//	patch-requests/<kind>/<app>/<from>/<to>
//
// in blob storage. On AWS the marker's ObjectCreated notification invokes the patch
// function (shared/s3event), which calls HandlePatchRequest; otad calls it in-process
// in the background. HandlePatchRequest computes the patch (EnsurePatch) and deletes
// the marker. The read path thus needs only a PutObject on patch-requests/, never the
// CPU, memory or write access a patch needs.

// PatchRequestPrefix is where patch request markers live.
const PatchRequestPrefix = "patch-requests/"

// DefaultPatchRequestStale is how old a marker must be before RequestPatch writes it
// again: a marker whose processing failed (retries exhausted, process gone) stays
// behind, and rewriting it sends a new notification.
const DefaultPatchRequestStale = 15 * time.Minute

// ErrBadPatchRequest: the marker key or the pair it names is not valid.
var ErrBadPatchRequest = errors.New("bad patch request")

// PatchRequestKey is the marker key for a pair; it fails on a pair that has no patch
// (unknown kind, invalid app id or version, from == to).
func PatchRequestKey(app, kind, from, to string) (string, error) {
	if err := validPair(app, kind, from, to); err != nil {
		return "", err
	}
	key := PatchRequestPrefix + kind + "/" + app + "/" + from + "/" + to
	if !blob.ValidKey(key) {
		return "", fmt.Errorf("%w: key %q", ErrBadPatchRequest, key)
	}
	return key, nil
}

// ParsePatchRequestKey is the inverse of PatchRequestKey. Keys come from S3 events:
// every part is validated.
func ParsePatchRequestKey(key string) (app, kind, from, to string, err error) {
	rest, ok := strings.CutPrefix(key, PatchRequestPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 4 || !blob.ValidKey(key) {
		return "", "", "", "", fmt.Errorf("%w: %q is not %s<kind>/<app>/<from>/<to>", ErrBadPatchRequest, key, PatchRequestPrefix)
	}
	kind, app, from, to = parts[0], parts[1], parts[2], parts[3]
	if err := validPair(app, kind, from, to); err != nil {
		return "", "", "", "", err
	}
	return app, kind, from, to, nil
}

func validPair(app, kind, from, to string) error {
	if kind != KindTree && kind != KindFlux {
		return fmt.Errorf("%w: unknown patch kind %q", ErrBadPatchRequest, kind)
	}
	if err := release.ValidAppID(app); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPatchRequest, err)
	}
	for _, v := range []string{from, to} {
		if err := release.ValidVersion(v); err != nil {
			return fmt.Errorf("%w: %v", ErrBadPatchRequest, err)
		}
	}
	if from == to {
		return fmt.Errorf("%w: from and to are both %q", ErrBadPatchRequest, from)
	}
	return nil
}

// patchRequest is the marker's body (informational: the key says it all).
type patchRequest struct {
	Kind      string    `json:"kind"`
	App       string    `json:"app"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Requested time.Time `json:"requested"`
}

func (p *Pipeline) patchRequestStale() time.Duration {
	if p.PatchRequestStale > 0 {
		return p.PatchRequestStale
	}
	return DefaultPatchRequestStale
}

// RequestPatch asks for the patch of a pair to be computed in the background. It is
// idempotent and cheap: nothing is written when the patch exists or a recent marker
// for the pair does (an older one is written again, see DefaultPatchRequestStale).
// It needs store reads, blob Stat, and a blob Put under patch-requests/ only.
func (p *Pipeline) RequestPatch(ctx context.Context, app, kind, from, to string) error {
	key, err := PatchRequestKey(app, kind, from, to)
	if err != nil {
		return err
	}
	if _, err := p.Store.GetPatch(ctx, app, kind, from, to); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := p.Store.Now().UTC()
	info, err := p.Blobs.Stat(ctx, key)
	switch {
	case err == nil && now.Sub(info.ModTime) < p.patchRequestStale():
		return nil // already requested
	case err != nil && !errors.Is(err, blob.ErrNotFound):
		return err
	}
	body, err := json.Marshal(patchRequest{Kind: kind, App: app, From: from, To: to, Requested: now})
	if err != nil {
		return err
	}
	if err := p.Blobs.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "application/json"); err != nil {
		return err
	}
	p.Log.Info("patch requested", "app", app, "kind", kind, "from", from, "to", to)
	return nil
}

// HandlePatchRequest computes the patch a marker asks for and deletes the marker. A
// marker that can never be served (invalid key, release gone or not ready, kind not
// applicable) is a *Error (permanent: drop it, do not retry); an invalid key is left
// alone, any other permanent marker is deleted. A pair the patch budget skips is a
// *Error too (CodePatchSkipped) whose marker is kept until it is stale. Other errors
// are transient and leave the marker for a retry.
func (p *Pipeline) HandlePatchRequest(ctx context.Context, key string) error {
	app, kind, from, to, err := ParsePatchRequestKey(key)
	if err != nil {
		return refuse(fault.Invalid, "bad_patch_request", "%v", err)
	}
	if err := p.patchablePair(ctx, app, kind, from, to); err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			if derr := p.Blobs.Delete(ctx, key); derr != nil {
				p.Log.Warn("patch request marker not deleted", "key", key, "err", derr)
			}
		}
		return err
	}
	if _, err := p.EnsurePatch(ctx, app, kind, from, to); err != nil {
		if IsPatchSkipped(err) {
			// The marker stays: RequestPatch writes nothing while it is recent, so
			// devices asking for this pair do not rerun the estimate on every check.
			return err
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, blob.ErrNotFound) {
			// A release or its bundle went away meanwhile.
			if derr := p.Blobs.Delete(ctx, key); derr != nil {
				p.Log.Warn("patch request marker not deleted", "key", key, "err", derr)
			}
			return refuse(fault.NotFound, "patch_request_obsolete", "%s patch %s %s->%s: %v", kind, app, from, to, err)
		}
		return fmt.Errorf("%s patch %s %s->%s: %w", kind, app, from, to, err)
	}
	if err := p.Blobs.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete patch request %s: %w", key, err)
	}
	return nil
}

// patchablePair checks that both releases exist, are ready and suit the kind.
func (p *Pipeline) patchablePair(ctx context.Context, app, kind, from, to string) error {
	for _, v := range []string{from, to} {
		r, err := p.Store.GetRelease(ctx, app, v)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(fault.NotFound, "patch_request_obsolete", "release %s@%s does not exist", app, v)
		}
		if err != nil {
			return err
		}
		if r.Status != release.StatusReady {
			return refuse(fault.Conflict, "patch_request_obsolete", "release %s@%s is %s, not ready", app, v, r.Status)
		}
		if kind == KindTree && (r.Format == release.FormatChunk || r.Encrypted()) {
			return refuse(fault.Invalid, "bad_patch_request", "release %s@%s has no file tree for an %s patch", app, v, kind)
		}
	}
	return nil
}
