package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/testenv"
)

// putUpload sends data to a presigned upload and returns the status and error code.
func (e *testEnv) putUpload(up *blob.Upload, data []byte) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(up.Method, up.URL, bytes.NewReader(data))
	for k, v := range up.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := ""
	if resp.StatusCode != http.StatusOK {
		code, _ = jsonMap(e.t, b)["error"].(string)
	}
	return resp.StatusCode, code
}

// objectSHA256 hashes the object under key.
func (e *testEnv) objectSHA256(key string) string {
	e.t.Helper()
	rc, _, err := e.blobs.Open(context.Background(), key, 0)
	if err != nil {
		e.t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		e.t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// An upload URL outlives its release: version 1.0.2 is deleted and published again
// with other bytes while the first creation's URL is still valid. Replaying it is
// refused before anything is stored, and devices keep getting the bytes whose
// checksum they are offered. Replaying the current creation's URL once it is ready
// changes nothing and succeeds (a retried upload).
func TestUploadURLOfEarlierCreationRefused(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	e.createApp("app")
	zipA := testenv.Zip(t, map[string]string{"index.html": "<html>first 1.0.2</html>"})
	zipB := testenv.Zip(t, map[string]string{"index.html": "<html>second 1.0.2</html>", "b.js": "b"})

	relA, upA, err := e.pipe.Create(ctx, publish.Input{AppID: "app", Version: "1.0.2", SHA256: sha256hex(zipA), Size: int64(len(zipA))})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(upA, zipA)
	if st, _, b := e.do("DELETE", "/v1/apps/app/releases/1.0.2", nil, "Authorization", "Bearer "+e.admin); st != http.StatusNoContent {
		t.Fatalf("delete: %d %s", st, b)
	}
	relB, upB, err := e.pipe.Create(ctx, publish.Input{AppID: "app", Version: "1.0.2", SHA256: sha256hex(zipB), Size: int64(len(zipB))})
	if err != nil {
		t.Fatal(err)
	}
	e.upload(upB, zipB)
	e.srv.patchJobs.wait()
	if relA.BundleKey == relB.BundleKey {
		t.Fatalf("both creations of 1.0.2 use key %s", relA.BundleKey)
	}

	st, code := e.putUpload(upA, zipA)
	if st != http.StatusConflict || code != "upload_stale" {
		t.Fatalf("replayed upload URL of the deleted creation: %d %s, want 409 upload_stale", st, code)
	}
	r, err := e.store.GetRelease(ctx, "app", "1.0.2")
	if err != nil || r.Status != release.StatusReady || r.SHA256 != sha256hex(zipB) {
		t.Fatalf("release after the replay: %+v %v", r, err)
	}
	if got := e.objectSHA256(blob.BundleKey(r.AppID, r.Version, r.BundleKey)); got != r.SHA256 {
		t.Fatalf("devices are offered sha256 %s but download %s", r.SHA256, got)
	}
	if _, err := e.blobs.Stat(ctx, relA.BundleKey); err == nil {
		t.Fatal("the refused upload was stored")
	}

	if st, code := e.putUpload(upB, zipB); st != http.StatusOK {
		t.Fatalf("replayed upload URL of the ready release: %d %s, want 200", st, code)
	}
	if r2, _ := e.store.GetRelease(ctx, "app", "1.0.2"); !r2.ReadyAt.Equal(r.ReadyAt) {
		t.Fatal("a replayed upload re-published the ready release")
	}
}
