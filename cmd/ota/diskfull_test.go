package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
)

// fullDisk is a blob store on a disk that fills up once full is set: writes fail as
// os.File.Write does then (a *fs.PathError carrying ENOSPC); reads still work.
type fullDisk struct {
	blob.Store
	full atomic.Bool
}

func (d *fullDisk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if d.full.Load() {
		return fmt.Errorf("put %s: %w", key, &fs.PathError{Op: "write", Path: ".tmp/put-1", Err: syscall.ENOSPC})
	}
	return d.Store.Put(ctx, key, r, size, contentType)
}

// newFullDiskServer runs the real handlers on embedded storage whose objects go
// through a fullDisk, and returns the server URL and the disk.
func newFullDiskServer(t *testing.T, app string) (string, *fullDisk) {
	t.Helper()
	var disk *fullDisk
	o := newInProcessOtad(t, func(b blob.Store) blob.Store { disk = &fullDisk{Store: b}; return disk })
	if err := o.store.CreateApp(context.Background(), release.App{ID: app, DefaultChannel: "production", CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	return o.url, disk
}

// TestPublishOutOfSpace: a publish whose bundle the server cannot store for lack
// of space ends at once (the release is marked failed, the poll stops on it) with
// what to do in plain words, not after --wait with "still pending".
func TestPublishOutOfSpace(t *testing.T) {
	const app = "com.example.full"
	url, disk := newFullDiskServer(t, app)
	disk.full.Store(true)
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	const wait = 5 * time.Second
	start := time.Now()
	_, _, err := runCLI(t, "--server", url, "--key", testKey, "release", www, "--app", app, "--version", "1.0.1",
		"--channel", "production", "--wait", wait.String())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), outOfSpaceHelp) {
		t.Fatalf("publish on a full disk: %v", err)
	}
	if took >= wait {
		t.Fatalf("publish on a full disk waited %s (the whole --wait)", took)
	}

	disk.full.Store(false) // space freed: the same command succeeds
	if _, stderr, err := runCLI(t, "--server", url, "--key", testKey, "release", www, "--app", app, "--version", "1.0.1",
		"--channel", "production", "--wait", wait.String()); err != nil {
		t.Fatalf("publish again after freeing space: %v\n%s", err, stderr)
	}
}

// TestOutOfSpaceAnswers: a 507 from any call is explained in plain words, and a
// publish whose complete call answers 507 (the server could not even record the
// failure) stops at once instead of polling a release that stays pending.
func TestOutOfSpaceAnswers(t *testing.T) {
	var polls atomic.Int64
	const body = `{"error":"insufficient_storage","message":"the server is out of storage space: ..."}`
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /v1/apps", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInsufficientStorage)
		io.WriteString(w, body)
	})
	mux.HandleFunc("POST /v1/apps/{app}/releases", func(w http.ResponseWriter, r *http.Request) {
		var in publish.Input
		json.NewDecoder(r.Body).Decode(&in)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{
			"release": release.Release{Version: in.Version, Status: release.StatusPending, SHA256: in.SHA256, Size: in.Size},
			"upload":  blob.Upload{Method: "PUT", URL: srv.URL + "/blob/x"},
		})
	})
	mux.HandleFunc("PUT /blob/x", func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	mux.HandleFunc("POST /v1/apps/{app}/releases/{version}/complete", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInsufficientStorage)
		io.WriteString(w, body)
	})
	mux.HandleFunc("GET /v1/apps/{app}/releases/{version}", func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"release": release.Release{Version: r.PathValue("version"), Status: release.StatusPending}})
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	_, _, err := runCLI(t, "--server", srv.URL, "--key", testKey, "app", "list")
	if err == nil || !strings.Contains(err.Error(), outOfSpaceHelp) || !strings.Contains(err.Error(), "HTTP 507") {
		t.Fatalf("app list on a full server: %v", err)
	}

	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	start := time.Now()
	_, _, err = runCLI(t, "--server", srv.URL, "--key", testKey, "release", www, "--app", "a", "--version", "1.0.1", "--wait", "5s")
	if err == nil || !strings.Contains(err.Error(), outOfSpaceHelp) {
		t.Fatalf("publish whose complete answers 507: %v", err)
	}
	if took := time.Since(start); took >= 5*time.Second || polls.Load() > 0 {
		t.Fatalf("publish whose complete answers 507 polled %d times for %s", polls.Load(), took)
	}
}

// TestPublishPendingEndsWithMessage: a release that never leaves pending ends the
// wait at --wait with a message that says what to do.
func TestPublishPendingEndsWithMessage(t *testing.T) {
	f := newFakeServer(t, release.StatusPending)
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	start := time.Now()
	_, _, err := runCLI(t, "--server", f.srv.URL, "--key", testKey, "release", www, "--app", "a", "--version", "1", "--wait", "500ms")
	if err == nil || !strings.Contains(err.Error(), "still pending after 500ms") || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("pending release: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("wait took %s", took)
	}
}
