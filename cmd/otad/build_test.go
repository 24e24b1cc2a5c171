package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// With an age, leftovers unchanged that long go; entries in use (a file written
// lately, also inside a job folder) stay.
func TestPrepareTempStale(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmp")
	if n, err := prepareTemp(dir, time.Hour); err != nil || n != 0 {
		t.Fatalf("new folder: %d, %v", n, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for name, mtime := range map[string]time.Time{"bundle-1.zip": old, "job-2/tree.zip": old, "job-3/patch.bin": time.Now(), "put-4": time.Now()} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{p, filepath.Dir(p)} {
			if err := os.Chtimes(q, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := prepareTemp(dir, time.Hour); err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v; want 2", n, err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != 2 || left[0] != "job-3" || left[1] != "put-4" {
		t.Errorf("left %v", left)
	}
}

// At start on embedded storage, everything a killed otad left in its temp folder
// goes, however recent (a crash loop restarts within minutes): uploads being
// received, job folders with bundle copies, and the old upload staging folder.
func TestBuildSweepsLeftoversAtStart(t *testing.T) {
	data := t.TempDir()
	leftovers := []string{"tmp/put-123", "tmp/job-456/bundle-1.zip", "tmp/job-456/tree-2.zip", "tmp/bundle-9.zip", "objects/.tmp/put-7"}
	for _, name := range leftovers {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("OTA_ADMIN_KEY", "")
	srv, closeFn, _, err := build(context.Background(), slog.New(slog.DiscardHandler), options{data: data, publicURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	defer srv.DrainJobs(context.Background())
	if left, err := os.ReadDir(filepath.Join(data, "tmp")); err != nil || len(left) != 0 {
		t.Errorf("tmp after start: %v %v", left, err)
	}
	if _, err := os.Stat(filepath.Join(data, "objects", ".tmp")); !os.IsNotExist(err) {
		t.Errorf("objects/.tmp after start: %v", err)
	}
}
