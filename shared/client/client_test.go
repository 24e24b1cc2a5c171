package client

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/testenv"
	"github.com/otakit/ota/shared/urlsign"
)

// server is a real otad-equivalent on embedded storage.
type server struct {
	url   string
	st    *store.Store
	pipe  *publish.Pipeline
	blobs *blob.Local
}

func newServer(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	tbl, err := bolt.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(tbl)
	t.Cleanup(func() { st.Close() })
	signer, _ := urlsign.New(bytes.Repeat([]byte("s"), 32))
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	blobs, err := blob.NewLocal(filepath.Join(dir, "objects"), signer, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	pipe := publish.NewPipeline(st, blobs, nil)
	srv := api.New(api.Deps{Store: st, Blobs: blobs, URLs: cdn.Local{Signer: signer, BaseURL: hs.URL}, Pipeline: pipe,
		LocalSigner: signer, LocalBlobs: blobs}, api.Config{StateTTL: time.Nanosecond})
	mux.Handle("/", srv.Handler())
	if err := st.CreateApp(context.Background(), release.App{ID: "com.example.app", DefaultChannel: "production"}); err != nil {
		t.Fatal(err)
	}
	return &server{url: hs.URL, st: st, pipe: pipe, blobs: blobs}
}

// release publishes files as version and makes it the channel's stable release.
func (s *server) release(t *testing.T, version string, files map[string]string) {
	t.Helper()
	z := testenv.Zip(t, files)
	if _, err := s.pipe.PublishBytes(context.Background(), publish.Input{AppID: "com.example.app", Version: version}, z); err != nil {
		t.Fatal(err)
	}
	s.point(t, version)
}

// point makes version the channel's stable release.
func (s *server) point(t *testing.T, version string) {
	t.Helper()
	if _, err := s.st.UpdateChannel(context.Background(), "com.example.app", "production", "t", "set", func(c *release.Channel, _ bool) error {
		c.Stable = version
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func bundleFiles(v string) map[string]string {
	files := map[string]string{"index.html": "<html>" + v + "</html>", "assets/vendor.js": strings.Repeat("vendor code;", 2000)}
	files["assets/app-"+v+".js"] = strings.Repeat("app code "+v+";", 500)
	return files
}

// treeOf reads a folder into path -> content.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir, err := filepath.EvalSymlinks(dir) // current is a symlink
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSyncFullThenPatch(t *testing.T) {
	s := newServer(t)
	s.release(t, "1.0.0", bundleFiles("1.0.0"))
	dir := t.TempDir()
	c, err := New(Config{Server: s.url, AppID: "com.example.app", Dir: dir, Binary: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Sync(context.Background())
	if err != nil || res.Action != "updated" || res.Via != "full" {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	if got := treeOf(t, c.LiveDir()); !sameTree(got, bundleFiles("1.0.0")) {
		t.Fatalf("live tree differs from 1.0.0")
	}
	s.release(t, "1.0.1", bundleFiles("1.0.1"))
	res, err = c.Sync(context.Background())
	if err != nil || res.Action != "updated" || res.Via != "patch" || res.To != "1.0.1" {
		t.Fatalf("second sync: %+v %v", res, err)
	}
	if got := treeOf(t, c.LiveDir()); !sameTree(got, bundleFiles("1.0.1")) {
		t.Fatalf("live tree differs from 1.0.1")
	}
	full := int64(len(testenv.Zip(t, bundleFiles("1.0.1"))))
	if res.Bytes >= full {
		t.Fatalf("patch download %d bytes, full bundle %d", res.Bytes, full)
	}
	if prev, _ := os.Readlink(filepath.Join(dir, "previous")); filepath.Base(prev) != "1.0.0" {
		t.Fatalf("previous = %q, want the last known good 1.0.0", prev)
	}
	res, err = c.Sync(context.Background())
	if err != nil || res.Action != "up_to_date" {
		t.Fatalf("third sync: %+v %v", res, err)
	}
}

func TestSyncRevertToBuiltin(t *testing.T) {
	s := newServer(t)
	s.release(t, "1.0.0", bundleFiles("1.0.0"))
	c, _ := New(Config{Server: s.url, AppID: "com.example.app", Dir: t.TempDir()})
	if _, err := c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.st.UpdateChannel(context.Background(), "com.example.app", "production", "t", "rollback", func(c *release.Channel, _ bool) error {
		c.Builtin = true
		return nil
	})
	res, err := c.Sync(context.Background())
	if err != nil || res.Action != "reverted" || c.LiveDir() != "" {
		t.Fatalf("revert: %+v %v live=%q", res, err, c.LiveDir())
	}
}

// TestCrashAtEveryStep kills a real child process at each step of a sync and checks
// that the live tree is always either the complete old tree or the complete new one,
// and that a later sync finishes the job.
func TestCrashAtEveryStep(t *testing.T) {
	if os.Getenv("OTA_CLIENT_CHILD") != "" {
		t.Skip("child mode")
	}
	s := newServer(t)
	old, neu := bundleFiles("1.0.0"), bundleFiles("1.0.1")
	s.release(t, "1.0.0", old)
	s.release(t, "1.0.1", neu) // precomputes the patch 1.0.0 -> 1.0.1
	for _, via := range []string{"patch", "full"} {
		for _, step := range []string{"checked", "downloaded", "built", "moved", "previous", "switched"} {
			t.Run(via+"/"+step, func(t *testing.T) {
				dir := t.TempDir()
				s.point(t, "1.0.0")
				c, _ := New(Config{Server: s.url, AppID: "com.example.app", Dir: dir})
				if _, err := c.Sync(context.Background()); err != nil { // on 1.0.0
					t.Fatal(err)
				}
				if via == "full" {
					os.RemoveAll(filepath.Join(dir, "versions", "1.0.0")) // no base tree: patch fails over to full
					os.MkdirAll(filepath.Join(dir, "versions", "1.0.0"), 0o755)
					os.WriteFile(filepath.Join(dir, "versions", "1.0.0", "index.html"), []byte(old["index.html"]), 0o644)
				}
				s.point(t, "1.0.1")
				cmd := exec.Command(os.Args[0], "-test.run", "^TestChildSync$")
				cmd.Env = append(os.Environ(), "OTA_CLIENT_CHILD="+step, "OTA_CLIENT_SERVER="+s.url, "OTA_CLIENT_DIR="+dir)
				out, _ := cmd.CombinedOutput()
				live := treeOf(t, filepath.Join(dir, "current"))
				wantOld := old
				if via == "full" {
					wantOld = map[string]string{"index.html": old["index.html"]}
				}
				if !sameTree(live, wantOld) && !sameTree(live, neu) {
					t.Fatalf("after a crash at %s the live tree is neither old nor new (%d files)\n%s", step, len(live), out)
				}
				c2, _ := New(Config{Server: s.url, AppID: "com.example.app", Dir: dir})
				if res, err := c2.Sync(context.Background()); err != nil {
					t.Fatalf("resume after crash at %s: %+v %v", step, res, err)
				}
				if !sameTree(treeOf(t, filepath.Join(dir, "current")), neu) {
					t.Fatalf("after resuming, the live tree is not 1.0.1")
				}
			})
		}
	}
}

// TestChildSync runs in the child process: sync and die at the chosen step.
func TestChildSync(t *testing.T) {
	step := os.Getenv("OTA_CLIENT_CHILD")
	if step == "" {
		t.Skip("only runs as the child of TestCrashAtEveryStep")
	}
	c, err := New(Config{Server: os.Getenv("OTA_CLIENT_SERVER"), AppID: "com.example.app", Dir: os.Getenv("OTA_CLIENT_DIR"),
		Fault: func(s string) {
			if s == step {
				fmt.Println("crashing at", s)
				os.Exit(3) // no deferred cleanup runs, as in a kill
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	c.Sync(context.Background())
}
