package main

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/release"
)

// cutUpload is a transport that cancels the publish (as Ctrl-C does through the
// command's signal-aware context) once `after` bytes of an upload body were sent.
type cutUpload struct {
	after  int64
	cancel context.CancelFunc
}

func (c cutUpload) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.Body != nil {
		req.Body = &cutBody{ReadCloser: req.Body, left: c.after, cancel: c.cancel}
	}
	return http.DefaultTransport.RoundTrip(req)
}

type cutBody struct {
	io.ReadCloser
	left   int64
	cancel context.CancelFunc
	once   sync.Once
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.once.Do(b.cancel)
		return 0, context.Canceled
	}
	n, err := b.ReadCloser.Read(p[:min(int64(len(p)), b.left)])
	b.left -= int64(n)
	return n, err
}

// An upload interrupted half-way says how to resume, leaves the release pending
// and nothing stored; the same command again publishes it.
func TestE2EPublishInterruptedThenResumed(t *testing.T) {
	ota, otad := buildBinaries(t)
	srv := startOtad(t, otad, []string{"OTA_ADMIN_KEY=" + e2eAdminKey})
	const app = "com.example.resume"
	if r := runOta(t, ota, "", []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + e2eAdminKey}, "app", "create", app); r.code != 0 {
		t.Fatal(r)
	}
	www := t.TempDir()
	big := make([]byte, 8<<20)
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>resume</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	o := &publishOptions{app: app, version: "1.0.0", wait: time.Minute, pollInterval: 20 * time.Millisecond}

	cl, err := newClient(srv.base, e2eAdminKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl.http.Transport = cutUpload{after: 1 << 20, cancel: cancel}
	_, err = runPublish(ctx, cl, o, www, io.Discard)
	if !errors.Is(err, errUploadInterrupted) || err.Error() != "upload interrupted: run the same command again to resume" {
		t.Fatalf("interrupted upload: %v", err)
	}

	cl, _ = newClient(srv.base, e2eAdminKey)
	if got, err := cl.getRelease(context.Background(), app, "1.0.0"); err != nil || got.Release.Status != release.StatusPending {
		t.Fatalf("after the interruption: %+v %v, want pending", got.Release, err)
	}
	if _, err := os.Stat(filepath.Join(srv.data, "objects", "bundles", app, "1.0.0.zip")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a partial upload was stored: %v", err)
	}
	// otad sees the broken body a moment later; its temp copy goes then.
	tmp := filepath.Join(srv.data, "objects", ".tmp")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left, _ := os.ReadDir(tmp)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload temp files left: %v", left)
		}
	}

	res, err := runPublish(context.Background(), cl, o, www, io.Discard)
	if err != nil || res.Status != string(release.StatusReady) || !res.Uploaded {
		t.Fatalf("the same command again: %+v %v", res, err)
	}
}
