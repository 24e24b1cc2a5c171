package awse2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/infra/lambdarie"
)

// warmRequests is how many warm requests of each kind TestRIEWarmCosts measures.
const warmRequests = 200

// warmFigure is one kind of request's line of the report (OTA_RIE_REPORT): warm
// invokes of the real function under the RIE, through the Gateway.
type warmFigure struct {
	Request  string `json:"request"`
	Function string `json:"function"`
	MemoryMB int    `json:"memory_mb"` // as template.yaml deploys the function
	Invokes  int    `json:"invokes"`   // warm invokes measured (after a first, unmeasured one)
	// Invoke durations as the Gateway waited for them (RIE relaying included).
	InvokeP50Ms float64 `json:"invoke_p50_ms"`
	InvokeP90Ms float64 `json:"invoke_p90_ms"`
	InvokeP99Ms float64 `json:"invoke_p99_ms"`
	// The RIE's REPORT lines: Duration, and Billed Duration (rounded up to 1 ms).
	Reports          int     `json:"reports"`
	DurationP50Ms    float64 `json:"duration_p50_ms"`
	DurationP90Ms    float64 `json:"duration_p90_ms"`
	DurationP99Ms    float64 `json:"duration_p99_ms"`
	BilledP50Ms      float64 `json:"billed_p50_ms"`
	BilledP90Ms      float64 `json:"billed_p90_ms"`
	BilledP99Ms      float64 `json:"billed_p99_ms"`
	BilledMeanMs     float64 `json:"billed_mean_ms"`
	GBSecondsPerMReq float64 `json:"gb_seconds_per_million"` // mean billed duration x memory, per million requests
	// Log output per request at the default log level.
	FunctionLogBytes   float64 `json:"function_log_bytes_per_request"` // the function's own lines (JSON from log/slog)
	FunctionLogLines   float64 `json:"function_log_lines_per_request"`
	AccessLines        float64 `json:"access_lines_per_request"`       // "msg":"request" lines
	PlatformLogBytes   float64 `json:"platform_log_bytes_per_request"` // START, END and REPORT lines as the RIE writes them
	LargestAnswerBytes int     `json:"largest_answer_bytes"`           // body bytes the client received
	SampleFunctionLine string  `json:"sample_function_line,omitempty"` // one of the function's lines
}

// TestRIEWarmCosts measures, for the docs' cost figures, warm requests of the hot
// paths under the RIE: a Capgo check, a Capgo stats report and a native-update
// check, warmRequests of each after a first one, each from another device (stats
// deduplicates repeated identical reports). It reports the invoke durations, the
// RIE's Duration and Billed Duration, and the bytes of log output per request at the
// default log level. Figures only: nothing here is asserted on time.
func TestRIEWarmCosts(t *testing.T) {
	if testing.Short() {
		t.Skip("cost figures: skipped with -short")
	}
	s := startRIE(t)
	const app = "com.example.rie.costs"
	if out, err := s.ota("app", "create", app); err != nil {
		t.Fatalf("app create: %v %s", err, out)
	}
	if out, err := s.ota("release", "testdata/quickstart/www", "--app", app, "--version", "1.0.1", "--channel", "production", "--wait", "30s"); err != nil {
		t.Fatalf("release: %v %s", err, out)
	}
	s.stopPatches(t) // nothing else runs while measuring

	device := func(i int) string { return fmt.Sprintf("6d1c0a00-0000-4000-8000-%012d", i+1) }
	kinds := []struct {
		request, function string
		do                func(i int) (int, int) // status, answer bytes
	}{
		{"POST /capgo/updates", "check", func(i int) (int, int) {
			return call(t, "POST", s.url+"/capgo/updates", `{`+capgoDevice(app, device(i), "builtin")+`}`)
		}},
		{"GET /native-update/{appId}/check", "check", func(i int) (int, int) {
			return call(t, "GET", s.url+"/native-update/"+app+"/check?channel=production", "")
		}},
		{"POST /capgo/stats", "stats", func(i int) (int, int) {
			return call(t, "POST", s.url+"/capgo/stats", `{`+capgoDevice(app, device(i), "1.0.1")+`,"action":"set","old_version_name":"builtin"}`)
		}},
	}
	var figs []warmFigure
	for _, k := range kinds {
		fig := measureWarm(t, s.fns[k.function], warmRequests, k.do)
		fig.Request, fig.Function = k.request, k.function
		for _, rf := range rieFunctions {
			if rf.name == k.function {
				fig.MemoryMB = rf.memoryMB
			}
		}
		fig.GBSecondsPerMReq = fig.BilledMeanMs / 1000 * float64(fig.MemoryMB) / 1024 * 1e6
		figs = append(figs, fig)
	}

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-34s %-5s %4s | %-20s | %-20s | %-20s %6s %9s | %7s %6s %6s %7s\n", "request (warm)", "fn", "n",
		"invoke p50/p90/p99", "Duration p50/p90/p99", "Billed p50/p90/p99", "mean", "GB-s/1M", "log B", "lines", "access", "plat B")
	for _, f := range figs {
		fmt.Fprintf(&tbl, "%-34s %-5s %4d | %6.2f %6.2f %6.2f | %6.2f %6.2f %6.2f | %6.0f %6.0f %6.0f %6.2f %9.0f | %7.1f %6.2f %6.2f %7.1f\n",
			f.Request, f.Function, f.Invokes, f.InvokeP50Ms, f.InvokeP90Ms, f.InvokeP99Ms, f.DurationP50Ms, f.DurationP90Ms, f.DurationP99Ms,
			f.BilledP50Ms, f.BilledP90Ms, f.BilledP99Ms, f.BilledMeanMs, f.GBSecondsPerMReq,
			f.FunctionLogBytes, f.FunctionLogLines, f.AccessLines, f.PlatformLogBytes)
	}
	t.Logf("warm requests under the Lambda RIE: invoke as the Gateway waited, Duration and Billed Duration from the RIE's REPORT\n"+
		"lines (ms); GB-s per million requests at the mean billed duration; per request at the default log level: bytes and\n"+
		"lines of the function's own log, access lines among them, bytes of START/END/REPORT lines:\n%s", tbl.String())
	for _, f := range figs {
		t.Logf("%s: largest answer %d bytes; a function log line: %s", f.Request, f.LargestAnswerBytes, f.SampleFunctionLine)
	}
	rieReportMu.Lock()
	rieReport.Warm = figs
	rieReportMu.Unlock()
}

// measureWarm sends one request (unmeasured: it may be the function's cold start),
// then n, and reads fn's invoke durations, REPORT lines and log output for those n.
func measureWarm(t *testing.T, fn *lambdarie.Function, n int, do func(i int) (int, int)) warmFigure {
	t.Helper()
	if code, _ := do(-1); code != 200 {
		t.Fatalf("first request: HTTP %d", code)
	}
	waitReports(t, fn, fn.Invokes()) // the first one's REPORT line is written, before the mark
	invokes0, reports0, logs0 := fn.Invokes(), len(fn.Reports()), len(fn.Logs())
	fig := warmFigure{Invokes: n}
	for i := range n {
		code, size := do(i)
		if code != 200 {
			t.Fatalf("request %d: HTTP %d", i, code)
		}
		fig.LargestAnswerBytes = max(fig.LargestAnswerBytes, size)
	}
	if got := fn.Invokes() - invokes0; got != n {
		t.Fatalf("%d invokes for %d requests", got, n)
	}
	waitReports(t, fn, reports0+n)
	durations := fn.Durations()[invokes0:]
	reports := fn.Reports()[reports0:]
	logs := fn.Logs()[logs0:]

	fig.InvokeP50Ms, fig.InvokeP90Ms, fig.InvokeP99Ms = percentiles(durations)
	fig.Reports = len(reports)
	var ds, billed []time.Duration
	var billedSum time.Duration
	for _, r := range reports {
		ds, billed = append(ds, r.Duration), append(billed, r.Billed)
		billedSum += r.Billed
	}
	fig.DurationP50Ms, fig.DurationP90Ms, fig.DurationP99Ms = percentiles(ds)
	fig.BilledP50Ms, fig.BilledP90Ms, fig.BilledP99Ms = percentiles(billed)
	if len(billed) > 0 {
		fig.BilledMeanMs = ms(billedSum) / float64(len(billed))
	}
	function, platform, _ := lambdarie.SplitLogs(logs)
	var fnBytes, platBytes, access int
	for _, l := range function {
		fnBytes += len(l) + 1
		if strings.Contains(l, `"msg":"request"`) {
			access++
		}
		if fig.SampleFunctionLine == "" {
			fig.SampleFunctionLine = l
		}
	}
	for _, l := range platform {
		platBytes += len(l) + 1
	}
	fig.FunctionLogBytes = float64(fnBytes) / float64(n)
	fig.FunctionLogLines = float64(len(function)) / float64(n)
	fig.AccessLines = float64(access) / float64(n)
	fig.PlatformLogBytes = float64(platBytes) / float64(n)
	return fig
}

// waitReports waits (up to 5 s) for fn's log to hold want REPORT lines: the RIE
// writes each just after the invoke's response.
func waitReports(t *testing.T, fn *lambdarie.Function, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(fn.Reports()) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d REPORT lines after 5 s, want %d", fn.Name, len(fn.Reports()), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// percentiles are the nearest-rank p50, p90 and p99 of ds, in milliseconds.
func percentiles(ds []time.Duration) (p50, p90, p99 float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(i, 0)])
	}
	return at(0.50), at(0.90), at(0.99)
}

// call sends one request and returns the status and the answer's size.
func call(t *testing.T, method, u, body string) (int, int) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, int(n)
}
