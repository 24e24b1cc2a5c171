package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/testenv"
	"github.com/otakit/ota/shared/urlsign"
)

// offsetClock is real time plus an adjustable offset, so objects written by the test
// (with real modification times) can be made to look old.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.off.Add(int64(d)) }

type retEnv struct {
	t     *testing.T
	st    *store.Store
	blobs *blob.Local
	pipe  *Pipeline
	clock *offsetClock
}

func newRetEnv(t *testing.T) *retEnv {
	t.Helper()
	dir := t.TempDir()
	tbl, err := bolt.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &offsetClock{}
	st := store.New(tbl).WithClock(clock.now)
	t.Cleanup(func() { st.Close() })
	signer, err := urlsign.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewLocal(filepath.Join(dir, "blobs"), signer, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	return &retEnv{t: t, st: st, blobs: blobs, pipe: NewPipeline(st, blobs, nil), clock: clock}
}

func (e *retEnv) app(id string) {
	e.t.Helper()
	if err := e.st.CreateApp(context.Background(), release.App{ID: id, DefaultChannel: "production", CreatedAt: e.clock.now()}); err != nil {
		e.t.Fatal(err)
	}
}

// publish runs the whole pipeline on a zip of files (plus index.html).
func (e *retEnv) publish(app, version string, files map[string]string) {
	e.t.Helper()
	all := map[string]string{"index.html": "<html>" + app + "</html>"}
	for k, v := range files {
		all[k] = v
	}
	r, err := e.pipe.PublishBytes(context.Background(), Input{AppID: app, Version: version}, testenv.Zip(e.t, all))
	if err != nil || r.Status != release.StatusReady {
		e.t.Fatalf("publish %s@%s: %v (status %s)", app, version, err, r.Status)
	}
}

// failed creates a release whose upload does not validate.
func (e *retEnv) failed(app, version string) {
	e.t.Helper()
	ctx := context.Background()
	z := []byte("not a zip at all")
	r, _, err := e.pipe.Create(ctx, Input{AppID: app, Version: version, SHA256: sign.SHA256Hex(z), Size: int64(len(z))})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.blobs.Put(ctx, blob.BundleKey(app, version, r.BundleKey), bytes.NewReader(z), int64(len(z)), "application/zip"); err != nil {
		e.t.Fatal(err)
	}
	if err := e.pipe.Ingest(ctx, blob.BundleKey(app, version, r.BundleKey)); err == nil {
		e.t.Fatalf("%s@%s: bad upload ingested", app, version)
	}
}

func (e *retEnv) setChannel(app, channel string, fn func(c *release.Channel)) {
	e.t.Helper()
	_, err := e.st.UpdateChannel(context.Background(), app, channel, "test", "set", func(c *release.Channel, _ bool) error {
		fn(c)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func fileKey(content string) string { return blob.FileKey(sign.SHA256Hex([]byte(content))) }

func (e *retEnv) exists(key string) bool {
	_, err := e.blobs.Stat(context.Background(), key)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// checkIntegrity: every release left has its bundle and every file its manifest
// names; every patch record joins two existing releases and has its object.
func (e *retEnv) checkIntegrity() { e.checkIntegrityOf(true) }

// checkIntegrityOf checks patch records only when quiet: a patch computed from a
// release deleted meanwhile leaves a record the next cleanup removes.
func (e *retEnv) checkIntegrityOf(quiet bool) {
	e.t.Helper()
	ctx := context.Background()
	apps, err := e.st.ListApps(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range apps {
		rels, err := e.st.ListReleases(ctx, a.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		have := map[string]bool{}
		for _, r := range rels {
			have[r.Version] = true
			if r.Status != release.StatusReady {
				continue
			}
			if !e.exists(blob.BundleKey(a.ID, r.Version, r.BundleKey)) {
				e.t.Errorf("%s@%s: bundle missing", a.ID, r.Version)
			}
			m, err := e.pipe.readManifest(ctx, blob.ManifestKey(a.ID, r.Version))
			if err != nil {
				e.t.Errorf("%s@%s: manifest: %v", a.ID, r.Version, err)
				continue
			}
			for _, f := range m.Files {
				if !e.exists(blob.FileKey(f.SHA256)) {
					e.t.Errorf("%s@%s: file %s (%s) missing", a.ID, r.Version, f.Path, f.SHA256[:8])
				}
			}
		}
		for _, kind := range []string{KindTree, KindFlux} {
			if !quiet {
				break
			}
			ps, err := e.st.ListPatches(ctx, a.ID, kind)
			if err != nil {
				e.t.Fatal(err)
			}
			for _, p := range ps {
				if !have[p.From] || !have[p.To] {
					e.t.Errorf("%s: %s patch %s->%s joins a deleted release", a.ID, kind, p.From, p.To)
				}
				if !e.exists(p.Key) {
					e.t.Errorf("%s: %s patch %s->%s: object %s missing", a.ID, kind, p.From, p.To, p.Key)
				}
			}
		}
	}
}

func versionsOf(t *testing.T, st *store.Store, app string) []string {
	t.Helper()
	rels, err := st.ListReleases(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rels {
		out = append(out, r.Version)
	}
	sort.Strings(out)
	return out
}

func keptReason(rep Report, v string) string {
	for _, k := range rep.Kept {
		if k.Version == v {
			return k.Reason
		}
	}
	return ""
}

func TestCleanup(t *testing.T) {
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.app("b")
	// v1..v6 share logo.svg; old.txt is only in v1 and v2 (and in app b, which
	// shares content-addressed files); each has its own app.js.
	for i := 1; i <= 6; i++ {
		files := map[string]string{"logo.svg": "<svg/>", "app.js": fmt.Sprintf("v%d()", i)}
		if i <= 2 {
			files["old.txt"] = "old"
		}
		if i == 3 {
			files["only3.txt"] = "three"
		}
		e.publish("a", fmt.Sprintf("1.0.%d", i), files)
		if i == 3 { // an old failed release, and a new one (after 1.0.6)
			e.failed("a", "1.0.3-bad")
		}
	}
	e.failed("a", "1.0.7-bad")
	e.publish("b", "9.0.0", map[string]string{"shared.txt": "three"}) // same bytes as a@1.0.3's only3.txt
	// A pending release (never uploaded).
	pend := testenv.Zip(t, map[string]string{"index.html": "pending"})
	if _, _, err := e.pipe.Create(ctx, Input{AppID: "a", Version: "1.0.8-pending", SHA256: sign.SHA256Hex(pend), Size: int64(len(pend))}); err != nil {
		t.Fatal(err)
	}
	// Channels: production served 1.0.2 long ago (pushed out of the last 20 history
	// entries), then 1.0.4, now 1.0.5 with 1.0.6 rolling out; beta serves 1.0.6.
	e.setChannel("a", "production", func(c *release.Channel) { c.Stable = "1.0.2" })
	e.setChannel("a", "production", func(c *release.Channel) { c.Stable = "1.0.4" })
	for range CleanupHistoryDepth - 2 {
		e.setChannel("a", "production", func(c *release.Channel) { c.Stable, c.Public = "1.0.5", !c.Public })
	}
	e.setChannel("a", "production", func(c *release.Channel) {
		c.Rolling = &release.Rollout{Version: "1.0.6", Percent: 10, Salt: "s"}
	})
	e.setChannel("a", "beta", func(c *release.Channel) { c.Stable = "1.0.6" })
	// A stray bundle without a release record.
	if err := e.blobs.Put(ctx, blob.BundleKey("a", "0.0.1-ghost", ""), strings.NewReader("ghost"), 5, "application/zip"); err != nil {
		t.Fatal(err)
	}
	patchesBefore, _ := e.st.ListPatches(ctx, "a", KindTree)
	if len(patchesBefore) == 0 {
		t.Fatal("no patches were precomputed")
	}
	e.clock.advance(3 * time.Hour) // every object is now old enough to go

	wantDeleted := []string{"1.0.1", "1.0.2", "1.0.3", "1.0.3-bad"}
	check := func(rep Report) {
		t.Helper()
		got := slices.Clone(rep.Deleted)
		sort.Strings(got)
		if !slices.Equal(got, wantDeleted) {
			t.Fatalf("deleted %v, want %v (kept %+v)", got, wantDeleted, rep.Kept)
		}
		for v, want := range map[string]string{
			"1.0.8-pending": "pending", "1.0.7-bad": "newest (failed", "1.0.6": "newest", "1.0.5": "newest",
			"1.0.4": "channel production history",
		} {
			if !strings.HasPrefix(keptReason(rep, v), want) {
				t.Errorf("%s kept as %q, want %q...", v, keptReason(rep, v), want)
			}
		}
		if rep.Files != 4 { // app.js of v1, v2, v3 and old.txt (only3.txt is shared with app b)
			t.Errorf("files deleted: %d, want 4 (%+v)", rep.Files, rep)
		}
		if rep.Orphans != 1 || rep.Patches == 0 || rep.PatchObjects == 0 || rep.FileSweep != "done" || len(rep.Errors) > 0 {
			t.Errorf("report %+v", rep)
		}
	}

	// Dry run: the same report, nothing deleted.
	dry, err := e.pipe.CleanupWith(ctx, "a", CleanupOptions{Keep: 2, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	check(dry)
	if n := len(versionsOf(t, e.st, "a")); n != 9 {
		t.Fatalf("dry run deleted releases: %d left", n)
	}
	if !e.exists(fileKey("old")) || !e.exists(blob.BundleKey("a", "0.0.1-ghost", "")) {
		t.Fatal("dry run deleted objects")
	}

	rep, err := e.pipe.Cleanup(ctx, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	check(rep)
	if got := versionsOf(t, e.st, "a"); !slices.Equal(got, []string{"1.0.4", "1.0.5", "1.0.6", "1.0.7-bad", "1.0.8-pending"}) {
		t.Fatalf("releases left: %v", got)
	}
	bundles, err := e.blobs.List(ctx, "bundles/a/")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range wantDeleted {
		if slices.ContainsFunc(bundles, func(k string) bool { _, kv, _ := blob.ParseBundleKey(k); return kv == v }) || e.exists(blob.ManifestKey("a", v)) {
			t.Errorf("%s: bundle or manifest left", v)
		}
	}
	for content, want := range map[string]bool{"old": false, "v1()": false, "v3()": false, "three": true, "<svg/>": true, "v4()": true, "v6()": true} {
		if got := e.exists(fileKey(content)); got != want {
			t.Errorf("file %q exists=%v, want %v", content, got, want)
		}
	}
	if e.exists(blob.BundleKey("a", "0.0.1-ghost", "")) {
		t.Error("orphan bundle left")
	}
	e.checkIntegrity()

	// Idempotent: a second run finds nothing.
	again, err := e.pipe.Cleanup(ctx, "a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Deleted) != 0 || again.Files != 0 || again.Patches != 0 || again.PatchObjects != 0 || again.Orphans != 0 {
		t.Fatalf("second run: %+v", again)
	}
	// keep=1 with everything referenced: nothing more.
	one, err := e.pipe.Cleanup(ctx, "a", 1)
	if err != nil || len(one.Deleted) != 0 {
		t.Fatalf("keep=1: %+v %v", one, err)
	}
	e.checkIntegrity()
}

// TestCleanupKeepsRollbackTarget: however long the history since, the release a
// rollback goes back to survives cleanup --keep 1; the next one back does not.
func TestCleanupKeepsRollbackTarget(t *testing.T) {
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		e.publish("a", v, map[string]string{"app.js": v})
		e.setChannel("a", "production", func(c *release.Channel) { c.Stable = v })
	}
	for range 2 * CleanupHistoryDepth { // changes that push 1.0.1 out of the recent window
		e.setChannel("a", "production", func(c *release.Channel) { c.Public = !c.Public })
	}
	e.clock.advance(3 * time.Hour)
	rep, err := e.pipe.Cleanup(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Deleted, []string{"1.0.0"}) || keptReason(rep, "1.0.1") != "channel production history (rollback target)" {
		t.Fatalf("deleted %v, kept %+v: want 1.0.0 deleted and 1.0.1 kept as the rollback target", rep.Deleted, rep.Kept)
	}
	e.checkIntegrity()
}

func TestCleanupBadInput(t *testing.T) {
	e := newRetEnv(t)
	e.app("a")
	var pe *Error
	if _, err := e.pipe.Cleanup(context.Background(), "a", 0); !errors.As(err, &pe) || pe.Code != "invalid_keep" || pe.Kind != fault.Invalid {
		t.Fatalf("keep 0: %v", err)
	}
	if _, err := e.pipe.Cleanup(context.Background(), "nope", 3); !errors.As(err, &pe) || pe.Code != "app_not_found" || pe.Kind != fault.NotFound {
		t.Fatalf("unknown app: %v", err)
	}
}

// TestCleanupAgeGuard: unreferenced objects younger than CleanupMinAge stay.
func TestCleanupAgeGuard(t *testing.T) {
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.publish("a", "1.0.0", map[string]string{"a.js": "1"})
	stray := "stray bytes"
	if err := e.blobs.Put(ctx, fileKey(stray), strings.NewReader(stray), int64(len(stray)), ""); err != nil {
		t.Fatal(err)
	}
	rep, err := e.pipe.Cleanup(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 0 || rep.RecentObjects != 1 || !e.exists(fileKey(stray)) {
		t.Fatalf("fresh stray file: %+v", rep)
	}
	e.clock.advance(CleanupMinAge + time.Minute)
	if rep, err = e.pipe.Cleanup(ctx, "a", 1); err != nil {
		t.Fatal(err)
	}
	if rep.Files != 1 || e.exists(fileKey(stray)) {
		t.Fatalf("old stray file: %+v", rep)
	}
	e.checkIntegrity()
}

// TestCleanupWaitsForIngest: while a pending release's upload is fresh, files are
// not swept (the ingest may rely on files that exist).
func TestCleanupWaitsForIngest(t *testing.T) {
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.app("b")
	e.publish("a", "1.0.0", map[string]string{"a.js": "old"})
	e.publish("a", "1.0.1", map[string]string{"a.js": "new"})
	z := testenv.Zip(t, map[string]string{"index.html": "<html>b</html>", "a.js": "old"})
	rb, _, err := e.pipe.Create(ctx, Input{AppID: "b", Version: "2.0.0", SHA256: sign.SHA256Hex(z), Size: int64(len(z))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.blobs.Put(ctx, blob.BundleKey("b", "2.0.0", rb.BundleKey), bytes.NewReader(z), int64(len(z)), "application/zip"); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(CleanupMinAge + time.Minute) // objects old, the upload within IngestWindow
	rep, err := e.pipe.Cleanup(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Deleted, []string{"1.0.0"}) || rep.Files != 0 || !strings.Contains(rep.FileSweep, "b@2.0.0 is being published") {
		t.Fatalf("report %+v", rep)
	}
	if !e.exists(fileKey("old")) {
		t.Fatal("file deleted under an ingest")
	}
	if err := e.pipe.Ingest(ctx, blob.BundleKey("b", "2.0.0", rb.BundleKey)); err != nil {
		t.Fatal(err)
	}
	e.checkIntegrity()
}

// raceBlobs runs a hook just before deleting one key: the moment a concurrent ingest
// would find the file present.
type raceBlobs struct {
	blob.Store
	key  string
	hook func()
	once sync.Once
}

func (r *raceBlobs) Delete(ctx context.Context, key string) error {
	if key == r.key {
		r.once.Do(r.hook)
	}
	return r.Store.Delete(ctx, key)
}

// TestCleanupRepairsRacingIngest: an ingest that skips a file because it exists,
// right before the sweep deletes it, gets the file back.
func TestCleanupRepairsRacingIngest(t *testing.T) {
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.publish("a", "1.0.0", map[string]string{"a.js": "shared later"})
	e.publish("a", "1.0.1", map[string]string{"a.js": "current"})
	e.setChannel("a", "production", func(c *release.Channel) { c.Stable = "1.0.1" })
	e.clock.advance(3 * time.Hour)
	rb := &raceBlobs{Store: e.blobs, key: fileKey("shared later")}
	e.pipe.Blobs = rb
	rb.hook = func() {
		z := testenv.Zip(t, map[string]string{"index.html": "<html>a</html>", "b.js": "shared later"})
		r, err := e.pipe.PublishBytes(ctx, Input{AppID: "a", Version: "1.0.2"}, z)
		if err != nil || r.Status != release.StatusReady {
			t.Errorf("publish during sweep: %v %s", err, r.Status)
		}
	}
	rep, err := e.pipe.Cleanup(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Restored != 1 || !e.exists(fileKey("shared later")) {
		t.Fatalf("not repaired: %+v", rep)
	}
	e.checkIntegrity()
}

// TestCleanupConcurrentPublishing: cleanups in a loop while releases reusing deleted
// content are published; every release left is whole.
func TestCleanupConcurrentPublishing(t *testing.T) {
	defer func(a, w time.Duration) { minObjectAge, ingestWindow = a, w }(minObjectAge, ingestWindow)
	// Unreferenced objects may go after a moment (patch objects are written just before
	// their records; the real guard is an hour).
	minObjectAge, ingestWindow = time.Second, time.Minute
	e := newRetEnv(t)
	ctx := context.Background()
	e.app("a")
	e.publish("a", "1.0.0", map[string]string{"c.js": "c0"})
	e.setChannel("a", "production", func(c *release.Channel) { c.Stable = "1.0.0" })
	var wg sync.WaitGroup
	done := make(chan struct{})
	rounds, deleted, files, restored := 0, 0, 0, 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			rep, err := e.pipe.Cleanup(ctx, "a", 1)
			if err != nil {
				t.Errorf("cleanup: %v", err)
				return
			}
			rounds++
			deleted += len(rep.Deleted)
			files += rep.Files
			restored += rep.Restored
		}
	})
	for i := 1; i <= 12; i++ {
		// Content cycles through three variants, so it keeps coming back after its
		// release was deleted.
		e.publish("a", fmt.Sprintf("1.0.%d", i), map[string]string{"c.js": fmt.Sprintf("c%d", i%3), "n.js": fmt.Sprint(i % 2)})
	}
	close(done)
	wg.Wait()
	if rounds == 0 {
		t.Fatal("no cleanup ran")
	}
	e.checkIntegrityOf(false)
	time.Sleep(minObjectAge)
	rep, err := e.pipe.Cleanup(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	e.checkIntegrity()
	if got := versionsOf(t, e.st, "a"); !slices.Equal(got, []string{"1.0.0", "1.0.12"}) {
		t.Fatalf("releases left: %v (%+v)", got, rep)
	}
	t.Logf("%d cleanups ran during 12 publishes: %d releases and %d files deleted, %d files restored", rounds, deleted, files, restored)
}
