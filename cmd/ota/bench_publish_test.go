package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBenchPublishBig measures what publishing a big bundle costs on otad, with the
// real binaries:
//
//  1. `ota release` of a folder holding one 150 MB pseudo-random file: wall time,
//     the CLI's peak RSS, otad's peak RSS (VmHWM);
//  2. the same folder with one byte changed, then otad's peak RSS once its
//     background patch work for that pair is over;
//  3. device checks (POST /capgo/updates, 4 clients) while otad precomputes a patch
//     between two 8 MB text bundles, against the same load with nothing running.
//
// Run it with:
//
//	OTA_BENCH_PUBLISH=1 go test ./cmd/ota -run TestBenchPublishBig -v -timeout 60m
//
// OTA_BENCH_OTAD=path measures another otad build (an older commit's, say) instead.
func TestBenchPublishBig(t *testing.T) {
	if os.Getenv("OTA_BENCH_PUBLISH") == "" {
		t.Skip("benchmark: set OTA_BENCH_PUBLISH=1 to run it")
	}
	ota, otad := buildBinaries(t)
	if p := os.Getenv("OTA_BENCH_OTAD"); p != "" {
		otad = p
	}
	srv := startOtad(t, otad, []string{"OTA_ADMIN_KEY=" + e2eAdminKey})
	env := []string{"OTA_SERVER=" + srv.base, "OTA_API_KEY=" + e2eAdminKey}
	tmp := t.TempDir()
	for _, app := range []string{"com.example.big", "com.example.load"} {
		if r := runOta(t, ota, "", env, "app", "create", app); r.code != 0 {
			t.Fatal(r)
		}
	}
	t.Logf("otad %s, %d CPUs", otad, runtime.NumCPU())

	// 1 and 2: the 150 MB file, then one byte changed.
	www := filepath.Join(tmp, "big")
	writeRandomFolder(t, www, 150<<20, -1)
	d, rss := timedRelease(t, ota, env, www, "com.example.big", "1.0.0")
	t.Logf("150 MB file:            ota release %6.1fs (CLI peak RSS %4d MB), otad peak RSS %4d MB", d.Seconds(), rss>>20, vmHWM(t, srv.pid)>>20)
	writeRandomFolder(t, www, 150<<20, 75<<20)
	d, rss = timedRelease(t, ota, env, www, "com.example.big", "1.0.1")
	t.Logf("same, one byte changed: ota release %6.1fs (CLI peak RSS %4d MB), otad peak RSS %4d MB", d.Seconds(), rss>>20, vmHWM(t, srv.pid)>>20)
	start := time.Now()
	waitLog(t, srv, func(l string) bool {
		return strings.Contains(l, `"to":"1.0.1"`) && (strings.Contains(l, "patch skipped") || strings.Contains(l, "patch stored"))
	}, 2, 30*time.Minute)
	t.Logf("background patch work for 1.0.0 -> 1.0.1 over %.1fs after the command returned; otad peak RSS %d MB", time.Since(start).Seconds(), vmHWM(t, srv.pid)>>20)
	for _, l := range logLines(srv, `"to":"1.0.1"`, "patch ") {
		t.Logf("  otad: %s", l)
	}

	// 3: device checks with and without background patch work.
	wwwLoad := filepath.Join(tmp, "load")
	writeTextFolder(t, wwwLoad, 8<<20, 1)
	timedRelease(t, ota, env, wwwLoad, "com.example.load", "2.0.0", "--channel", "production")
	body := fmt.Sprintf(e2eDeviceTemplate, "com.example.load", 1, "builtin", "0.9.0")
	idle := checkLoad(t, srv.base, body, func() bool { return false }, 5*time.Second)
	t.Logf("device checks, idle:                      %s", idle)
	writeTextFolder(t, wwwLoad, 8<<20, 2)
	d, _ = timedRelease(t, ota, env, wwwLoad, "com.example.load", "2.0.1")
	t.Logf("8 MB text bundle, all new: ota release %.1fs", d.Seconds())
	done := func() bool { return hasLog(srv, `"to":"2.0.1"`, `"kind":"ota"`) }
	busy := checkLoad(t, srv.base, body, done, 10*time.Minute)
	t.Logf("device checks, while precomputing:        %s", busy)
	for _, l := range logLines(srv, `"to":"2.0.1"`, "") {
		t.Logf("  otad: %s", l)
	}
	t.Logf("otad peak RSS at the end: %d MB", vmHWM(t, srv.pid)>>20)
}

// writeRandomFolder writes index.html and big.bin, n bytes from a fixed seed with the
// byte at flip (if >= 0) inverted.
func writeRandomFolder(t *testing.T, dir string, n, flip int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html>big</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewChaCha8([32]byte{150}))
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), n-off)]
		for i := range chunk {
			if i%8 == 0 {
				v := rng.Uint64()
				for k := 0; k < 8 && i+k < len(chunk); k++ {
					chunk[i+k] = byte(v >> (8 * k))
				}
			}
		}
		if flip >= off && flip < off+int64(len(chunk)) {
			chunk[flip-off] ^= 0xff
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
}

// writeTextFolder writes index.html and app.js, n bytes of code-like text from seed.
func writeTextFolder(t *testing.T, dir string, n int, seed byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<html><script src=app.js></script></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	words := []string{"function ", "return ", "const ", "let ", "if (", ") {\n", "}\n", "this.", "value", "props", "state", " = ", "; ", "await ", "import ", "export "}
	rng := rand.New(rand.NewChaCha8([32]byte{seed}))
	var b strings.Builder
	for b.Len() < n {
		if rng.IntN(4) == 0 {
			b.WriteString(strconv.Itoa(rng.IntN(100000)))
		} else {
			b.WriteString(words[rng.IntN(len(words))])
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// timedRelease runs `ota release` and returns its wall time and peak RSS (bytes).
func timedRelease(t *testing.T, ota string, env []string, dir, app, version string, extra ...string) (time.Duration, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ota, append([]string{"release", dir, "--app", app, "--version", version, "--wait", "30m"}, extra...)...)
	cmd.Env = cleanEnv(env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		t.Fatalf("ota release %s: %v\n%s", version, err, out)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // kilobytes on Linux
	}
	return d, rss
}

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("peak RSS unavailable: %v", err)
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// logLines returns otad's log lines containing both a and b.
func logLines(p *otadProc, a, b string) []string {
	var out []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, a) && strings.Contains(l, b) {
			out = append(out, l)
		}
	}
	return out
}

func hasLog(p *otadProc, a, b string) bool {
	for _, l := range logLines(p, a, b) {
		if strings.Contains(l, "patch skipped") || strings.Contains(l, "patch stored") {
			return true
		}
	}
	return false
}

// waitLog waits until n of otad's log lines match.
func waitLog(t *testing.T, p *otadProc, match func(string) bool, n int, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
		got := 0
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if match(l) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("otad did not log the expected %d lines within %s", n, limit)
		}
	}
}

// loadResult summarizes check latencies.
type loadResult struct {
	n             int
	p50, p99, max time.Duration
	errors        int
	took          time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%5d checks in %5.1fs, p50 %6.2fms, p99 %6.2fms, max %7.2fms, %d errors",
		r.n, r.took.Seconds(), ms(r.p50), ms(r.p99), ms(r.max), r.errors)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// checkLoad runs 4 clients posting device checks until stop reports true (polled
// every 100 ms) or limit passes, and returns the latencies.
func checkLoad(t *testing.T, base, body string, stop func() bool, limit time.Duration) loadResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if stop() {
				cancel()
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := http.Post(base+"/capgo/updates", "application/json", strings.NewReader(body))
				d := time.Since(t0)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					resp.Body.Close()
				}
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else if !errors.Is(err, context.Canceled) {
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	r := loadResult{n: len(lat), errors: errs, took: time.Since(start)}
	if len(lat) > 0 {
		r.p50, r.p99, r.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return r
}
