package publish

import (
	"bytes"
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/testenv"
)

// uploadPending creates a pending release of files and uploads its bundle, leaving
// it as a publish whose ingest has not run (or is running); it returns the key.
func (e *retEnv) uploadPending(app, version string, files map[string]string) string {
	e.t.Helper()
	ctx := context.Background()
	z := testenv.Zip(e.t, files)
	_, up, err := e.pipe.Create(ctx, Input{AppID: app, Version: version, SHA256: sign.SHA256Hex(z), Size: int64(len(z))})
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := url.Parse(up.URL) // the upload goes where the CLI's would
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := e.blobs.ReceiveUpload(ctx, u.Path, u.Query(), bytes.NewReader(z))
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// TestCleanupNow: with Now, space of gone releases comes back at once (young
// objects included), but never a file a publish in progress may use, nor a patch
// object a computation may be about to record.
func TestCleanupNow(t *testing.T) {
	// The regular in-flight guard sees no upload as fresh: only --now's own rule
	// (pending with an upload, whatever its age) stands between the sweep and b's files.
	defer func(w time.Duration) { ingestWindow = w }(ingestWindow)
	ingestWindow = time.Nanosecond
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.app("b")
	e.publish("a", "1.0.0", map[string]string{"app.js": "one", "lib.js": "shared"})
	e.publish("a", "1.0.1", map[string]string{"app.js": "two"})
	e.publish("a", "1.0.2", map[string]string{"app.js": "three"})
	e.setChannel("a", "production", func(c *release.Channel) { c.Stable = "1.0.2" })
	// Every patch between these three joins 1.0.0 or 1.0.1: all go with them.
	var deadPatches []string
	ps, err := e.st.ListPatches(ctx, "a", KindTree)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		deadPatches = append(deadPatches, p.Key)
	}
	if len(deadPatches) == 0 {
		t.Fatal("no patches were precomputed")
	}
	ghost := "bundles/a/0.0.1-ghost.zip"
	computing := blob.PatchKey(KindTree, sign.SHA256Hex([]byte("a patch being computed")))
	for _, k := range []string{ghost, computing} {
		if err := e.blobs.Put(ctx, k, strings.NewReader("x"), 1, "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	// b is being published: its bundle is uploaded, its ingest has not stored its
	// files yet, and it shares lib.js with a@1.0.0 (the ingest will skip it as present).
	bKey := e.uploadPending("b", "2.0.0", map[string]string{"index.html": "<html>b</html>", "lib.js": "shared"})

	// Without Now everything young stays, as before.
	plain, err := e.pipe.CleanupWith(ctx, "a", CleanupOptions{Keep: 1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Files+plain.Orphans+plain.PatchObjects != 0 || plain.RecentObjects == 0 {
		t.Fatalf("without now: %+v, want young objects kept", plain)
	}

	rep, err := e.pipe.CleanupWith(ctx, "a", CleanupOptions{Keep: 1, Now: true})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(rep.Deleted))
	if !slices.Equal(got, []string{"1.0.0", "1.0.1"}) || !rep.Now {
		t.Fatalf("deleted %v, want 1.0.0 and 1.0.1 (report %+v)", got, rep)
	}
	if rep.Orphans != 1 || e.exists(ghost) {
		t.Errorf("young orphan bundle: %d deleted, exists %v; want it gone", rep.Orphans, e.exists(ghost))
	}
	for _, k := range deadPatches {
		if e.exists(k) {
			t.Errorf("patch object %s of a deleted record left", k)
		}
	}
	if !e.exists(computing) {
		t.Error("a young patch object no deleted record names (a computation in progress) was deleted")
	}
	if rep.Files != 0 || !e.exists(fileKey("shared")) || !e.exists(fileKey("one")) || !strings.Contains(rep.RecentReason, "b@2.0.0") {
		t.Fatalf("files swept with a publish pending: %+v", rep)
	}

	// b's ingest finds lib.js present, as the sweep left it.
	if err := e.pipe.Ingest(ctx, bKey); err != nil {
		t.Fatal(err)
	}
	e.checkIntegrity()

	// Nothing pending any more: the files of the deleted releases go at once.
	rep, err = e.pipe.CleanupWith(ctx, "a", CleanupOptions{Keep: 1, Now: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 2 || rep.RecentReason != "" || rep.FileSweep != "done" || len(rep.Errors) > 0 {
		t.Fatalf("second run: %+v, want app.js of 1.0.0 and 1.0.1 deleted", rep)
	}
	for content, want := range map[string]bool{"one": false, "two": false, "three": true, "shared": true} {
		if e.exists(fileKey(content)) != want {
			t.Errorf("file %q exists=%v, want %v", content, !want, want)
		}
	}
	if !e.exists(computing) {
		t.Error("the in-progress patch object went on the second run")
	}
	e.checkIntegrity()
}

// TestCleanupNowReadySince: a release that became ready after the manifests were
// read, and before --now's check, keeps its young files.
func TestCleanupNowReadySince(t *testing.T) {
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.publish("a", "1.0.0", map[string]string{"app.js": "one"})
	files := map[string]bool{}
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.advance(2 * clockSlack)
	since := e.clock.now()
	e.publish("a", "1.0.1", map[string]string{"app.js": "two"}) // ready after since
	var rep Report
	ok, err := e.pipe.youngFilesSafe(ctx, apps, since, files, &rep)
	if err != nil || !ok {
		t.Fatalf("youngFilesSafe = %v, %v (%+v)", ok, err, rep)
	}
	if !files[fileKey("two")] || files[fileKey("one")] {
		t.Fatalf("files %v: want 1.0.1's (ready since) and not 1.0.0's (read before)", files)
	}
}
