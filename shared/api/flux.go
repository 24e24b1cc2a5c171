package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/diskfull"
	"github.com/otakit/ota/shared/lambdahttp"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
)

// The Flux adapter (Dart package flux_updater 1.0), see docs/protocols.md (Flux).
//
// The client sends no headers at all and treats only HTTP 200 as success. Apps set
// serverUrl = https://host/flux; because the Flux CLI cannot send an API key header,
// every route is also mounted under /flux/k/{key} (the key is redacted from logs by
// server.go's redactPath). Under that prefix the key must be valid for the app.

// fluxPrefixes are the two mounts of every Flux route.
var fluxPrefixes = []string{"/flux", "/flux/k/{key}"}

// fluxUploadRoutes lists this adapter's upload routes.
func fluxUploadRoutes() []Route {
	var rs []Route
	for _, p := range fluxPrefixes {
		rs = append(rs, Route{"POST", p + "/releases", GroupUpload, (*Server).fluxUpload})
	}
	return rs
}

// fluxCheckRoutes lists this adapter's check routes.
func fluxCheckRoutes() []Route {
	var rs []Route
	for _, p := range fluxPrefixes {
		rs = append(rs,
			Route{"GET", p + "/releases/{appId}/latest", GroupCheck, (*Server).fluxLatest},
			Route{"GET", p + "/releases/{appId}/{version}", GroupCheck, (*Server).fluxVersion},
			Route{"GET", p + "/chunks/{appId}/{version}", GroupCheck, (*Server).fluxChunk},
			Route{"GET", p + "/patches/{appId}/{from}/{to}", GroupCheck, (*Server).fluxPatch},
			Route{"GET", p + "/health", GroupCheck, (*Server).fluxHealth},
		)
	}
	return rs
}

// fluxTimeLayout is UTC RFC 3339 with milliseconds, which Dart's DateTime.parse reads.
const fluxTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// fluxVersionInfo is the VersionInfo the client casts strictly: integers stay
// integers, hasPatch is always present, patch fields are null.
type fluxVersionInfo struct {
	AppID            string  `json:"appId"`
	Version          string  `json:"version"`
	BuildNumber      int64   `json:"buildNumber"`
	ChunkSize        int64   `json:"chunkSize"`
	PatchSize        *int64  `json:"patchSize"`
	HasPatch         bool    `json:"hasPatch"`
	PatchBaseVersion *string `json:"patchBaseVersion"`
	CreatedAt        string  `json:"createdAt"`
	Signature        string  `json:"signature,omitempty"`
}

func fluxInfo(r *release.Release) fluxVersionInfo {
	return fluxVersionInfo{AppID: r.AppID, Version: r.Version, BuildNumber: r.BuildNumber, ChunkSize: r.Size,
		CreatedAt: r.CreatedAt.UTC().Format(fluxTimeLayout), Signature: r.Signatures.Flux}
}

// fluxError is Flux's error body: {"error": "..."} and nothing else.
func fluxError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// fluxFail answers err in Flux's error form.
func (s *Server) fluxFail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	var pe *publish.Error
	switch {
	case errors.Is(err, errUnauthorized), errors.Is(err, errForbidden):
		fluxError(w, http.StatusUnauthorized, "unauthorized")
	case errors.As(err, &br):
		fluxError(w, br.Status, br.Code)
	case errors.As(err, &pe):
		fluxError(w, pe.Status, pe.Code)
	case s.storageFull(r, err):
		fluxError(w, http.StatusInsufficientStorage, diskfull.Code)
	default:
		s.Log.Error("flux request failed", "path", redactPath(r.URL.Path), "err", err)
		fluxError(w, http.StatusInternalServerError, "internal")
	}
}

// fluxReadAuth checks the key of the /flux/k/{key} prefix; the plain /flux mount
// needs none (devices send nothing). app "" accepts any valid key (health).
func (s *Server) fluxReadAuth(r *http.Request, app string) error {
	if r.PathValue("key") == "" {
		return nil
	}
	if app == "" {
		_, err := s.authKey(r)
		return err
	}
	_, err := s.authApp(r, app)
	return err
}

func (s *Server) fluxHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.fluxReadAuth(r, ""); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "OK")
}

// fluxLatest answers the stable release of the app's default channel: Flux sends no
// channel and no device id. While the channel only moves forward by publishing,
// that is also the highest buildNumber (what the reference server answers).
func (s *Server) fluxLatest(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("appId")
	if err := s.fluxReadAuth(r, app); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	notFound := func() { fluxError(w, http.StatusNotFound, "No releases for app: "+app) }
	if release.ValidAppID(app) != nil {
		notFound()
		return
	}
	d, err := s.decide(r.Context(), release.Question{AppID: app})
	if errors.Is(err, errUnknownApp) {
		notFound()
		return
	}
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	if d.Kind != release.Update || d.Release == nil {
		notFound()
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, fluxInfo(d.Release))
}

func (s *Server) fluxVersion(w http.ResponseWriter, r *http.Request) {
	app, version := r.PathValue("appId"), r.PathValue("version")
	if err := s.fluxReadAuth(r, app); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	rel, err := s.servableRelease(r.Context(), app, version)
	if errors.Is(err, store.ErrNotFound) {
		fluxError(w, http.StatusNotFound, "Version not found: "+app+"@"+version)
		return
	}
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fluxInfo(&rel))
}

// fluxChunk serves the full chunk (serveObject: the bytes with an exact
// Content-Length, or a redirect that Dart's http client follows to the final 200).
func (s *Server) fluxChunk(w http.ResponseWriter, r *http.Request) {
	app, version := r.PathValue("appId"), r.PathValue("version")
	if err := s.fluxReadAuth(r, app); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	notFound := func() { fluxError(w, http.StatusNotFound, "Version not found: "+app+"@"+version) }
	rel, err := s.servableRelease(r.Context(), app, version)
	if errors.Is(err, store.ErrNotFound) {
		notFound()
		return
	}
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	d := download{key: blob.BundleKey(app, rel.Version, rel.BundleKey), contentType: "application/octet-stream", cacheControl: immutableCache}
	if err := s.serveObject(w, r, d); errors.Is(err, blob.ErrNotFound) {
		notFound()
	} else if err != nil {
		s.fluxFail(w, r, err)
	}
}

// fluxPatch serves Flux's XOR/full patch between two releases. A pair that was not
// precomputed answers 404 at once (the client then downloads the full chunk) and the
// patch is requested in the background (Server.requestPatch): the check path never
// computes a patch.
func (s *Server) fluxPatch(w http.ResponseWriter, r *http.Request) {
	app, from, to := r.PathValue("appId"), r.PathValue("from"), r.PathValue("to")
	if err := s.fluxReadAuth(r, app); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	notFound := func() { fluxError(w, http.StatusNotFound, "Patch not found: "+app+":"+from+":"+to) }
	if from == to {
		notFound()
		return
	}
	ctx := r.Context()
	for _, v := range []string{from, to} {
		if _, err := s.servableRelease(ctx, app, v); errors.Is(err, store.ErrNotFound) {
			notFound()
			return
		} else if err != nil {
			s.fluxFail(w, r, err)
			return
		}
	}
	p, err := s.Store.GetPatch(ctx, app, publish.KindFlux, from, to)
	if errors.Is(err, store.ErrNotFound) {
		s.requestPatch(ctx, app, publish.KindFlux, from, to)
		notFound()
		return
	}
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	d := download{key: p.Key, contentType: "application/octet-stream", cacheControl: immutableCache}
	if err := s.serveObject(w, r, d); errors.Is(err, blob.ErrNotFound) {
		notFound()
	} else if err != nil {
		s.fluxFail(w, r, err)
	}
}

// ---- upload

// LambdaFluxChunkLimit is the largest Flux chunk accepted inline on AWS. A Lambda
// invocation payload is at most 6 MiB, and the chunk arrives as a JSON array of byte
// values: up to 4 characters a byte ("255,"), ~3.6 on average. 1.4 MiB fits whatever
// the bytes are, with room for the event envelope; larger chunks would fail in API
// Gateway with a bare 413, or pass or fail depending on their bytes.
const LambdaFluxChunkLimit = 1400 << 10

// fmtSize prints a byte count for people.
func fmtSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fluxUploadBody is the Flux CLI's push body. buildNumber is an int64 so that 7.0
// and "7" are refused; chunk is a JSON array of byte values, not base64.
type fluxUploadBody struct {
	AppID       string     `json:"appId"`
	Version     string     `json:"version"`
	BuildNumber *int64     `json:"buildNumber"`
	Chunk       *fluxChunk `json:"chunk"`
}

// fluxChunk decodes a JSON array of integers 0..255. A malformed chunk is kept as
// err (not returned from UnmarshalJSON) so the handler can answer its own code.
type fluxChunk struct {
	data []byte
	err  error
}

// UnmarshalJSON parses the array directly: the JSON decoder has already checked
// the syntax, so only the shape (array of small non-negative integers) remains.
func (c *fluxChunk) UnmarshalJSON(b []byte) error {
	c.data, c.err = parseByteArray(b)
	return nil
}

func parseByteArray(b []byte) ([]byte, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		return nil, errors.New("chunk must be an array of integers 0-255 (not base64)")
	}
	out := make([]byte, 0, len(b)/3)
	i := 1
	skipWS := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	skipWS()
	if i < len(b) && b[i] == ']' {
		return out, nil
	}
	bad := func() error { return fmt.Errorf("chunk element %d is not an integer 0-255", len(out)) }
	for {
		skipWS()
		start, v := i, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 4 {
			v = v*10 + int(b[i]-'0')
			i++
		}
		if i == start || v > 255 {
			return nil, bad()
		}
		out = append(out, byte(v))
		skipWS()
		if i >= len(b) {
			return nil, bad()
		}
		switch b[i] {
		case ',':
			i++
		case ']':
			return out, nil
		default: // '.', 'e', more digits, ...
			out = out[:len(out)-1]
			return nil, bad()
		}
	}
}

// fluxUploadAnswer is the reference server's success body.
type fluxUploadAnswer struct {
	Success          bool   `json:"success"`
	Version          string `json:"version"`
	Signature        string `json:"signature"`
	PatchesGenerated int    `json:"patchesGenerated"`
}

// fluxUpload publishes an inline chunk: API key required (Bearer or the /flux/k/{key}
// prefix), signature computed with the app's Flux secret, versions immutable. After
// the upload the app's default channel moves forward to it, so `latest` serves it.
func (s *Server) fluxUpload(w http.ResponseWriter, r *http.Request) {
	key, err := s.authKey(r)
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	var b fluxUploadBody
	if err := decodeFluxUpload(r, s.cfg.MaxUploadBody, &b); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	if !key.Allows(b.AppID) {
		s.fluxFail(w, r, errUnauthorized)
		return
	}
	if _, onLambda := lambdahttp.EventFromContext(r.Context()); onLambda && len(b.Chunk.data) > LambdaFluxChunkLimit {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "payload_too_large",
			"message": fmt.Sprintf("this %s chunk cannot be uploaded inline: on AWS a request is at most 6 MB and a chunk travels "+
				"as a JSON array of up to 4 characters per byte, so inline Flux uploads stop at %s; publish it with the CLI's "+
				"presigned upload instead: ota release CHUNK_FILE --app %s --version %s --format chunk --flux-secret SECRET",
				fmtSize(int64(len(b.Chunk.data))), fmtSize(LambdaFluxChunkLimit), b.AppID, b.Version)})
		return
	}
	ctx := r.Context()
	app, err := s.Store.GetApp(ctx, b.AppID)
	if errors.Is(err, store.ErrNotFound) {
		fluxError(w, http.StatusNotFound, "app_not_found")
		return
	}
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	if app.FluxSecret == "" {
		fluxError(w, http.StatusBadRequest, "flux_secret_not_set")
		return
	}
	if s.Pipeline == nil {
		s.fluxFail(w, r, errors.New("flux upload: no publish pipeline configured"))
		return
	}
	sig := sign.FluxHMAC(app.FluxSecret, b.Chunk.data)
	in := publish.Input{AppID: app.ID, Version: b.Version, Format: release.FormatChunk,
		Signatures: release.Signatures{Flux: sig}, CreatedBy: key.ID}
	if b.BuildNumber != nil {
		in.BuildNumber = *b.BuildNumber
	}
	rel, err := s.Pipeline.PublishBytes(ctx, in, b.Chunk.data)
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	if rel.Status != release.StatusReady {
		fluxError(w, http.StatusUnprocessableEntity, "release_not_ready")
		return
	}
	if rel.Signatures.Flux != "" {
		sig = rel.Signatures.Flux // idempotent re-upload: what devices will be told
	}
	if err := s.fluxAdvance(ctx, app, rel, key); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	s.audit(ctx, key, app.ID, "flux_upload", rel.Version, "")
	n, err := s.fluxPatchesTo(ctx, app.ID, rel.Version)
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fluxUploadAnswer{Success: true, Version: rel.Version, Signature: sig, PatchesGenerated: n})
}

// decodeFluxUpload reads and checks the upload body.
func decodeFluxUpload(r *http.Request, limit int64, b *fluxUploadBody) error {
	if err := decodeJSON(r, limit, b); err != nil {
		return err
	}
	switch {
	case b.AppID == "" || b.Version == "" || b.Chunk == nil:
		return errBad("missing_field", "appId, version and chunk are required")
	case b.Chunk.err != nil:
		return errBad("invalid_chunk", "%v", b.Chunk.err)
	case release.ValidAppID(b.AppID) != nil:
		return errBad("invalid_app_id", "invalid app id")
	case b.Version == "latest":
		return errBad("version_reserved", "a version named latest cannot be published")
	case release.ValidVersion(b.Version) != nil:
		return errBad("invalid_version", "invalid version")
	case b.BuildNumber != nil && *b.BuildNumber < 0:
		return errBad("invalid_build_number", "buildNumber must be a non-negative integer")
	case len(b.Chunk.data) == 0:
		return errBad("empty_chunk", "chunk is empty")
	}
	return nil
}

// fluxAdvance points the app's default channel at rel unless its stable release is
// already newer (a higher buildNumber, or the same build uploaded later): publishing
// through Flux only moves forward, so `latest` stays the highest buildNumber.
func (s *Server) fluxAdvance(ctx context.Context, app release.App, rel release.Release, key store.APIKey) error {
	if app.DefaultChannel == "" {
		return nil
	}
	_, err := s.Store.UpdateChannel(ctx, app.ID, app.DefaultChannel, key.ID, "flux_upload", func(c *release.Channel, _ bool) error {
		if c.Stable == rel.Version && !c.Builtin {
			return store.ErrUnchanged
		}
		if c.Stable != "" && !c.Builtin {
			cur, err := s.Store.GetRelease(ctx, app.ID, c.Stable)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err == nil && cur.Status == release.StatusReady && !cur.Disabled && newerFlux(cur, rel) {
				return store.ErrUnchanged
			}
		}
		c.Stable, c.Builtin = rel.Version, false
		return nil
	})
	s.state.invalidate(app.ID)
	return err
}

// newerFlux reports whether a is newer than b in the reference server's order:
// higher buildNumber, ties broken by the later upload.
func newerFlux(a, b release.Release) bool {
	if a.BuildNumber != b.BuildNumber {
		return a.BuildNumber > b.BuildNumber
	}
	return a.CreatedAt.After(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt)
}

// fluxPatchesTo counts the Flux patches stored to version.
func (s *Server) fluxPatchesTo(ctx context.Context, app, version string) (int, error) {
	ps, err := s.Store.ListPatches(ctx, app, publish.KindFlux)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.To == version {
			n++
		}
	}
	return n, nil
}
