package awse2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/otakit/ota/infra/lambdarie"
	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/testenv"
)

// noRedirect is a client that hands back redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestRIELargeBundleDownloads is the reproduction of the 7 MB bundle: published with
// the ota CLI, it is more than a Lambda response can carry (6 MB, about 4.4 MB of
// binary once base64-encoded), so every download route of the check function must
// answer a 302 to a signed S3 URL, never the bytes. Before download routes
// redirected, the seed and Flux routes streamed the zip through the function and
// HTTP API answered 502.
func TestRIELargeBundleDownloads(t *testing.T) {
	s := startRIE(t)
	ctx := context.Background()
	const app, version = "com.example.rie.large", "7.0.0"
	if out, err := s.ota("app", "create", app); err != nil {
		t.Fatalf("app create: %v %s", err, out)
	}
	// 7 MB of incompressible, deterministic bytes (the zip stays about 7 MB).
	big := make([]byte, 7_000_000)
	rand.NewChaCha8([32]byte{'o', 't', 'a', 'r', 'i', 'e'}).Read(big)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>large</title><script src=big.bin></script>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := s.ota("release", dir, "--app", app, "--version", version, "--channel", "production", "--wait", "60s"); err != nil {
		t.Fatalf("release: %v %s", err, out)
	}
	s.stopPatches(t)
	rel, err := s.deps.Store.GetRelease(ctx, app, version)
	if err != nil || rel.Status != release.StatusReady || rel.Size < 7_000_000 || rel.ID == "" {
		t.Fatalf("release: %+v %v", rel, err)
	}

	// The check answer itself names the release (and is small).
	if a := capgoCheckAt(t, s.url, app, "5b7c2e10-9a4d-4f3e-8c21-6d0a9e8f7b35", "builtin"); a.Version != version || a.Checksum != rel.SHA256 {
		t.Fatalf("device check: %+v", a)
	}
	routes := []string{
		"/seed/" + app + "/production/api/v1/native/bundle/download",
		"/seed/" + app + "/production/api/v1/native/bundle/download?version=" + version,
		"/api/v1/native/bundle/download?appId=" + app + "&version=" + version,
		"/native-update/" + app + "/bundles/" + version,
		"/flux/chunks/" + app + "/" + version,
		"/apps/" + app + "/snapshots/" + rel.ID + "/zip",
	}
	for i, route := range routes {
		loc := redirected(t, "GET", s.url+route)
		if loc == "" {
			continue
		}
		if !strings.HasPrefix(loc, testenv.S3Endpoint(t)+"/") {
			t.Errorf("%s: Location %s is not on S3", route, loc)
		}
		code, body := get(t, loc)
		if code != 200 || sha(body) != rel.SHA256 {
			t.Errorf("%s: download from S3: HTTP %d, %d bytes, sha256 %s, release %s", route, code, len(body), sha(body), rel.SHA256)
			continue
		}
		if i == 0 { // the zip holds the 7 MB file, byte for byte
			if got := unzipFile(t, body, "big.bin"); !bytes.Equal(got, big) {
				t.Errorf("big.bin in the downloaded zip: %d bytes, differs", len(got))
			}
		}
	}
	// HEAD, a twin route of HTTP API's (template.yaml declares one per GET route).
	redirected(t, "HEAD", s.url+"/native-update/"+app+"/bundles/"+version)

	st := s.gw.Stats()[api.GroupCheck]
	if st.LargestResponse >= 64<<10 || st.FunctionErrors != 0 || st.Invokes != len(routes)+2 {
		t.Errorf("check function through the Gateway: %+v; want %d invokes, no error, every response under 64 KiB", st, len(routes)+2)
	}
	t.Logf("check function: %d invokes, largest response %d bytes, largest event %d bytes", st.Invokes, st.LargestResponse, st.LargestRequest)
}

// redirected requests u through the Gateway and checks the answer is a 302 with
// Cache-Control: no-store; it returns the Location ("" after a failed check).
func redirected(t *testing.T, method, u string) string {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Cache-Control") != "no-store" || loc == "" {
		t.Errorf("%s %s: HTTP %d, Cache-Control %q, Location %q, body %q; want 302, no-store and a Location",
			method, strings.TrimPrefix(u, "http://"), resp.StatusCode, resp.Header.Get("Cache-Control"), loc, b)
		return ""
	}
	return loc
}

func unzipFile(t *testing.T, zipBytes []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fluxUploadBody is the Flux CLI's push body: the chunk as a JSON array of bytes.
func fluxUploadBody(app, version string, build int, chunk []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(chunk)*4 + 128)
	b.WriteString(`{"appId":` + strconv.Quote(app) + `,"version":` + strconv.Quote(version) + `,"buildNumber":` + strconv.Itoa(build) + `,"chunk":[`)
	for i, c := range chunk {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(c)))
	}
	b.WriteString("]}")
	return b.Bytes()
}

// TestRIEFluxInlineUploadLimits: inline Flux uploads through the Gateway to the real
// upload function, with the key in the URL as the Flux CLI sends it. A small chunk
// publishes; a 1.5 MiB chunk (a 3 MB body, which HTTP API and Lambda would take)
// is over api.LambdaFluxChunkLimit and answers the function's own 413 pointing at
// the CLI's presigned upload; an 11 MB body is over HTTP API's 10 MB and answers the
// Gateway's 413 without invoking the function.
func TestRIEFluxInlineUploadLimits(t *testing.T) {
	s := startRIE(t)
	s.stopPatches(t) // inline uploads are validated in the upload function itself
	ctx := context.Background()
	const app = "com.example.rie.flux"
	if out, err := s.ota("app", "create", app, "--flux-secret", "rie-flux-secret-0123456789"); err != nil {
		t.Fatalf("app create: %v %s", err, out)
	}
	key := store.NewKeySecret()
	if _, err := s.deps.Store.CreateKey(ctx, key, "flux", []string{app}, false, "test"); err != nil {
		t.Fatal(err)
	}
	push := func(body []byte) (int, []byte) {
		t.Helper()
		resp, err := http.Post(s.url+"/flux/k/"+key+"/releases", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	small := append([]byte("FLUX\x01"), bytes.Repeat([]byte{0, 1, 2, 253, 254, 255}, 200)...)
	if code, b := push(fluxUploadBody(app, "1.0.0", 1, small)); code != 200 || !strings.Contains(string(b), `"success":true`) {
		t.Fatalf("small inline upload: HTTP %d %s", code, b)
	}

	chunk := make([]byte, 3<<19) // 1.5 MiB of zeros: "[0,0,...]", a 3 MiB body
	body := fluxUploadBody(app, "2.0.0", 2, chunk)
	code, b := push(body)
	var e struct{ Error, Message string }
	json.Unmarshal(b, &e)
	if code != http.StatusRequestEntityTooLarge || e.Error != "payload_too_large" || !strings.Contains(e.Message, "--format chunk") {
		t.Errorf("%d-byte chunk (%d-byte body): HTTP %d %.300s; want 413 payload_too_large naming --format chunk", len(chunk), len(body), code, b)
	}
	if _, err := s.deps.Store.GetRelease(ctx, app, "2.0.0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused chunk was published: %v", err)
	}

	before := s.gw.Stats()[api.GroupUpload].Invokes
	body = fluxUploadBody(app, "3.0.0", 3, make([]byte, 5_500_000)) // 11 MB
	code, b = push(body)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "Request Entity Too Large") {
		t.Errorf("%d-byte body: HTTP %d %.300s; want HTTP API's 413", len(body), code, b)
	}
	if after := s.gw.Stats()[api.GroupUpload].Invokes; after != before {
		t.Errorf("an 11 MB body reached the upload function (%d invokes)", after-before)
	}
	if st := s.gw.Stats()[api.GroupUpload]; st.FunctionErrors != 0 || st.LargestRequest > lambdarie.MaxInvokePayload {
		t.Errorf("upload function through the Gateway: %+v", st)
	}
}
