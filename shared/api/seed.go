package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// The self-hosted manifest/download pair (a Capacitor app using Capgo in manual
// mode), see docs/protocols.md.
//
// The app sends nothing that identifies it: the app and channel come from the query
// (scripts, tests), from the path the app's serverUrl points at
// (/seed/{appId}/{channel}/api/v1), or from the server's default app (bare form).
// No device id: the channel's stable release only. No native version: the
// minimum is published as minNativeVersion for the app to enforce.

// seedCheckRoutes lists this adapter's check routes (all of its routes).
func seedCheckRoutes() []Route {
	return []Route{
		{"GET", "/api/v1/native/bundle/manifest", GroupCheck, (*Server).seedManifest, AuthNone},
		{"GET", "/api/v1/native/bundle/download", GroupCheck, (*Server).seedDownload, AuthNone},
		{"GET", "/seed/{appId}/{channel}/api/v1/native/bundle/manifest", GroupCheck, (*Server).seedManifest, AuthNone},
		{"GET", "/seed/{appId}/{channel}/api/v1/native/bundle/download", GroupCheck, (*Server).seedDownload, AuthNone},
	}
}

// Error details, as the original backend spelled them.
const (
	seedNotAvailable = "NATIVE_OTA_BUNDLE_NOT_AVAILABLE"
	seedAppRequired  = "NATIVE_APP_REQUIRED"
	seedQueryTooLong = "QUERY_TOO_LONG"
)

// seedMaxQuery bounds the query string (appId, channel, version: the app sends none
// of them on the path form). The values themselves are bounded by their validation
// (release.ValidAppID, ValidChannel, ValidVersion), as the path values are.
const seedMaxQuery = 2 << 10

func seedError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

// seedManifestAnswer is the manifest; statement/signature only when the release has them.
type seedManifestAnswer struct {
	Version          string `json:"version"`
	URL              string `json:"url"`
	Checksum         string `json:"checksum"`
	MinNativeVersion string `json:"minNativeVersion"`
	Statement        string `json:"statement,omitempty"`
	Signature        string `json:"signature,omitempty"`
}

// seedTarget is the app and channel a request names; pathForm is true for /seed/....
type seedTarget struct {
	app, channel string
	pathForm     bool
}

// seedResolve reads the app and channel from the path, the query or the default app.
func (s *Server) seedResolve(w http.ResponseWriter, r *http.Request) (seedTarget, bool) {
	t := seedTarget{app: r.PathValue("appId"), channel: r.PathValue("channel")}
	t.pathForm = t.app != ""
	if queryTooLong(r, seedMaxQuery) {
		seedError(w, http.StatusBadRequest, seedQueryTooLong)
		return t, false
	}
	q := r.URL.Query()
	if !t.pathForm {
		t.app, t.channel = q.Get("appId"), q.Get("channel")
		if t.app == "" {
			t.app = s.cfg.DefaultApp
		}
	}
	switch {
	case t.app == "":
		seedError(w, http.StatusBadRequest, seedAppRequired)
		return t, false
	case release.ValidAppID(t.app) != nil:
		seedError(w, http.StatusBadRequest, "INVALID_APP_ID")
		return t, false
	case t.channel != "" && release.ValidChannel(t.channel) != nil:
		seedError(w, http.StatusBadRequest, "INVALID_CHANNEL")
		return t, false
	}
	if v := q.Get("version"); v != "" && release.ValidVersion(v) != nil {
		seedError(w, http.StatusBadRequest, "INVALID_VERSION")
		return t, false
	}
	return t, true
}

// seedHead decides the channel head for a client without device id.
func (s *Server) seedHead(ctx context.Context, t seedTarget) (*release.Release, error) {
	d, err := s.decide(ctx, release.Question{AppID: t.app, Channel: t.channel})
	if errors.Is(err, errUnknownApp) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return zipUpdate(d), nil
}

func (s *Server) seedManifest(w http.ResponseWriter, r *http.Request) {
	// The manifest points at whatever is current: caches must revalidate.
	w.Header().Set("Cache-Control", "no-cache")
	t, ok := s.seedResolve(w, r)
	if !ok {
		return
	}
	rel, err := s.seedHead(r.Context(), t)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	if rel == nil {
		seedError(w, http.StatusNotFound, seedNotAvailable)
		return
	}
	// The download URL is absolute (a root-relative path would lose any prefix the
	// app's serverUrl has) and pinned to this version (immutable bytes).
	var u string
	if t.pathForm {
		u = s.baseURL(r) + "/seed/" + t.app + "/" + t.channel + "/api/v1/native/bundle/download?" +
			url.Values{"version": {rel.Version}}.Encode()
	} else {
		u = s.baseURL(r) + "/api/v1/native/bundle/download?" + url.Values{"appId": {t.app}, "version": {rel.Version}}.Encode()
	}
	writeJSON(w, http.StatusOK, seedManifestAnswer{Version: rel.Version, URL: u, Checksum: rel.SHA256,
		MinNativeVersion: minNativeOrZero(rel), Statement: rel.Signatures.Statement, Signature: rel.Signatures.StatementSig})
}

// seedDownload serves the zip bytes: pinned (version=...) immutable, or the current
// head with no-cache. Range requests answer 206 (the plugin resumes).
func (s *Server) seedDownload(w http.ResponseWriter, r *http.Request) {
	t, ok := s.seedResolve(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	version := r.URL.Query().Get("version")
	var rel *release.Release
	cache := immutableCache
	if version != "" {
		x, err := s.servableRelease(ctx, t.app, version)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeErr(w, r, err)
			return
		}
		if err == nil && plainZip(&x) {
			rel = &x
		}
	} else {
		cache = "no-cache"
		x, err := s.seedHead(ctx, t)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		rel = x
	}
	if rel == nil {
		seedError(w, http.StatusNotFound, seedNotAvailable)
		return
	}
	err := s.serveObject(w, r, download{key: blob.BundleKey(rel.AppID, rel.Version, rel.BundleKey), contentType: "application/zip",
		etag: `"` + rel.SHA256 + `"`, cacheControl: cache})
	if errors.Is(err, blob.ErrNotFound) {
		seedError(w, http.StatusNotFound, seedNotAvailable)
	} else if err != nil {
		s.writeErr(w, r, err)
	}
}
