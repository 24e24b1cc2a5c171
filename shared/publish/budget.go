package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/delta"
)

// PatchBudget bounds the time and memory one patch may take. Each pair is estimated
// before any heavy work (from release sizes, manifests, then samples of the changed
// files) and skipped when it does not fit or cannot pay; a finished patch close to
// the full download is dropped. Zero fields take the defaults below.
type PatchBudget struct {
	// MaxBundle skips a pair when either bundle (zip) is larger.
	MaxBundle int64
	// MaxFile skips a tree pair when a changed file is larger: delta.Create holds a
	// changed file and its reference whole, and about ten times both while coding.
	MaxFile int64
	// MaxMemory skips a pair whose estimated peak memory is larger (default: the
	// smaller of DefaultPatchMaxMemory and 3/4 of Go's soft memory limit).
	MaxMemory int64
	// MaxFlux skips a Flux pair when either bundle is larger: fluxpatch works on
	// both whole bundles in memory.
	MaxFlux int64
	// PairTimeout bounds one pair (less when the caller's deadline is nearer); a
	// pair estimated to take longer is skipped.
	PairTimeout time.Duration
	// MaxRatio: Precompute drops a finished patch larger than this fraction of the
	// new bundle (bundles under minRatioBundle are exempt).
	MaxRatio float64
}

// Budget defaults; the caps keep one computation under about 0.75 GiB.
const (
	DefaultPatchMaxBundle   = 256 << 20
	DefaultPatchMaxFile     = 32 << 20
	DefaultPatchMaxMemory   = 768 << 20
	DefaultPatchMaxFlux     = 64 << 20
	DefaultPatchPairTimeout = 2 * time.Minute
	DefaultPatchMaxRatio    = 0.9
)

// Cost model of delta.Create at its default level, measured on 2 cores under a 1 GiB
// memory limit: content unlike its reference is coded at 0.35-0.5 MB/s (slower as
// it grows), content that mostly matches it at 15-30 MB/s; peak memory is about 10x
// a coded file plus its reference when they match, 18x when they do not.
const (
	slowBytesPerSec  = 256 << 10
	fastBytesPerSec  = 12 << 20
	fluxBytesPerSec  = 16 << 20
	memFactorSimilar = 10
	memFactorUnlike  = 18
	// minRatioBundle: smaller bundles keep any patch; dropping one saves nothing
	// worth a device's failed patch request.
	minRatioBundle = 1 << 20
)

func (b PatchBudget) withDefaults() PatchBudget {
	if b.MaxBundle <= 0 {
		b.MaxBundle = DefaultPatchMaxBundle
	}
	if b.MaxFile <= 0 {
		b.MaxFile = DefaultPatchMaxFile
	}
	if b.MaxMemory <= 0 {
		// Within Go's soft memory limit (otad sets one, awsenv derives one from the
		// Lambda's memory), leaving a quarter to everything else.
		b.MaxMemory = DefaultPatchMaxMemory
		if lim := debug.SetMemoryLimit(-1); lim < math.MaxInt64 {
			b.MaxMemory = min(b.MaxMemory, lim/4*3)
		}
	}
	if b.MaxFlux <= 0 {
		b.MaxFlux = DefaultPatchMaxFlux
	}
	if b.PairTimeout <= 0 {
		b.PairTimeout = DefaultPatchPairTimeout
	}
	if b.MaxRatio <= 0 {
		b.MaxRatio = DefaultPatchMaxRatio
	}
	return b
}

// pairEstimate is what is known about a pair before its patch is computed; what is
// not known yet is zero (Sampled tells whether the content was looked at).
type pairEstimate struct {
	Kind             string
	OldSize, NewSize int64 // bundle (zip) bytes
	// Tree pairs, from the manifests: new files whose content is not in the old tree.
	Changed        int64 // their bytes
	LargestChanged int64 // the largest of them
	LargestRef     int64 // its counterpart in the old tree (same path or name stem), 0 if none
	// Tree pairs, from samples of the changed files.
	Sampled        bool
	Similar        int64 // changed bytes whose probes occur in their old counterpart
	Incompressible int64 // changed bytes neither similar nor compressible
}

// estimatedTime is how long delta.Create (or fluxpatch) should take.
func (e pairEstimate) estimatedTime() time.Duration {
	if e.Kind == KindFlux {
		return seconds(float64(max(e.OldSize, e.NewSize)) / fluxBytesPerSec)
	}
	unlike := e.Changed - e.Similar
	return seconds(float64(unlike)/slowBytesPerSec + float64(e.Similar)/fastBytesPerSec)
}

// estimatedMemory is the peak memory of delta.Create: every coded file is held,
// and the largest one with its reference is worked on.
func (e pairEstimate) estimatedMemory() int64 {
	if e.Kind == KindFlux {
		return 3 * max(e.OldSize, e.NewSize) // old, new and the patch
	}
	factor := float64(memFactorSimilar) // until sampled, the benefit of the doubt
	if e.Sampled && e.Changed > 0 {
		unlike := float64(e.Changed-e.Similar) / float64(e.Changed)
		factor += unlike * (memFactorUnlike - memFactorSimilar)
	}
	return e.Changed + int64(factor*float64(e.LargestChanged+e.LargestRef))
}

func seconds(s float64) time.Duration {
	if s > float64(math.MaxInt64/int64(time.Second)) {
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}

// skipReason decides whether a pair is worth computing with timeLeft to spend: ""
// to compute, else why not. It is called as the estimate fills in, so every rule
// holds with partial knowledge.
func (b PatchBudget) skipReason(e pairEstimate, timeLeft time.Duration) string {
	limit := min(b.PairTimeout, timeLeft)
	switch {
	case limit <= 0:
		return "no time left in this run"
	case max(e.OldSize, e.NewSize) > b.MaxBundle:
		return fmt.Sprintf("bundle of %s over the %s cap", mib(max(e.OldSize, e.NewSize)), mib(b.MaxBundle))
	case e.Kind == KindFlux && max(e.OldSize, e.NewSize) > b.MaxFlux:
		return fmt.Sprintf("flux patches hold both bundles in memory: %s over the %s cap", mib(max(e.OldSize, e.NewSize)), mib(b.MaxFlux))
	case e.Kind == KindTree && e.LargestChanged > b.MaxFile:
		return fmt.Sprintf("changed file of %s over the %s cap", mib(e.LargestChanged), mib(b.MaxFile))
	case e.estimatedMemory() > b.MaxMemory:
		return fmt.Sprintf("estimated memory %s over the %s cap", mib(e.estimatedMemory()), mib(b.MaxMemory))
	case e.Kind == KindTree && e.Sampled && e.NewSize >= minRatioBundle && float64(e.Incompressible) > b.MaxRatio*float64(e.NewSize):
		// Incompressible bytes unlike the old version are stored as they are: the
		// patch cannot be smaller than they are.
		return fmt.Sprintf("%s of incompressible content unlike the old version: the patch would be over %.0f%% of the %s download",
			mib(e.Incompressible), 100*b.MaxRatio, mib(e.NewSize))
	case (e.Kind == KindFlux || e.Sampled) && e.estimatedTime() > limit:
		return fmt.Sprintf("estimated %s over the %s budget", e.estimatedTime().Round(time.Second), limit.Round(time.Second))
	}
	return ""
}

// tooBig reports whether a finished patch is too close to the full download.
func (b PatchBudget) tooBig(patchSize, newSize int64) bool {
	return newSize >= minRatioBundle && float64(patchSize) > b.MaxRatio*float64(newSize)
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// change is a new file whose content is not in the old tree, with the old file it
// most likely derives from ("" if none).
type change struct {
	path, ref string
	size      int64
	refSize   int64
}

// manifestOf returns a release's stored manifest.
func (p *Pipeline) manifestOf(ctx context.Context, app, version string) (*bundle.Manifest, error) {
	rc, info, err := p.Blobs.Open(ctx, blob.ManifestKey(app, version), 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m bundle.Manifest
	if err := json.NewDecoder(io.LimitReader(rc, info.Size+1)).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest %s@%s: %w", app, version, err)
	}
	return &m, nil
}

// changedFiles lists the new files whose content the old tree lacks (the files
// delta.Create codes) and fills in the manifest part of the estimate.
func changedFiles(oldM, newM *bundle.Manifest, e *pairEstimate) []change {
	have := make(map[string]bool, len(oldM.Files))
	byPath := make(map[string]bundle.File, len(oldM.Files))
	byStem := make(map[string]bundle.File, len(oldM.Files))
	for _, f := range oldM.Files {
		have[f.SHA256] = true
		byPath[f.Path] = f
		byStem[stem(f.Path)] = f
	}
	var out []change
	for _, f := range newM.Files {
		if have[f.SHA256] {
			continue
		}
		c := change{path: f.Path, size: f.Size}
		ref, ok := byPath[f.Path]
		if !ok {
			ref, ok = byStem[stem(f.Path)]
		}
		if ok {
			c.ref, c.refSize = ref.Path, ref.Size
		}
		out = append(out, c)
		e.Changed += f.Size
		if f.Size > e.LargestChanged {
			e.LargestChanged, e.LargestRef = f.Size, c.refSize
		}
	}
	return out
}

// stem is a path with hash-like name parts dropped, so that a bundler's renamed
// chunk (index-3f9a1c2b.js -> index-77d0e1aa.js) finds its previous version.
func stem(p string) string {
	dir, base := path.Split(p)
	parts := strings.FieldsFunc(base, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	kept := parts[:0]
	for _, s := range parts {
		if !hashLike(s) {
			kept = append(kept, s)
		}
	}
	return dir + strings.Join(kept, ".")
}

func hashLike(s string) bool {
	if len(s) < 6 {
		return false
	}
	digit := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		default:
			return false
		}
	}
	return digit
}

// Sampling: probes of probeLen bytes at probes evenly spaced offsets of each changed
// file are looked up in its old counterpart, and the entropy of entropyBlock bytes
// around each tells compressed media from text.
const (
	probes       = 16
	probeLen     = 32
	entropyBlock = 16 << 10
)

// sampleChanged fills in the sampled part of the estimate. Files are read one at a
// time (a changed file and its counterpart are at most MaxFile each, checked
// before); it stops early, leaving Sampled false, when ctx ends.
func sampleChanged(ctx context.Context, oldFS, newFS fs.FS, changes []change, e *pairEstimate) error {
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := fs.ReadFile(newFS, c.path)
		if err != nil {
			return fmt.Errorf("sample %s: %w", c.path, err)
		}
		var ref []byte
		if c.ref != "" {
			if ref, err = fs.ReadFile(oldFS, c.ref); err != nil {
				return fmt.Errorf("sample %s: %w", c.ref, err)
			}
		}
		similar, incompressible := sampleFile(data, ref)
		e.Similar += int64(similar * float64(len(data)))
		e.Incompressible += int64((1 - similar) * incompressible * float64(len(data)))
	}
	e.Sampled = true
	return nil
}

// sampleFile returns the fraction of data's probes found in ref and the fraction of
// its sampled blocks that look incompressible.
func sampleFile(data, ref []byte) (similar, incompressible float64) {
	if len(data) < 1024 {
		return 0, 0 // small files cost nothing either way
	}
	n := min(probes, len(data)/probeLen)
	var found, dense int
	for i := range n {
		off := i * (len(data) - probeLen) / max(n-1, 1)
		probe := data[off : off+probeLen]
		// Same offset first: an in-place edit leaves everything else where it was.
		if (off+probeLen <= len(ref) && bytes.Equal(ref[off:off+probeLen], probe)) || bytes.Contains(ref, probe) {
			found++
		}
		lo := max(0, min(off, len(data)-entropyBlock))
		if delta.Entropy(data[lo:min(len(data), lo+entropyBlock)]) > delta.IncompressibleEntropy {
			dense++
		}
	}
	return float64(found) / float64(n), float64(dense) / float64(n)
}

// CodePatchSkipped is the *Error code of a pair the budget skipped.
const CodePatchSkipped = "patch_skipped"

// IsPatchSkipped reports whether err is a budget skip (nothing is wrong; the full
// bundle serves that pair).
func IsPatchSkipped(err error) bool {
	var pe *Error
	return errors.As(err, &pe) && pe.Code == CodePatchSkipped
}

// timeLeft is what remains before ctx's deadline (the budget when there is none).
func timeLeft(ctx context.Context, b PatchBudget) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return b.PairTimeout
}
