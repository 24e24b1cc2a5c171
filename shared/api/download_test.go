package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/lambdahttp"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/testenv"
)

// lambdaResponseLimit is Lambda's synchronous response payload limit (the JSON the
// function returns, base64 body included).
const lambdaResponseLimit = 6 << 20

// bigZip is a bundle of about n bytes that does not compress (deterministic).
func bigZip(t testing.TB, version string, n int) []byte {
	rng := rand.New(rand.NewChaCha8([32]byte{byte(len(version)), version[len(version)-1]}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return testenv.Zip(t, map[string]string{"index.html": "<html>" + version + "</html>", "js/big.bin": string(b)})
}

// Every download route of the check function, run as the Lambda runs it (no local
// folder, behind the API Gateway adapter), answers a 302 to a signed URL for a 7 MB
// bundle: a response carrying the bytes would exceed Lambda's 6 MB payload limit
// (Function.ResponseSizeTooLarge). The same routes on otad stream the bytes.
func TestLambdaDownloadRoutesRedirect(t *testing.T) {
	e := newTestEnv(t)
	const app = "com.example.big"
	e.createApp(app)
	e.pipe.PatchBases = 0 // the Flux patch below is made on purpose; tree patches are not needed here
	z1, z2 := bigZip(t, "1.0.0", 64<<10), bigZip(t, "1.0.1", 7<<20)
	e.publishZip(app, publish.Input{Version: "1.0.0"}, z1, "")
	e.publishZip(app, publish.Input{Version: "1.0.1"}, z2, "production")
	ctx := context.Background()
	patch, err := e.pipe.EnsurePatch(ctx, app, publish.KindFlux, "1.0.0", "1.0.1")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := e.store.GetRelease(ctx, app, "1.0.1")
	if err != nil {
		t.Fatal(err)
	}

	// The check function's view: same storage, no local folder, its routes only.
	check := New(Deps{Store: e.store, Blobs: e.blobs, URLs: cdn.Local{Signer: e.signer, BaseURL: e.http.URL}, Pipeline: e.pipe},
		Config{StateTTL: time.Nanosecond}).Mount(CheckRoutes())
	fn := lambdahttp.Handler(check)

	bundleSHA, patchSHA := sha256hex(z2), patch.SHA256
	cases := []struct{ path, sha string }{
		{"/api/v1/native/bundle/download?appId=" + app + "&version=1.0.1", bundleSHA},
		{"/seed/" + app + "/production/api/v1/native/bundle/download?version=1.0.1", bundleSHA},
		{"/seed/" + app + "/production/api/v1/native/bundle/download", bundleSHA},
		{"/native-update/" + app + "/bundles/1.0.1", bundleSHA},
		{"/api/v1/bundles/1.0.1?appId=" + app, bundleSHA},
		{"/apps/" + app + "/snapshots/" + rel.ID + "/zip", bundleSHA},
		{"/flux/chunks/" + app + "/1.0.1", bundleSHA},
		{"/flux/patches/" + app + "/1.0.0/1.0.1", patchSHA},
	}
	for _, c := range cases {
		for _, method := range []string{"GET", "HEAD"} {
			resp := invokeLambda(t, fn, method, c.path, "")
			raw, _ := json.Marshal(resp)
			if len(raw) >= lambdaResponseLimit {
				t.Fatalf("%s %s: %d-byte Lambda response, over the 6 MB limit", method, c.path, len(raw))
			}
			loc := resp.Headers["Location"]
			if resp.StatusCode != http.StatusFound || loc == "" || resp.Headers["Cache-Control"] != "no-store" {
				t.Fatalf("%s %s: %d %v, want 302 to a signed URL with Cache-Control: no-store", method, c.path, resp.StatusCode, resp.Headers)
			}
			if method == "HEAD" {
				continue
			}
			st, _, body := e.get(loc)
			if st != 200 || sha256hex(body) != c.sha {
				t.Fatalf("%s: redirect target answered %d with %d bytes of another checksum", c.path, st, len(body))
			}
		}
	}

	// otad (its own folder, no CDN in front) streams the same routes.
	for _, c := range cases[:3] {
		st, h, body := e.do("GET", c.path, nil)
		if st != 200 || sha256hex(body) != c.sha || h.Get("Content-Type") != "application/zip" {
			t.Fatalf("otad %s: %d %s, want the zip bytes", c.path, st, h.Get("Content-Type"))
		}
	}
}

// invokeLambda calls a Lambda handler with the API Gateway HTTP API event for path.
func invokeLambda(t *testing.T, fn func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error),
	method, path, body string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: u.Path, RawQueryString: u.RawQuery,
		Headers: map[string]string{"host": "api.example.com", "x-forwarded-proto": "https"}, Body: body}
	if body != "" {
		ev.Headers["content-type"] = "application/json"
	}
	ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path = method, u.Path
	resp, err := fn(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if resp.IsBase64Encoded && strings.HasPrefix(resp.Body, "UEsD") { // "PK\x03": zip bytes inline
		b, _ := base64.StdEncoding.DecodeString(resp.Body)
		t.Fatalf("%s %s: the function returned %d bytes of the zip", method, path, len(b))
	}
	return resp
}

// On AWS an inline Flux upload travels as a JSON byte array inside a 6 MB Lambda
// payload: over LambdaFluxChunkLimit the upload function answers 413
// payload_too_large naming the CLI's presigned upload, whatever the bytes are; below
// it, and on otad, the same upload works.
func TestLambdaFluxInlineUploadLimit(t *testing.T) {
	e := newTestEnv(t)
	key := e.fluxApp("com.example.notes", fluxDevSecret)
	upload := lambdahttp.Handler(New(Deps{Store: e.store, Blobs: e.blobs, URLs: cdn.Local{Signer: e.signer, BaseURL: e.http.URL},
		Pipeline: e.pipe}, Config{}).Mount(UploadRoutes()))
	zeros := make([]byte, LambdaFluxChunkLimit+1) // "0," per byte: ~2.8 MB of JSON, under 6 MB
	resp := invokeLambda(t, upload, "POST", "/flux/k/"+key+"/releases", fluxBody("com.example.notes", "1.0.0", 1, zeros))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(resp.Body, `"error":"payload_too_large"`) ||
		!strings.Contains(resp.Body, "ota release CHUNK_FILE --app com.example.notes --version 1.0.0 --format chunk") {
		t.Fatalf("over the limit on Lambda: %d %s", resp.StatusCode, resp.Body)
	}
	if _, err := e.store.GetRelease(context.Background(), "com.example.notes", "1.0.0"); err == nil {
		t.Fatal("a refused upload left a release")
	}
	resp = invokeLambda(t, upload, "POST", "/flux/k/"+key+"/releases", fluxBody("com.example.notes", "1.0.0", 1, zeros[:LambdaFluxChunkLimit]))
	if resp.StatusCode != 200 {
		t.Fatalf("at the limit on Lambda: %d %s", resp.StatusCode, resp.Body)
	}
	if st, _ := e.fluxPush(key, "com.example.notes", "1.0.1", 2, zeros); st != 200 {
		t.Fatalf("otad refused a chunk over the Lambda limit: %d", st)
	}
}
