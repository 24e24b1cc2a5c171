package publish

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/fluxpatch"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

func TestPatchRequestKey(t *testing.T) {
	key, err := PatchRequestKey("com.example.app", KindFlux, "1.0.0", "1.1.0+b.2")
	if err != nil || key != "patch-requests/flux/com.example.app/1.0.0/1.1.0+b.2" {
		t.Fatalf("key %q, %v", key, err)
	}
	app, kind, from, to, err := ParsePatchRequestKey(key)
	if err != nil || app != "com.example.app" || kind != KindFlux || from != "1.0.0" || to != "1.1.0+b.2" {
		t.Fatalf("parse: %q %q %q %q %v", app, kind, from, to, err)
	}
	for _, c := range [][4]string{
		{"app", "xor", "1", "2"},
		{"app", KindTree, "1", "1"},
		{"app", KindTree, "latest", "2"},
		{"app", KindTree, "1", "../2"},
		{"a/b", KindFlux, "1", "2"},
		{"", KindFlux, "1", "2"},
		{".app", KindFlux, "1", "2"},
	} {
		if k, err := PatchRequestKey(c[0], c[1], c[2], c[3]); !errors.Is(err, ErrBadPatchRequest) {
			t.Errorf("PatchRequestKey%q = %q, %v", c, k, err)
		}
	}
	for _, k := range []string{
		"", "patch-requests/", "patches/flux/app/1/2", "patch-requests/flux/app/1", "patch-requests/flux/app/1/2/3",
		"patch-requests/flux/app/1/2/", "patch-requests/flux//1/2", "patch-requests/flux/app/../2",
		"patch-requests/flux/app/1/2?x", "patch-requests/flux/app/1/2%20", "patch-requests/flux/app/1/1",
		"patch-requests/flux/app/unknown/2", "/patch-requests/flux/app/1/2", "patch-requests/FLUX/app/1/2",
	} {
		if _, _, _, _, err := ParsePatchRequestKey(k); !errors.Is(err, ErrBadPatchRequest) {
			t.Errorf("ParsePatchRequestKey(%q) accepted", k)
		}
	}
}

// publishChunks publishes opaque releases (Flux chunks) without precomputing patches.
func publishChunks(t *testing.T, p *Pipeline, chunks map[string][]byte, order ...string) {
	t.Helper()
	bases := p.PatchBases
	p.PatchBases = 0
	defer func() { p.PatchBases = bases }()
	for i, v := range order {
		if _, err := p.PublishBytes(context.Background(), Input{AppID: "app", Version: v, BuildNumber: int64(i + 1),
			Format: release.FormatChunk}, chunks[v]); err != nil {
			t.Fatal(v, err)
		}
	}
}

func TestRequestAndHandlePatch(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	chunks := map[string][]byte{"1.0.0": []byte("FLUX\x01 old chunk bytes"), "1.1.0": []byte("FLUX\x01 new chunk bytes!")}
	publishChunks(t, p, chunks, "1.0.0", "1.1.0")
	key := "patch-requests/flux/app/1.0.0/1.1.0"

	if err := p.RequestPatch(ctx, "app", KindFlux, "1.0.0", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	info, err := blobs.Stat(ctx, key)
	if err != nil || info.Size == 0 {
		t.Fatalf("marker: %+v, %v", info, err)
	}
	if _, err := p.Store.GetPatch(ctx, "app", KindFlux, "1.0.0", "1.1.0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RequestPatch computed the patch: %v", err)
	}
	// Asking again leaves the recent marker alone.
	before := info.ModTime
	time.Sleep(10 * time.Millisecond)
	if err := p.RequestPatch(ctx, "app", KindFlux, "1.0.0", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if info, _ := blobs.Stat(ctx, key); !info.ModTime.Equal(before) {
		t.Error("a recent marker was rewritten")
	}

	if err := p.HandlePatchRequest(ctx, key); err != nil {
		t.Fatal(err)
	}
	rec, err := p.Store.GetPatch(ctx, "app", KindFlux, "1.0.0", "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.readAll(ctx, rec.Key, rec.Size)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fluxpatch.Apply(chunks["1.0.0"], b); err != nil || string(got) != string(chunks["1.1.0"]) {
		t.Fatalf("patch applies to %q, %v", got, err)
	}
	if _, err := blobs.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("marker not deleted: %v", err)
	}
	// Repeated event (S3 delivers at least once): harmless.
	if err := p.HandlePatchRequest(ctx, key); err != nil {
		t.Errorf("repeated request: %v", err)
	}
	// The patch exists: nothing to request.
	if err := p.RequestPatch(ctx, "app", KindFlux, "1.0.0", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("marker written for an existing patch: %v", err)
	}
}

// A marker left behind by a failed run is written again once stale, so a new
// notification retries it.
func TestRequestPatchRewritesStaleMarker(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	publishChunks(t, p, map[string][]byte{"1": []byte("a"), "2": []byte("b")}, "1", "2")
	if err := p.RequestPatch(ctx, "app", KindFlux, "1", "2"); err != nil {
		t.Fatal(err)
	}
	key := "patch-requests/flux/app/1/2"
	first, _ := blobs.Stat(ctx, key)
	p.Store = p.Store.WithClock(func() time.Time { return time.Now().Add(DefaultPatchRequestStale + time.Minute) })
	time.Sleep(10 * time.Millisecond)
	if err := p.RequestPatch(ctx, "app", KindFlux, "1", "2"); err != nil {
		t.Fatal(err)
	}
	if again, _ := blobs.Stat(ctx, key); !again.ModTime.After(first.ModTime) {
		t.Errorf("stale marker not rewritten: %v then %v", first.ModTime, again.ModTime)
	}
}

func TestRequestPatchRefusesBadPairs(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	for _, c := range [][4]string{{"app", "xor", "1", "2"}, {"app", KindFlux, "1", "1"}, {"a/b", KindFlux, "1", "2"}} {
		if err := p.RequestPatch(ctx, c[0], c[1], c[2], c[3]); !errors.Is(err, ErrBadPatchRequest) {
			t.Errorf("RequestPatch%q: %v", c, err)
		}
	}
	if keys, _ := blobs.List(ctx, PatchRequestPrefix); len(keys) != 0 {
		t.Errorf("markers written: %q", keys)
	}
}

func TestHandlePatchRequestPermanent(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	publishChunks(t, p, map[string][]byte{"1": []byte("FLUX\x01a"), "2": []byte("FLUX\x01b")}, "1", "2")
	put := func(key string) {
		if err := blobs.Put(ctx, key, strings.NewReader("{}"), 2, "application/json"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		key     string
		code    string
		deleted bool
	}{
		{"patch-requests/flux/app/1/9", "patch_request_obsolete", true}, // no such release
		{"patch-requests/flux/gone/1/2", "patch_request_obsolete", true},
		{"patch-requests/ota/app/1/2", "bad_patch_request", true}, // chunks have no tree
		{"patch-requests/flux/app/1/1", "bad_patch_request", false},
		{"patch-requests/flux/app/1/latest", "bad_patch_request", false},
	} {
		put(tc.key)
		err := p.HandlePatchRequest(ctx, tc.key)
		var perr *Error
		if !errors.As(err, &perr) || perr.Code != tc.code {
			t.Errorf("%s: %v, want a %s refusal", tc.key, err, tc.code)
		}
		_, serr := blobs.Stat(ctx, tc.key)
		if deleted := errors.Is(serr, blob.ErrNotFound); deleted != tc.deleted {
			t.Errorf("%s: marker deleted %v, want %v", tc.key, deleted, tc.deleted)
		}
	}
	for _, k := range []string{"bundles/app/1.zip", "patch-requests/flux/app/../2", "patch-requests/flux/app/1/2/3"} {
		var perr *Error
		if err := p.HandlePatchRequest(ctx, k); !errors.As(err, &perr) || perr.Code != "bad_patch_request" {
			t.Errorf("%s: %v", k, err)
		}
	}

	// A pending release: obsolete request (it was never servable), marker deleted.
	if _, _, err := p.Create(ctx, Input{AppID: "app", Version: "3", SHA256: "0000000000000000000000000000000000000000000000000000000000000000", Size: 3}); err != nil {
		t.Fatal(err)
	}
	put("patch-requests/flux/app/1/3")
	if err := p.HandlePatchRequest(ctx, "patch-requests/flux/app/1/3"); err == nil {
		t.Error("patch to a pending release computed")
	}
}

// A transient failure keeps the marker for the retry.
func TestHandlePatchRequestTransient(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	publishChunks(t, p, map[string][]byte{"1": []byte("FLUX\x01a"), "2": []byte("FLUX\x01b")}, "1", "2")
	if err := p.RequestPatch(ctx, "app", KindFlux, "1", "2"); err != nil {
		t.Fatal(err)
	}
	key := "patch-requests/flux/app/1/2"
	p.Blobs = &flakyBlobs{Store: blobs}
	err := p.HandlePatchRequest(ctx, key)
	var perr *Error
	if !errors.Is(err, errInjected) || errors.As(err, &perr) {
		t.Fatalf("err = %v, want the injected (retryable) failure", err)
	}
	if _, err := blobs.Stat(ctx, key); err != nil {
		t.Fatalf("marker gone after a transient failure: %v", err)
	}
	p.Blobs = blobs
	if err := p.HandlePatchRequest(ctx, key); err != nil {
		t.Fatal(err)
	}
}
