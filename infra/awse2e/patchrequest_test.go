package awse2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/fluxpatch"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/s3event"
)

// TestFluxPatchRequestOnEmulators: a Flux request for a pair that was not
// precomputed answers 404 from the check function, which only leaves a marker in
// S3; the marker's S3 event makes the patch function compute the patch and delete
// the marker; the next request gets the patch.
func TestFluxPatchRequestOnEmulators(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	const app = "com.example.fluxaws"
	if err := e.deps.Store.CreateApp(ctx, release.App{ID: app, DefaultChannel: "production", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	chunks := map[string][]byte{
		"1.0.0":     append([]byte("FLUX\x01"), bytes.Repeat([]byte("old bytes "), 40)...),
		"1.1.0+b.2": append([]byte("FLUX\x01"), bytes.Repeat([]byte("new bytes!"), 41)...),
	}
	e.deps.Pipeline.PatchBases = 0 // nothing precomputed
	for i, v := range []string{"1.0.0", "1.1.0+b.2"} {
		if _, err := e.deps.Pipeline.PublishBytes(ctx, publish.Input{AppID: app, Version: v, BuildNumber: int64(i + 1),
			Format: release.FormatChunk}, chunks[v]); err != nil {
			t.Fatal(v, err)
		}
	}
	path := e.url + "/flux/patches/" + app + "/1.0.0/1.1.0+b.2"
	for range 2 {
		if code, body := get(t, path); code != http.StatusNotFound {
			t.Fatalf("missing patch: HTTP %d %s", code, body)
		}
	}
	if e.gw.count(api.GroupCheck) == 0 {
		t.Fatal("the check function was not invoked")
	}
	marker := "patch-requests/flux/" + app + "/1.0.0/1.1.0+b.2"
	keys, err := e.deps.Blobs.List(ctx, publish.PatchRequestPrefix)
	if err != nil || len(keys) != 1 || keys[0] != marker {
		t.Fatalf("markers %q %v, want [%s]", keys, err, marker)
	}
	if _, err := e.deps.Store.GetPatch(ctx, app, publish.KindFlux, "1.0.0", "1.1.0+b.2"); err == nil {
		t.Fatal("the check function computed the patch")
	}
	// The marker's notification, as S3 sends it (URL-encoded key), twice.
	h := s3event.Handler{Ingester: e.deps.Pipeline, Bucket: e.bucket}
	for range 2 {
		if err := h.Handle(ctx, s3Event(e.bucket, marker)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.deps.Blobs.Stat(ctx, marker); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("marker not deleted: %v", err)
	}
	// The check function caches a missing patch like the rest of its state: the
	// patch shows up there within StateTTL (50 ms here).
	code, p := get(t, path)
	for deadline := time.Now().Add(5 * time.Second); code != http.StatusOK && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		code, p = get(t, path)
	}
	if code != http.StatusOK {
		t.Fatalf("after the patch function: HTTP %d", code)
	}
	if got, err := fluxpatch.Apply(chunks["1.0.0"], p); err != nil || !bytes.Equal(got, chunks["1.1.0+b.2"]) {
		t.Fatalf("patch does not apply: %v", err)
	}
}
