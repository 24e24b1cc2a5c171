package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillDuringIngestLeavesNothingAfterRestart: otad is killed (SIGKILL) while it
// validates an uploaded 64 MB bundle, with a copy of the bundle in its temp folder.
// Restarted on the same data folder, it starts with an empty temp folder, and the
// same `ota release` run again finishes the publish at once (the killed run's claim
// on the release is void: otad is its database's only user).
func TestKillDuringIngestLeavesNothingAfterRestart(t *testing.T) {
	ota, otad := buildBinaries(t)
	env := []string{"OTA_ADMIN_KEY=" + e2eAdminKey}
	first := startOtad(t, otad, env)
	const app = "com.example.kill"
	cli := func(base string) []string { return []string{"OTA_SERVER=" + base, "OTA_API_KEY=" + e2eAdminKey} }
	if r := runOta(t, ota, "", cli(first.base), "app", "create", app); r.code != 0 {
		t.Fatal(r)
	}
	www := filepath.Join(t.TempDir(), "www")
	writeRandomFolder(t, www, 64<<20, -1)
	tmp := filepath.Join(first.data, "tmp")
	copyInTemp := func() string {
		jobs, _ := filepath.Glob(filepath.Join(tmp, "job-*", "bundle-*.zip"))
		for _, j := range jobs {
			if st, err := os.Stat(j); err == nil && st.Size() > 0 {
				return j
			}
		}
		return ""
	}
	// The ingest lasts a fraction of a second: a run that ends before it is caught
	// is tried again with the next version.
	var args []string
	var seen string
	var exited chan struct{}
	for attempt := 0; seen == "" && attempt < 3; attempt++ {
		args = []string{"release", www, "--app", app, "--version", "1.0." + strconv.Itoa(attempt), "--wait", "30s"}
		publish := exec.Command(ota, args...)
		publish.Env = cleanEnv(cli(first.base)...)
		var out bytes.Buffer
		publish.Stdout, publish.Stderr = &out, &out
		if err := publish.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan struct{})
		go func(done chan struct{}) { publish.Wait(); close(done) }(exited)
	poll:
		for deadline := time.Now().Add(60 * time.Second); seen == ""; time.Sleep(time.Millisecond) {
			select {
			case <-exited:
				t.Logf("attempt %d: the publish ended before its ingest was caught:\n%s", attempt, out.String())
				break poll
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no ingest in progress seen:\n%s", out.String())
			}
			seen = copyInTemp()
		}
	}
	if seen == "" {
		t.Fatal("no ingest caught in 3 attempts")
	}
	if err := syscall.Kill(first.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	left := tempEntries(t, tmp)
	t.Logf("killed during ingest (%s); left in tmp: %v", filepath.Base(seen), left)
	if len(left) == 0 {
		t.Fatal("nothing left by the kill: the test did not catch the ingest")
	}

	second := startOtad(t, otad, env, "--data", first.data)
	if left := tempEntries(t, tmp); len(left) != 0 {
		t.Fatalf("tmp after restart: %v", left)
	}
	if _, err := os.Stat(filepath.Join(first.data, "objects", ".tmp")); !os.IsNotExist(err) {
		t.Fatalf("objects/.tmp after restart: %v", err)
	}
	start := time.Now()
	if r := runOta(t, ota, "", cli(second.base), append(args, "--wait", "20s")...); r.code != 0 {
		t.Fatal(r)
	}
	t.Logf("publish after restart finished in %.1fs", time.Since(start).Seconds())
	if n := strings.Count(second.stderr.String(), `"msg":"release ready"`); n != 1 {
		t.Errorf("release ready logged %d times after restart, want 1", n)
	}
	// Background work (precomputing patches) may still hold its job folder for a
	// moment after the publish returns: each job removes its own when it ends.
	left = tempEntries(t, tmp)
	for deadline := time.Now().Add(10 * time.Second); len(left) != 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		left = tempEntries(t, tmp)
	}
	if len(left) != 0 {
		t.Errorf("tmp after the publish and its background jobs: %v", left)
	}
}

func tempEntries(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	return names
}
