package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

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
		rs = append(rs, Route{"POST", p + "/releases", GroupUpload, (*Server).fluxUpload, AuthFluxUpload})
	}
	return rs
}

// fluxCheckRoutes lists this adapter's check routes.
func fluxCheckRoutes() []Route {
	var rs []Route
	for _, p := range fluxPrefixes {
		rs = append(rs,
			Route{"GET", p + "/releases/{appId}/latest", GroupCheck, (*Server).fluxLatest, AuthFluxPathKey},
			Route{"GET", p + "/releases/{appId}/{version}", GroupCheck, (*Server).fluxVersion, AuthFluxPathKey},
			Route{"GET", p + "/chunks/{appId}/{version}", GroupCheck, (*Server).fluxChunk, AuthFluxPathKey},
			Route{"GET", p + "/patches/{appId}/{from}/{to}", GroupCheck, (*Server).fluxPatch, AuthFluxPathKey},
			Route{"GET", p + "/health", GroupCheck, (*Server).fluxHealth, AuthFluxPathKey},
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
		fluxError(w, statusOf(pe.Kind), pe.Code)
	case s.storageFull(r, err):
		fluxError(w, http.StatusInsufficientStorage, diskfull.Code)
	default:
		s.Log.Error("flux request failed", "path", redactPath(r.URL.Path), "err", err)
		fluxError(w, http.StatusInternalServerError, "internal")
	}
}

func (s *Server) fluxHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "OK")
}

// fluxLatest answers the stable release of the app's default channel: Flux sends no
// channel and no device id. While the channel only moves forward by publishing,
// that is also the highest buildNumber (what the reference server answers).
func (s *Server) fluxLatest(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("appId")
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
	p, err := s.state.patch(ctx, app, publish.KindFlux, from, to)
	if errors.Is(err, store.ErrNotFound) {
		if !errors.Is(err, errPatchMissing) {
			s.requestPatch(ctx, app, publish.KindFlux, from, to)
		}
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

// Input limits of the Flux upload (docs/protocols.md, Input limits). The body as a
// whole is bounded by Config.MaxUploadBody (the chunk is most of it); the rest is
// bounded here.
const (
	// fluxMaxBeforeScope bounds what is read of a body before the key's scope is
	// checked, which needs appId: the Flux CLI sends appId first, so only a body
	// that puts more than this before its appId is refused (app_id_first).
	fluxMaxBeforeScope = 1 << 20
	fluxMaxString      = 4 << 10 // any string: appId, version (validated after), unknown fields
	fluxMaxNumber      = 32      // bytes of a number token (buildNumber is an int64)
	fluxMaxDepth       = 8       // nesting of unknown fields
	fluxMaxItems       = 1024    // members of an object, elements of an array other than chunk
)

// fluxUploadBody is the Flux CLI's push body. buildNumber is an int64 so that 7.0
// and "7" are refused; chunk is a JSON array of byte values, not base64.
type fluxUploadBody struct {
	AppID       string
	Version     string
	BuildNumber *int64
	Chunk       []byte // nil: absent
}

// errAppIDFirst: more than fluxMaxBeforeScope bytes came before appId.
var errAppIDFirst = &badRequest{Status: http.StatusRequestEntityTooLarge, Code: "app_id_first",
	Msg: fmt.Sprintf("appId must come before the chunk in bodies over %d bytes", fluxMaxBeforeScope)}

// decodeFluxUpload reads an upload body as it arrives, within limit bytes. scope is
// called with appId as soon as it is read, before anything after it: a key for
// another app is refused before its chunk is read, and until then at most
// fluxMaxBeforeScope bytes are. The chunk is parsed straight into bytes, without a
// copy of the body or a value per element.
func decodeFluxUpload(body io.Reader, limit int64, scope func(app string) error, b *fluxUploadBody) error {
	d := newFluxDecoder(body, limit)
	if err := d.body(scope, b); err != nil {
		return err
	}
	switch {
	case b.AppID == "" || b.Version == "" || b.Chunk == nil:
		return errBad("missing_field", "appId, version and chunk are required")
	case b.Version == "latest":
		return errBad("version_reserved", "a version named latest cannot be published")
	case release.ValidVersion(b.Version) != nil:
		return errBad("invalid_version", "invalid version")
	case b.BuildNumber != nil && *b.BuildNumber < 0:
		return errBad("invalid_build_number", "buildNumber must be a non-negative integer")
	case len(b.Chunk) == 0:
		return errBad("empty_chunk", "chunk is empty")
	}
	return nil
}

// fluxDecoder is a JSON reader for the one shape of the upload body. Its own errors
// are *badRequest; the scope callback's are passed on as they are.
type fluxDecoder struct {
	r     *bufio.Reader
	stage *stageReader
	limit int64
}

func newFluxDecoder(body io.Reader, limit int64) *fluxDecoder {
	st := &stageReader{r: http.MaxBytesReader(nil, io.NopCloser(body), limit), left: fluxMaxBeforeScope}
	return &fluxDecoder{r: bufio.NewReaderSize(st, 64<<10), stage: st, limit: limit}
}

// stageReader stops after left bytes until lifted: the body read before the scope
// check.
type stageReader struct {
	r      io.Reader
	left   int64
	lifted bool
}

func (s *stageReader) Read(p []byte) (int, error) {
	if s.lifted {
		return s.r.Read(p)
	}
	if s.left <= 0 {
		return 0, errAppIDFirst
	}
	n, err := s.r.Read(p[:min(int64(len(p)), s.left)])
	s.left -= int64(n)
	return n, err
}

var (
	errFluxJSON = errBad("invalid_json", "body is not valid JSON")
	errFluxEOF  = errBad("invalid_json", "the body ends before its JSON value does")
)

// fail turns a read error into the request's answer.
func (d *fluxDecoder) fail(err error) error {
	var br *badRequest
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &br):
		return br
	case errors.As(err, &tooBig):
		return errTooLarge(d.limit)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errFluxEOF
	}
	return errBad(codeBodyUnreadable, "reading the body: %v", err)
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// next returns the next byte that is not white space.
func (d *fluxDecoder) next() (byte, error) {
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return 0, d.fail(err)
		}
		if !isJSONSpace(c) {
			return c, nil
		}
	}
}

// peek is next without consuming the byte.
func (d *fluxDecoder) peek() (byte, error) {
	c, err := d.next()
	if err == nil {
		err = d.r.UnreadByte()
	}
	return c, err
}

func (d *fluxDecoder) expect(want byte) error {
	c, err := d.next()
	if err != nil {
		return err
	}
	if c != want {
		return errFluxJSON
	}
	return nil
}

// body reads the top-level object.
func (d *fluxDecoder) body(scope func(string) error, b *fluxUploadBody) error {
	c, err := d.next()
	if errors.Is(err, errFluxEOF) {
		return errBad("empty_body", "request body is empty")
	}
	if err != nil {
		return err
	}
	if c != '{' {
		if strings.IndexByte(`["-0123456789tfn`, c) >= 0 {
			return errBad("invalid_type", "the body must be a JSON object")
		}
		return errFluxJSON
	}
	seen := map[string]bool{}
	for i := 0; ; i++ {
		c, err := d.next()
		if err != nil {
			return err
		}
		if c == '}' && i == 0 {
			break
		}
		if c != '"' {
			return errFluxJSON
		}
		if i >= fluxMaxItems {
			return errTooMany("the body object", fluxMaxItems)
		}
		name, err := d.stringBody()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		switch name {
		case "appId", "version", "buildNumber", "chunk":
			if seen[name] {
				return errBad("duplicate_field", "%s appears twice", name)
			}
			seen[name] = true
		}
		switch name {
		case "appId":
			s, err := d.optString(name)
			if err != nil {
				return err
			}
			if s != "" {
				if release.ValidAppID(s) != nil {
					return errBad("invalid_app_id", "invalid app id")
				}
				if err := scope(s); err != nil {
					return err
				}
				d.stage.lifted = true
			}
			b.AppID = s
		case "version":
			if b.Version, err = d.optString(name); err != nil {
				return err
			}
		case "buildNumber":
			if b.BuildNumber, err = d.optInt64(name); err != nil {
				return err
			}
		case "chunk":
			if b.Chunk, err = d.optByteArray(); err != nil {
				return err
			}
		default:
			if err := d.skip(2); err != nil { // a member's value is one level in
				return err
			}
		}
		c, err = d.next()
		if err != nil {
			return err
		}
		if c == '}' {
			break
		}
		if c != ',' {
			return errFluxJSON
		}
	}
	// Only white space may follow.
	if _, err := d.next(); !errors.Is(err, errFluxEOF) {
		if err != nil {
			return err
		}
		return errBad("invalid_json", "unexpected data after the JSON value")
	}
	return nil
}

// null consumes a JSON null if one comes next.
func (d *fluxDecoder) null() (bool, error) {
	c, err := d.peek()
	if err != nil || c != 'n' {
		return false, err
	}
	return true, d.literal("null")
}

func (d *fluxDecoder) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		c, err := d.r.ReadByte()
		if err != nil {
			return d.fail(err)
		}
		if c != lit[i] {
			return errFluxJSON
		}
	}
	return nil
}

// optString reads a string field, "" for null.
func (d *fluxDecoder) optString(name string) (string, error) {
	if isNull, err := d.null(); err != nil || isNull {
		return "", err
	}
	c, err := d.next()
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", errBad("invalid_type", "field %q must be string", name)
	}
	return d.stringBody()
}

// stringBody reads a string whose opening quote is consumed: at most fluxMaxString
// bytes as sent, unescaped by encoding/json (which checks the escapes).
func (d *fluxDecoder) stringBody() (string, error) {
	raw := []byte{'"'}
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return "", d.fail(err)
		}
		if len(raw) > fluxMaxString {
			return "", errBad(codeFieldTooLong, "a string is longer than %d bytes", fluxMaxString)
		}
		raw = append(raw, c)
		switch {
		case c < 0x20:
			return "", errFluxJSON
		case c == '\\':
			e, err := d.r.ReadByte()
			if err != nil {
				return "", d.fail(err)
			}
			raw = append(raw, e)
		case c == '"':
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return "", errFluxJSON
			}
			return s, nil
		}
	}
}

// number reads a number token (its first byte already peeked).
func (d *fluxDecoder) number() ([]byte, error) {
	var tok []byte
	for {
		c, err := d.r.ReadByte()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, d.fail(err)
		}
		if strings.IndexByte("-+.eE0123456789", c) < 0 {
			if err := d.r.UnreadByte(); err != nil {
				return nil, d.fail(err)
			}
			break
		}
		if len(tok) >= fluxMaxNumber {
			return nil, errBad(codeFieldTooLong, "a number is longer than %d bytes", fluxMaxNumber)
		}
		tok = append(tok, c)
	}
	if !json.Valid(tok) {
		return nil, errFluxJSON
	}
	return tok, nil
}

// optInt64 reads an integer field (not 7.0, not "7"), nil for null.
func (d *fluxDecoder) optInt64(name string) (*int64, error) {
	if isNull, err := d.null(); err != nil || isNull {
		return nil, err
	}
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	if c != '-' && (c < '0' || c > '9') {
		if err := d.skip(2); err != nil {
			return nil, err
		}
		return nil, errBad("invalid_type", "field %q must be int64", name)
	}
	tok, err := d.number()
	if err != nil {
		return nil, err
	}
	n, perr := strconv.ParseInt(string(tok), 10, 64)
	if perr != nil {
		return nil, errBad("invalid_type", "field %q must be int64", name)
	}
	return &n, nil
}

// optByteArray reads the chunk: nil for null, else an array of integers 0..255.
func (d *fluxDecoder) optByteArray() ([]byte, error) {
	if isNull, err := d.null(); err != nil || isNull {
		return nil, err
	}
	c, err := d.next()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		return nil, errBad("invalid_chunk", "chunk must be an array of integers 0-255 (not base64)")
	}
	out := []byte{}
	bad := func() error {
		return errBad("invalid_chunk", "chunk element %d is not an integer 0-255", len(out))
	}
	if c, err = d.peek(); err != nil {
		return nil, err
	}
	if c == ']' {
		_, err := d.next()
		return out, err
	}
	for {
		c, err := d.next()
		if err != nil {
			return nil, err
		}
		// 0, or 1-3 digits without a leading zero, at most 255.
		if c < '0' || c > '9' {
			return nil, bad()
		}
		v := int(c - '0')
		for n := 1; ; n++ {
			c, err = d.r.ReadByte()
			if err != nil {
				return nil, d.fail(err)
			}
			if c < '0' || c > '9' {
				break
			}
			if v == 0 || n == 3 {
				return nil, bad()
			}
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return nil, bad()
		}
		out = append(out, byte(v))
		for isJSONSpace(c) {
			if c, err = d.r.ReadByte(); err != nil {
				return nil, d.fail(err)
			}
		}
		switch c {
		case ',':
		case ']':
			return out, nil
		default: // '.', 'e', '"', ...
			return nil, bad()
		}
	}
}

// skip reads and drops one value of a field the server does not read; depth is the
// nesting level an array or object there would have (the body object is level 1).
func (d *fluxDecoder) skip(depth int) error {
	c, err := d.peek()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		_, _ = d.r.ReadByte() // the quote peek saw
		_, err := d.stringBody()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := d.number()
		return err
	case c == '[' || c == '{':
		if depth > fluxMaxDepth {
			return errBad(codeTooDeep, "JSON nesting deeper than %d levels", fluxMaxDepth)
		}
		_, _ = d.r.ReadByte() // the bracket peek saw
		return d.container(c, depth)
	}
	return errFluxJSON
}

// container reads the rest of an array or object whose opening byte is consumed.
func (d *fluxDecoder) container(open byte, depth int) error {
	closing := byte(']')
	if open == '{' {
		closing = '}'
	}
	for i := 0; ; i++ {
		c, err := d.peek()
		if err != nil {
			return err
		}
		if c == closing && i == 0 {
			_, _ = d.r.ReadByte() // the bracket peek saw
			return nil
		}
		if i >= fluxMaxItems {
			return errTooMany("an array or object", fluxMaxItems)
		}
		if open == '{' {
			if err := d.expect('"'); err != nil {
				return err
			}
			if _, err := d.stringBody(); err != nil {
				return err
			}
			if err := d.expect(':'); err != nil {
				return err
			}
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
		if c, err = d.next(); err != nil {
			return err
		}
		if c == closing {
			return nil
		}
		if c != ',' {
			return errFluxJSON
		}
	}
}

// parseByteArray parses a whole chunk array (tests and tools).
func parseByteArray(b []byte) ([]byte, error) {
	d := newFluxDecoder(bytes.NewReader(b), int64(len(b))+1)
	d.stage.lifted = true
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		return nil, errBad("invalid_chunk", "chunk must be an array of integers 0-255 (not base64)")
	}
	out, err := d.optByteArray()
	if err != nil {
		return nil, err
	}
	if _, err := d.next(); !errors.Is(err, errFluxEOF) {
		return nil, errBad("invalid_json", "unexpected data after the array")
	}
	return out, nil
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
	ctx := r.Context()
	key, err := keyFrom(ctx) // Mount checked it (AuthFluxUpload)
	if err != nil {
		s.fluxFail(w, r, err)
		return
	}
	// The key's scope and the app are checked as soon as appId is read, before the
	// chunk: a key for another app never gets its chunk read.
	var app release.App
	scope := func(id string) error {
		if !key.Allows(id) {
			return errUnauthorized
		}
		a, err := s.Store.GetApp(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return &badRequest{Status: http.StatusNotFound, Code: "app_not_found", Msg: "no such app"}
		case err != nil:
			return fmt.Errorf("flux upload: read app %s: %w", id, err)
		case a.FluxSecret == "":
			return errBad("flux_secret_not_set", "the app has no Flux secret")
		}
		app = a
		return nil
	}
	var b fluxUploadBody
	if err := decodeFluxUpload(r.Body, s.cfg.MaxUploadBody, scope, &b); err != nil {
		s.fluxFail(w, r, err)
		return
	}
	if _, onLambda := lambdahttp.EventFromContext(ctx); onLambda && len(b.Chunk) > LambdaFluxChunkLimit {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "payload_too_large",
			"message": fmt.Sprintf("this %s chunk cannot be uploaded inline: on AWS a request is at most 6 MB and a chunk travels "+
				"as a JSON array of up to 4 characters per byte, so inline Flux uploads stop at %s; publish it with the CLI's "+
				"presigned upload instead: ota release CHUNK_FILE --app %s --version %s --format chunk --flux-secret SECRET",
				fmtSize(int64(len(b.Chunk))), fmtSize(LambdaFluxChunkLimit), b.AppID, b.Version)})
		return
	}
	if s.Pipeline == nil {
		s.fluxFail(w, r, errors.New("flux upload: no publish pipeline configured"))
		return
	}
	sig := sign.FluxHMAC(app.FluxSecret, b.Chunk)
	in := publish.Input{AppID: app.ID, Version: b.Version, Format: release.FormatChunk,
		Signatures: release.Signatures{Flux: sig}, CreatedBy: key.ID}
	if b.BuildNumber != nil {
		in.BuildNumber = *b.BuildNumber
	}
	rel, err := s.Pipeline.PublishBytes(ctx, in, b.Chunk)
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
