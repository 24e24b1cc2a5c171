// Package lambdahttp runs a plain http.Handler behind API Gateway HTTP APIs (payload
// format 2.0): it turns events.APIGatewayV2HTTPRequest into an *http.Request and the
// handler's response into events.APIGatewayV2HTTPResponse, so the Lambda functions
// serve exactly the handlers otad mounts.
package lambdahttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// RequestIDHeader carries API Gateway's request id into the handler (unless the
// client already sent one).
const RequestIDHeader = "X-Request-Id"

type eventKey struct{}

var logf = log.Printf // tests divert it

// EventFromContext returns the API Gateway event behind a request's context.
func EventFromContext(ctx context.Context) (events.APIGatewayV2HTTPRequest, bool) {
	e, ok := ctx.Value(eventKey{}).(events.APIGatewayV2HTTPRequest)
	return e, ok
}

// Start runs h as the function's handler; it never returns.
func Start(h http.Handler) { lambda.Start(Handler(h)) }

// Handler adapts h to a Lambda handler for API Gateway HTTP API events. A request the
// adapter cannot build answers 400; a panicking handler answers 500 (and is logged)
// instead of taking the Lambda process down.
func Handler(h http.Handler) func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
		req, err := NewRequest(ctx, e)
		if err != nil {
			return textResponse(http.StatusBadRequest, err.Error()), nil
		}
		w := newResponseWriter()
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					logf("lambdahttp: panic serving %s %s: %v\n%s", req.Method, req.URL.Path, p, debug.Stack())
				}
				resp, err = textResponse(http.StatusInternalServerError, "internal server error"), nil
			}
		}()
		h.ServeHTTP(w, req)
		return w.response(req.Method), nil
	}
}

// NewRequest builds the *http.Request for an API Gateway HTTP API (2.0) event:
// method, path (rawPath, which HTTP API has already percent-decoded, without a
// non-default stage prefix) and raw query string, headers,
// cookies, the body (base64-decoded if IsBase64Encoded), the source IP as RemoteAddr
// and the request id as X-Request-Id. The event is available via EventFromContext.
func NewRequest(ctx context.Context, e events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := e.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	p := e.RawPath
	if p == "" {
		p = e.RequestContext.HTTP.Path
	}
	if p == "" {
		p = "/"
	}
	if st := e.RequestContext.Stage; st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(p, "/"+st); ok && (rest == "" || rest[0] == '/') {
			p = rest
			if p == "" {
				p = "/"
			}
		}
	}
	query := e.RawQueryString
	if query == "" && len(e.QueryStringParameters) > 0 {
		v := url.Values{}
		for k, s := range e.QueryStringParameters {
			for _, part := range strings.Split(s, ",") {
				v.Add(k, part)
			}
		}
		query = v.Encode()
	}
	// HTTP API hands the function rawPath already percent-decoded (a request for
	// /a%2Bb arrives as /a+b, %2F as /): it is the path itself, decoded once, by API
	// Gateway. Parsing it again would turn a literal '%' into an escape.
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00?#") {
		return nil, fmt.Errorf("bad request path %q", p)
	}
	u := &url.URL{Path: p, RawQuery: query}
	uri := u.RequestURI()

	var body []byte
	var err error
	if e.Body != "" {
		if e.IsBase64Encoded {
			body, err = base64.StdEncoding.DecodeString(e.Body)
			if err != nil {
				return nil, fmt.Errorf("bad base64 body: %w", err)
			}
		} else {
			body = []byte(e.Body)
		}
	}

	req, err := http.NewRequestWithContext(context.WithValue(ctx, eventKey{}, e), method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.RequestURI = uri
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	for k, v := range e.Headers {
		req.Header.Add(k, v)
	}
	if len(e.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(e.Cookies, "; "))
	}
	if e.RequestContext.RequestID != "" && req.Header.Get(RequestIDHeader) == "" {
		req.Header.Set(RequestIDHeader, e.RequestContext.RequestID)
	}
	req.Header.Del("Content-Length") // the body's real length is req.ContentLength

	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = e.RequestContext.DomainName
	}
	req.URL.Host, req.URL.Scheme = "", ""
	if ip := e.RequestContext.HTTP.SourceIP; ip != "" {
		req.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	if proto := e.RequestContext.HTTP.Protocol; proto != "" {
		if major, minor, ok := http.ParseHTTPVersion(proto); ok {
			req.Proto, req.ProtoMajor, req.ProtoMinor = proto, major, minor
		}
	}
	if strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https") {
		req.TLS = &tls.ConnectionState{} // API Gateway terminated TLS
	}
	return req, nil
}

// responseWriter records a handler's response.
type responseWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func newResponseWriter() *responseWriter { return &responseWriter{header: http.Header{}} }

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 100 || code > 999 {
		return
	}
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wroteHeader = true
		w.status = code
	}
	// 1xx informational headers cannot be relayed through API Gateway: dropped.
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(p)
}

// WriteString lets io.WriteString skip a copy.
func (w *responseWriter) WriteString(s string) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.WriteString(s)
}

// Flush is a no-op: API Gateway gets the whole response at once.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
}

func (w *responseWriter) response(method string) events.APIGatewayV2HTTPResponse {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	body := w.body.Bytes()
	if method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified {
		body = nil
	}
	if len(body) > 0 && w.header.Get("Content-Type") == "" && w.header.Get("Content-Encoding") == "" {
		if _, set := w.header["Content-Type"]; !set { // an explicit nil suppresses sniffing, as in net/http
			w.header.Set("Content-Type", http.DetectContentType(body))
		}
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range w.header {
		if len(vs) == 0 {
			continue
		}
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	if len(body) == 0 {
		return resp
	}
	if isText(w.header.Get("Content-Type"), w.header.Get("Content-Encoding")) && utf8.Valid(body) {
		resp.Body = string(body)
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(body)
		resp.IsBase64Encoded = true
	}
	return resp
}

// isText reports whether a body of this type travels as text: text/*, JSON, XML and
// JavaScript, never when content-encoded. Everything else is base64-encoded.
func isText(contentType, contentEncoding string) bool {
	if contentEncoding != "" && !strings.EqualFold(contentEncoding, "identity") {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		mt == "application/json", strings.HasSuffix(mt, "+json"),
		mt == "application/xml", strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

func textResponse(status int, msg string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		Body:       msg + "\n",
	}
}
