package publish

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/testenv"
)

const mb = 1 << 20

func TestSkipReason(t *testing.T) {
	b := PatchBudget{MaxMemory: DefaultPatchMaxMemory}.withDefaults() // not from this process's GOMEMLIMIT
	tree := func(e pairEstimate) pairEstimate { e.Kind = KindTree; return e }
	flux := func(e pairEstimate) pairEstimate { e.Kind = KindFlux; return e }
	for _, tc := range []struct {
		name string
		e    pairEstimate
		left time.Duration
		want string // substring of the reason; "" to compute
	}{
		{"small tree, nothing known yet", tree(pairEstimate{OldSize: 2 * mb, NewSize: 2 * mb}), time.Hour, ""},
		{"no time left", tree(pairEstimate{OldSize: 1, NewSize: 1}), 0, "no time left"},
		{"new bundle over the cap", tree(pairEstimate{OldSize: 1, NewSize: 300 * mb}), time.Hour, "bundle of 300.0 MiB over the 256.0 MiB cap"},
		{"old bundle over the cap", flux(pairEstimate{OldSize: 300 * mb, NewSize: 1}), time.Hour, "over the 256.0 MiB cap"},
		{"flux over its cap", flux(pairEstimate{OldSize: 150 * mb, NewSize: 150 * mb}), time.Hour, "flux patches hold both bundles in memory"},
		{"flux under its cap", flux(pairEstimate{OldSize: 20 * mb, NewSize: 20 * mb}), time.Hour, ""},
		{"flux slower than the time left", flux(pairEstimate{OldSize: 60 * mb, NewSize: 60 * mb}), time.Second, "estimated 4s over the 1s budget"},
		{"tree: a changed file over the cap", tree(pairEstimate{OldSize: 150 * mb, NewSize: 150 * mb, Changed: 150 * mb, LargestChanged: 150 * mb, LargestRef: 150 * mb}),
			time.Hour, "changed file of 150.0 MiB over the 32.0 MiB cap"},
		{"tree: memory", tree(pairEstimate{OldSize: 200 * mb, NewSize: 200 * mb, Changed: 200 * mb, LargestChanged: 30 * mb, LargestRef: 30 * mb}),
			time.Hour, "estimated memory 800.0 MiB over the 768.0 MiB cap"},
		{"tree: unsampled estimates never skip on time", tree(pairEstimate{OldSize: 20 * mb, NewSize: 20 * mb, Changed: 20 * mb, LargestChanged: 1 * mb}), time.Second, ""},
		{"tree: incompressible and unlike", tree(pairEstimate{OldSize: 30 * mb, NewSize: 30 * mb, Changed: 30 * mb, LargestChanged: 30 * mb,
			Sampled: true, Incompressible: 29 * mb}), time.Hour, "incompressible content unlike the old version"},
		{"tree: incompressible but similar (one byte changed)", tree(pairEstimate{OldSize: 30 * mb, NewSize: 30 * mb, Changed: 30 * mb, LargestChanged: 30 * mb,
			LargestRef: 30 * mb, Sampled: true, Similar: 30 * mb}), time.Hour, ""},
		{"tree: small bundles keep their patch", tree(pairEstimate{OldSize: 100 << 10, NewSize: 100 << 10, Changed: 100 << 10, LargestChanged: 100 << 10,
			Sampled: true, Incompressible: 100 << 10}), time.Hour, ""},
		{"tree: compressible but unlike, too slow", tree(pairEstimate{OldSize: 30 * mb, NewSize: 30 * mb, Changed: 100 * mb, LargestChanged: 10 * mb,
			Sampled: true}), time.Hour, "estimated 6m40s over the 2m0s budget"},
		{"tree: the caller's deadline is nearer than the pair timeout", tree(pairEstimate{OldSize: 8 * mb, NewSize: 8 * mb, Changed: 8 * mb, LargestChanged: 8 * mb,
			Sampled: true}), 10 * time.Second, "estimated 32s over the 10s budget"},
		{"tree: sampled, a big file unlike its old version needs more memory", tree(pairEstimate{OldSize: 40 * mb, NewSize: 40 * mb, Changed: 30 * mb, LargestChanged: 30 * mb,
			LargestRef: 30 * mb, Sampled: true}), time.Hour, "estimated memory 1110.0 MiB over the 768.0 MiB cap"},
		{"tree: sampled, the same file mostly unchanged", tree(pairEstimate{OldSize: 40 * mb, NewSize: 40 * mb, Changed: 30 * mb, LargestChanged: 30 * mb,
			LargestRef: 30 * mb, Sampled: true, Similar: 30 * mb}), time.Hour, ""},
		{"tree: the same with time to spare", tree(pairEstimate{OldSize: 8 * mb, NewSize: 8 * mb, Changed: 8 * mb, LargestChanged: 8 * mb,
			Sampled: true}), time.Hour, ""},
	} {
		got := b.skipReason(tc.e, tc.left)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: skipReason = %q, want %q", tc.name, got, tc.want)
		}
	}
	if !b.tooBig(95*mb, 100*mb) || b.tooBig(80*mb, 100*mb) || b.tooBig(1000, 1000) {
		t.Error("tooBig: want only patches over 90% of a bundle of 1 MiB or more dropped")
	}
}

func TestSampleFile(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	text := bytes.Repeat([]byte("export function render(props) { return props.value + 1; }\n"), 20000)
	old := random(4 * mb)
	oneByte := bytes.Clone(old)
	oneByte[len(oneByte)/2] ^= 1
	inserted := append(append(bytes.Clone(old[:mb]), "inserted"...), old[mb:]...)
	for _, tc := range []struct {
		name                      string
		data, ref                 []byte
		similar, incompressible   float64
		similarMin, incompressMin float64
	}{
		{name: "random, one byte changed", data: oneByte, ref: old, similarMin: 0.9, incompressMin: 0.9},
		{name: "random, bytes inserted", data: inserted, ref: old, similarMin: 0.9, incompressMin: 0.9},
		{name: "random, unlike", data: random(4 * mb), ref: old, incompressMin: 0.9},
		{name: "random, no counterpart", data: random(mb), incompressMin: 0.9},
		{name: "text, no counterpart", data: text},
		{name: "small file", data: []byte("tiny"), ref: []byte("tiny")},
	} {
		sim, inc := sampleFile(tc.data, tc.ref)
		if sim < tc.similarMin || (tc.similarMin == 0 && sim > 0.1) || inc < tc.incompressMin || (tc.incompressMin == 0 && inc > 0.1) {
			t.Errorf("%s: similar %.2f, incompressible %.2f", tc.name, sim, inc)
		}
	}
}

func TestStem(t *testing.T) {
	for in, want := range map[string]string{
		"assets/index-3f9a1c2b.js":   "assets/index.js",
		"assets/index-77d0e1aa.js":   "assets/index.js",
		"assets/vendor.BQeQ7x1z.css": "assets/vendor.css",
		"index.html":                 "index.html",
		"img/logo_2x.png":            "img/logo.2x.png",
	} {
		if got := stem(in); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}

// logRecorder keeps log records (to assert on skips).
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// skips returns the reasons of "patch skipped" records logged at Info.
func (l *logRecorder) skips() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Message != "patch skipped" || r.Level != slog.LevelInfo {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

// Ingest makes a release ready without computing any patch; Precompute then skips
// the pairs over the budget with a logged reason and leaves no temp file behind.
func TestIngestDoesNotPrecompute(t *testing.T) {
	p, blobs := newPipeline(t)
	logs := &logRecorder{}
	p.Log = slog.New(logs)
	p.TempDir = t.TempDir()
	p.Budget = PatchBudget{MaxFile: 64 << 10}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, 200<<10)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	publish := func(v string) {
		z := testenv.Zip(t, map[string]string{"index.html": "<html>", "big.bin": string(big)})
		in := Input{AppID: "app", Version: v, SHA256: sign.SHA256Hex(z), Size: int64(len(z))}
		r, _, err := p.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		key := blob.BundleKey("app", v, r.BundleKey)
		if err := blobs.Put(ctx, key, bytes.NewReader(z), int64(len(z)), "application/zip"); err != nil {
			t.Fatal(err)
		}
		if err := p.Ingest(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	publish("1.0.0")
	big[len(big)/2] ^= 1
	publish("1.0.1")
	for _, kind := range []string{KindTree, KindFlux} {
		if _, err := p.Store.GetPatch(ctx, "app", kind, "1.0.0", "1.0.1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Ingest computed a %s patch: %v", kind, err)
		}
	}
	if err := p.Precompute(ctx, "app", "1.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Store.GetPatch(ctx, "app", KindTree, "1.0.0", "1.0.1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("tree patch over the file cap: %v", err)
	}
	if _, err := p.Store.GetPatch(ctx, "app", KindFlux, "1.0.0", "1.0.1"); err != nil {
		t.Errorf("flux patch under its cap: %v", err)
	}
	if got := logs.skips(); len(got) != 1 || !strings.Contains(got[0], "changed file of 200 KiB over the 64 KiB cap") {
		t.Errorf("skips logged: %q", got)
	}
	if _, err := p.EnsurePatch(ctx, "app", KindTree, "1.0.0", "1.0.1"); !IsPatchSkipped(err) {
		t.Errorf("EnsurePatch over the cap: %v", err)
	}
	if left, _ := os.ReadDir(p.TempDir); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// A precomputed patch close to the full download is dropped, not stored.
func TestPatchNearFullSizeDropped(t *testing.T) {
	p, _ := newPipeline(t)
	logs := &logRecorder{}
	p.Log = slog.New(logs)
	p.TempDir = t.TempDir()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	chunk := func() []byte { // incompressible: an XOR patch of two is as big as one
		b := make([]byte, 2*mb)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, err := p.PublishBytes(ctx, Input{AppID: "app", Version: v, Format: release.FormatChunk}, chunk()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Store.GetPatch(ctx, "app", KindFlux, "1.0.0", "1.0.1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("precomputed patch near the full size kept: %v", err)
	}
	if got := logs.skips(); len(got) != 1 || !strings.Contains(got[0], "over 90% of the 2.0 MiB download") {
		t.Errorf("skips logged: %q", got)
	}
	// Asked for explicitly, it is kept.
	if rec, err := p.EnsurePatch(ctx, "app", KindFlux, "1.0.0", "1.0.1"); err != nil || rec.Size < 2*mb {
		t.Fatalf("EnsurePatch: %+v, %v", rec, err)
	}
	if left, _ := os.ReadDir(p.TempDir); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// The default memory budget stays within Go's soft memory limit.
func TestBudgetFollowsMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(400 << 20)
	defer debug.SetMemoryLimit(prev)
	if got := (PatchBudget{}).withDefaults().MaxMemory; got != 300<<20 {
		t.Errorf("MaxMemory under a 400 MiB limit = %d, want 300 MiB", got)
	}
	debug.SetMemoryLimit(4 << 30)
	if got := (PatchBudget{}).withDefaults().MaxMemory; got != DefaultPatchMaxMemory {
		t.Errorf("MaxMemory under a 4 GiB limit = %d, want the default", got)
	}
}

// New incompressible content unlike the old version is skipped on its samples,
// before delta.Create would spend minutes finding that it cannot be smaller.
func TestIncompressibleUnlikeSkipped(t *testing.T) {
	p, _ := newPipeline(t)
	logs := &logRecorder{}
	p.Log = slog.New(logs)
	p.TempDir = t.TempDir()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	for _, v := range []string{"1.0.0", "1.0.1"} {
		media := make([]byte, 3*mb/2)
		for i := range media {
			media[i] = byte(r.Uint32())
		}
		z := testenv.Zip(t, map[string]string{"index.html": "<html>", "assets/video.webm": string(media)})
		if _, err := p.PublishBytes(ctx, Input{AppID: "app", Version: v}, z); err != nil {
			t.Fatal(err)
		}
	}
	got := logs.skips()
	if len(got) != 2 || !strings.Contains(got[0], "1.5 MiB of incompressible content unlike the old version") ||
		!strings.Contains(got[1], "over 90% of the 1.5 MiB download") {
		t.Fatalf("skips logged %q", got)
	}
	if left, _ := os.ReadDir(p.TempDir); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}
