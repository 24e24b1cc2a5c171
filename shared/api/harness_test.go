package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/testenv"
	"github.com/otakit/ota/shared/urlsign"
)

// testEnv is a whole server on embedded storage behind a real HTTP listener.
type testEnv struct {
	t      testing.TB
	srv    *Server
	http   *httptest.Server
	store  *store.Store
	blobs  *blob.Local
	pipe   *publish.Pipeline
	signer *urlsign.Signer
	admin  string // admin API key secret
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	tbl, err := bolt.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(tbl)
	t.Cleanup(func() { st.Close() })
	signer, err := urlsign.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, store: st, signer: signer}
	mux := http.NewServeMux()
	e.http = httptest.NewServer(mux)
	t.Cleanup(e.http.Close)
	e.blobs, err = blob.NewLocal(filepath.Join(dir, "blobs"), signer, e.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	e.pipe = publish.NewPipeline(st, e.blobs, log)
	e.srv = New(Deps{Store: st, Blobs: e.blobs, URLs: cdn.Local{Signer: signer, BaseURL: e.http.URL}, Pipeline: e.pipe, Log: log,
		LocalSigner: signer, LocalBlobs: e.blobs}, Config{StateTTL: time.Nanosecond})
	t.Cleanup(e.srv.patchJobs.wait) // background patch jobs end before the store closes
	mux.Handle("/", e.srv.Handler())
	e.admin = store.NewKeySecret()
	if _, err := st.CreateKey(context.Background(), e.admin, "test admin", []string{"*"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// createApp makes an app whose default channel is "production".
func (e *testEnv) createApp(id string) release.App {
	e.t.Helper()
	a := release.App{ID: id, DefaultChannel: "production", CreatedAt: time.Now().UTC()}
	if err := e.store.CreateApp(context.Background(), a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func sha256hex(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// publishZip runs the real pipeline: create the release, upload through the signed
// URL over HTTP, wait until ready, then point channel at it (if channel != "").
func (e *testEnv) publishZip(app string, in publish.Input, zipBytes []byte, channel string) release.Release {
	e.t.Helper()
	ctx := context.Background()
	in.AppID, in.SHA256, in.Size = app, sha256hex(zipBytes), int64(len(zipBytes))
	_, up, err := e.pipe.Create(ctx, in)
	if err != nil {
		e.t.Fatalf("create release: %v", err)
	}
	e.upload(up, zipBytes)
	e.srv.patchJobs.wait() // patches are precomputed in the background after the upload
	r, err := e.store.GetRelease(ctx, app, in.Version)
	if err != nil || r.Status != release.StatusReady {
		e.t.Fatalf("release %s not ready: %+v %v", in.Version, r, err)
	}
	if channel != "" {
		e.setStable(app, channel, in.Version)
	}
	return r
}

// upload sends data to a presigned upload (nil: nothing to upload) as the CLI does.
func (e *testEnv) upload(up *blob.Upload, data []byte) {
	e.t.Helper()
	if up == nil {
		return
	}
	req, _ := http.NewRequest(up.Method, up.URL, bytes.NewReader(data))
	for k, v := range up.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("upload: status %d", resp.StatusCode)
	}
}

// publish is publishZip with a small generated bundle.
func (e *testEnv) publish(app, version, channel string) (release.Release, []byte) {
	e.t.Helper()
	z := testenv.Zip(e.t, map[string]string{"index.html": "<html>" + version + "</html>", "js/app.js": "console.log('" + version + "')", "assets/logo.svg": "<svg/>"})
	return e.publishZip(app, publish.Input{Version: version}, z, channel), z
}

func (e *testEnv) setStable(app, channel, version string) {
	e.t.Helper()
	_, err := e.store.UpdateChannel(context.Background(), app, channel, "test", "set", func(c *release.Channel, _ bool) error {
		c.Stable, c.Builtin = version, false
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv.state.invalidate(app)
}

// do sends a request with an optional JSON body and returns status, headers, body.
func (e *testEnv) do(method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	u := path
	if strings.HasPrefix(path, "/") {
		u = e.http.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// get downloads an absolute URL, following redirects.
func (e *testEnv) get(u string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// jsonMap decodes a JSON object keeping numbers as json.Number (to check types).
func jsonMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}
