package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Leftovers older than the age go; files in use stay.
func TestSweepTempDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tmp")
	if n, err := sweepTempDir(dir, time.Hour); err != nil || n != 0 {
		t.Fatalf("new folder: %d, %v", n, err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for name, mtime := range map[string]time.Time{"bundle-1.zip": old, "tree-2.zip": old, "patch-3.bin": time.Now()} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := sweepTempDir(dir, time.Hour); err != nil || n != 2 {
		t.Fatalf("sweep: %d, %v; want 2", n, err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 || left[0].Name() != "patch-3.bin" {
		t.Errorf("left %v", left)
	}
}
