package lambdarie

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/api"
)

// API Gateway HTTP API and Lambda limits the Gateway enforces.
const (
	MaxRequestBody     = 10 << 20         // HTTP API: request payload
	MaxInvokePayload   = 6 << 20          // Lambda: synchronous invoke request (the event) and response
	IntegrationTimeout = 30 * time.Second // HTTP API: maximum integration timeout
)

// HTTP API's own answers.
const (
	bodyTooLarge   = `{"message":"Request Entity Too Large"}`
	bodyInternal   = `{"message":"Internal Server Error"}`
	bodyUnavail    = `{"message":"Service Unavailable"}`
	bodyNotFound   = `{"message":"Not Found"}`
	timeLayoutAPIG = "02/Jan/2006:15:04:05 -0700"
)

// GroupStats are a function's figures as the Gateway saw them.
type GroupStats struct {
	Invokes         int           // invokes sent (requests refused before invoking are not counted)
	LargestRequest  int           // bytes of the largest event sent
	LargestResponse int           // bytes of the largest response payload received
	FunctionErrors  int           // invokes answered 502 (function error, bad or oversized response)
	GatewayTimeouts int           // invokes answered 503 (over the integration timeout)
	LongestInvoke   time.Duration // the slowest invoke, as the Gateway waited for it
}

// Gateway stands in for API Gateway HTTP API with Lambda proxy integrations (payload
// format 2.0): it routes each request by api.Routes() (GroupLocal routes are not
// deployed) to the Function of the route's group, with the event HTTP API builds, and
// enforces HTTP API's and Lambda's size and time limits. HTTP API matches methods
// exactly, so like template.yaml, which declares a HEAD twin of every GET route to
// the same function, the Gateway routes HEAD on a GET route as its own route
// ("HEAD /path"); HEAD anywhere else is a 404.
type Gateway struct {
	// Timeout is the integration timeout; zero means IntegrationTimeout (30 s).
	Timeout time.Duration
	// Logf, if set, receives why a request got a 5xx (t.Logf in tests).
	Logf func(format string, args ...any)

	mux   *http.ServeMux
	fns   map[api.Group]*Function
	seq   atomic.Uint64
	mu    sync.Mutex
	stats map[api.Group]*GroupStats
}

// NewGateway routes each deployed route whose group is in fns to that function;
// other requests answer 404 {"message":"Not Found"}, as HTTP API does.
func NewGateway(fns map[api.Group]*Function) *Gateway {
	g := &Gateway{mux: http.NewServeMux(), fns: fns, stats: map[api.Group]*GroupStats{}}
	for _, rt := range api.Routes() {
		if rt.Group == api.GroupLocal || fns[rt.Group] == nil {
			continue
		}
		rt, head := rt, rt
		head.Method = http.MethodHead
		g.mux.HandleFunc(rt.Pattern(), func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == rt.Method:
				g.serve(w, r, rt)
			case r.Method == http.MethodHead && rt.Method == http.MethodGet: // the HEAD twin
				g.serve(w, r, head)
			default:
				writeMessage(w, http.StatusNotFound, bodyNotFound)
			}
		})
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeMessage(w, http.StatusNotFound, bodyNotFound)
	})
	return g
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Stats returns the figures per group.
func (g *Gateway) Stats() map[api.Group]GroupStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[api.Group]GroupStats, len(g.stats))
	for k, v := range g.stats {
		out[k] = *v
	}
	return out
}

func (g *Gateway) record(group api.Group, f func(*GroupStats)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats[group]
	if s == nil {
		s = &GroupStats{}
		g.stats[group] = s
	}
	f(s)
}

func (g *Gateway) logf(format string, args ...any) {
	if g.Logf != nil {
		g.Logf(format, args...)
	}
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, rt api.Route) {
	if r.ContentLength > MaxRequestBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > MaxRequestBody {
		writeMessage(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return
	}
	requestID := fmt.Sprintf("rie-%d-%d", time.Now().UnixNano(), g.seq.Add(1))
	event, err := json.Marshal(Event(r, rt, body, requestID))
	if err != nil {
		writeMessage(w, http.StatusInternalServerError, bodyInternal)
		return
	}
	if len(event) > MaxInvokePayload { // Lambda refuses it: 413 RequestEntityTooLargeException
		writeMessage(w, http.StatusRequestEntityTooLarge, bodyTooLarge)
		return
	}

	timeout := g.Timeout
	if timeout <= 0 {
		timeout = IntegrationTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	out, d, err := g.fns[rt.Group].Invoke(ctx, event)
	g.record(rt.Group, func(s *GroupStats) {
		s.Invokes++
		s.LargestRequest = max(s.LargestRequest, len(event))
		if err == nil || IsFunctionError(err, "") {
			s.LargestResponse = max(s.LargestResponse, len(out))
		}
		s.LongestInvoke = max(s.LongestInvoke, d)
	})
	w.Header().Set("Apigw-Requestid", requestID)
	switch {
	case err != nil && r.Context().Err() != nil:
		return // the client went away
	case errors.Is(err, context.DeadlineExceeded):
		g.record(rt.Group, func(s *GroupStats) { s.GatewayTimeouts++ })
		g.logf("gateway: %s %s: %s over the integration timeout (%s)", r.Method, r.URL.Path, rt.Group, timeout)
		writeMessage(w, http.StatusServiceUnavailable, bodyUnavail)
		return
	case err != nil:
		g.fail(w, r, rt.Group, err.Error())
		return
	case len(out) > MaxInvokePayload:
		g.fail(w, r, rt.Group, fmt.Sprintf("response of %d bytes, over Lambda's %d", len(out), MaxInvokePayload))
		return
	}
	if err := writeResponse(w, out); err != nil {
		g.fail(w, r, rt.Group, "malformed Lambda proxy response: "+err.Error())
	}
}

func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, group api.Group, why string) {
	g.record(group, func(s *GroupStats) { s.FunctionErrors++ })
	g.logf("gateway: %s %s: %s: %s", r.Method, r.URL.Path, group, why)
	writeMessage(w, http.StatusBadGateway, bodyInternal)
}

// Event builds the payload 2.0 event HTTP API sends for r on route rt: rawPath is the
// percent-decoded path (HTTP API decodes it), rawQueryString is raw, header names are
// lowercased with repeated headers joined by ",", cookies travel in cookies, and a
// body that is not text is base64-encoded. routeKey is the matched route, not
// "$default": template.yaml declares every route to HTTP API.
func Event(r *http.Request, rt api.Route, body []byte, requestID string) events.APIGatewayV2HTTPRequest {
	now := time.Now()
	sourceIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	_, port, _ := net.SplitHostPort(r.Host)
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[proto]
	}
	e := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey(rt),
		RawPath:        r.URL.Path,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						e.Cookies = append(e.Cookies, c)
					}
				}
			}
			continue
		}
		e.Headers[k] = strings.Join(vs, ",")
	}
	e.Headers["host"] = r.Host
	if len(body) > 0 {
		e.Headers["content-length"] = strconv.Itoa(len(body))
	}
	if xff := e.Headers["x-forwarded-for"]; xff != "" {
		e.Headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		e.Headers["x-forwarded-for"] = sourceIP
	}
	e.Headers["x-forwarded-proto"], e.Headers["x-forwarded-port"] = proto, port
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		e.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			e.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	for _, name := range pathParams(rt.Path) {
		if e.PathParameters == nil {
			e.PathParameters = map[string]string{}
		}
		e.PathParameters[name] = r.PathValue(name)
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	e.RequestContext = events.APIGatewayV2HTTPRequestContext{
		RouteKey:     e.RouteKey,
		AccountID:    "123456789012",
		Stage:        "$default",
		RequestID:    requestID,
		APIID:        "lambdarie",
		DomainName:   host,
		DomainPrefix: strings.Split(host, ".")[0],
		Time:         now.UTC().Format(timeLayoutAPIG),
		TimeEpoch:    now.UnixMilli(),
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
			Method:    r.Method,
			Path:      r.URL.Path,
			Protocol:  r.Proto,
			SourceIP:  sourceIP,
			UserAgent: r.UserAgent(),
		},
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			e.Body = string(body)
		} else {
			e.Body, e.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return e
}

// routeKey is the route as template.yaml declares it to HTTP API ("POST /capgo/updates";
// a ServeMux {name...} is HTTP API's greedy {name+}).
func routeKey(rt api.Route) string {
	return rt.Method + " " + strings.ReplaceAll(rt.Path, "...}", "+}")
}

// pathParams lists the wildcard names of a ServeMux path pattern.
func pathParams(path string) []string {
	var names []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && seg != "{$}" {
			names = append(names, strings.TrimSuffix(strings.Trim(seg, "{}"), "..."))
		}
	}
	return names
}

// isText reports whether a request body of this type travels as text in the event.
func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/xml" || strings.HasSuffix(mt, "+xml") || mt == "application/javascript" ||
		mt == "application/x-www-form-urlencoded"
}

// writeResponse writes a payload 2.0 response. Without a statusCode, HTTP API takes
// the whole (JSON) payload as a 200 application/json body.
func writeResponse(w http.ResponseWriter, out []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out, &fields); err != nil || fields["statusCode"] == nil {
		if !json.Valid(out) {
			return errors.New("not JSON")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(out)
		return nil
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return err
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return fmt.Errorf("status code %d", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return fmt.Errorf("body: %w", err)
		}
		body = b
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" {
		h["Content-Type"] = nil // no sniffing: HTTP API sends what the function said
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	return nil
}

func writeMessage(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}
