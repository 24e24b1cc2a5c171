package awse2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/lambdahttp"
)

type lambdaHandler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// apiGateway stands in for API Gateway (HTTP API, payload 2.0): it routes each
// request by the route table to the function of the route's group, as template.yaml
// does, and invokes that function's handler with a v2 event, through the same
// adapter the Lambdas use.
type apiGateway struct {
	mux     *http.ServeMux
	mu      sync.Mutex
	invokes map[api.Group]int
}

func newAPIGateway(function func(api.Group) http.Handler) *apiGateway {
	g := &apiGateway{mux: http.NewServeMux(), invokes: map[api.Group]int{}}
	fns := map[api.Group]lambdaHandler{}
	for _, rt := range api.Routes() {
		if rt.Group == api.GroupLocal {
			continue // otad only: not deployed
		}
		if fns[rt.Group] == nil {
			fns[rt.Group] = lambdahttp.Handler(function(rt.Group))
		}
		group, h := rt.Group, fns[rt.Group]
		g.mux.HandleFunc(rt.Pattern(), func(w http.ResponseWriter, r *http.Request) {
			g.mu.Lock()
			g.invokes[group]++
			g.mu.Unlock()
			invoke(h, w, r)
		})
	}
	return g
}

func (g *apiGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

func (g *apiGateway) count(group api.Group) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.invokes[group]
}

// invoke turns r into a v2 event, calls h and writes its response.
func invoke(h lambdaHandler, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}, Body: base64.StdEncoding.EncodeToString(body), IsBase64Encoded: true,
	}
	for k, v := range r.Header {
		e.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	e.RequestContext.HTTP.Method = r.Method
	e.RequestContext.HTTP.Path = r.URL.Path
	e.RequestContext.HTTP.SourceIP = "127.0.0.1"
	e.RequestContext.RequestID = "test-request"
	resp, err := h(r.Context(), e)
	if err != nil {
		http.Error(w, `{"message":"Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, v := range resp.MultiValueHeaders {
		w.Header()[http.CanonicalHeaderKey(k)] = v
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		out, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}
