package api

import (
	"errors"
	"net/http"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/urlsign"
)

// localRoutes lists the otad-only routes: health and the local folder's signed
// downloads and uploads.
func localRoutes() []Route {
	return []Route{
		{"GET", "/healthz", GroupLocal, (*Server).healthz},
		{"GET", "/dl/{key...}", GroupLocal, (*Server).localDownload},
		{"HEAD", "/dl/{key...}", GroupLocal, (*Server).localDownload},
		{"PUT", "/blob/{key...}", GroupLocal, (*Server).localUpload},
	}
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
		writeError(w, blob.StatusOf(err), "not_found", "object not found")
		return
	}
	defer f.Close()
	// Objects are immutable (content-addressed or version-pinned).
	w.Header().Set("Content-Type", info.ContentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", info.ModTime, f)
}

// localUpload receives a presigned upload and hands it to the publish pipeline, the
// way an S3 ObjectCreated event triggers the patch function on AWS.
func (s *Server) localUpload(w http.ResponseWriter, r *http.Request) {
	if s.LocalBlobs == nil {
		writeError(w, http.StatusNotFound, "route_not_found", "uploads go to S3")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBody)
	key, err := s.LocalBlobs.ReceiveUpload(r.Context(), r.URL.Path, r.URL.Query(), r.Body)
	switch {
	case errors.Is(err, urlsign.ErrExpired):
		writeError(w, http.StatusForbidden, "url_expired", "upload URL expired")
		return
	case errors.Is(err, urlsign.ErrBadSig), errors.Is(err, urlsign.ErrNoSig):
		writeError(w, http.StatusForbidden, "signature_invalid", "upload URL signature invalid")
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
	if s.Pipeline != nil {
		// Validation runs after the bytes are stored, as on AWS; the CLI polls the
		// release. Patches are precomputed afterwards, in the background: on a big
		// bundle that takes minutes and this request would hold the CLI that long.
		if err := s.Pipeline.Ingest(r.Context(), key); err != nil {
			s.Log.Warn("ingest failed", "key", key, "err", err)
		} else if app, version, ok := blob.ParseBundleKey(key); ok {
			s.precomputeLater(app, version)
		}
		s.state.invalidate(appOfKey(key))
	}
	w.WriteHeader(http.StatusOK)
}

func appOfKey(key string) string {
	app, _, _ := blob.ParseBundleKey(key)
	return app
}
