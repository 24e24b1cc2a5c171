package api

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/urlsign"
)

// localRoutes lists the otad-only routes: health and the local folder's signed
// downloads and uploads.
func localRoutes() []Route {
	return []Route{
		{"GET", "/healthz", GroupLocal, (*Server).healthz, AuthNone},
		{"GET", "/dl/{key...}", GroupLocal, (*Server).localDownload, AuthNone},
		{"HEAD", "/dl/{key...}", GroupLocal, (*Server).localDownload, AuthNone},
		{"PUT", "/blob/{key...}", GroupLocal, (*Server).localUpload, AuthNone},
	}
}

// errInvalidKey refuses a /dl/ or /blob/ path that names no valid object key.
var errInvalidKey = errBad("invalid_key", "the path names no valid object key")

// localKey is the object key a /dl/ or /blob/ request names. A key blob.ValidKey
// refuses (NUL, dot segments, over 512 bytes, ...) or a path with an encoded slash
// (its key's segments would not be the path's) is errInvalidKey: a client error,
// answered before any signature check or file access.
func localKey(r *http.Request, prefix string) (string, error) {
	key, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || !blob.ValidKey(key) || strings.Contains(strings.ToLower(r.URL.EscapedPath()), "%2f") {
		return "", errInvalidKey
	}
	return key, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// localDownload serves otad's signed download URLs with Range support.
func (s *Server) localDownload(w http.ResponseWriter, r *http.Request) {
	if s.LocalSigner == nil || s.LocalBlobs == nil {
		writeError(w, http.StatusNotFound, "route_not_found", "downloads are served by the CDN")
		return
	}
	if _, err := localKey(r, cdn.DownloadPath); err != nil {
		s.writeErr(w, r, err)
		return
	}
	key, err := cdn.VerifyLocal(s.LocalSigner, r.URL.Path, r.URL.Query())
	if err != nil {
		code := "signature_invalid"
		if errors.Is(err, urlsign.ErrExpired) {
			code = "url_expired"
		}
		writeError(w, http.StatusForbidden, code, err.Error())
		return
	}
	f, info, err := s.LocalBlobs.File(key)
	if err != nil {
		writeError(w, statusOf(fault.KindOf(err)), "not_found", "object not found")
		return
	}
	defer f.Close()
	// Objects are immutable (content-addressed or version-pinned).
	w.Header().Set("Content-Type", info.ContentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", info.ModTime, f)
}

// localUpload receives a presigned upload and hands it to the publish pipeline, the
// way an S3 ObjectCreated event triggers the patch function on AWS. Unlike S3, it
// can ask the pipeline before storing anything whether a release still wants these
// bytes: an upload URL of an earlier creation of the version (deleted, published
// again) is refused, and one for a release that is ready already stores nothing.
func (s *Server) localUpload(w http.ResponseWriter, r *http.Request) {
	if s.LocalBlobs == nil {
		writeError(w, http.StatusNotFound, "route_not_found", "uploads go to S3")
		return
	}
	if _, err := localKey(r, blob.UploadPath); err != nil {
		s.writeErr(w, r, err)
		return
	}
	up, err := s.LocalBlobs.VerifyUpload(r.URL.Path, r.URL.Query())
	if err == nil && s.Pipeline != nil {
		err = s.Pipeline.CheckUpload(r.Context(), up.Key)
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBody)
	if errors.Is(err, publish.ErrUploadDone) {
		// The ready release's own bytes (signed for its key): nothing to store. The
		// body is read anyway, so that the client sees the answer, not a reset.
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		return
	}
	if err == nil {
		err = s.LocalBlobs.StoreUpload(r.Context(), up, r.Body)
	}
	var pe *publish.Error
	switch {
	case errors.Is(err, urlsign.ErrExpired):
		writeError(w, http.StatusForbidden, "url_expired", "upload URL expired")
		return
	case errors.Is(err, urlsign.ErrBadSig), errors.Is(err, urlsign.ErrNoSig):
		writeError(w, http.StatusForbidden, "signature_invalid", "upload URL signature invalid")
		return
	case errors.Is(err, publish.ErrStaleUpload), errors.Is(err, publish.ErrNoRelease):
		writeError(w, http.StatusConflict, "upload_stale", "this upload URL belongs to an earlier creation of the release (deleted since); create the release again for a new one")
		return
	case errors.As(err, &pe):
		writeError(w, statusOf(pe.Kind), pe.Code, pe.Msg)
		return
	case errors.Is(err, blob.ErrChecksum):
		writeError(w, http.StatusBadRequest, "checksum_mismatch", err.Error())
		return
	case err != nil:
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "upload too large")
			return
		}
		s.writeErr(w, r, err)
		return
	}
	key := up.Key
	if s.Pipeline != nil {
		// Validation runs after the bytes are stored, as on AWS; the CLI polls the
		// release. Patches are precomputed afterwards, in the background: on a big
		// bundle that takes minutes and this request would hold the CLI that long.
		// ErrBusy: a concurrent upload of the same release is validating it.
		if err := s.Pipeline.Ingest(r.Context(), key); errors.Is(err, publish.ErrBusy) {
			s.Log.Info("ingest left to the request already doing it", "key", key)
		} else if err != nil {
			s.Log.Warn("ingest failed", "key", key, "err", err)
		} else if app, version, ok := blob.ParseBundleKey(key); ok {
			s.precomputeLater(r.Context(), app, version)
		}
		s.state.invalidate(appOfKey(key))
	}
	w.WriteHeader(http.StatusOK)
}

func appOfKey(key string) string {
	app, _, _ := blob.ParseBundleKey(key)
	return app
}
