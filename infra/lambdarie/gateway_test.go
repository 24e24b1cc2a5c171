package lambdarie

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/api"
)

// fake is a function speaking the RIE's invoke API: it records the events and
// answers with reply (RIE status, body).
type fake struct {
	mu     sync.Mutex
	events []events.APIGatewayV2HTTPRequest
	raw    [][]byte
	reply  func(e events.APIGatewayV2HTTPRequest) (int, []byte)
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != InvokePath || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var e events.APIGatewayV2HTTPRequest
	json.Unmarshal(b, &e)
	f.mu.Lock()
	f.events, f.raw = append(f.events, e), append(f.raw, b)
	reply := f.reply
	f.mu.Unlock()
	status, body := http.StatusOK, []byte(`{"statusCode":200,"headers":{"Content-Type":"application/json"},"body":"{}"}`)
	if reply != nil {
		status, body = reply(e)
	}
	w.WriteHeader(status)
	w.Write(body)
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

// newFakeGateway puts one fake behind every deployed group.
func newFakeGateway(t *testing.T, reply func(events.APIGatewayV2HTTPRequest) (int, []byte)) (*fake, *Gateway, string) {
	t.Helper()
	f := &fake{reply: reply}
	fs := httptest.NewServer(f)
	t.Cleanup(fs.Close)
	fns := map[api.Group]*Function{}
	for _, g := range []api.Group{api.GroupCheck, api.GroupConfirm, api.GroupStats, api.GroupUpload, api.GroupAdmin} {
		fns[g] = Attach(string(g), fs.URL)
	}
	gw := NewGateway(fns)
	gw.Logf = t.Logf
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	return f, gw, hs.URL
}

func do(t *testing.T, method, u string, body []byte, header map[string][]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestGatewayEvent(t *testing.T) {
	f, gw, base := newFakeGateway(t, nil)
	// %20 and %2F inside a segment: the route still matches segment by segment, and
	// the function gets the decoded path.
	resp, _ := do(t, "GET", base+"/v1/apps/a%20b%2Fc/releases/1.0.0?x=1%202&x=3&y", nil, map[string][]string{
		"X-Multi": {"one", "two"}, "Cookie": {"a=1; b=2"}, "User-Agent": {"ua/1"},
	})
	if resp.StatusCode != 200 || f.count() != 1 {
		t.Fatalf("status %d, %d invokes", resp.StatusCode, f.count())
	}
	e := f.events[0]
	checks := map[string][2]string{
		"version":        {e.Version, "2.0"},
		"routeKey":       {e.RouteKey, "GET /v1/apps/{app}/releases/{version}"},
		"rawPath":        {e.RawPath, "/v1/apps/a b/c/releases/1.0.0"},
		"rawQueryString": {e.RawQueryString, "x=1%202&x=3&y"},
		"query x":        {e.QueryStringParameters["x"], "1 2,3"},
		"path app":       {e.PathParameters["app"], "a b/c"},
		"x-multi":        {e.Headers["x-multi"], "one,two"},
		"user-agent":     {e.Headers["user-agent"], "ua/1"},
		"cookie header":  {e.Headers["cookie"], ""},
		"cookies":        {strings.Join(e.Cookies, "|"), "a=1|b=2"},
		"method":         {e.RequestContext.HTTP.Method, "GET"},
		"http.path":      {e.RequestContext.HTTP.Path, "/v1/apps/a b/c/releases/1.0.0"},
		"sourceIp":       {e.RequestContext.HTTP.SourceIP, "127.0.0.1"},
		"stage":          {e.RequestContext.Stage, "$default"},
		"domainName":     {e.RequestContext.DomainName, "127.0.0.1"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if e.RequestContext.RequestID == "" || e.RequestContext.RequestID != resp.Header.Get("Apigw-Requestid") {
		t.Errorf("requestId %q, Apigw-Requestid %q", e.RequestContext.RequestID, resp.Header.Get("Apigw-Requestid"))
	}
	if d := time.Since(time.UnixMilli(e.RequestContext.TimeEpoch)); d < 0 || d > time.Minute {
		t.Errorf("timeEpoch %d", e.RequestContext.TimeEpoch)
	}
	for k := range e.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q not lowercased", k)
		}
	}
	var raw map[string]any
	json.Unmarshal(f.raw[0], &raw)
	if raw["version"] != "2.0" || raw["rawPath"] == nil || raw["requestContext"].(map[string]any)["timeEpoch"] == nil {
		t.Errorf("event JSON field names: %s", f.raw[0])
	}

	// Bodies: JSON travels as text, bytes as base64.
	do(t, "POST", base+"/capgo/updates", []byte(`{"a":1}`), map[string][]string{"Content-Type": {"application/json"}})
	bin := []byte{0xff, 0x00, 0x01}
	do(t, "POST", base+"/v1/apps/x/releases", bin, map[string][]string{"Content-Type": {"application/zip"}})
	if e := f.events[1]; e.Body != `{"a":1}` || e.IsBase64Encoded || e.Headers["content-length"] != "7" {
		t.Errorf("JSON body: %q base64=%v", e.Body, e.IsBase64Encoded)
	}
	if e := f.events[2]; e.Body != base64.StdEncoding.EncodeToString(bin) || !e.IsBase64Encoded {
		t.Errorf("binary body: %q base64=%v", e.Body, e.IsBase64Encoded)
	}

	// Routing: unknown routes, a method the route lacks, HEAD on a route without a GET
	// and the otad-only routes are HTTP API's 404, without an invoke.
	n := f.count()
	for _, r := range [][2]string{{"GET", "/nope"}, {"DELETE", "/capgo/updates"}, {"HEAD", "/capgo/updates"},
		{"HEAD", "/flux/releases"}, {"GET", "/healthz"}, {"GET", "/dl/bundles/x.zip"}, {"HEAD", "/dl/bundles/x.zip"}} {
		resp, b := do(t, r[0], base+r[1], nil, nil)
		if resp.StatusCode != 404 || (r[0] != "HEAD" && string(b) != bodyNotFound) {
			t.Errorf("%s %s: %d %s", r[0], r[1], resp.StatusCode, b)
		}
	}
	if f.count() != n {
		t.Errorf("unrouted requests invoked the function")
	}
	if st := gw.Stats()[api.GroupAdmin]; st.Invokes != 1 {
		t.Errorf("admin stats %+v", st)
	}
	// HEAD on a GET route is its HEAD twin (template.yaml declares one per GET route):
	// the same function, with HEAD as the method and the route key.
	checks0 := gw.Stats()[api.GroupCheck].Invokes
	resp, _ = do(t, "HEAD", base+"/native-update/com.example.app/bundles/1.0.0", nil, nil)
	if resp.StatusCode != 200 || f.count() != n+1 {
		t.Fatalf("HEAD twin: %d, %d invokes", resp.StatusCode, f.count()-n)
	}
	if e := f.events[n]; e.RouteKey != "HEAD /native-update/{appId}/bundles/{version}" || e.RequestContext.HTTP.Method != "HEAD" ||
		e.PathParameters["version"] != "1.0.0" {
		t.Errorf("HEAD twin event: routeKey %q, method %q, path parameters %v", e.RouteKey, e.RequestContext.HTTP.Method, e.PathParameters)
	}
	if st := gw.Stats()[api.GroupCheck]; st.Invokes != checks0+1 {
		t.Errorf("check stats %+v", st)
	}
}

// TestSplitLogs: the RIE's output as it writes it, sorted by writer, and its REPORT
// lines parsed.
func TestSplitLogs(t *testing.T) {
	logs := "05 Dec 2026 19:11:26,905 [INFO] (rapid) exec '/var/task/bootstrap' (cwd=/var/task, handler=)\n" +
		"START RequestId: fd446367-7fbd-417d-80c2-f73d121497c5 Version: $LATEST\n" +
		"05 Dec 2026 19:11:26,922 [INFO] (rapid) INIT REPORT(durationMs: 2.962000)\n" +
		`{"time":"2026-12-05T19:11:26.923Z","level":"INFO","msg":"request","status":200}` + "\n" +
		"END RequestId: fd446367-7fbd-417d-80c2-f73d121497c5\n" +
		"REPORT RequestId: fd446367-7fbd-417d-80c2-f73d121497c5\tInit Duration: 0.02 ms\tDuration: 3.90 ms\tBilled Duration: 4 ms\tMemory Size: 256 MB\tMax Memory Used: 256 MB\t\n" +
		"START RequestId: b46ee8ec-a5fc-4560-8cfb-ac0541b80a47 Version: $LATEST\n" +
		"plain text from the function\n" +
		"05 Dec 2026 19:11:26,923 [WARNING] (rapid) something\n" +
		"END RequestId: b46ee8ec-a5fc-4560-8cfb-ac0541b80a47\n" +
		"REPORT RequestId: b46ee8ec-a5fc-4560-8cfb-ac0541b80a47\tDuration: 0.43 ms\tBilled Duration: 1 ms\tMemory Size: 256 MB\tMax Memory Used: 256 MB\t\n"
	fn, platform, rie := SplitLogs(logs)
	if len(fn) != 2 || !strings.HasPrefix(fn[0], `{"time"`) || fn[1] != "plain text from the function" || len(platform) != 6 || len(rie) != 3 {
		t.Errorf("function %q\nplatform %q\nrie %q", fn, platform, rie)
	}
	rs := ParseReports(logs)
	want := []Report{
		{"fd446367-7fbd-417d-80c2-f73d121497c5", 3900 * time.Microsecond, 4 * time.Millisecond},
		{"b46ee8ec-a5fc-4560-8cfb-ac0541b80a47", 430 * time.Microsecond, time.Millisecond},
	}
	if len(rs) != len(want) {
		t.Fatalf("reports %+v", rs)
	}
	for i := range want {
		if rs[i].RequestID != want[i].RequestID || rs[i].Billed != want[i].Billed || (rs[i].Duration-want[i].Duration).Abs() > time.Microsecond {
			t.Errorf("report %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
}

func TestGatewayResponse(t *testing.T) {
	reply := map[string]string{
		"/v1/apps": `{"statusCode":201,"headers":{"X-One":"1","Content-Type":"text/plain"},"multiValueHeaders":{"X-Many":["a","b"]},` +
			`"cookies":["s=1; Path=/","t=2"],"body":"` + base64.StdEncoding.EncodeToString([]byte("hello")) + `","isBase64Encoded":true}`,
		"/v1/keys":     `{"just":"json"}`, // no statusCode: the whole payload is a 200 JSON body
		"/capgo/stats": `not json`,
	}
	_, gw, base := newFakeGateway(t, func(e events.APIGatewayV2HTTPRequest) (int, []byte) {
		return 200, []byte(reply[e.RawPath])
	})
	resp, b := do(t, "GET", base+"/v1/apps", nil, nil)
	if resp.StatusCode != 201 || string(b) != "hello" || resp.Header.Get("X-One") != "1" ||
		strings.Join(resp.Header.Values("X-Many"), ",") != "a,b" || strings.Join(resp.Header.Values("Set-Cookie"), "|") != "s=1; Path=/|t=2" {
		t.Errorf("explicit response: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	resp, b = do(t, "GET", base+"/v1/keys", nil, nil)
	if resp.StatusCode != 200 || string(b) != `{"just":"json"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("inferred response: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	resp, b = do(t, "POST", base+"/capgo/stats", nil, nil)
	if resp.StatusCode != 502 || string(b) != bodyInternal {
		t.Errorf("malformed response: %d %q", resp.StatusCode, b)
	}
	st := gw.Stats()
	if st[api.GroupAdmin].Invokes != 2 || st[api.GroupAdmin].LargestResponse != len(reply["/v1/apps"]) || st[api.GroupStats].FunctionErrors != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestGatewayLimits(t *testing.T) {
	big := strings.Repeat("x", MaxInvokePayload+1)
	f, gw, base := newFakeGateway(t, func(e events.APIGatewayV2HTTPRequest) (int, []byte) {
		switch e.RawPath {
		case "/v1/apps/rie-too-large": // what the RIE answers for a response over 6 MB
			return 502, []byte(`{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes)."}`)
		case "/v1/apps/too-large": // a response the RIE let through
			return 200, []byte(`{"statusCode":200,"body":"` + big + `"}`)
		case "/v1/apps/error": // a returned error: the RIE answers 200
			return 200, []byte(`{"errorMessage":"boom","errorType":"errorString"}`)
		case "/v1/apps/crash":
			return 502, []byte(`{"errorType":"Runtime.ExitError","errorMessage":"Runtime exited with error: exit status 2"}`)
		case "/v1/apps/timeout": // the function's own timeout, below the gateway's
			return 200, []byte("Task timed out after 3.00 seconds")
		case "/v1/apps/slow":
			time.Sleep(1300 * time.Millisecond)
		}
		return 200, []byte(`{"statusCode":204}`)
	})
	gw.Timeout = time.Second // stands for HTTP API's 30 s (the 5 MB invoke takes over 0.3 s under -race)

	check := func(name string, resp *http.Response, b []byte, status int, body string) {
		t.Helper()
		if resp.StatusCode != status || string(b) != body {
			t.Errorf("%s: %d %s, want %d %s", name, resp.StatusCode, b, status, body)
		}
	}
	// Request body over 10 MB: refused before any invoke.
	n := f.count()
	resp, b := do(t, "POST", base+"/v1/apps/x/releases", bytes.Repeat([]byte("a"), MaxRequestBody+1), nil)
	check("10 MB body", resp, b, 413, bodyTooLarge)
	// Under 10 MB but the event over 6 MB (base64 grows it by a third).
	resp, b = do(t, "POST", base+"/v1/apps/x/releases", bytes.Repeat([]byte{0xff}, 5<<20), map[string][]string{"Content-Type": {"application/octet-stream"}})
	check("6 MB event", resp, b, 413, bodyTooLarge)
	if f.count() != n {
		t.Errorf("oversized requests reached the function")
	}
	// 5 MB of text travels unencoded: the event fits.
	resp, b = do(t, "POST", base+"/v1/apps/x/releases", bytes.Repeat([]byte("a"), 5<<20), map[string][]string{"Content-Type": {"text/plain"}})
	check("5 MB text", resp, b, 204, "")

	for _, c := range []struct{ path, name string }{
		{"rie-too-large", "RIE ResponseSizeTooLarge"}, {"too-large", "response over 6 MB"},
		{"error", "function error"}, {"crash", "runtime crash"}, {"timeout", "function timeout"},
	} {
		resp, b := do(t, "GET", base+"/v1/apps/"+c.path, nil, nil)
		check(c.name, resp, b, 502, bodyInternal)
	}
	start := time.Now()
	resp, b = do(t, "GET", base+"/v1/apps/slow", nil, nil)
	check("integration timeout", resp, b, 503, bodyUnavail)
	if d := time.Since(start); d > gw.Timeout+200*time.Millisecond {
		t.Errorf("the gateway waited %s past its timeout", d)
	}
	// The next invoke waits for the slow one to finish (one invoke at a time per RIE).
	resp, b = do(t, "GET", base+"/v1/apps/fine", nil, nil)
	check("after the timeout", resp, b, 204, "")

	st := gw.Stats()[api.GroupAdmin]
	if st.FunctionErrors != 5 || st.GatewayTimeouts != 1 || st.LargestResponse != len(big)+len(`{"statusCode":200,"body":""}`) {
		t.Errorf("admin stats %+v", st)
	}
	if st := gw.Stats()[api.GroupUpload]; st.Invokes != 1 || st.LargestRequest <= 5<<20 {
		t.Errorf("upload stats %+v", st)
	}
}

func TestFunctionErrorRecognition(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		typ    string // "" = no error
	}{
		{200, `{"statusCode":200,"body":"ok"}`, ""},
		{200, `{"errorType":"x","statusCode":500}`, ""}, // a response that mentions errorType
		{200, `{"errorMessage":"boom","errorType":"errorString"}`, "errorString"},
		{200, `Task timed out after 10.00 seconds`, "Sandbox.Timedout"},
		{502, `{"errorType":"Function.ResponseSizeTooLarge","errorMessage":"..."}`, "Function.ResponseSizeTooLarge"},
		{500, ``, "RIE.HTTP500"},
	} {
		fe := functionError(c.status, []byte(c.body))
		got := ""
		if fe != nil {
			got = fe.Type
		}
		if got != c.typ {
			t.Errorf("%d %s: type %q, want %q", c.status, c.body, got, c.typ)
		}
	}
}

func TestInvokeRecordsColdStart(t *testing.T) {
	var n int
	var mu sync.Mutex
	fs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			time.Sleep(50 * time.Millisecond) // "init"
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer fs.Close()
	f := Attach("fake", fs.URL)
	for range 3 {
		if out, _, err := f.Invoke(context.Background(), []byte(`{}`)); err != nil || string(out) != `{"ok":true}` {
			t.Fatalf("invoke: %s %v", out, err)
		}
	}
	if f.Invokes() != 3 || f.ColdStart() < 50*time.Millisecond {
		t.Fatalf("invokes %d, cold start %s", f.Invokes(), f.ColdStart())
	}
	if ds := f.Durations(); len(ds) != 3 || ds[0] != f.ColdStart() || ds[1] >= ds[0] {
		t.Fatalf("durations %v", ds)
	}
}
