package publish

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/delta"
	"github.com/otakit/ota/shared/fluxpatch"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
)

// Patch kinds.
const (
	KindTree = "ota"  // our tree patch (shared/delta), for our Go client
	KindFlux = "flux" // Flux's XOR/full format over the whole chunk
)

// Precompute makes patches to version from the last PatchBases ready releases of the
// same app and platform. Existing patches are kept (patches are content-addressed,
// so repeating this is harmless).
func (p *Pipeline) Precompute(ctx context.Context, app, version string) error {
	to, err := p.Store.GetRelease(ctx, app, version)
	if err != nil {
		return err
	}
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
		n++
		kinds := []string{KindTree, KindFlux}
		if from.Format == release.FormatChunk || to.Format == release.FormatChunk || from.Encrypted() || to.Encrypted() {
			kinds = []string{KindFlux} // opaque bytes have no tree
		}
		for _, kind := range kinds {
			if _, err := p.EnsurePatch(ctx, app, kind, from.Version, to.Version); err != nil {
				errs = append(errs, fmt.Errorf("%s patch %s->%s: %w", kind, from.Version, to.Version, err))
			}
		}
	}
	return errors.Join(errs...)
}

// EnsurePatch returns the patch record for a pair, computing and storing it if needed.
func (p *Pipeline) EnsurePatch(ctx context.Context, app, kind, from, to string) (store.Patch, error) {
	if rec, err := p.Store.GetPatch(ctx, app, kind, from, to); err == nil {
		return rec, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return rec, err
	}
	var buf bytes.Buffer
	var err error
	switch kind {
	case KindTree:
		err = p.treePatch(ctx, app, from, to, &buf)
	case KindFlux:
		err = p.fluxPatch(ctx, app, from, to, &buf)
	default:
		err = fmt.Errorf("unknown patch kind %q", kind)
	}
	if err != nil {
		return store.Patch{}, err
	}
	sum := sign.SHA256Hex(buf.Bytes())
	key := blob.PatchKey(kind, sum)
	if err := p.Blobs.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), "application/octet-stream"); err != nil {
		return store.Patch{}, err
	}
	rec := store.Patch{AppID: app, Kind: kind, From: from, To: to, Key: key, Size: int64(buf.Len()), SHA256: sum, Created: p.Store.Now().UTC()}
	if err := p.Store.PutPatch(ctx, rec); err != nil {
		return rec, err
	}
	p.Log.Info("patch stored", "app", app, "kind", kind, "from", from, "to", to, "bytes", rec.Size)
	return rec, nil
}

func (p *Pipeline) treePatch(ctx context.Context, app, from, to string, w io.Writer) error {
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
	_, err = delta.Create(ctx, oldFS, newFS, w, delta.Options{})
	return err
}

func (p *Pipeline) fluxPatch(ctx context.Context, app, from, to string, w io.Writer) error {
	oldB, err := p.readAll(ctx, blob.BundleKey(app, from))
	if err != nil {
		return err
	}
	newB, err := p.readAll(ctx, blob.BundleKey(app, to))
	if err != nil {
		return err
	}
	out, err := fluxpatch.Create(oldB, newB)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func (p *Pipeline) readAll(ctx context.Context, key string) ([]byte, error) {
	rc, _, err := p.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// openTree opens a release's zip as a file tree rooted where index.html is.
func (p *Pipeline) openTree(ctx context.Context, app, version string) (fs.FS, func(), error) {
	r, err := p.Store.GetRelease(ctx, app, version)
	if err != nil {
		return nil, nil, err
	}
	key := blob.BundleKey(app, version)
	rc, _, err := p.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(p.TempDir, "tree-*.zip")
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
