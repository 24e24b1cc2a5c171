package awse2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/infra/lambdarie"
	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/awsenv"
	"github.com/otakit/ota/shared/blob/s3blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/dynamo"
	"github.com/otakit/ota/shared/testenv"
)

// rieFunction is one function as template.yaml deploys it (memory, timeout) and the
// group of routes it serves (none for patch, which S3 invokes).
type rieFunction struct {
	name     string
	group    api.Group
	memoryMB int
	timeout  time.Duration
	env      map[string]string
}

var rieFunctions = []rieFunction{
	{"check", api.GroupCheck, 512, 10 * time.Second, nil},
	{"confirm", api.GroupConfirm, 256, 10 * time.Second, nil},
	{"stats", api.GroupStats, 256, 10 * time.Second, nil},
	{"upload", api.GroupUpload, 1024, 29 * time.Second, nil},
	{"admin", api.GroupAdmin, 256, 29 * time.Second, nil},
	{"patch", "", 1536, 300 * time.Second, map[string]string{"GOMEMLIMIT": "1024MiB"}},
}

// rieFigure is one function's line of the report (OTA_RIE_REPORT).
type rieFigure struct {
	Function             string  `json:"function"`
	BinaryBytes          int64   `json:"binary_bytes"`
	BinaryMiB            float64 `json:"binary_mib"`
	ColdStartMs          float64 `json:"cold_start_ms"`
	InitMs               float64 `json:"init_ms"`
	Invokes              int     `json:"invokes"`
	LargestResponseBytes int     `json:"largest_response_bytes"`
}

// rieStack is the six functions under the RIE against DynamoDB Local and versitygw
// (a fresh table and bucket), the Gateway in front of them, S3 notifications to the
// patch function, and the ota CLI pointed at the Gateway with an admin key.
type rieStack struct {
	deps   api.Deps // the test's own view of the store and the bucket
	admin  string   // admin API key
	bucket string
	bins   map[string]string
	fns    map[string]*lambdarie.Function
	gw     *lambdarie.Gateway
	url    string // the Gateway's base URL
	ota    func(args ...string) (string, error)

	patchMu      sync.Mutex
	patchLargest int
	patchErrs    []error
	stopOnce     sync.Once
	stopNotify   func()
}

// startRIE starts a rieStack; everything stops when the test ends.
func startRIE(t *testing.T) *rieStack {
	t.Helper()
	lambdarie.RIE(t)
	ctx := context.Background()
	ddbURL, s3URL := testenv.DynamoEndpoint(t), testenv.S3Endpoint(t)
	ddb := testenv.DynamoClient(t, ddbURL)
	table := testenv.TableName(t)
	if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dynamo.DeleteTable(context.Background(), ddb, table) })
	s3c := s3.New(s3.Options{Region: testenv.Region, BaseEndpoint: aws.String(s3URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "testsecret", "")})
	bucket := "ota-rie-" + testenv.RandSuffix()
	if err := s3blob.EnsureBucket(ctx, s3c, bucket); err != nil {
		t.Fatal(err)
	}
	deps, err := awsenv.Deps(ctx, awsenv.Options{Table: table, Bucket: bucket, DynamoDB: ddb, S3: s3c,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	admin := store.NewKeySecret()
	if _, err := deps.Store.CreateKey(ctx, admin, "rie", []string{"*"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	s := &rieStack{deps: deps, admin: admin, bucket: bucket, fns: map[string]*lambdarie.Function{}}

	names := make([]string, len(rieFunctions))
	for i, f := range rieFunctions {
		names[i] = f.name
	}
	s.bins = lambdarie.BuildAll(t, names...) // once per test process (TestMain)
	groups := map[api.Group]*lambdarie.Function{}
	for _, rf := range rieFunctions {
		env := map[string]string{
			"OTA_TABLE": table, "OTA_BUCKET": bucket, "AWS_REGION": testenv.Region,
			"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "testsecret",
			"AWS_ENDPOINT_URL_DYNAMODB": ddbURL, "AWS_ENDPOINT_URL_S3": s3URL,
		}
		for k, v := range rf.env {
			env[k] = v
		}
		f := lambdarie.Start(t, s.bins[rf.name], env, rf.memoryMB, rf.timeout)
		s.fns[rf.name] = f
		if rf.group != "" {
			groups[rf.group] = f
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, rf := range rieFunctions {
				t.Logf("---- %s logs:\n%s", rf.name, s.fns[rf.name].Logs())
			}
		}
	})
	s.gw = lambdarie.NewGateway(groups)
	s.gw.Logf = t.Logf
	hs := httptest.NewServer(s.gw)
	t.Cleanup(hs.Close)
	s.url = hs.URL

	// S3 notifications: each new bundle's ObjectCreated event goes to the patch
	// function under the RIE, as S3 invokes it (asynchronously, outside the gateway).
	nctx, cancel := context.WithCancel(ctx)
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		seen := map[string]bool{}
		for nctx.Err() == nil {
			keys, _ := deps.Blobs.List(nctx, "bundles/")
			for _, k := range keys {
				if seen[k] {
					continue
				}
				seen[k] = true
				ev, _ := json.Marshal(s3Event(bucket, k))
				out, _, err := s.fns["patch"].Invoke(nctx, ev)
				s.patchMu.Lock()
				s.patchLargest = max(s.patchLargest, len(out))
				if err != nil && nctx.Err() == nil {
					s.patchErrs = append(s.patchErrs, fmt.Errorf("%s: %w (%s)", k, err, out))
				}
				s.patchMu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	s.stopNotify = func() { cancel(); <-notified }
	t.Cleanup(func() { s.stopPatches(t) })
	s.ota = otaCLI(t, s.url, admin)
	return s
}

// stopPatches stops the S3 notifications (no more patch invokes) and fails the test
// for every failed patch invoke; later calls do nothing.
func (s *rieStack) stopPatches(t *testing.T) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.stopNotify()
		s.patchMu.Lock()
		defer s.patchMu.Unlock()
		for _, err := range s.patchErrs {
			t.Errorf("patch function: %v", err)
		}
	})
}

// TestFunctionsUnderLambdaRIE runs the six Lambda binaries, built as for Lambda, each
// under AWS's Runtime Interface Emulator against DynamoDB Local and versitygw: a
// stand-in HTTP API routes to check, confirm, stats, upload and admin; the patch
// function gets the S3 ObjectCreated event of each uploaded bundle. The ota CLI
// publishes two releases through it, then a Capgo device checks, downloads,
// reports stats and asks for its channel.
func TestFunctionsUnderLambdaRIE(t *testing.T) {
	s := startRIE(t)
	ctx := context.Background()
	ota := s.ota

	// Publish 1.0.1, then 1.0.2 with one changed file (the patch function precomputes
	// the 1.0.1 -> 1.0.2 patch), through the CLI.
	const app = "com.example.rie"
	if out, err := ota("app", "create", app); err != nil {
		t.Fatalf("app create: %v %s", err, out)
	}
	v2 := t.TempDir()
	testenv.CopyTree(t, "../../testdata/quickstart/www", v2)
	if err := os.WriteFile(filepath.Join(v2, "app.js"), []byte("console.log('v1.0.2 under the RIE');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ v, dir string }{{"1.0.1", "testdata/quickstart/www"}, {"1.0.2", v2}} {
		if out, err := ota("release", r.dir, "--app", app, "--version", r.v, "--channel", "production", "--wait", "30s"); err != nil {
			t.Fatalf("release %s: %v %s", r.v, err, out)
		}
	}
	rels, err := s.deps.Store.ListReleases(ctx, app)
	if err != nil || len(rels) != 2 {
		t.Fatalf("releases: %d %v", len(rels), err)
	}
	for _, r := range rels {
		if r.Status != release.StatusReady {
			t.Fatalf("release %s is %s", r.Version, r.Status)
		}
	}
	if err := waitPatch(ctx, s.deps.Store, app, "ota", "1.0.1", "1.0.2"); err != nil {
		t.Errorf("the patch function did not precompute 1.0.1 -> 1.0.2: %v", err)
	}

	// A Capgo device: check, download from S3, stats, channel.
	const device = "3f0c9a51-7d2e-4b8a-9c61-0e5f4d2a7b18"
	a := capgoCheckAt(t, s.url, app, device, "builtin")
	if a.Version != "1.0.2" || a.Checksum == "" {
		t.Fatalf("device check: %+v", a)
	}
	if code, body := get(t, a.URL); code != 200 || sha(body) != a.Checksum {
		t.Fatalf("download: HTTP %d, sha256 %s, checksum %s", code, sha(body), a.Checksum)
	}
	dev := capgoDevice(app, device, "1.0.2")
	if code, b := send(t, "POST", s.url+"/capgo/stats", `{`+dev+`,"action":"set","old_version_name":"builtin"}`); code != 200 || !strings.Contains(b, `"ok"`) {
		t.Errorf("stats: %d %s", code, b)
	}
	if code, b := send(t, "PUT", s.url+"/capgo/channel_self", `{`+dev+`}`); code != 200 || !strings.Contains(b, `"production"`) {
		t.Errorf("channel_self: %d %s", code, b)
	}
	s.stopPatches(t)

	// The figures.
	stats := s.gw.Stats()
	var figs []rieFigure
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-8s %10s %14s %9s %8s %16s\n", "function", "binary MiB", "cold start ms", "init ms", "invokes", "largest resp B")
	for _, rf := range rieFunctions {
		f := s.fns[rf.name]
		st, _ := os.Stat(s.bins[rf.name])
		fig := rieFigure{Function: rf.name, BinaryBytes: st.Size(), BinaryMiB: float64(st.Size()) / (1 << 20),
			ColdStartMs: ms(f.ColdStart()), InitMs: ms(f.InitDuration()), Invokes: f.Invokes()}
		if rf.group != "" {
			fig.LargestResponseBytes = stats[rf.group].LargestResponse
		} else {
			s.patchMu.Lock()
			fig.LargestResponseBytes = s.patchLargest
			s.patchMu.Unlock()
		}
		if fig.Invokes == 0 {
			t.Errorf("function %s never invoked", rf.name)
		}
		figs = append(figs, fig)
		fmt.Fprintf(&tbl, "%-8s %10.2f %14.1f %9.1f %8d %16d\n", fig.Function, fig.BinaryMiB, fig.ColdStartMs, fig.InitMs, fig.Invokes, fig.LargestResponseBytes)
	}
	t.Logf("functions under the Lambda RIE:\n%s", tbl.String())
	rieReportMu.Lock()
	rieReport.Functions = figs
	rieReportMu.Unlock()
}

// capgoDevice is the device part of a Capgo request body (without braces).
func capgoDevice(app, device, version string) string {
	return fmt.Sprintf(`"app_id":%q,"device_id":%q,"platform":"android","version_name":%q,"version_build":"1.0.0","version_code":"1","version_os":"14","plugin_version":"8.51.23","custom_id":"","defaultChannel":"","is_emulator":false,"is_prod":true`, app, device, version)
}

// otaCLI returns a runner of the ota CLI (built once per test process) pointed at
// server with key.
func otaCLI(t *testing.T, server, key string) func(args ...string) (string, error) {
	t.Helper()
	bin := binary(t, "ota")
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "OTA_SERVER="+server, "OTA_API_KEY="+key)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, errb.String())
		}
		return out.String(), err
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func send(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
