package awse2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/s3event"
)

// presignedPut sends data with a presigned upload as the CLI does.
func presignedPut(t *testing.T, up *blob.Upload, data []byte) int {
	t.Helper()
	req, _ := http.NewRequest(up.Method, up.URL, bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	for k, v := range up.Headers {
		if !strings.EqualFold(k, "Content-Length") {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestUploadURLOfEarlierCreationOnS3: version 1.0.2 is published, deleted and
// published again with other bytes while the first presigned PUT is still valid.
// S3 cannot be told to refuse a presigned URL, and accepts the replay (SigV4 and the
// checksum hold), but under the first creation's key: the patch function refuses
// that upload and deletes it, and a device offered 1.0.2 downloads the bytes whose
// checksum it is given.
func TestUploadURLOfEarlierCreationOnS3(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	const app = "com.example.replay"
	if err := e.deps.Store.CreateApp(ctx, release.App{ID: app, DefaultChannel: "production"}); err != nil {
		t.Fatal(err)
	}
	h := s3event.Handler{Ingester: e.deps.Pipeline, Bucket: e.bucket}
	publishVersion := func(data []byte) (release.Release, *blob.Upload) {
		t.Helper()
		r, up, err := e.deps.Pipeline.Create(ctx, publish.Input{AppID: app, Version: "1.0.2", SHA256: sha(data), Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		if code := presignedPut(t, up, data); code != http.StatusOK {
			t.Fatalf("presigned PUT: %d", code)
		}
		if err := h.Handle(ctx, s3Event(e.bucket, r.BundleKey)); err != nil {
			t.Fatal(err)
		}
		return r, up
	}
	zipA, zipB := zipWith(t, "first 1.0.2"), zipWith(t, "second 1.0.2, other bytes")
	relA, upA := publishVersion(zipA)
	req, _ := http.NewRequest("DELETE", e.url+"/v1/apps/"+app+"/releases/1.0.2", nil)
	req.Header.Set("Authorization", "Bearer "+e.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	relB, _ := publishVersion(zipB)
	if out, err := e.ota(t, "channel", "set", "production", "--app", app, "--version", "1.0.2"); err != nil {
		t.Fatalf("channel set: %v %s", err, out)
	}

	if code := presignedPut(t, upA, zipA); code != http.StatusOK {
		t.Logf("S3 refused the replay itself: %d", code)
	}
	if err := h.Handle(ctx, s3Event(e.bucket, relA.BundleKey)); err != nil {
		t.Fatalf("event of the replayed upload: %v (want it dropped)", err)
	}
	if _, err := e.deps.Blobs.Stat(ctx, relA.BundleKey); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("replayed upload left in the bucket: %v", err)
	}
	r, err := e.deps.Store.GetRelease(ctx, app, "1.0.2")
	if err != nil || r.Status != release.StatusReady || r.SHA256 != sha(zipB) || r.BundleKey != relB.BundleKey {
		t.Fatalf("release after the replay: %+v %v", r, err)
	}
	a := e.capgoCheck(t, app, "5d1c7e0a-9b8f-4c3d-a2e1-0f9e8d7c6b5a", "builtin")
	if a.Version != "1.0.2" || a.Checksum != sha(zipB) {
		t.Fatalf("device check: %+v", a)
	}
	code, body := get(t, a.URL)
	if code != http.StatusOK || sha(body) != a.Checksum {
		t.Fatalf("device download: HTTP %d, sha256 %s, offered %s", code, sha(body), a.Checksum)
	}
}
