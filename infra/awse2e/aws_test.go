// Package awse2e runs the AWS path end to end on the emulators: DynamoDB Local and
// versitygw (real SigV4), the Lambda handlers behind a stand-in API Gateway, and the
// patch function fed S3 ObjectCreated events.
package awse2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/awsenv"
	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/blob/s3blob"
	"github.com/otakit/ota/shared/client"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/s3event"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/dynamo"
	"github.com/otakit/ota/shared/testenv"
)

type env struct {
	table  string
	deps   api.Deps
	gw     *apiGateway
	url    string
	admin  string
	bucket string
	s3     *s3.Client
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	ddb := testenv.DynamoClient(t, testenv.DynamoEndpoint(t))
	table := testenv.TableName(t)
	if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dynamo.DeleteTable(context.Background(), ddb, table) })
	s3c := s3.New(s3.Options{Region: testenv.Region, BaseEndpoint: aws.String(testenv.S3Endpoint(t)), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "testsecret", "")})
	bucket := "ota-e2e-" + testenv.RandSuffix()
	if err := s3blob.EnsureBucket(ctx, s3c, bucket); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps, err := awsenv.Deps(ctx, awsenv.Options{Table: table, Bucket: bucket, DynamoDB: ddb, S3: s3c, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{StateTTL: 50 * time.Millisecond}
	// Each group gets its own server, as each Lambda has its own process and cache.
	gw := newAPIGateway(func(g api.Group) http.Handler { return api.New(deps, cfg).Handler(g) })
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	admin := store.NewKeySecret()
	if _, err := deps.Store.CreateKey(ctx, admin, "e2e", []string{"*"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	return &env{table: table, deps: deps, gw: gw, url: hs.URL, admin: admin, bucket: bucket, s3: s3c}
}

// notifier plays S3 event notifications: each new object under bundles/ is
// delivered to the patch function's handler three times, concurrently (S3
// delivers at least once; duplicates must be harmless).
func (e *env) notifier(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	h := s3event.Handler{Ingester: e.deps.Pipeline, Bucket: e.bucket}
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			keys, _ := e.deps.Blobs.List(ctx, "bundles/")
			for _, k := range keys {
				if seen[k] {
					continue
				}
				seen[k] = true
				ev := s3Event(e.bucket, k)
				var wg sync.WaitGroup
				for range 3 {
					wg.Add(1)
					go func() { defer wg.Done(); h.Handle(ctx, ev) }()
				}
				wg.Wait()
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	return func() { cancel(); <-done }
}

func s3Event(bucket, key string) events.S3Event {
	var ev events.S3Event
	b, err := os.ReadFile("../../events/s3-put.json")
	if err == nil && json.Unmarshal(b, &ev) == nil && len(ev.Records) == 1 {
		ev.Records[0].S3.Bucket.Name = bucket
		ev.Records[0].S3.Object.Key = s3blob.EventKey(key)
		return ev
	}
	panic(fmt.Sprintf("events/s3-put.json unusable: %v", err))
}

var (
	buildMu sync.Mutex
	binDir  string // holds the built commands; TestMain removes it
	built   = map[string]string{}
)

// binary builds a command of this module once per test run, into one temporary
// folder that TestMain removes at the end (removeBinaries).
func binary(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "ota-e2e-bin")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
	}
	p := filepath.Join(binDir, name)
	if runtime.GOOS == "windows" {
		p += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", p, "github.com/otakit/ota/cmd/"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	built[name] = p
	return p
}

// removeBinaries removes what binary built.
func removeBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	binDir, built = "", map[string]string{}
}

func (e *env) ota(t *testing.T, args ...string) (string, error) {
	return e.otaAt(t, e.url, args...)
}

func (e *env) otaAt(t *testing.T, server string, args ...string) (string, error) {
	cmd := exec.Command(binary(t, "ota"), args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "OTA_SERVER="+server, "OTA_API_KEY="+e.admin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), err
}

type capgoAnswer struct {
	Version, URL, Checksum, Kind, Error string
}

func (e *env) capgoCheck(t *testing.T, app, device, current string) capgoAnswer {
	return capgoCheckAt(t, e.url, app, device, current)
}

func capgoCheckAt(t *testing.T, server, app, device, current string) capgoAnswer {
	body := fmt.Sprintf(`{"app_id":%q,"device_id":%q,"platform":"android","version_name":%q,"version_build":"1.0.0","version_code":"1","version_os":"14","plugin_version":"8.51.23","custom_id":"","defaultChannel":"","is_emulator":false,"is_prod":true}`, app, device, current)
	resp, err := http.Post(server+"/capgo/updates", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a capgoAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
		t.Fatalf("capgo check: %d %v", resp.StatusCode, err)
	}
	return a
}

// waitPatch waits for a precomputed patch: the patch function precomputes after the
// release is ready (in the same invocation), so `ota release` may return first.
func waitPatch(ctx context.Context, st *store.Store, app, kind, from, to string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := st.GetPatch(ctx, app, kind, from, to)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func sha(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func get(t *testing.T, u string) (int, []byte) {
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestPublishAndCheckOnEmulators: `ota release` through API Gateway + the upload
// Lambda, a presigned PUT verified by the S3 emulator, S3 events (each delivered
// three times) to the patch function, ready, then a Capgo device check through the
// check Lambda, and a download URL that S3 honours.
func TestPublishAndCheckOnEmulators(t *testing.T) {
	e := setup(t)
	stop := e.notifier(t)
	defer stop()
	const app = "com.example.aws"
	if out, err := e.ota(t, "app", "create", app); err != nil {
		t.Fatalf("app create: %v %s", err, out)
	}
	v2 := t.TempDir()
	testenv.CopyTree(t, "../../testdata/quickstart/www", v2)
	if err := os.WriteFile(filepath.Join(v2, "app.js"), []byte("console.log('v1.0.2: a changed file');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ v, dir string }{{"1.0.1", "testdata/quickstart/www"}, {"1.0.2", v2}} {
		if out, err := e.ota(t, "release", r.dir, "--app", app, "--version", r.v, "--channel", "production", "--notes", "v"+r.v, "--wait", "60s"); err != nil {
			t.Fatalf("release %s: %v %s", r.v, err, out)
		}
	}
	ctx := context.Background()
	rels, err := e.deps.Store.ListReleases(ctx, app)
	if err != nil || len(rels) != 2 {
		t.Fatalf("releases: %d %v", len(rels), err)
	}
	for _, r := range rels {
		if r.Status != release.StatusReady {
			t.Fatalf("release %s is %s", r.Version, r.Status)
		}
	}
	a := e.capgoCheck(t, app, "8b0e2f64-3c1d-4a9e-b7f5-2d6c8a1e0f93", "builtin")
	if a.Version != "1.0.2" || a.Checksum == "" {
		t.Fatalf("device check: %+v", a)
	}
	code, body := get(t, a.URL)
	if code != 200 || sha(body) != a.Checksum {
		t.Fatalf("download: HTTP %d, sha256 %s, checksum %s", code, sha(body), a.Checksum)
	}
	if code, _ := get(t, strings.Replace(a.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1)); code != http.StatusForbidden {
		t.Fatalf("tampered download URL: HTTP %d, want 403", code)
	}
	// The patch function precomputed a patch from 1.0.1 to 1.0.2, and the Go device
	// client on 1.0.1 gets to 1.0.2 through it, from S3, byte for byte.
	if err := waitPatch(ctx, e.deps.Store, app, "ota", "1.0.1", "1.0.2"); err != nil {
		t.Fatalf("precomputed patch: %v", err)
	}
	dir := t.TempDir()
	dev, err := client.New(client.Config{Server: e.url, AppID: app, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := e.ota(t, "channel", "set", "production", "--app", app, "--version", "1.0.1"); err != nil {
		t.Fatalf("channel set: %v %s", err, out)
	}
	time.Sleep(100 * time.Millisecond) // the check function's state cache (50 ms here)
	if res, err := dev.Sync(ctx); err != nil || res.To != "1.0.1" || res.Via != "full" {
		t.Fatalf("device sync to 1.0.1: %+v %v", res, err)
	}
	if out, err := e.ota(t, "channel", "set", "production", "--app", app, "--version", "1.0.2"); err != nil {
		t.Fatalf("channel set: %v %s", err, out)
	}
	time.Sleep(100 * time.Millisecond)
	res, err := dev.Sync(ctx)
	if err != nil || res.To != "1.0.2" || res.Via != "patch" {
		t.Fatalf("device sync to 1.0.2: %+v %v", res, err)
	}
	if err := sameAsFolder(dev.LiveDir(), v2); err != nil {
		t.Fatalf("synced tree: %v", err)
	}
	for _, g := range []api.Group{api.GroupUpload, api.GroupAdmin, api.GroupCheck} {
		if e.gw.count(g) == 0 {
			t.Errorf("function %s never invoked", g)
		}
	}
}

// TestDuplicateEventsAndConcurrentUploads: the same S3 event three times after the
// release is ready changes nothing; two uploads of one version with other bytes
// race and exactly one release exists.
func TestDuplicateEventsAndConcurrentUploads(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	const app = "com.example.race"
	if err := e.deps.Store.CreateApp(ctx, release.App{ID: app, DefaultChannel: "production"}); err != nil {
		t.Fatal(err)
	}
	type created struct {
		status int
		up     struct {
			Upload *blob.Upload `json:"upload"`
		}
		body []byte
	}
	create := func(data []byte) created {
		in, _ := json.Marshal(map[string]any{"version": "2.0.0", "sha256": sha(data), "size": len(data)})
		req, _ := http.NewRequest("POST", e.url+"/v1/apps/"+app+"/releases", bytes.NewReader(in))
		req.Header.Set("Authorization", "Bearer "+e.admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return created{}
		}
		defer resp.Body.Close()
		c := created{status: resp.StatusCode}
		c.body, _ = io.ReadAll(resp.Body)
		json.Unmarshal(c.body, &c.up)
		return c
	}
	zips := [][]byte{zipWith(t, "one"), zipWith(t, "two")}
	res := make([]created, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); res[i] = create(zips[i]) }()
	}
	wg.Wait()
	winner := -1
	for i, r := range res {
		switch r.status {
		case http.StatusCreated:
			if winner >= 0 {
				t.Fatalf("both uploads created the release")
			}
			winner = i
		case http.StatusConflict:
			if !bytes.Contains(r.body, []byte("version_exists")) {
				t.Fatalf("loser answer: %s", r.body)
			}
		default:
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	if winner < 0 {
		t.Fatal("no upload won")
	}
	// Upload the winner's bytes with its presigned PUT (S3 checks the sha256), and
	// try the loser's bytes on the same URL: refused by S3.
	up := res[winner].up.Upload
	put := func(data []byte) int { return presignedPut(t, up, data) }
	if other := zips[1-winner]; len(other) == len(zips[winner]) {
		if code := put(other); code == 200 {
			t.Fatalf("S3 accepted bytes whose sha256 differs from the presigned one")
		}
	}
	if code := put(zips[winner]); code != 200 {
		t.Fatalf("presigned PUT: %d", code)
	}
	h := s3event.Handler{Ingester: e.deps.Pipeline, Bucket: e.bucket}
	pending, err := e.deps.Store.GetRelease(ctx, app, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	ev := s3Event(e.bucket, pending.BundleKey) // the key the presigned PUT wrote
	if !strings.HasPrefix(pending.BundleKey, "bundles/"+app+"/2.0.0/") {
		t.Fatalf("bundle key %q", pending.BundleKey)
	}
	var wg2 sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg2.Add(1)
		go func() { defer wg2.Done(); errs <- h.Handle(ctx, ev) }()
	}
	wg2.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("event: %v", err)
		}
	}
	r, err := e.deps.Store.GetRelease(ctx, app, "2.0.0")
	if err != nil || r.Status != release.StatusReady || r.SHA256 != sha(zips[winner]) {
		t.Fatalf("release after duplicate events: %+v %v", r, err)
	}
	readyAt := r.ReadyAt
	if err := h.Handle(ctx, ev); err != nil { // late duplicate
		t.Fatal(err)
	}
	r2, _ := e.deps.Store.GetRelease(ctx, app, "2.0.0")
	if !r2.ReadyAt.Equal(readyAt) {
		t.Fatalf("a late duplicate event re-published the release")
	}
	rels, _ := e.deps.Store.ListReleases(ctx, app)
	if len(rels) != 1 {
		t.Fatalf("%d releases, want exactly 1", len(rels))
	}
	// An event for an object nobody asked for is dropped, not retried forever.
	if err := h.Handle(ctx, s3Event(e.bucket, "bundles/"+app+"/9.9.9.zip")); err != nil {
		t.Fatalf("orphan object event should be dropped: %v", err)
	}
}

func zipWith(t *testing.T, marker string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.html")
	io.WriteString(w, "<html>"+marker+"</html>")
	zw.Close()
	return buf.Bytes()
}

// sameAsFolder compares two trees file by file.
func sameAsFolder(got, want string) error {
	files := 0
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(p)
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%s differs", rel)
		}
		files++
		return nil
	})
	if err != nil {
		return err
	}
	n := 0
	filepath.WalkDir(got+"/", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n != files {
		return fmt.Errorf("%d files, want %d", n, files)
	}
	return nil
}
