// Package lambdarie runs the Lambda function binaries of this module under AWS's
// Lambda Runtime Interface Emulator (aws-lambda-rie), so tests exercise the real
// runtime loop (aws-lambda-go talking to a Runtime API, cold start, timeouts, the
// 6 MB response limit) instead of calling handlers in-process, and stands in for API
// Gateway HTTP API in front of them (Gateway).
//
// The emulator's path comes from OTA_TEST_LAMBDA_RIE (infra/emulators/lambda-rie.sh
// installs it; infra/test.sh exports it). Unset, tests skip, or fail under CI.
//
// What the RIE does, which shapes this package:
//   - it starts the bootstrap lazily, on the first invoke (that invoke carries the
//     cold start), and again after a crash or a timeout;
//   - it serves one invoke at a time: a second concurrent invoke crashes it (nil
//     dereference in rapidcore), so Function.Invoke serializes;
//   - it drops X-Amz-Function-Error: a function error comes back as HTTP 200 with
//     {"errorType","errorMessage"}, a crash or an oversized response as HTTP 502 with
//     the same shape (Runtime.ExitError, Function.ResponseSizeTooLarge), a timeout as
//     HTTP 200 with the text "Task timed out after N.00 seconds";
//   - it silently truncates a request payload at 6 MiB + 100 bytes (the function sees
//     "unexpected EOF"), so the 6 MB request limit is enforced by Gateway;
//   - AWS_LAMBDA_FUNCTION_TIMEOUT must be whole seconds (anything else panics it);
//     AWS_LAMBDA_FUNCTION_MEMORY_SIZE is only reported, never enforced.
package lambdarie

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RIEEnv names the environment variable holding the aws-lambda-rie binary's path.
const RIEEnv = "OTA_TEST_LAMBDA_RIE"

// InvokePath is the RIE's invoke URL path (the Lambda Invoke API's, function "function").
const InvokePath = "/2015-03-31/functions/function/invocations"

// RIE returns the emulator's path from OTA_TEST_LAMBDA_RIE. Unset: fails under CI
// (env CI non-empty), skips otherwise, as the other emulators do (shared/testenv).
func RIE(t testing.TB) string {
	t.Helper()
	p := strings.TrimSpace(os.Getenv(RIEEnv))
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s unset under CI: Lambda RIE missing; run make test", RIEEnv)
		}
		t.Skipf("%s unset: skipping tests that need the Lambda RIE; run infra/emulators/lambda-rie.sh install and set %s to .tools/bin/aws-lambda-rie", RIEEnv, RIEEnv)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", RIEEnv, err)
	}
	return p
}

// ---- building

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{} // package path -> binary
	inMain   bool                  // Main manages the cache's lifetime
)

// Build builds ./functions/<function> of this module for the host as Lambda builds it
// (CGO_ENABLED=0, -trimpath, -ldflags "-s -w", -tags lambda.norpc) and returns the
// binary's path. When the package's TestMain uses Main, each function is built once
// per test process and removed at its end; otherwise into the calling test's
// temporary folder (removed when the test ends). Either way no folder outlives the
// tests.
func Build(t testing.TB, function string) string {
	t.Helper()
	return BuildAll(t, function)[function]
}

// BuildAll builds several functions with one go build (it links them in parallel).
func BuildAll(t testing.TB, functions ...string) map[string]string {
	t.Helper()
	pkgs := make([]string, len(functions))
	for i, f := range functions {
		pkgs[i] = "./functions/" + f
	}
	bins := buildPackages(t, pkgs...)
	out := make(map[string]string, len(functions))
	for i, f := range functions {
		out[f] = bins[pkgs[i]]
	}
	return out
}

// Main runs the tests and then removes the built binaries: use it from TestMain,
// os.Exit(lambdarie.Main(m)), to build each function once per test process.
func Main(m *testing.M) int {
	buildMu.Lock()
	inMain = true
	buildMu.Unlock()
	defer Cleanup()
	return m.Run()
}

// Cleanup removes the built binaries and empties the cache.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	buildDir, built = "", map[string]string{}
}

// buildPackages builds main packages (paths relative to the module root) and returns
// package -> binary: into the process-wide cache under Main, else into a folder of
// the calling test's own (parallel tests never see a binary vanish under them).
func buildPackages(t testing.TB, pkgs ...string) map[string]string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	cache := built
	if !inMain {
		cache = map[string]string{}
	}
	var missing []string
	for _, p := range pkgs {
		if _, ok := cache[p]; !ok && !slices.Contains(missing, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		var out string
		if inMain {
			if buildDir == "" {
				dir, err := os.MkdirTemp("", "ota-lambdarie-")
				if err != nil {
					t.Fatal(err)
				}
				buildDir = dir
			}
			// One folder per build: go build -o DIR/ names each binary after its package.
			dir, err := os.MkdirTemp(buildDir, "build-")
			if err != nil {
				t.Fatal(err)
			}
			out = dir
		} else {
			out = t.TempDir()
		}
		args := append([]string{"build", "-trimpath", "-ldflags", "-s -w", "-tags", "lambda.norpc", "-o", out + string(filepath.Separator)}, missing...)
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		start := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", strings.Join(missing, " "), err, b)
		}
		for _, p := range missing {
			bin := filepath.Join(out, filepath.Base(p))
			if runtime.GOOS == "windows" {
				bin += ".exe"
			}
			st, err := os.Stat(bin)
			if err != nil {
				t.Fatalf("go build %s: %v", p, err)
			}
			cache[p] = bin
			t.Logf("built %s: %.2f MiB", p, float64(st.Size())/(1<<20))
		}
		t.Logf("go build of %d packages: %s", len(missing), time.Since(start).Round(time.Millisecond))
	}
	res := make(map[string]string, len(pkgs))
	for _, p := range pkgs {
		res[p] = cache[p]
	}
	return res
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("cannot find the module root (go env GOMOD: %q, %v)", gomod, err)
	}
	return filepath.Dir(gomod)
}

// ---- running

// Function is one function running under its own RIE (Start), or any endpoint that
// speaks the RIE's invoke API (Attach).
type Function struct {
	Name string
	url  string
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{} // closed when the RIE process has exited

	sem    chan struct{} // one invoke at a time, as the RIE requires
	client *http.Client

	mu        sync.Mutex
	invokes   int
	cold      time.Duration
	durations []time.Duration
}

// Start runs binary as the runtime (bootstrap) of a fresh aws-lambda-rie listening on
// a free loopback port, with a clean environment: PATH, HOME, env, and the Lambda
// variables for memoryMB, timeout (rounded up to whole seconds, at least 1) and the
// function name (env's AWS_LAMBDA_FUNCTION_NAME, else the binary's name). Its working
// directory is the binary's folder (as /var/task holds bootstrap). It returns once
// the RIE listens; the bootstrap starts on the first Invoke. The RIE and the runtime
// are killed when the test ends; their output is in Logs. (The clean environment
// also keeps out AWS_LAMBDA_MAX_CONCURRENCY, which switches aws-lambda-rie to its
// Lambda Managed Instances mode.)
func Start(t testing.TB, binary string, env map[string]string, memoryMB int, timeout time.Duration) *Function {
	t.Helper()
	rie := RIE(t)
	// Absolute and resolved: the runtime's /proc/PID/exe is compared with it at cleanup.
	if abs, err := filepath.Abs(binary); err == nil {
		binary = abs
	}
	if real, err := filepath.EvalSymlinks(binary); err == nil {
		binary = real
	}
	if memoryMB <= 0 {
		memoryMB = 128 // Lambda's default
	}
	secs := int(math.Ceil(timeout.Seconds()))
	if secs < 1 {
		secs = 3 // Lambda's default
	}
	name := env["AWS_LAMBDA_FUNCTION_NAME"]
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(binary), ".exe")
	}
	vars := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME")}
	maps.Copy(vars, env)
	vars["AWS_LAMBDA_FUNCTION_NAME"] = name
	vars["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.Itoa(memoryMB)
	vars["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.Itoa(secs)
	var environ []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		environ = append(environ, k+"="+vars[k])
	}
	var err error
	for range 3 { // a free port can be taken between picking and binding it
		var f *Function
		if f, err = start(rie, binary, name, environ); err == nil {
			t.Cleanup(f.stop)
			return f
		}
	}
	t.Fatalf("start %s under the RIE: %v", name, err)
	return nil
}

func start(rie, binary, name string, environ []string) (*Function, error) {
	invokeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", apiAddr, binary)
	cmd.Dir = filepath.Dir(binary)
	cmd.Env = environ
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.WaitDelay = 2 * time.Second // the runtime shares the output pipe; never wait on it forever
	setProcAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := newFunction(name, "http://"+invokeAddr)
	f.cmd, f.logs, f.done = cmd, logs, make(chan struct{})
	go func() { cmd.Wait(); close(f.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range []string{invokeAddr, apiAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-f.done:
				return nil, fmt.Errorf("the RIE exited (%v):\n%s", cmd.ProcessState, logs.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				f.stop()
				return nil, fmt.Errorf("the RIE does not listen on %s after 15s:\n%s", addr, logs.String())
			}
		}
	}
	return f, nil
}

// Attach returns a Function for an endpoint speaking the RIE's invoke API at baseURL
// (a fake in tests, or an RIE started elsewhere); nothing is started or stopped.
func Attach(name, baseURL string) *Function {
	return newFunction(name, strings.TrimSuffix(baseURL, "/"))
}

func newFunction(name, base string) *Function {
	return &Function{Name: name, url: base + InvokePath, sem: make(chan struct{}, 1),
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}}}
}

// URL is the function's invoke URL.
func (f *Function) URL() string { return f.url }

// stop terminates the RIE (SIGTERM: it SIGKILLs its runtime), then kills what is left.
func (f *Function) stop() {
	if f.cmd == nil || f.cmd.Process == nil {
		return
	}
	runtimes := children(f.cmd.Process.Pid)
	terminate(f.cmd)
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		kill(f.cmd)
		<-f.done
	}
	killRuntimes(runtimes, f.cmd.Args[len(f.cmd.Args)-1])
}

// Logs returns what the RIE and the function wrote so far (stdout and stderr): the
// RIE's START/END/REPORT and INIT lines and the function's own logs.
func (f *Function) Logs() string {
	if f.logs == nil {
		return ""
	}
	return f.logs.String()
}

// Invokes is how many invokes were sent.
func (f *Function) Invokes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.invokes
}

// ColdStart is the duration of the first invoke: the runtime's start and init plus
// the first request, as a client of a cold function sees it.
func (f *Function) ColdStart() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cold
}

// Durations are the durations of the invokes so far, in order (the first one is the
// cold start), as a client of the RIE sees them: the function's work plus the RIE's
// relaying, not the time the function would be billed for (see Reports).
func (f *Function) Durations() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.durations)
}

// Report is one REPORT line of the RIE: the invoke's duration as the RIE measured it
// (from handing the event to the runtime to its response) and its Billed Duration
// (Duration rounded up to the millisecond, as Lambda bills). The RIE's "Init
// Duration" and "Max Memory Used" are not measurements and are left out.
type Report struct {
	RequestID string
	Duration  time.Duration
	Billed    time.Duration
}

var reportLine = regexp.MustCompile(`(?m)^REPORT RequestId: (\S+)\s+(?:Init Duration: [0-9.]+ ms\s+)?Duration: ([0-9.]+) ms\s+Billed Duration: ([0-9]+) ms`)

// Reports parses the REPORT lines of the function's log so far. The RIE writes a
// REPORT line just after the response, so the last invoke's may not be there yet
// when Invoke returns.
func (f *Function) Reports() []Report { return ParseReports(f.Logs()) }

// ParseReports parses the RIE's REPORT lines in logs (Logs output, or part of it).
func ParseReports(logs string) []Report {
	var out []Report
	for _, m := range reportLine.FindAllStringSubmatch(logs, -1) {
		d, _ := strconv.ParseFloat(m[2], 64)
		b, _ := strconv.Atoi(m[3])
		out = append(out, Report{RequestID: m[1], Duration: time.Duration(d * float64(time.Millisecond)),
			Billed: time.Duration(b) * time.Millisecond})
	}
	return out
}

var (
	rieLine      = regexp.MustCompile(`^\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2},\d{3} \[[A-Z]+\] \(rapid\) `)
	platformLine = regexp.MustCompile(`^(START|END|REPORT) RequestId: `)
)

// SplitLogs sorts the lines of logs (Logs output, or part of it) by who wrote them:
// the function itself (what its runtime wrote on stdout and stderr, which Lambda
// sends to CloudWatch), the platform lines START, END and REPORT (Lambda writes them
// to CloudWatch too, in the text log format), and the RIE's own diagnostics (lines
// tagged "(rapid)", which Lambda does not write). Lines keep no trailing newline.
func SplitLogs(logs string) (function, platform, emulator []string) {
	for _, line := range strings.Split(strings.TrimSuffix(logs, "\n"), "\n") {
		switch {
		case line == "":
		case rieLine.MatchString(line):
			emulator = append(emulator, line)
		case platformLine.MatchString(line):
			platform = append(platform, line)
		default:
			function = append(function, line)
		}
	}
	return function, platform, emulator
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// InitDuration is the first init phase as the RIE reports it (from the runtime's
// start to its first call for the next event), from its log; 0 if not seen yet.
// (The "Init Duration" of the RIE's REPORT line is not this, and is meaningless.)
func (f *Function) InitDuration() time.Duration {
	m := initReport.FindStringSubmatch(f.Logs())
	if m == nil {
		return 0
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

// FunctionError is an invoke that failed in the function or the runtime: Type is
// Lambda's error type (errorType: the Go error's type for a returned error,
// Runtime.ExitError, Function.ResponseSizeTooLarge, Sandbox.Timedout...).
type FunctionError struct {
	Type, Message string
	Status        int // the RIE's HTTP status
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Invoke sends payload as the event and returns the function's response and how
// long the invoke took. A failed invoke returns a *FunctionError (with the RIE's
// answer as out). Invokes are serialized; if ctx ends first, Invoke returns ctx's
// error at once, but the next invoke still waits for the RIE to finish this one (the
// function keeps running, as on Lambda).
func (f *Function) Invoke(ctx context.Context, payload []byte) (out []byte, d time.Duration, err error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	type result struct {
		status int
		body   []byte
		err    error
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		defer func() { <-f.sem }()
		var r result
		resp, err := f.client.Post(f.url, "application/json", bytes.NewReader(payload))
		if err == nil {
			r.status = resp.StatusCode
			r.body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		r.err = err
		d := time.Since(start)
		f.mu.Lock()
		f.invokes++
		if f.invokes == 1 {
			f.cold = d
		}
		f.durations = append(f.durations, d)
		f.mu.Unlock()
		ch <- r
	}()
	select {
	case <-ctx.Done():
		return nil, time.Since(start), ctx.Err()
	case r := <-ch:
		d = time.Since(start)
		if r.err != nil {
			return nil, d, fmt.Errorf("invoke %s: %w", f.Name, r.err)
		}
		if fe := functionError(r.status, r.body); fe != nil {
			return r.body, d, fe
		}
		return r.body, d, nil
	}
}

// functionError recognizes the RIE's ways of reporting a failed invoke.
func functionError(status int, body []byte) *FunctionError {
	if msg, ok := strings.CutPrefix(string(body), "Task timed out after"); ok && status == http.StatusOK {
		return &FunctionError{Type: "Sandbox.Timedout", Message: "Task timed out after" + msg, Status: status}
	}
	var e struct {
		Type       string          `json:"errorType"`
		Message    string          `json:"errorMessage"`
		StatusCode json.RawMessage `json:"statusCode"`
	}
	if json.Unmarshal(body, &e) == nil && e.Type != "" && e.StatusCode == nil {
		return &FunctionError{Type: e.Type, Message: e.Message, Status: status}
	}
	if status != http.StatusOK {
		return &FunctionError{Type: "RIE.HTTP" + strconv.Itoa(status), Message: string(body), Status: status}
	}
	return nil
}

// IsFunctionError reports whether err is a *FunctionError of type typ ("" for any).
func IsFunctionError(err error, typ string) bool {
	var fe *FunctionError
	return errors.As(err, &fe) && (typ == "" || fe.Type == typ)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// logBuffer collects the RIE's output; written by exec's copying goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
