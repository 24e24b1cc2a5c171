package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Every temp file of one pipeline call (an ingest, a precomputation, a patch) lives
// in a folder of its own under TempDir, removed as the call returns whatever happened
// inside it (an error, a cancellation half-way). What a killed process left is
// removed by SweepTemp: otad sweeps its temp folder at start and after each
// background job.

// jobPrefix names the per-call folders.
const jobPrefix = "job-"

type jobDirKey struct{}

// jobTemp returns ctx carrying a new folder for the call's temp files and the func
// that removes it. A nested call (Ingest inside PublishBytes) shares its caller's.
func (p *Pipeline) jobTemp(ctx context.Context) (context.Context, func(), error) {
	if _, ok := ctx.Value(jobDirKey{}).(string); ok {
		return ctx, func() {}, nil
	}
	dir, err := os.MkdirTemp(p.TempDir, jobPrefix+"*")
	if err != nil {
		return ctx, func() {}, fmt.Errorf("temp folder: %w", err)
	}
	return context.WithValue(ctx, jobDirKey{}, dir), func() {
		if err := os.RemoveAll(dir); err != nil {
			p.Log.Warn("remove temp folder", "dir", dir, "err", err)
		}
	}, nil
}

// tempDir is where the call in ctx puts temp files.
func (p *Pipeline) tempDir(ctx context.Context) string {
	if dir, ok := ctx.Value(jobDirKey{}).(string); ok {
		return dir
	}
	return p.TempDir
}

// SweepTemp removes the entries of dir (a folder the pipeline owns, such as otad's
// data/tmp) in which nothing changed for age; age 0 removes everything, which only
// the folder's sole user may do when nothing runs yet (otad at start). It returns how
// many entries it removed.
func SweepTemp(dir string, age time.Duration) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", dir, err)
	}
	cutoff := time.Now().Add(-age)
	n := 0
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if age > 0 && changedSince(p, cutoff) {
			continue // in use: an upload or a job still writes there
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// changedSince reports whether p, or anything under it, was modified after t.
func changedSince(p string, t time.Time) bool {
	found := false
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(t) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}
