package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/diskfull"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/testenv"
)

// Out-of-space tests inject the errors a full disk produces through wrappers around
// the blob store and the table, rather than filling a real file system.

// fullBlobs is a blob store on a full disk once full is set: writes fail the way
// os.File.Write does then (a *fs.PathError carrying errno); reads still work.
type fullBlobs struct {
	blob.Store
	errno syscall.Errno
	full  atomic.Bool
}

func (b *fullBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if b.full.Load() {
		return fmt.Errorf("put %s: %w", key, &fs.PathError{Op: "write", Path: ".tmp/put-123", Err: b.errno})
	}
	return b.Store.Put(ctx, key, r, size, contentType)
}

// fullTable is a bbolt table whose file can no longer grow once full is set: every
// write fails with the error bbolt returns then ("file resize error: ..." formatted
// with %s, so the errno is gone and only its text is left); reads still work.
type fullTable struct {
	store.Table
	full atomic.Bool
}

func (t *fullTable) err(op, pk, sk string) error {
	if !t.full.Load() {
		return nil
	}
	grow := fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: "meta.db", Err: syscall.ENOSPC})
	return fmt.Errorf("bolt: %s %s/%s: %w", op, pk, sk, grow)
}

func (t *fullTable) Put(ctx context.Context, it store.Item, c store.Cond) (store.Item, error) {
	if err := t.err("put", it.PK, it.SK); err != nil {
		return store.Item{}, err
	}
	return t.Table.Put(ctx, it, c)
}

func (t *fullTable) Delete(ctx context.Context, pk, sk string, c store.Cond) error {
	if err := t.err("delete", pk, sk); err != nil {
		return err
	}
	return t.Table.Delete(ctx, pk, sk, c)
}

func (t *fullTable) Add(ctx context.Context, pk, sk string, delta, expires int64) (int64, error) {
	if err := t.err("add", pk, sk); err != nil {
		return 0, err
	}
	return t.Table.Add(ctx, pk, sk, delta, expires)
}

func (t *fullTable) Transact(ctx context.Context, ops []store.Op) error {
	if err := t.err("transact", "", ""); err != nil {
		return err
	}
	return t.Table.Transact(ctx, ops)
}

// fillTable puts a fullTable under the running server (the server, its caches and
// the pipeline share e.store).
func (e *testEnv) fillTable() *fullTable {
	ft := &fullTable{Table: e.store.Table()}
	*e.store = *store.New(ft)
	return ft
}

// fillBlobs puts a fullBlobs under the publish pipeline (the objects folder's
// upload route stays as it is: the bundle itself is received).
func (e *testEnv) fillBlobs(errno syscall.Errno) *fullBlobs {
	fb := &fullBlobs{Store: e.pipe.Blobs, errno: errno}
	e.pipe.Blobs = fb
	return fb
}

func (e *testEnv) adminDo(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	st, _, b := e.do(method, path, body, "Authorization", "Bearer "+e.admin)
	return st, jsonMap(e.t, b)
}

// wantInsufficientStorage checks the 507 answer: the standard error shape, with
// what to do.
func wantInsufficientStorage(t *testing.T, what string, status int, body map[string]any) {
	t.Helper()
	if status != http.StatusInsufficientStorage {
		t.Fatalf("%s: status %d, want 507: %v", what, status, body)
	}
	if len(body) != 2 || body["error"] != diskfull.Code || !strings.Contains(fmt.Sprint(body["message"]), "ota cleanup") ||
		!strings.Contains(fmt.Sprint(body["message"]), "free disk space") {
		t.Fatalf("%s: body %v", what, body)
	}
}

// createRelease asks for a release of zip and returns its upload (nil: nothing to upload).
func (e *testEnv) createRelease(app, version string, zip []byte) (release.Release, *blob.Upload) {
	e.t.Helper()
	st, _, b := e.do("POST", "/v1/apps/"+app+"/releases", publish.Input{Version: version, SHA256: sha256hex(zip), Size: int64(len(zip))},
		"Authorization", "Bearer "+e.admin)
	if st != http.StatusCreated {
		e.t.Fatalf("create release: %d %s", st, b)
	}
	var out struct {
		Release release.Release `json:"release"`
		Upload  *blob.Upload    `json:"upload"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Release, out.Upload
}

// TestIngestOutOfSpaceFailsRelease: when storing a bundle's files fails for lack of
// space (ENOSPC, or EDQUOT when a quota is used up), the release is marked failed
// with insufficient_storage and what to do, not left pending (the CLI would poll
// until its timeout); the same bytes published again once there is space succeed.
func TestIngestOutOfSpaceFailsRelease(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		t.Run(errno.Error(), func(t *testing.T) {
			e := newTestEnv(t)
			const app = "com.example.full"
			e.createApp(app)
			fb := e.fillBlobs(errno)
			fb.full.Store(true)
			zip := testenv.Zip(t, map[string]string{"index.html": "<html>full</html>", "js/app.js": "1"})

			_, up := e.createRelease(app, "1.0.0", zip)
			e.upload(up, zip) // received; validating it runs out of space
			st, body := e.adminDo("POST", "/v1/apps/"+app+"/releases/1.0.0/complete", nil)
			if st != http.StatusOK {
				t.Fatalf("complete: %d %v", st, body)
			}
			rel, err := e.store.GetRelease(context.Background(), app, "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if rel.Status != release.StatusFailed || !strings.HasPrefix(rel.Error, diskfull.Code+": ") || !strings.Contains(rel.Error, "ota cleanup") {
				t.Fatalf("release after a full disk: status %s, error %q", rel.Status, rel.Error)
			}

			fb.full.Store(false) // space was freed
			rel, up = e.createRelease(app, "1.0.0", zip)
			if rel.Status != release.StatusPending || up == nil {
				t.Fatalf("publishing again: status %s, upload %v", rel.Status, up)
			}
			e.upload(up, zip)
			e.srv.patchJobs.wait()
			if rel, _ = e.store.GetRelease(context.Background(), app, "1.0.0"); rel.Status != release.StatusReady {
				t.Fatalf("after freeing space: status %s, error %q", rel.Status, rel.Error)
			}
		})
	}
}

// TestDatabaseFullAnswers507: when bbolt's file cannot grow, every write answers 507
// insufficient_storage in the standard shape with what to do (not 500 "internal"),
// while update checks, which only read, go on being served.
func TestDatabaseFullAnswers507(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	zip := testenv.Zip(t, map[string]string{"index.html": "<html>2</html>"})
	_, up := e.createRelease(capgoApp, "1.0.2", zip) // before the disk fills
	ft := e.fillTable()
	ft.full.Store(true)

	st, body := e.capgoStats([]any{capgoStatEvent(t, "0E7A2F3C-5B1D-4C8E-9A6F-3D2B1C0E9F8A", "set", "1.0.1", 1700000000000)})
	wantInsufficientStorage(t, "capgo stats", st, body)

	st, body = e.adminDo("POST", "/v1/apps/"+capgoApp+"/releases", publish.Input{Version: "1.0.3", SHA256: sha256hex(zip), Size: int64(len(zip))})
	wantInsufficientStorage(t, "create release", st, body)

	st, body = e.adminDo("PUT", "/v1/apps/"+capgoApp+"/channels/beta", map[string]any{"version": "1.0.1"})
	wantInsufficientStorage(t, "set channel", st, body)

	// The objects folder is full too: the failure cannot even be recorded, so the
	// release stays pending and complete answers 507 (the CLI stops on it).
	e.fillBlobs(syscall.ENOSPC).full.Store(true)
	e.upload(up, zip)
	st, body = e.adminDo("POST", "/v1/apps/"+capgoApp+"/releases/1.0.2/complete", nil)
	wantInsufficientStorage(t, "complete", st, body)

	st, _, m := e.capgoCheck(capgoDevice(t, "", "1.0.0", nil))
	if st != http.StatusOK || m["version"] != "1.0.1" {
		t.Fatalf("update check on a full database: %d %v", st, m)
	}
}

// TestStorageFullShapes: each protocol answers a lack of space with 507 in its own
// error shape; other unknown errors stay 500 "internal".
func TestStorageFullShapes(t *testing.T) {
	s := New(Deps{Log: slog.New(slog.DiscardHandler)}, Config{})
	full := fmt.Errorf("ingest: %w", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	cases := []struct {
		name   string
		write  func(w http.ResponseWriter, r *http.Request, err error)
		err    error
		status int
		want   map[string]string
	}{
		{"management", s.writeErr, full, 507, map[string]string{"error": diskfull.Code, "message": diskfull.Advice}},
		{"management other", s.writeErr, io.ErrUnexpectedEOF, 500, map[string]string{"error": "internal", "message": "internal error"}},
		{"capgo", s.capgoBadInput, full, 507, map[string]string{"error": diskfull.Code, "message": diskfull.Advice, "kind": capgoFailed}},
		{"flux", s.fluxFail, full, 507, map[string]string{"error": diskfull.Code}},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		c.write(w, httptest.NewRequest("POST", "/x", nil), c.err)
		var got map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%s: %v: %s", c.name, err, w.Body)
		}
		if w.Code != c.status || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %d %v, want %d %v", c.name, w.Code, got, c.status, c.want)
		}
	}
}
