package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
	"github.com/spf13/cobra"
)

const testKey = "ota_0123456789abcdef0123456789abcdef0123456789abcdef"

// runCLI runs the command tree in process and returns stdout, stderr and the error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runTree(t, newRootCmd, args...)
}

// runTree runs the command tree newRoot makes (with OTA_SERVER and OTA_API_KEY
// unset, and no saved login unless the test saved one) and returns stdout, stderr
// and the error.
func runTree(t *testing.T, newRoot func() *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	t.Setenv("OTA_SERVER", "")
	t.Setenv("OTA_API_KEY", "")
	isolateConfig(t)
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

// argCase is a bad invocation and what its error must mention.
type argCase struct {
	name string
	args []string
	want string
}

// checkArgErrors runs each case with run against a server URL that points nowhere
// reachable: each must fail before any request, with a message that says what is wrong.
func checkArgErrors(t *testing.T, run func(t *testing.T, args ...string) (string, string, error), cases []argCase) {
	t.Helper()
	const nowhere = "--server=http://127.0.0.1:1"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := run(t, append([]string{nowhere, "--key", testKey}, c.args...)...)
			if err == nil {
				t.Fatalf("ota %v: no error", c.args)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ota %v: error %q does not mention %q", c.args, err, c.want)
			}
			if strings.Contains(err.Error(), "connect") || strings.Contains(err.Error(), "cannot reach") {
				t.Fatalf("ota %v: validation reached the network: %v", c.args, err)
			}
		})
	}
}

// TestArgumentValidation: bad invocations fail before any request, with a message
// that says what is wrong.
func TestArgumentValidation(t *testing.T) {
	checkArgErrors(t, runCLI, []argCase{
		{"release without bundle", []string{"release", "--app", "a", "--version", "1"}, "needs one DIR_OR_ZIP"},
		{"release two bundles", []string{"release", "a", "b", "--app", "a", "--version", "1"}, "got 2 arguments"},
		{"release without app", []string{"release", "www", "--version", "1.0.0"}, "--app is required"},
		{"release bad app", []string{"release", "www", "--app", "bad app", "--version", "1.0.0"}, "invalid app id"},
		{"release without version", []string{"release", "www", "--app", "a"}, "--version is required"},
		{"release reserved version", []string{"release", "www", "--app", "a", "--version", "builtin"}, "reserved"},
		{"release bad channel", []string{"release", "www", "--app", "a", "--version", "1", "--channel", "a/b"}, "--channel"},
		{"release channel without wait", []string{"release", "www", "--app", "a", "--version", "1", "--channel", "p", "--wait", "0"}, "--wait greater than 0"},
		{"release bad platform", []string{"release", "www", "--app", "a", "--version", "1", "--platform", "windows"}, "--platform"},
		{"release weak flux secret", []string{"release", "www", "--app", "a", "--version", "1", "--flux-secret", "short"}, "16 characters"},
		{"release negative build", []string{"release", "www", "--app", "a", "--version", "1", "--build-number", "-1"}, "--build-number"},
		{"releases without app", []string{"releases"}, "--app is required"},
		{"release get without version", []string{"release", "get", "--app", "a"}, "expects VERSION"},
		{"release delete without app", []string{"release", "delete", "1.0.0"}, "--app is required"},
		{"app create without id", []string{"app", "create"}, "expects APP_ID"},
		{"app create bad id", []string{"app", "create", "bad!id"}, "invalid app id"},
		{"app create bad default channel", []string{"app", "create", "a", "--default-channel", "x y"}, "invalid channel"},
		{"app get two ids", []string{"app", "get", "a", "b"}, "got 2 arguments"},
		{"channel set nothing", []string{"channel", "set", "production", "--app", "a"}, "nothing to set"},
		{"channel set bad version", []string{"channel", "set", "production", "--app", "a", "--version", "latest"}, "reserved"},
		{"channel set bad name", []string{"channel", "set", "pro duction", "--app", "a", "--version", "1"}, "invalid channel"},
		{"channel list without app", []string{"channel", "list"}, "--app is required"},
		{"channel get without name", []string{"channel", "get", "--app", "a"}, "expects CHANNEL"},
		{"keys create without name", []string{"keys", "create", "--app", "a"}, "--name is required"},
		{"keys create without app", []string{"keys", "create", "--name", "ci"}, "--app is required"},
		{"keys create bad app", []string{"keys", "create", "--name", "ci", "--app", "a b"}, "invalid app id"},
		{"keys revoke without id", []string{"keys", "revoke"}, "expects KEY_ID"},
		{"signing-key without out", []string{"signing-key", "create"}, "--out is required"},
		{"unknown flag", []string{"app", "list", "--nope"}, "unknown flag"},
	})
}

func TestClientConfigErrors(t *testing.T) {
	_, _, err := runCLI(t, "--server", "ftp://example.com", "--key", testKey, "app", "list")
	if err == nil || !strings.Contains(err.Error(), "invalid --server") {
		t.Fatalf("bad server URL: %v", err)
	}
	_, _, err = runCLI(t, "--server", "http://127.0.0.1:1", "app", "list")
	if err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Fatalf("missing key: %v", err)
	}
	_, _, err = runCLI(t, "--server", "http://127.0.0.1:1", "--key", testKey, "app", "list")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the server at http://127.0.0.1:1") {
		t.Fatalf("unreachable server: %v", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("error shows the API key")
	}
}

func TestHelpNeverShowsKey(t *testing.T) {
	root := newRootCmd()
	t.Setenv("OTA_API_KEY", testKey)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	for _, args := range [][]string{{"--help"}, {"release", "--help"}, {"keys", "create", "--help"}} {
		out.Reset()
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), testKey) {
			t.Fatalf("ota %v shows the API key", args)
		}
		if !strings.Contains(out.String(), "--json") {
			t.Fatalf("ota %v help lacks the global --json flag:\n%s", args, out.String())
		}
	}
}

func TestServerFromEnv(t *testing.T) {
	t.Setenv("OTA_SERVER", "http://ota.example.com:9000")
	root := newRootCmd()
	if got := root.PersistentFlags().Lookup("server").DefValue; got != "http://ota.example.com:9000" {
		t.Fatalf("--server default = %q", got)
	}
	t.Setenv("OTA_SERVER", "")
	if got := newRootCmd().PersistentFlags().Lookup("server").DefValue; got != defaultServer {
		t.Fatalf("--server default = %q", got)
	}
}

func TestFmtBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := fmtBytes(n); got != want {
			t.Errorf("fmtBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPrintReleases(t *testing.T) {
	at := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	var b bytes.Buffer
	err := printReleases(&b, []release.Release{
		{Version: "1.0.1", Status: release.StatusReady, BuildNumber: 2, Size: 2048, CreatedAt: at, MinNative: "2.0.0"},
		{Version: "1.0.0", Status: release.StatusFailed, BuildNumber: 1, Size: 100, CreatedAt: at},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"VERSION  STATUS  BUILD  SIZE     CREATED            MIN NATIVE\n" +
		"1.0.1    ready   2      2.0 KiB  2026-11-02 10:30Z  2.0.0\n" +
		"1.0.0    failed  1      100 B    2026-11-02 10:30Z  -\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := printReleases(&b, nil); err != nil || b.String() != "no releases\n" {
		t.Fatalf("empty list: %q %v", b.String(), err)
	}
}

func TestChannelTarget(t *testing.T) {
	cases := []struct {
		c    release.Channel
		want string
	}{
		{release.Channel{Stable: "1.0.0"}, "1.0.0"},
		{release.Channel{Builtin: true}, "builtin"},
		{release.Channel{Stable: "1.0.0", Rolling: &release.Rollout{Version: "1.1.0", Percent: 12.5}}, "1.0.0 + rolling 1.1.0 at 12.5%"},
		{release.Channel{Rolling: &release.Rollout{Version: "1.1.0", Percent: 5, Halted: true}}, "rolling 1.1.0 at 5% (halted)"},
	}
	for _, c := range cases {
		if got := channelTarget(c.c); got != c.want {
			t.Errorf("channelTarget(%+v) = %q, want %q", c.c, got, c.want)
		}
	}
	if got := channelFlags(release.Channel{Public: true, NoDevBuild: true}); got != "public,no-dev-build" {
		t.Errorf("channelFlags = %q", got)
	}
}

func TestPrintChannelHistory(t *testing.T) {
	at := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	var b bytes.Buffer
	err := printChannel(&b, channelOut{
		Channel: release.Channel{AppID: "a", Name: "production", Stable: "1.0.1", Public: true, UpdatedAt: at},
		History: []store.ChannelEvent{
			{At: at, Actor: "key_1", Action: "channel.set", Channel: release.Channel{Stable: "1.0.1"}},
			{At: at.Add(-time.Hour), Actor: "key_1", Action: "channel.set", Channel: release.Channel{Stable: "1.0.0"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"serves          1.0.1", "public          yes", "History (newest first):", "2026-11-02 09:30Z  channel.set  key_1  1.0.0"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPrintKeysHidesSecrets(t *testing.T) {
	var b bytes.Buffer
	err := printKeys(&b, []store.APIKey{{ID: "key_1", Name: "ci", Hash: "deadbeef", Prefix: "ota_abcdef", Apps: []string{"a", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "deadbeef") || !strings.Contains(b.String(), "ota_abcdef...") || !strings.Contains(b.String(), "a,b") {
		t.Fatalf("keys table:\n%s", b.String())
	}
}

func TestPublishResultJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSONOut(&b, publishResult{App: "a", Version: "1.0.0", SHA256: "ab", Size: 3, Status: "ready", Uploaded: true}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"app", "version", "sha256", "size", "status", "build_number", "uploaded"} {
		if _, ok := m[k]; !ok {
			t.Errorf("publish JSON lacks %q: %s", k, b.String())
		}
	}
	if _, ok := m["channel"]; ok {
		t.Errorf("empty channel is printed: %s", b.String())
	}
}

func TestDecodeError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/apps/html" {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"app_exists","message":"app already exists"}`)
	}))
	defer srv.Close()
	cl, err := newClient(srv.URL, testKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.getApp(context.Background(), "a")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "app_exists" || err.Error() != "server refused (HTTP 409 app_exists): app already exists" {
		t.Fatalf("JSON error: %#v %v", ae, err)
	}
	_, err = cl.getApp(context.Background(), "html")
	if errorCode(err) != "http_502" || !strings.Contains(err.Error(), "bad gateway") {
		t.Fatalf("non-JSON error: %v", err)
	}
}

// loadBundleBytes is loadBundle's zip, read back (and its temp copy removed).
func loadBundleBytes(path string) ([]byte, int, error) {
	sp, files, err := loadBundle(path)
	if err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(io.NewSectionReader(sp, 0, sp.size))
	if cerr := sp.Close(); err == nil {
		err = cerr
	}
	if err == nil && sp.temp {
		if _, serr := os.Stat(sp.Name()); !errors.Is(serr, os.ErrNotExist) {
			err = fmt.Errorf("temp copy %s not removed: %v", sp.Name(), serr)
		}
	}
	return b, files, err
}

func TestLoadBundle(t *testing.T) {
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	data, files, err := loadBundleBytes(www)
	if err != nil {
		t.Fatal(err)
	}
	if files != 3 {
		t.Fatalf("quickstart bundle has %d files, want 3", files)
	}
	var again bytes.Buffer
	if err := bundle.ZipDir(www, &again); err != nil || !bytes.Equal(again.Bytes(), data) {
		t.Fatalf("folder zip is not deterministic (%v)", err)
	}
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "b.zip")
	os.WriteFile(zipPath, data, 0o644)
	if z, _, err := loadBundleBytes(zipPath); err != nil || !bytes.Equal(z, data) {
		t.Fatalf("a zip is not used as is: %v", err)
	}
	txt := filepath.Join(dir, "notes.txt")
	os.WriteFile(txt, []byte("hello"), 0o644)
	if _, _, err := loadBundle(txt); err == nil || !strings.Contains(err.Error(), "not a zip file") {
		t.Fatalf("text file: %v", err)
	}
	if _, _, err := loadBundle("lsit"); err == nil || !strings.Contains(err.Error(), "ota release list|get|delete") {
		t.Fatalf("missing bare name: %v", err)
	}
	if _, _, err := loadBundle(filepath.Join("..", "..", "testdata", "bad", "no_index.zip")); bundle.CodeOf(err) != bundle.CodeNoIndexHTML {
		t.Fatalf("zip without index.html: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if _, _, err := loadBundle(empty); err == nil {
		t.Fatal("empty folder accepted")
	}
}

// fakeServer is a management API stand-in that records the publish flow.
type fakeServer struct {
	mu       sync.Mutex
	srv      *httptest.Server
	calls    []string
	input    publish.Input
	uploaded []byte
	status   release.Status
	failMsg  string
	pollsGet int
}

func newFakeServer(t *testing.T, status release.Status) *fakeServer {
	f := &fakeServer{status: status}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/apps/{app}/releases", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"unauthorized","message":"missing or invalid API key"}`)
			return
		}
		json.NewDecoder(r.Body).Decode(&f.input)
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(map[string]any{
			"release": release.Release{AppID: r.PathValue("app"), Version: f.input.Version, Status: release.StatusPending, SHA256: f.input.SHA256, Size: f.input.Size},
			"upload":  map[string]any{"method": "PUT", "url": f.srv.URL + "/blob/x?sig=1", "headers": map[string]string{"Content-Type": "application/zip", "Content-Length": "1"}},
		})
	})
	mux.HandleFunc("PUT /blob/x", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		if r.Header.Get("Content-Type") != "application/zip" || r.ContentLength != f.input.Size {
			w.WriteHeader(400)
			return
		}
		f.uploaded, _ = io.ReadAll(r.Body)
	})
	mux.HandleFunc("GET /v1/apps/{app}/releases/{version}", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		f.mu.Lock()
		f.pollsGet++
		st := release.StatusPending
		if f.pollsGet > 1 {
			st = f.status
		}
		f.mu.Unlock()
		rel := release.Release{Version: r.PathValue("version"), Status: st, BuildNumber: 7}
		if st == release.StatusFailed {
			rel.Error = f.failMsg
		}
		json.NewEncoder(w).Encode(map[string]any{"release": rel})
	})
	mux.HandleFunc("PUT /v1/apps/{app}/channels/{channel}", func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		if len(in) != 1 || in["version"] != f.input.Version {
			w.WriteHeader(400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"channel": release.Channel{Name: r.PathValue("channel"), Stable: f.input.Version}})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
}

func TestPublishFlow(t *testing.T) {
	f := newFakeServer(t, release.StatusReady)
	dir := t.TempDir()
	keyOut, _, err := runCLI(t, "--json", "signing-key", "create", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	var kr signingKeyResult
	if err := json.Unmarshal([]byte(keyOut), &kr); err != nil {
		t.Fatalf("signing-key --json: %v\n%s", err, keyOut)
	}
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	out, stderr, err := runCLI(t, "--server", f.srv.URL, "--key", testKey, "--json",
		"release", www, "--app", "com.example.app", "--version", "1.2.3", "--channel", "beta",
		"--min-native", "2.0.0", "--notes", "hi", "--mandatory", "--build-number", "42",
		"--sign-key", kr.PrivateKey, "--flux-secret", "0123456789abcdef0123")
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("--json publish wrote to stderr: %q", stderr)
	}
	var res publishResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("publish --json: %v\n%s", err, out)
	}
	want := []string{"POST /v1/apps/com.example.app/releases", "PUT /blob/x", "GET /v1/apps/com.example.app/releases/1.2.3",
		"GET /v1/apps/com.example.app/releases/1.2.3", "PUT /v1/apps/com.example.app/channels/beta"}
	if strings.Join(f.calls, ",") != strings.Join(want, ",") {
		t.Fatalf("calls:\n%v\nwant:\n%v", f.calls, want)
	}
	sum := sha256.Sum256(f.uploaded)
	in := f.input
	if hex.EncodeToString(sum[:]) != in.SHA256 || int64(len(f.uploaded)) != in.Size || res.SHA256 != in.SHA256 || res.Size != in.Size {
		t.Fatalf("uploaded bytes do not match the declared sha256/size")
	}
	if in.MinNative != "2.0.0" || in.Notes != "hi" || !in.Mandatory || in.BuildNumber != 42 || in.Platform != "" {
		t.Fatalf("release input: %+v", in)
	}
	if res.Status != "ready" || res.Channel != "beta" || !res.Uploaded || res.BuildNumber != 7 {
		t.Fatalf("result: %+v", res)
	}
	pubPEM, _ := os.ReadFile(kr.PublicKey)
	blk, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.VerifyPSS(pub.(*rsa.PublicKey), sum[:], in.Signatures.PSS); err != nil {
		t.Errorf("PSS signature: %v", err)
	}
	if err := sign.VerifyPKCS1(pub.(*rsa.PublicKey), sum[:], in.Signatures.PKCS1); err != nil {
		t.Errorf("PKCS#1 signature: %v", err)
	}
	if in.Signatures.Flux != sign.FluxHMAC("0123456789abcdef0123", f.uploaded) {
		t.Errorf("flux signature %q", in.Signatures.Flux)
	}
}

func TestPublishFailedRelease(t *testing.T) {
	f := newFakeServer(t, release.StatusFailed)
	f.failMsg = "no_index_html: no index.html"
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	out, _, err := runCLI(t, "--server", f.srv.URL, "--key", testKey, "release", www, "--app", "a", "--version", "1", "--channel", "beta")
	if err == nil || !strings.Contains(err.Error(), "failed validation on the server: no_index_html: no index.html") {
		t.Fatalf("failed release: %v", err)
	}
	if out != "" {
		t.Fatalf("failed release printed a result: %q", out)
	}
	for _, c := range f.calls {
		if strings.Contains(c, "/channels/") {
			t.Fatal("channel set for a failed release")
		}
	}
}

func TestPublishWrongKey(t *testing.T) {
	f := newFakeServer(t, release.StatusReady)
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	const wrong = "ota_wrongwrongwrongwrongwrongwrongwrong"
	_, _, err := runCLI(t, "--server", f.srv.URL, "--key", wrong, "release", www, "--app", "a", "--version", "1")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 unauthorized") || strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestWaitTimeout(t *testing.T) {
	f := newFakeServer(t, release.StatusPending)
	cl, _ := newClient(f.srv.URL, testKey)
	start := time.Now()
	rel, err := waitReady(context.Background(), cl, "a", "1", 200*time.Millisecond, 20*time.Millisecond)
	if err != nil || rel.Status != release.StatusPending {
		t.Fatalf("wait: %v %v", rel.Status, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("wait took %s", d)
	}
}

func TestSigningKeyFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	out, _, err := runCLI(t, "signing-key", "create", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "liveUpdate") || !strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Fatalf("signing-key output:\n%s", out)
	}
	st, err := os.Stat(filepath.Join(dir, signingPrivateFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", st.Mode(), err)
	}
	privPEM, _ := os.ReadFile(filepath.Join(dir, signingPrivateFile))
	blk, _ := pem.Decode(privPEM)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		t.Fatal("private key is not PKCS#8 PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "signing-key", "create", "--out", dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite without --force: %v", err)
	}
	if _, _, err := runCLI(t, "signing-key", "create", "--out", dir, "--force"); err != nil {
		t.Fatal(err)
	}
}

func TestPublishCapgoEncrypted(t *testing.T) {
	f := newFakeServer(t, release.StatusReady)
	key, err := sign.GenerateRSA(2048)
	if err != nil {
		t.Fatal(err)
	}
	// @capgo/cli writes a PKCS#1 "RSA PRIVATE KEY" to .capgo_key_v2.
	keyFile := filepath.Join(t.TempDir(), ".capgo_key_v2")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	www := filepath.Join("..", "..", "testdata", "quickstart", "www")
	out, stderr, err := runCLI(t, "--server", f.srv.URL, "--key", testKey, "--json", "release", www, "--app", "a", "--version", "2.0.0", "--capgo-key", keyFile)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	var res publishResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Encrypted {
		t.Fatalf("result: %+v %v", res, err)
	}
	in := f.input
	if sign.SHA256Hex(f.uploaded) != in.SHA256 || in.SHA256 != res.SHA256 {
		t.Fatal("declared sha256 is not the sha256 of the uploaded (encrypted) bytes")
	}
	plain, err := sign.CapgoDecrypt(&key.PublicKey, in.Signatures.SessionKey, f.uploaded)
	if err != nil {
		t.Fatal(err)
	}
	zip, _, err := loadBundleBytes(www)
	if err != nil || !bytes.Equal(plain, zip) {
		t.Fatalf("decrypted bytes are not the bundle zip (%v)", err)
	}
	sum := sha256.Sum256(zip)
	if err := sign.CapgoVerifyChecksum(&key.PublicKey, sum[:], in.Signatures.EncChecksum); err != nil {
		t.Fatal(err)
	}
	if want := sign.CapgoKeyID(string(sign.MarshalPKCS1PublicPEM(&key.PublicKey))); in.Signatures.KeyID != want || len(want) != 20 {
		t.Fatalf("key_id %q, want %q", in.Signatures.KeyID, want)
	}
}
