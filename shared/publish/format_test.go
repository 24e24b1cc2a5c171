package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
)

// An opaque chunk (a Flux chunk too large for an inline upload) is published through
// the presigned upload with format "chunk": it is ready without being a zip. The
// format travels in the create call's JSON; anything else is refused.
func TestCreateChunkFormat(t *testing.T) {
	p, blobs := newPipeline(t)
	ctx := context.Background()
	var in Input
	if err := json.Unmarshal([]byte(`{"version":"2.0.0","format":"chunk"}`), &in); err != nil || in.Format != release.FormatChunk {
		t.Fatalf("format not read from JSON: %+v %v", in, err)
	}
	chunk := bytes.Repeat([]byte("FLUX\x01not a zip "), 1000)
	in.AppID, in.SHA256, in.Size = "app", sign.SHA256Hex(chunk), int64(len(chunk))
	r, _, err := p.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	key := blob.BundleKey("app", "2.0.0", r.BundleKey)
	if err := blobs.Put(ctx, key, bytes.NewReader(chunk), in.Size, "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	if err := p.Ingest(ctx, key); err != nil {
		t.Fatal(err)
	}
	if r, err := p.Store.GetRelease(ctx, "app", "2.0.0"); err != nil || r.Status != release.StatusReady || r.Format != release.FormatChunk {
		t.Fatalf("chunk release: %+v %v", r, err)
	}
	in.Version, in.Format = "2.0.1", "tar"
	var pe *Error
	if _, _, err := p.Create(ctx, in); !errors.As(err, &pe) || pe.Code != "invalid_format" {
		t.Fatalf("format tar: %v, want invalid_format", err)
	}
}
