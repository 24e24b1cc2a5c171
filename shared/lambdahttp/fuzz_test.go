package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzEventToRequest turns any API Gateway event into a request and back: the
// adapter never panics, a request it builds has a clean path, the event's query and
// exactly its body, and the response carries what the handler wrote, in text or
// base64. A campaign: go test -run '^$' -fuzz FuzzEventToRequest -fuzztime 5m ./shared/lambdahttp/
func FuzzEventToRequest(f *testing.F) {
	f.Add("GET", "/capgo/updates", "a=1&b=2", "", false, "$default", "Authorization", "Bearer x", "text/plain")
	f.Add("POST", "/prod/capgo/stats", "", `{"a":1}`, false, "prod", "content-type", "application/json", "application/json")
	f.Add("PUT", "/blob/a%2Fb", "exp=1&sig=x", "AAEC", true, "", "Host", "ota.example.com", "application/zip")
	f.Add("", "", "", "", false, "", "", "", "")
	f.Add("GET", "/a\x00b", "", "not base64!", true, "$default", "X", "\r\n", "text/html")
	f.Add("B@D METHOD", "relative", "%zz", "", false, "stage", "Cookie", "a=b", "image/png")
	f.Fuzz(func(t *testing.T, method, rawPath, query, body string, b64 bool, stage, hk, hv, contentType string) {
		e := events.APIGatewayV2HTTPRequest{RawPath: rawPath, RawQueryString: query, Body: body, IsBase64Encoded: b64,
			Headers: map[string]string{hk: hv}}
		e.RequestContext.HTTP.Method = method
		e.RequestContext.Stage = stage
		req, err := NewRequest(context.Background(), e)
		if err != nil {
			return // answered 400 by Handler
		}
		p := req.URL.Path
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00?#") {
			t.Fatalf("path %q from %q", p, rawPath)
		}
		if req.URL.RawQuery != query {
			t.Fatalf("query %q, event %q", req.URL.RawQuery, query)
		}
		got, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte(body)
		if b64 {
			want, _ = base64.StdEncoding.DecodeString(body)
		}
		if !bytes.Equal(got, want) || req.ContentLength != int64(len(want)) || req.Header.Get("Content-Length") != "" {
			t.Fatalf("body %q (length %d), want %q", got, req.ContentLength, want)
		}
		if _, ok := EventFromContext(req.Context()); !ok {
			t.Fatal("no event in the request's context")
		}

		// The round trip: the handler writes the path and the body back.
		echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, r.URL.Path)
			w.Write(b)
		})
		resp, err := Handler(echo)(context.Background(), e)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %v", resp.StatusCode, err)
		}
		out := []byte(resp.Body)
		if resp.IsBase64Encoded {
			if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		if req.Method == http.MethodHead {
			want = nil
		} else {
			want = append([]byte(p), want...)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("response %q, want %q", out, want)
		}
	})
}
