package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// jsonLog is a JSON log that tests can read while the server writes it.
type jsonLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jsonLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count returns how many records have msg and every attr given (key=value).
func (l *jsonLog) count(msg string, attrs map[string]string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != msg {
			continue
		}
		match := true
		for k, v := range attrs {
			match = match && fmt.Sprint(rec[k]) == v
		}
		if match {
			n++
		}
	}
	return n
}

// inProcessOtad is otad's embedded setup (bbolt, a local folder, the pipeline with
// its temp folder) behind a real HTTP listener.
type inProcessOtad struct {
	url   string
	store *store.Store
	log   *jsonLog
	tmp   string
}

// newInProcessOtad starts it; wrap, if given, wraps the object store the handlers and
// the pipeline write through (e.g. a disk that fills up).
func newInProcessOtad(t *testing.T, wrap ...func(blob.Store) blob.Store) *inProcessOtad {
	t.Helper()
	data := t.TempDir()
	tbl, err := bolt.Open(filepath.Join(data, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(tbl)
	signer, err := urlsign.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	o := &inProcessOtad{url: hs.URL, store: st, log: &jsonLog{}, tmp: filepath.Join(data, "tmp")}
	if err := os.MkdirAll(o.tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewLocal(filepath.Join(data, "objects"), signer, hs.URL, blob.WithTempDir(o.tmp))
	if err != nil {
		t.Fatal(err)
	}
	var through blob.Store = blobs
	for _, w := range wrap {
		through = w(through)
	}
	log := slog.New(slog.NewJSONHandler(o.log, nil))
	pipe := publish.NewPipeline(st, through, log)
	pipe.TempDir, pipe.Exclusive = o.tmp, true
	srv := api.New(api.Deps{Store: st, Blobs: through, URLs: cdn.Local{Signer: signer, BaseURL: hs.URL}, Pipeline: pipe, Log: log,
		LocalSigner: signer, LocalBlobs: blobs}, api.Config{StateTTL: time.Nanosecond})
	mux.Handle("/", srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.DrainJobs(context.Background())
		st.Close()
	})
	if _, err := st.CreateKey(context.Background(), testKey, "test admin", []string{"*"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	return o
}

// bundleFile writes a zip for version: a JavaScript file of about text bytes that
// changes with the version, and size-text incompressible bytes that do not.
func bundleFile(t *testing.T, dir, version string, size, text int) string {
	t.Helper()
	var js strings.Builder
	for i := 0; js.Len() < text; i++ {
		fmt.Fprintf(&js, "export const v%d = %q; // line %d\n", i, version, i*7919%100003)
	}
	asset := make([]byte, size-text)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(asset)
	z := testenv.Zip(t, map[string]string{
		"index.html":       "<html><script src=app.js></script>" + version + "</html>",
		"app.js":           js.String(),
		"assets/photo.bin": string(asset),
	})
	p := filepath.Join(dir, version+".zip")
	if err := os.WriteFile(p, z, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConcurrentIdenticalPublishes: the same `ota release --channel` of an 8 MB
// bundle run 30 times at once, as a CI fan-out or a retry storm does, against otad over HTTP. Every run
// succeeds, the bundle is validated once, patches to it are computed once, and one
// build number is used.
func TestConcurrentIdenticalPublishes(t *testing.T) {
	const app, runs, bundleSize = "com.example.storm", 30, 8 << 20
	srv := newInProcessOtad(t)
	ctx := context.Background()
	if err := srv.store.CreateApp(ctx, release.App{ID: app, DefaultChannel: "production"}); err != nil {
		t.Fatal(err)
	}
	cl, err := newClient(srv.url, testKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := func(version string) *publishOptions {
		return &publishOptions{app: app, version: version, channel: "production", wait: time.Minute, pollInterval: 20 * time.Millisecond}
	}
	if _, err := runPublish(ctx, cl, opts("1.0.0"), bundleFile(t, dir, "1.0.0", bundleSize, 1<<20), io.Discard); err != nil {
		t.Fatal(err)
	}
	srv.waitPrecomputed(t, app, "1.0.0")

	zip := bundleFile(t, dir, "1.0.1", bundleSize, 1<<20)
	var wg sync.WaitGroup
	errs := make([]error, runs)
	results := make([]publishResult, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = runPublish(ctx, cl, opts("1.0.1"), zip, io.Discard)
		}()
	}
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			t.Errorf("run %d: %v", i, err)
		} else if results[i].Status != string(release.StatusReady) || results[i].Channel != "production" || results[i].BuildNumber != 2 {
			t.Errorf("run %d: %+v", i, results[i])
		}
	}
	srv.waitPrecomputed(t, app, "1.0.1")

	rel, err := srv.store.GetRelease(ctx, app, "1.0.1")
	if err != nil || rel.Status != release.StatusReady || rel.BuildNumber != 2 {
		t.Fatalf("release: %+v %v", rel, err)
	}
	seq, err := srv.store.BumpSeq(ctx, app, "build", 0) // reads the counter
	if err != nil || seq != 2 {
		t.Errorf("build numbers drawn: %d %v, want 2 (one per release)", seq, err)
	}
	ch, err := srv.store.GetChannel(ctx, app, "production")
	if err != nil || ch.Stable != "1.0.1" {
		t.Errorf("channel: %+v %v", ch, err)
	}
	v := map[string]string{"version": "1.0.1"}
	ready := srv.log.count("release ready", v)
	precomputes := srv.log.count("precomputing patches", v)
	patches := srv.log.count("patch stored", map[string]string{"to": "1.0.1"}) + srv.log.count("patch skipped", map[string]string{"to": "1.0.1"})
	t.Logf("%d runs: %d failed, %d release ready, %d precomputations, %d patch computations (2 kinds from 1 base)", runs, failed, ready, precomputes, patches)
	if ready != 1 || precomputes != 1 || patches != 2 {
		t.Errorf("release ready logged %d times, precomputed %d times, %d patch computations; want 1, 1, 2", ready, precomputes, patches)
	}
	if left, _ := os.ReadDir(srv.tmp); len(left) != 0 {
		t.Errorf("temp folder after the runs: %v", left)
	}
}

// waitPrecomputed waits until patches to version were precomputed (background work).
func (o *inProcessOtad) waitPrecomputed(t *testing.T, app, version string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := o.store.GetRelease(context.Background(), app, version)
		if err == nil && !r.PrecomputedAt.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("patches to %s not precomputed: %+v %v\n%s", version, r, err, o.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A channel write the server gave up on (409 conflict: it lost to concurrent writers
// every time) is success when the channel serves the version by then, as after
// identical publishes; otherwise it is tried again, and then reported.
func TestPointChannelConflict(t *testing.T) {
	var mu sync.Mutex
	puts, stable := 0, "1.0.0"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/apps/{app}/channels/{channel}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		puts++
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"conflict","message":"concurrent change, retry"}`)
	})
	mux.HandleFunc("GET /v1/apps/{app}/channels/{channel}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"channel": release.Channel{Name: r.PathValue("channel"), Stable: stable}})
	})
	hs := httptest.NewServer(mux)
	defer hs.Close()
	cl, err := newClient(hs.URL, testKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pointChannel(ctx, cl, "a", "production", "1.0.1"); errorCode(err) != "conflict" || puts != 5 {
		t.Fatalf("channel never serving the version: %v after %d writes, want the conflict after 5", err, puts)
	}
	mu.Lock()
	puts, stable = 0, "1.0.1" // another publish of the same version set it
	mu.Unlock()
	if err := pointChannel(ctx, cl, "a", "production", "1.0.1"); err != nil || puts != 1 {
		t.Fatalf("channel serving the version: %v after %d writes, want success after 1", err, puts)
	}
}
