package main

// End-to-end: the real otad and ota binaries, over HTTP, as a team and a device use them.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/bundle"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/testenv"
	"github.com/otakit/ota/shared/urlsign"
	"github.com/otakit/ota/shared/wire"
)

var (
	binOnce         sync.Once
	binDir          string
	otaBin, otadBin string
	binErr          error
	repoRoot        = filepath.Join("..", "..")
	quickstartWWW   = filepath.Join(repoRoot, "testdata", "quickstart", "www")
	e2eAdminKey     = "ota_e2e0123456789abcdef0123456789abcdef01234567"
	// A Capgo 8.x check body; version_name "builtin" = running the store bundle.
	e2eDeviceTemplate = `{"app_id":%q,"device_id":"00000000-0000-4000-8000-0000000000%02d","platform":"android","version_name":%q,"version_build":%q,"is_emulator":false,"is_prod":true}`
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinaries builds ota and otad once per test binary.
func buildBinaries(t *testing.T) (ota, otad string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "ota-e2e-bin-")
		if binErr != nil {
			return
		}
		otaBin, otadBin = filepath.Join(binDir, "ota"), filepath.Join(binDir, "otad")
		for _, b := range []struct{ out, pkg string }{{otaBin, "github.com/otakit/ota/cmd/ota"}, {otadBin, "github.com/otakit/ota/cmd/otad"}} {
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return otaBin, otadBin
}

// cleanEnv is the environment without OTA_* variables of the person running the tests.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTA_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// otadProc is a running otad.
type otadProc struct {
	base, data     string
	stdout, stderr *syncBuffer
	pid            int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRe = regexp.MustCompile(`otad is serving at (http://\S+)`)

// startOtad runs otad on a free port of 127.0.0.1 with a fresh data folder and waits
// for /healthz. env adds variables (OTA_ADMIN_KEY).
func startOtad(t *testing.T, otad string, env []string, args ...string) *otadProc {
	t.Helper()
	p := &otadProc{data: t.TempDir(), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	stderr := p.stderr
	cmd := exec.Command(otad, append([]string{"--data", p.data, "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdout, cmd.Stderr = p.stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("otad stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("otad exited early:\n%s", stderr.String())
		default:
		}
		if m := servingRe.FindStringSubmatch(p.stdout.String()); m != nil && p.base == "" {
			p.base = m[1]
		}
		if p.base != "" {
			if resp, err := http.Get(p.base + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("otad not healthy in time; stdout:\n%s\nstderr:\n%s", p.stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// otaResult is one run of the ota binary.
type otaResult struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r otaResult) String() string {
	return fmt.Sprintf("ota %s (exit %d)\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// runOta runs the ota binary in dir (the repository root when "") with env.
func runOta(t *testing.T, ota, dir string, env []string, args ...string) otaResult {
	t.Helper()
	if dir == "" {
		dir = repoRoot
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ota, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := otaResult{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ota %v: %v", args, err)
	}
	return r
}

// okJSON runs ota with --json, requires success and decodes stdout into v.
func okJSON(t *testing.T, run func(args ...string) otaResult, v any, args ...string) otaResult {
	t.Helper()
	r := run(append([]string{"--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("failed: %s", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, r)
	}
	return r
}

// capgoAnswer is the update check answer of the Capgo protocol.
type capgoAnswer struct {
	Version    string `json:"version"`
	URL        string `json:"url"`
	Checksum   string `json:"checksum"`
	SessionKey string `json:"session_key"`
	Kind       string `json:"kind"`
	Error      string `json:"error"`
}

func capgoCheck(t *testing.T, base, body string) capgoAnswer {
	t.Helper()
	resp, err := http.Post(base+"/capgo/updates", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a capgoAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("capgo answer (HTTP %d) is not JSON: %v\n%s", resp.StatusCode, err, b)
	}
	return a
}

func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestE2EPublishAndServe(t *testing.T) {
	ota, otad := buildBinaries(t)
	srv := startOtad(t, otad, []string{"OTA_ADMIN_KEY=" + e2eAdminKey})
	env := []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + e2eAdminKey}
	run := func(args ...string) otaResult { return runOta(t, ota, "", env, args...) }
	const app = "com.example.e2e"
	tmp := t.TempDir()

	// App.
	var created wire.AppView
	okJSON(t, run, &created, "app", "create", app, "--name", "E2E")
	if created.ID != app || created.Name != "E2E" || created.DefaultChannel != "production" {
		t.Fatalf("app create: %+v", created)
	}
	if r := run("app", "create", app); r.code == 0 || !strings.Contains(r.stderr, "app_exists") {
		t.Fatalf("second app create: %s", r)
	}
	var apps struct{ Apps []wire.AppView }
	okJSON(t, run, &apps, "app", "list")
	if len(apps.Apps) != 1 || apps.Apps[0].ID != app {
		t.Fatalf("app list: %+v", apps)
	}
	if r := run("app", "get", app); r.code != 0 || !strings.Contains(r.stdout, "default channel  production") {
		t.Fatalf("app get: %s", r)
	}

	// Signing key and first release, pointed at production.
	var kr signingKeyResult
	okJSON(t, run, &kr, "signing-key", "create", "--out", filepath.Join(tmp, "keys"))
	var v100 publishResult
	r := okJSON(t, run, &v100, "release", "testdata/quickstart/www", "--app", app, "--version", "1.0.0",
		"--channel", "production", "--sign-key", kr.PrivateKey)
	if r.stderr != "" {
		t.Errorf("--json release wrote to stderr: %q", r.stderr)
	}
	var zip bytes.Buffer
	if err := bundle.ZipDir(quickstartWWW, &zip); err != nil {
		t.Fatal(err)
	}
	if v100.Version != "1.0.0" || v100.Status != "ready" || v100.Channel != "production" || v100.SHA256 != sha256Hex(zip.Bytes()) || v100.Size != int64(zip.Len()) {
		t.Fatalf("release 1.0.0: %+v (want sha256 %s)", v100, sha256Hex(zip.Bytes()))
	}
	var got releaseOut
	okJSON(t, run, &got, "release", "get", "1.0.0", "--app", app)
	pubPEM, _ := os.ReadFile(kr.PublicKey)
	pub, err := sign.ParsePublicPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zip.Bytes())
	if err := sign.VerifyPSS(pub, sum[:], got.Release.Signatures.PSS); err != nil {
		t.Errorf("stored PSS signature: %v", err)
	}
	if err := sign.VerifyPKCS1(pub, sum[:], got.Release.Signatures.PKCS1); err != nil {
		t.Errorf("stored PKCS#1 signature: %v", err)
	}

	// A Capgo device on the store bundle gets 1.0.0, downloads it and checks it. Its
	// native version differs from the bundle versions: Capgo names the store bundle
	// after version_build, so a native 1.0.0 counts as already running bundle 1.0.0.
	a := capgoCheck(t, srv.base, fmt.Sprintf(e2eDeviceTemplate, app, 1, "builtin", "0.9.0"))
	if a.Version != "1.0.0" || a.URL == "" || a.Checksum != v100.SHA256 {
		t.Fatalf("capgo check: %+v", a)
	}
	code, body := httpGet(t, a.URL)
	if code != 200 || sha256Hex(body) != a.Checksum {
		t.Fatalf("download: HTTP %d, sha256 %s, want %s", code, sha256Hex(body), a.Checksum)
	}

	// A tampered URL and an expired one are refused.
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := []byte(q.Get("sig"))
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	q.Set("sig", string(sig))
	u.RawQuery = q.Encode()
	if code, _ := httpGet(t, u.String()); code != http.StatusForbidden {
		t.Fatalf("tampered URL: HTTP %d, want 403", code)
	}
	secret, err := os.ReadFile(filepath.Join(srv.data, "url-signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := urlsign.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	past, _ := signer.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }).Sign("GET", u.Path, "", time.Hour)
	code, body = httpGet(t, srv.base+u.Path+"?"+past)
	if code != http.StatusForbidden || !strings.Contains(string(body), "url_expired") {
		t.Fatalf("expired URL: HTTP %d %s, want 403 url_expired", code, body)
	}
	fresh, _ := signer.Sign("GET", u.Path, "", time.Minute)
	if code, _ := httpGet(t, srv.base+u.Path+"?"+fresh); code != 200 {
		t.Fatalf("control: a freshly signed URL gets HTTP %d", code)
	}

	// 1.0.1 from a changed copy of the bundle; the device on 1.0.0 gets it.
	www2 := filepath.Join(tmp, "www2")
	testenv.CopyTree(t, quickstartWWW, www2)
	if err := os.WriteFile(filepath.Join(www2, "style.css"), []byte("body { color: #123456; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var v101 publishResult
	okJSON(t, run, &v101, "release", www2, "--app", app, "--version", "1.0.1", "--channel", "production", "--min-native", "0.9.0")
	if v101.Status != "ready" || v101.SHA256 == v100.SHA256 || !v101.Uploaded {
		t.Fatalf("release 1.0.1: %+v", v101)
	}
	a = capgoCheck(t, srv.base, fmt.Sprintf(e2eDeviceTemplate, app, 2, "1.0.0", "0.9.0"))
	if a.Version != "1.0.1" || a.Checksum != v101.SHA256 {
		t.Fatalf("device on 1.0.0: %+v, want 1.0.1", a)
	}
	if a := capgoCheck(t, srv.base, fmt.Sprintf(e2eDeviceTemplate, app, 3, "1.0.0", "0.8.0")); a.Kind != "blocked" {
		t.Fatalf("device below --min-native: %+v, want kind blocked", a)
	}
	if code, body := httpGet(t, a.URL); code != 200 || sha256Hex(body) != v101.SHA256 {
		t.Fatalf("download 1.0.1: HTTP %d", code)
	}

	// Same version and bytes again: nothing to do. Other bytes: refused.
	var again publishResult
	okJSON(t, run, &again, "release", www2, "--app", app, "--version", "1.0.1")
	if again.Uploaded || again.Status != "ready" || again.SHA256 != v101.SHA256 {
		t.Fatalf("idempotent re-publish: %+v", again)
	}
	r = run("release", "testdata/quickstart/www", "--app", app, "--version", "1.0.1")
	if r.code == 0 || !strings.Contains(r.stderr, "version_exists") {
		t.Fatalf("re-publish with other bytes: %s", r)
	}

	// Human output and listings.
	r = run("releases", "--app", app)
	if r.code != 0 || !strings.Contains(r.stdout, "VERSION") || !strings.Contains(r.stdout, "1.0.1    ready") {
		t.Fatalf("releases: %s", r)
	}
	var rels struct {
		Releases []struct{ Version, Status string }
	}
	okJSON(t, run, &rels, "release", "list", "--app", app)
	if len(rels.Releases) != 2 {
		t.Fatalf("release list: %+v", rels)
	}
	var ch channelOut
	okJSON(t, run, &ch, "channel", "get", "production", "--app", app)
	if ch.Channel.Stable != "1.0.1" || len(ch.History) < 2 {
		t.Fatalf("channel get: %+v", ch)
	}
	r = run("channel", "set", "beta", "--app", app, "--version", "1.0.0", "--allow-self-set")
	if r.code != 0 || !strings.Contains(r.stdout, "allow self set  yes") {
		t.Fatalf("channel set: %s", r)
	}
	var chs struct {
		Channels []struct{ Name, Stable string }
	}
	okJSON(t, run, &chs, "channel", "list", "--app", app)
	if len(chs.Channels) != 2 {
		t.Fatalf("channel list: %+v", chs)
	}
	if r := run("channel", "set", "beta", "--app", app, "--version", "9.9.9"); r.code == 0 || !strings.Contains(r.stderr, "release_not_found") {
		t.Fatalf("channel set to a missing release: %s", r)
	}

	// Deleting: a release a channel serves is kept.
	if r := run("release", "delete", "1.0.1", "--app", app); r.code == 0 || !strings.Contains(r.stderr, "release_in_use") {
		t.Fatalf("delete a served release: %s", r)
	}

	// Keys: a scoped key works on its app only; a revoked or wrong key is refused
	// with a clear message that never repeats the key.
	var nk wire.CreateKeyAnswer
	okJSON(t, run, &nk, "keys", "create", "--name", "ci", "--app", app)
	if nk.Secret == "" || nk.Key.ID == "" {
		t.Fatalf("keys create: %+v", nk)
	}
	ciEnv := []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + nk.Secret}
	if r := runOta(t, ota, "", ciEnv, "releases", "--app", app); r.code != 0 {
		t.Fatalf("scoped key: %s", r)
	}
	if r := runOta(t, ota, "", ciEnv, "app", "create", "com.example.other"); r.code == 0 || !strings.Contains(r.stderr, "forbidden") {
		t.Fatalf("scoped key creating an app: %s", r)
	}
	var keys struct{ Keys []struct{ ID, Hash string } }
	r = okJSON(t, run, &keys, "keys", "list")
	if len(keys.Keys) != 2 || strings.Contains(r.stdout, nk.Secret) {
		t.Fatalf("keys list: %+v", keys)
	}
	var rk wire.RevokeKeyAnswer
	okJSON(t, run, &rk, "keys", "revoke", nk.Key.ID)
	for _, key := range []string{nk.Secret, "ota_wrong0000000000000000000000000000000000"} {
		r := runOta(t, ota, "", []string{"OTA_SERVER=" + srv.base}, "--key", key, "releases", "--app", app)
		if r.code == 0 || !strings.Contains(r.stderr, "unauthorized") || strings.Contains(r.stderr+r.stdout, key) {
			t.Fatalf("bad key: %s", r)
		}
	}

	// Delete a release no channel serves.
	if r := run("channel", "set", "beta", "--app", app, "--version", "1.0.1"); r.code != 0 {
		t.Fatal(r)
	}
	if r := run("release", "delete", "1.0.0", "--app", app); r.code != 0 {
		t.Fatalf("delete: %s", r)
	}
	if r := run("release", "get", "1.0.0", "--app", app); r.code == 0 || !strings.Contains(r.stderr, "release_not_found") {
		t.Fatalf("get deleted: %s", r)
	}
}

// TestE2EQuickstart runs the commands otad prints on first start (the README shows the
// same), on a fresh otad that generates its admin key.
func TestE2EQuickstart(t *testing.T) {
	ota, otad := buildBinaries(t)
	srv := startOtad(t, otad, nil)
	text := srv.stdout.String()
	env := map[string]string{}
	var ran, curled int
	for _, line := range quickstartLines(text) {
		switch {
		case strings.HasPrefix(line, "export "):
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			if !ok || strings.Contains(v, "<") {
				t.Fatalf("quickstart line cannot run: %q (with a generated key otad must print it)", line)
			}
			env[k] = v
		case strings.HasPrefix(line, "go run ./cmd/ota "):
			var envList []string
			for k, v := range env {
				envList = append(envList, k+"="+v)
			}
			r := runOta(t, ota, "", envList, strings.Fields(strings.TrimPrefix(line, "go run ./cmd/ota "))...)
			if r.code != 0 {
				t.Fatalf("quickstart command %q failed: %s", line, r)
			}
			ran++
		case strings.HasPrefix(line, "curl "):
			m := regexp.MustCompile(`(http://\S+/capgo/updates)\b.*-d '([^']+)'`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("cannot read the curl line: %q", line)
			}
			a := capgoCheck(t, strings.TrimSuffix(m[1], "/capgo/updates"), m[2])
			// The quickstart publishes bundle 1.0.1 for a store build 1.0.0 device.
			if a.Version != "1.0.1" || a.URL == "" {
				t.Fatalf("quickstart device check: %+v", a)
			}
			code, body := httpGet(t, a.URL)
			if code != 200 || sha256Hex(body) != a.Checksum {
				t.Fatalf("quickstart download: HTTP %d, sha256 %s, checksum %s", code, sha256Hex(body), a.Checksum)
			}
			curled++
		}
	}
	if env["OTA_SERVER"] != srv.base || !strings.HasPrefix(env["OTA_API_KEY"], "ota_") || ran < 2 || curled != 1 {
		t.Fatalf("quickstart not fully exercised (server %q, %d ota commands, %d checks):\n%s", env["OTA_SERVER"], ran, curled, text)
	}
}

// quickstartLines returns the shell lines of otad's quickstart: indented lines, with
// "\" continuations joined and trailing "# ..." comments dropped.
func quickstartLines(text string) []string {
	var lines []string
	var cur string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "  ") {
			continue
		}
		l = strings.TrimSpace(l)
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			cur += cont
			continue
		}
		l = cur + l
		cur = ""
		if i := strings.Index(l, " #"); i >= 0 && !strings.Contains(l, "'") {
			l = strings.TrimSpace(l[:i])
		}
		lines = append(lines, l)
	}
	return lines
}

// TestE2ECapgoEncrypted publishes with --capgo-key (a PKCS#1 key as @capgo/cli writes
// it) and checks a device with the matching key_id gets the stored session key and
// encrypted checksum, and bytes that decrypt to the bundle.
func TestE2ECapgoEncrypted(t *testing.T) {
	ota, otad := buildBinaries(t)
	srv := startOtad(t, otad, []string{"OTA_ADMIN_KEY=" + e2eAdminKey})
	env := []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + e2eAdminKey}
	run := func(args ...string) otaResult { return runOta(t, ota, "", env, args...) }
	const app = "com.example.secret"
	if r := run("app", "create", app); r.code != 0 {
		t.Fatal(r)
	}
	key, err := sign.GenerateRSA(2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), ".capgo_key_v2")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run("--json", "release", "testdata/quickstart/www", "--app", app, "--version", "1.0.0", "--channel", "production", "--capgo-key", keyFile)
	var res publishResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || !res.Encrypted || res.Status != "ready" {
		t.Fatalf("encrypted publish: %s", r)
	}
	keyID := sign.CapgoKeyID(string(sign.MarshalPKCS1PublicPEM(&key.PublicKey)))
	body := fmt.Sprintf(`{"app_id":%q,"device_id":"00000000-0000-4000-8000-000000000042","platform":"ios","version_name":"builtin","version_build":"0.9.0","is_emulator":false,"is_prod":true,"key_id":%q}`, app, keyID)
	a := capgoCheck(t, srv.base, body)
	if a.Version != "1.0.0" || a.SessionKey == "" || len(a.Checksum) != 512 {
		t.Fatalf("encrypted check: %+v", a)
	}
	code, enc := httpGet(t, a.URL)
	if code != 200 {
		t.Fatalf("download: HTTP %d", code)
	}
	plain, err := sign.CapgoDecrypt(&key.PublicKey, a.SessionKey, enc)
	if err != nil {
		t.Fatal(err)
	}
	var zip bytes.Buffer
	bundle.ZipDir(quickstartWWW, &zip)
	sum := sha256.Sum256(plain)
	if !bytes.Equal(plain, zip.Bytes()) || sign.CapgoVerifyChecksum(&key.PublicKey, sum[:], a.Checksum) != nil {
		t.Fatal("decrypted download does not match the bundle or its encrypted checksum")
	}
}

// TestE2EDeviceSyncViaPatch: the real binaries end to end. otad serves; `ota release`
// publishes v1 and v2 (v2 changes one file, adds one and drops one); once otad has
// precomputed the patch in the background, `ota device sync` on v1 moves to v2
// through it and the live tree equals v2.
func TestE2EDeviceSyncViaPatch(t *testing.T) {
	ota, otad := buildBinaries(t)
	srv := startOtad(t, otad, []string{"OTA_ADMIN_KEY=" + e2eAdminKey})
	env := []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + e2eAdminKey}
	run := func(args ...string) otaResult { return runOta(t, ota, "", env, args...) }
	const app = "com.example.sync"
	tmp := t.TempDir()
	v1, v2 := filepath.Join(tmp, "v1"), filepath.Join(tmp, "v2")
	testenv.CopyTree(t, quickstartWWW, v1)
	testenv.CopyTree(t, quickstartWWW, v2)
	if err := os.WriteFile(filepath.Join(v2, "app.js"), []byte("console.log('v2');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v2, "assets-new.js"), []byte("export const x = 2;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(v2, "style.css")); err != nil {
		t.Fatal(err)
	}
	if r := run("app", "create", app); r.code != 0 {
		t.Fatal(r)
	}
	if r := run("release", v1, "--app", app, "--version", "1.0.0", "--channel", "production"); r.code != 0 {
		t.Fatal(r)
	}
	dev := filepath.Join(tmp, "device")
	var res struct{ Action, From, To, Via string }
	okJSON(t, run, &res, "device", "sync", "--app", app, "--dir", dev)
	if res.Action != "updated" || res.To != "1.0.0" || res.Via != "full" {
		t.Fatalf("first sync: %+v", res)
	}
	if r := run("release", v2, "--app", app, "--version", "1.0.1", "--channel", "production"); r.code != 0 {
		t.Fatal(r)
	}
	// The release was ready before its patch: otad precomputes it in the background.
	waitPatch(t, run, app, "1.0.0", "1.0.1")
	// No wait for the channel: otad's own channel change drops its state cache at once.
	okJSON(t, run, &res, "device", "sync", "--app", app, "--dir", dev)
	if res.Action != "updated" || res.From != "1.0.0" || res.To != "1.0.1" || res.Via != "patch" {
		t.Fatalf("second sync: %+v", res)
	}
	if err := sameTree(filepath.Join(dev, "current"), v2); err != nil {
		t.Fatalf("live tree after the patch: %v", err)
	}
}

// waitPatch polls `ota release get` until the tree patch from -> to is listed (otad
// computes it in the background after the release is ready).
func waitPatch(t *testing.T, run func(args ...string) otaResult, app, from, to string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got releaseOut
		okJSON(t, run, &got, "release", "get", to, "--app", app)
		for _, p := range got.Patches {
			if p.From == from {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no patch %s -> %s listed: %+v", from, to, got.Patches)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameTree reports how two folders differ (files and contents; symlinked roots followed).
func sameTree(got, want string) error {
	read := func(root string) (map[string]string, error) {
		root, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = string(b)
			return err
		})
		return out, err
	}
	g, err := read(got)
	if err != nil {
		return err
	}
	w, err := read(want)
	if err != nil {
		return err
	}
	for k, v := range w {
		if g[k] != v {
			return fmt.Errorf("%s differs or is missing", k)
		}
	}
	if len(g) != len(w) {
		return fmt.Errorf("%d files, want %d", len(g), len(w))
	}
	return nil
}
