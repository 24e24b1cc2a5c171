//go:build linux

// The RIE tests run where the RIE does: Linux.
package lambdarie

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otakit/ota/shared/api"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// fakeFunction starts testdata/fakefn under the RIE.
func fakeFunction(t *testing.T, timeout time.Duration) *Function {
	t.Helper()
	RIE(t) // skip before building when the RIE is missing
	bin := buildPackages(t, "./infra/lambdarie/testdata/fakefn")["./infra/lambdarie/testdata/fakefn"]
	return Start(t, bin, map[string]string{"FAKEFN_VAR": "v"}, 256, timeout)
}

func invoke(t *testing.T, f *Function, payload string) ([]byte, error) {
	t.Helper()
	out, _, err := f.Invoke(context.Background(), []byte(payload))
	return out, err
}

// TestRIEFunction checks what the package relies on in the real RIE: lazy start and a
// clean environment, the error shapes, recovery after a crash or a timeout, and
// concurrent invokes being serialized.
func TestRIEFunction(t *testing.T) {
	t.Setenv("FAKEFN_LEAK", "leaked") // must not reach the function
	f := fakeFunction(t, 2*time.Second)
	if strings.Contains(f.Logs(), "fakefn: init") {
		t.Fatalf("the runtime started before the first invoke")
	}
	out, err := invoke(t, f, `{"mode":"env"}`)
	if err != nil {
		t.Fatalf("env: %v", err)
	}
	var env struct {
		PID                                   int
		Deadline                              int64 `json:"deadline_ms"`
		Cwd, Name, Memory, Custom, Home, Leak string
	}
	json.Unmarshal(out, &env)
	if env.Name != "fakefn" || env.Memory != "256" || env.Custom != "v" || env.Leak != "" || env.Home != os.Getenv("HOME") ||
		env.Deadline < 1500 || env.Deadline > 2000 || !strings.HasSuffix(f.cmd.Args[len(f.cmd.Args)-1], "/fakefn") {
		t.Errorf("function environment: %s", out)
	}
	if f.ColdStart() <= 0 || f.InitDuration() <= 0 || f.InitDuration() > f.ColdStart() || !strings.Contains(f.Logs(), "fakefn: init") {
		t.Errorf("cold start %s, init %s; logs:\n%s", f.ColdStart(), f.InitDuration(), f.Logs())
	}

	for _, c := range []struct{ payload, typ string }{
		{`{"mode":"error"}`, "errorString"},
		{`{"mode":"exit"}`, "Runtime.ExitError"},
		{`{"mode":"big","n":7000000}`, "Function.ResponseSizeTooLarge"},
		{`{"mode":"sleep","n":3000}`, "Sandbox.Timedout"},
	} {
		if _, err := invoke(t, f, c.payload); !IsFunctionError(err, c.typ) {
			t.Errorf("%s: %v, want a %s function error", c.payload, err, c.typ)
		}
		// The RIE restarts the runtime after a crash or a timeout.
		if out, err := invoke(t, f, `{"mode":"ok"}`); err != nil || !strings.Contains(string(out), "ok ok") {
			t.Fatalf("after %s: %s %v", c.payload, out, err)
		}
	}
	// Just under the limit passes.
	if out, err := invoke(t, f, `{"mode":"big","n":6000000}`); err != nil || len(out) < 6000000 {
		t.Errorf("6 MB response: %d bytes, %v", len(out), err)
	}

	// Concurrent invokes (a second one in flight crashes the RIE) are serialized.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := f.Invoke(context.Background(), []byte(fmt.Sprintf(`{"mode":"sleep","n":%d}`, 50+10*i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent invoke: %v", err)
		}
	}
	if f.Invokes() != 14 || len(f.Durations()) != 14 {
		t.Errorf("%d invokes recorded, %d durations", f.Invokes(), len(f.Durations()))
	}
	// Every invoke but the two whose runtime died (exit, oversized response) has its
	// REPORT line (the RIE writes it just after the response).
	deadline := time.Now().Add(2 * time.Second)
	for len(f.Reports()) < 12 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rs := f.Reports(); len(rs) < 12 || rs[1].Billed < rs[1].Duration || rs[1].Billed > rs[1].Duration+time.Millisecond {
		t.Errorf("%d REPORT lines: %+v", len(rs), rs)
	}
	if fn, platform, rie := SplitLogs(f.Logs()); !slices.Contains(fn, "fakefn: mode ok") || len(platform) < 3*12 || len(rie) == 0 {
		t.Errorf("split logs: %d function, %d platform, %d RIE lines", len(fn), len(platform), len(rie))
	}
}

// TestRIEGateway: the Gateway's 502 for an oversized response as the real RIE
// reports it, and the stats.
func TestRIEGateway(t *testing.T) {
	f := fakeFunction(t, 5*time.Second)
	gw := NewGateway(map[api.Group]*Function{api.GroupAdmin: f})
	gw.Logf = t.Logf
	hs := httptest.NewServer(gw)
	defer hs.Close()
	resp, b := do(t, "GET", hs.URL+"/v1/apps?mode=hello", nil, nil)
	if resp.StatusCode != 200 || string(b) != "ok hello" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("through the gateway: %d %q", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", hs.URL+"/v1/apps?mode=big&n=7000000", nil, nil)
	if resp.StatusCode != 502 || string(b) != bodyInternal {
		t.Fatalf("oversized response: %d %q", resp.StatusCode, b)
	}
	resp, b = do(t, "GET", hs.URL+"/v1/apps?mode=big&n=6000000", nil, nil)
	if resp.StatusCode != 200 || len(b) != 6000000 {
		t.Fatalf("6 MB response: %d %d bytes", resp.StatusCode, len(b))
	}
	if st := gw.Stats()[api.GroupAdmin]; st.Invokes != 3 || st.FunctionErrors != 1 || st.LargestResponse < 6000000 {
		t.Errorf("stats %+v", st)
	}
}

// TestRIECleanup: nothing of a function outlives its test.
func TestRIECleanup(t *testing.T) {
	RIE(t)
	var rie, runtime int
	t.Run("run", func(t *testing.T) {
		f := fakeFunction(t, 5*time.Second)
		out, err := invoke(t, f, `{"mode":"env"}`)
		var env struct{ PID int }
		if err != nil || json.Unmarshal(out, &env) != nil || env.PID == 0 {
			t.Fatalf("env: %s %v", out, err)
		}
		rie, runtime = f.cmd.Process.Pid, env.PID
	})
	if rie == 0 {
		t.Fatal("no function ran")
	}
	time.Sleep(100 * time.Millisecond)
	for _, pid := range []int{rie, runtime} {
		if syscall.Kill(pid, 0) == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d still runs after the test", pid)
			}
		}
	}
}
