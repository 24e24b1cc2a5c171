package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// seen is what the test handler observed about the request.
type seen struct {
	Method, Path, EscapedPath, RawQuery, RequestURI, Host, RemoteAddr, Proto string
	Query                                                                    map[string][]string
	Header                                                                   http.Header
	Body                                                                     []byte
	ContentLength                                                            int64
	TLS, HasEvent                                                            bool
}

func event(method, rawPath, rawQuery string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        rawPath,
		RawQueryString: rawQuery,
		Headers: map[string]string{
			"host":              "api.example.com",
			"x-forwarded-proto": "https",
			"user-agent":        "test",
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage:      "$default",
			RequestID:  "req-123",
			DomainName: "api.example.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:   method,
				Path:     rawPath,
				Protocol: "HTTP/1.1",
				SourceIP: "203.0.113.7",
			},
		},
	}
}

func TestRequests(t *testing.T) {
	binary := []byte{0x50, 0x4b, 0x03, 0x04, 0x00, 0xff, 0xfe, 0x80, 0x0a}
	tests := []struct {
		name  string
		ev    func() events.APIGatewayV2HTTPRequest
		check func(t *testing.T, s seen)
	}{
		{
			name: "GET with repeated query keys",
			ev:   func() events.APIGatewayV2HTTPRequest { return event("GET", "/v1/check", "a=1&a=2&b=x%20y&empty=") },
			check: func(t *testing.T, s seen) {
				if s.Method != "GET" || s.Path != "/v1/check" || s.RawQuery != "a=1&a=2&b=x%20y&empty=" {
					t.Errorf("%+v", s)
				}
				if fmt.Sprint(s.Query["a"]) != "[1 2]" || s.Query["b"][0] != "x y" || len(s.Query["empty"]) != 1 {
					t.Errorf("query %v", s.Query)
				}
				if s.RequestURI != "/v1/check?a=1&a=2&b=x%20y&empty=" {
					t.Errorf("RequestURI %q", s.RequestURI)
				}
			},
		},
		{
			name: "context: host, source ip, request id, tls, proto",
			ev:   func() events.APIGatewayV2HTTPRequest { return event("GET", "/", "") },
			check: func(t *testing.T, s seen) {
				if s.Host != "api.example.com" || s.RemoteAddr != "203.0.113.7:0" || !s.TLS || s.Proto != "HTTP/1.1" || !s.HasEvent {
					t.Errorf("%+v", s)
				}
				if s.Header.Get("X-Request-Id") != "req-123" || s.Header.Get("User-Agent") != "test" {
					t.Errorf("headers %v", s.Header)
				}
				if len(s.Body) != 0 || s.ContentLength != 0 {
					t.Errorf("body %q", s.Body)
				}
			},
		},
		{
			name: "client request id wins",
			ev: func() events.APIGatewayV2HTTPRequest {
				e := event("GET", "/", "")
				e.Headers["x-request-id"] = "client-1"
				return e
			},
			check: func(t *testing.T, s seen) {
				if got := s.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "client-1" {
					t.Errorf("X-Request-Id %v", got)
				}
			},
		},
		{
			name: "base64 binary body",
			ev: func() events.APIGatewayV2HTTPRequest {
				e := event("PUT", "/blob/bundles/app/1.0.0.zip", "sig=abc")
				e.Headers["content-type"] = "application/zip"
				e.Headers["content-length"] = "999" // wrong on purpose: the body's length wins
				e.Body = base64.StdEncoding.EncodeToString(binary)
				e.IsBase64Encoded = true
				return e
			},
			check: func(t *testing.T, s seen) {
				if s.Method != "PUT" || !bytes.Equal(s.Body, binary) || s.ContentLength != int64(len(binary)) {
					t.Errorf("body %x len %d", s.Body, s.ContentLength)
				}
				if s.Header.Get("Content-Type") != "application/zip" || s.Header.Get("Content-Length") != "" {
					t.Errorf("headers %v", s.Header)
				}
			},
		},
		{
			name: "plain JSON body",
			ev: func() events.APIGatewayV2HTTPRequest {
				e := event("POST", "/updates", "")
				e.Headers["content-type"] = "application/json"
				e.Body = `{"app_id":"com.example","version_name":"1.0.0"}`
				return e
			},
			check: func(t *testing.T, s seen) {
				if s.Method != "POST" || string(s.Body) != `{"app_id":"com.example","version_name":"1.0.0"}` || s.ContentLength != int64(len(s.Body)) {
					t.Errorf("%+v", s)
				}
			},
		},
		{
			name: "cookies and multi-value headers",
			ev: func() events.APIGatewayV2HTTPRequest {
				e := event("GET", "/", "")
				e.Cookies = []string{"session=abc", "theme=dark"}
				e.Headers["accept"] = "application/json,text/plain"
				return e
			},
			check: func(t *testing.T, s seen) {
				r := &http.Request{Header: s.Header}
				c1, err1 := r.Cookie("session")
				c2, err2 := r.Cookie("theme")
				if err1 != nil || err2 != nil || c1.Value != "abc" || c2.Value != "dark" {
					t.Errorf("cookies %v", s.Header["Cookie"])
				}
				if s.Header.Get("Accept") != "application/json,text/plain" {
					t.Errorf("accept %q", s.Header.Get("Accept"))
				}
			},
		},
		{
			// HTTP API decodes the path before the function sees it: a request for
			// /flux/chunks/app/1.0.0%2B42%25 arrives with rawPath
			// /flux/chunks/app/1.0.0+42%, which is decoded exactly once more: not at all.
			name: "rawPath arrives decoded",
			ev:   func() events.APIGatewayV2HTTPRequest { return event("GET", "/flux/chunks/app/1.0.0+42%", "v=a%2Bb") },
			check: func(t *testing.T, s seen) {
				if s.Path != "/flux/chunks/app/1.0.0+42%" || s.EscapedPath != "/flux/chunks/app/1.0.0+42%25" ||
					s.RequestURI != "/flux/chunks/app/1.0.0+42%25?v=a%2Bb" || s.Query["v"][0] != "a+b" {
					t.Errorf("path %q escaped %q uri %q query %v", s.Path, s.EscapedPath, s.RequestURI, s.Query)
				}
			},
		},
		{
			name: "spaces in a decoded rawPath",
			ev:   func() events.APIGatewayV2HTTPRequest { return event("GET", "/dl/files/a b", "") },
			check: func(t *testing.T, s seen) {
				if s.Path != "/dl/files/a b" || s.EscapedPath != "/dl/files/a%20b" {
					t.Errorf("path %q escaped %q", s.Path, s.EscapedPath)
				}
			},
		},
		{
			name: "named stage prefix is stripped",
			ev: func() events.APIGatewayV2HTTPRequest {
				e := event("GET", "/prod/v1/check", "x=1")
				e.RequestContext.Stage = "prod"
				return e
			},
			check: func(t *testing.T, s seen) {
				if s.Path != "/v1/check" || s.RawQuery != "x=1" {
					t.Errorf("%+v", s)
				}
			},
		},
		{
			name: "query from parameters when raw is missing",
			ev: func() events.APIGatewayV2HTTPRequest {
				e := event("GET", "/q", "")
				e.QueryStringParameters = map[string]string{"a": "1,2", "b": "x y"}
				return e
			},
			check: func(t *testing.T, s seen) {
				if fmt.Sprint(s.Query["a"]) != "[1 2]" || s.Query["b"][0] != "x y" {
					t.Errorf("query %v", s.Query)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got seen
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				_, hasEvent := EventFromContext(r.Context())
				got = seen{
					Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
					RequestURI: r.RequestURI, Host: r.Host, RemoteAddr: r.RemoteAddr, Proto: r.Proto,
					Query: r.URL.Query(), Header: r.Header, Body: b, ContentLength: r.ContentLength,
					TLS: r.TLS != nil, HasEvent: hasEvent,
				}
				w.WriteHeader(http.StatusNoContent)
			})
			resp, err := Handler(h)(context.Background(), tc.ev())
			if err != nil || resp.StatusCode != http.StatusNoContent {
				t.Fatalf("resp %+v, %v", resp, err)
			}
			tc.check(t, got)
		})
	}
}

func TestResponses(t *testing.T) {
	logf = t.Logf
	t.Cleanup(func() { logf = log.Printf })
	binary := []byte{0x50, 0x4b, 0x03, 0x04, 0x00, 0xff, 0xfe}
	modTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name       string
		method     string
		reqHeaders map[string]string
		handler    http.HandlerFunc
		status     int
		headers    map[string]string
		cookies    []string
		body       []byte
		base64     bool
	}{
		{
			name: "JSON stays text",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"version":"1.0.0","url":"https://x/é"}`)
			},
			status:  200,
			headers: map[string]string{"Content-Type": "application/json"},
			body:    []byte(`{"version":"1.0.0","url":"https://x/é"}`),
		},
		{
			name: "zip is base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/zip")
				w.Write(binary)
			},
			status: 200, headers: map[string]string{"Content-Type": "application/zip"},
			body: binary, base64: true,
		},
		{
			name: "octet-stream that happens to be ASCII is still base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write([]byte("abc"))
			},
			status: 200, body: []byte("abc"), base64: true,
		},
		{
			name: "gzip-encoded JSON is base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				w.Write(binary)
			},
			status: 200, body: binary, base64: true,
		},
		{
			name: "text with invalid UTF-8 is base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write([]byte{'a', 0xff})
			},
			status: 200, body: []byte{'a', 0xff}, base64: true,
		},
		{
			name: "sniffed content type",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello")
			},
			status: 200, headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, body: []byte("hello"),
		},
		{
			name: "302 redirect with Location",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://cdn.example.com/bundles/a/1.zip?Expires=1&Signature=x~y", http.StatusFound)
			},
			method: "GET",
			status: 302,
			headers: map[string]string{
				"Location":     "https://cdn.example.com/bundles/a/1.zip?Expires=1&Signature=x~y",
				"Content-Type": "text/html; charset=utf-8",
			},
			body: []byte("<a href=\"https://cdn.example.com/bundles/a/1.zip?Expires=1&amp;Signature=x~y\">Found</a>.\n\n"),
		},
		{
			name: "multi-value headers and cookies",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Vary", "Accept")
				w.Header().Add("Vary", "Origin")
				http.SetCookie(w, &http.Cookie{Name: "a", Value: "1", Path: "/"})
				http.SetCookie(w, &http.Cookie{Name: "b", Value: "2", HttpOnly: true})
				w.WriteHeader(http.StatusCreated)
			},
			status:  201,
			headers: map[string]string{"Vary": "Accept, Origin"},
			cookies: []string{"a=1; Path=/", "b=2; HttpOnly"},
		},
		{
			name:    "no write is 200 with empty body",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			status:  200,
		},
		{
			name:   "HEAD has no body",
			method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/zip")
				w.Write(binary)
			},
			status: 200, headers: map[string]string{"Content-Type": "application/zip"},
		},
		{
			name:       "range request through ServeContent",
			reqHeaders: map[string]string{"range": "bytes=2-"},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/zip")
				http.ServeContent(w, r, "b.zip", modTime, bytes.NewReader(binary))
			},
			status: 206,
			headers: map[string]string{
				"Content-Range": "bytes 2-6/7", "Content-Length": "5", "Accept-Ranges": "bytes",
			},
			body: binary[2:], base64: true,
		},
		{
			name: "1xx is not the final status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusAccepted)
				w.WriteHeader(http.StatusTeapot) // superfluous, ignored
			},
			status: 202,
		},
		{
			name: "panic is a 500",
			handler: func(w http.ResponseWriter, r *http.Request) {
				panic("boom")
			},
			status: 500, headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
			body: []byte("internal server error\n"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			e := event(method, "/x", "")
			for k, v := range tc.reqHeaders {
				e.Headers[k] = v
			}
			resp, err := Handler(tc.handler)(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for k, v := range tc.headers {
				if resp.Headers[k] != v {
					t.Errorf("header %s = %q, want %q (all %v)", k, resp.Headers[k], v, resp.Headers)
				}
			}
			if _, ok := resp.Headers["Set-Cookie"]; ok {
				t.Error("Set-Cookie left in Headers")
			}
			if fmt.Sprint(resp.Cookies) != fmt.Sprint(tc.cookies) && (len(resp.Cookies) > 0 || len(tc.cookies) > 0) {
				t.Errorf("cookies %q, want %q", resp.Cookies, tc.cookies)
			}
			if resp.IsBase64Encoded != tc.base64 {
				t.Errorf("IsBase64Encoded = %v, want %v", resp.IsBase64Encoded, tc.base64)
			}
			body := []byte(resp.Body)
			if resp.IsBase64Encoded {
				body, err = base64.StdEncoding.DecodeString(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body %q, want %q", body, tc.body)
			}
		})
	}
}

func TestBadBase64Body(t *testing.T) {
	e := event("PUT", "/x", "")
	e.Body, e.IsBase64Encoded = "!!not base64!!", true
	called := false
	resp, err := Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))(context.Background(), e)
	if err != nil || resp.StatusCode != http.StatusBadRequest || called {
		t.Fatalf("resp %+v, err %v, called %v", resp, err, called)
	}
}

// An event as API Gateway sends it (JSON from the HTTP API payload 2.0 docs), and the
// response serialized the way Lambda returns it.
func TestJSONRoundTrip(t *testing.T) {
	const raw = `{
  "version": "2.0",
  "routeKey": "POST /v1/stats",
  "rawPath": "/v1/stats",
  "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
  "cookies": ["cookie1", "cookie2=v"],
  "headers": {"header1": "value1", "header2": "value1,value2", "content-type": "application/octet-stream"},
  "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
  "requestContext": {
    "accountId": "123456789012", "apiId": "api-id", "domainName": "id.execute-api.us-east-1.amazonaws.com",
    "domainPrefix": "id",
    "http": {"method": "POST", "path": "/v1/stats", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "agent"},
    "requestId": "id", "routeKey": "POST /v1/stats", "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390
  },
  "body": "AAEC/w==",
  "pathParameters": {"parameter1": "value1"},
  "isBase64Encoded": true,
  "stageVariables": {"stageVariable1": "value1"}
}`
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ev, _ := EventFromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"body": b, "p1": r.URL.Query()["parameter1"], "ip": r.RemoteAddr, "host": r.Host,
			"route": ev.RouteKey, "cookie": r.Header.Get("Cookie"),
		})
	})
	resp, err := Handler(h)(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	want := `{"body":"AAEC/w==","cookie":"cookie1; cookie2=v","host":"id.execute-api.us-east-1.amazonaws.com","ip":"192.0.2.1:0","p1":["value1","value2"],"route":"POST /v1/stats"}` + "\n"
	if back.StatusCode != 200 || back.IsBase64Encoded || back.Body != want {
		t.Fatalf("response %s", out)
	}
	if strings.Contains(string(out), "isBase64Encoded") {
		t.Fatalf("text response marked base64: %s", out)
	}
}
