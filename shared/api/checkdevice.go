package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/sign"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
)

// The Ionic/Appflow-style check-device protocol, which our own Go device client
// speaks, see docs/protocols.md (check-device).
//
// A protected app (one with a device token) answers these routes only to requests
// carrying "Authorization: Bearer <device token>"; others get 401.

// checkDeviceCheckRoutes lists this adapter's check routes (all of its routes).
func checkDeviceCheckRoutes() []Route {
	return []Route{
		{"POST", "/apps/{appId}/channels/check-device", GroupCheck, (*Server).cdCheck, AuthDeviceToken},
		{"GET", "/apps/{appId}/snapshots/{id}/zip", GroupCheck, (*Server).cdSnapshotZip, AuthDeviceToken},
		{"GET", "/apps/{appId}/snapshots/{id}/manifest", GroupCheck, (*Server).cdSnapshotManifest, AuthDeviceToken},
	}
}

// Input limits of the check-device routes (docs/protocols.md, Input limits): the
// check body is a flat object of short strings.
const (
	cdMaxBody        = 16 << 10
	cdMaxNative      = 64  // binary_version, platform_version
	cdMaxUpdateID    = 128 // current_update_id / snapshot_id and the {id} of snapshot routes: a version or release id
	cdMaxDeviceToken = 512 // the Authorization header's token (tokens are set with at least 16 characters)
)

var cdLimits = jsonLimits{Body: cdMaxBody, Depth: 4, Items: 64, String: 1 << 10}

func releaseRef(r *release.Release) string {
	if r.ID != "" {
		return r.ID
	}
	return r.Version
}

func (s *Server) cdCheck(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("appId")
	if release.ValidAppID(app) != nil {
		writeError(w, http.StatusBadRequest, "invalid_app_id", "invalid app id")
		return
	}
	// A protected app's token was checked by Mount (AuthDeviceToken), before the
	// body is read.
	ctx := r.Context()
	var in wire.CheckRequest
	if err := s.decodeBody(r, cdLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	platform := strings.ToLower(in.Platform)
	in.DeviceID = normDeviceID(in.DeviceID)
	cur := in.CurrentUpdateID
	if cur == "" {
		cur = in.SnapshotID
	}
	switch {
	case in.ChannelName != "" && release.ValidChannel(in.ChannelName) != nil:
		writeError(w, http.StatusBadRequest, "invalid_channel", "invalid channel_name")
		return
	case !validDeviceID(in.DeviceID):
		writeError(w, http.StatusBadRequest, "invalid_device_id", "device_id must be at most 128 printable characters")
		return
	case !validPlatform(platform):
		writeError(w, http.StatusBadRequest, "invalid_platform", "invalid platform")
		return
	case len(in.BinaryVersion) > cdMaxNative || len(in.PlatformVersion) > cdMaxNative || len(cur) > cdMaxUpdateID:
		writeError(w, http.StatusBadRequest, "invalid_field", "field too long")
		return
	}
	// The current update may be named by release id or by version: Decide compares
	// versions, so an id is matched after deciding.
	q := release.Question{AppID: app, Channel: in.ChannelName, DeviceID: in.DeviceID, Platform: platform,
		Current: cur, Native: in.BinaryVersion}
	d, err := s.decide(ctx, q)
	if errors.Is(err, errUnknownApp) {
		writeError(w, http.StatusNotFound, "app_not_found", "unknown app")
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if d.Release != nil && cur != "" && (cur == d.Release.ID || cur == d.Release.Version) {
		writeJSON(w, http.StatusOK, wire.CheckNoUpdate{Available: false, Compatible: true})
		return
	}
	switch {
	case d.Kind == release.Revert:
		writeJSON(w, http.StatusOK, wire.CheckNoUpdate{Available: true, Compatible: true, RevertToBuiltin: true})
		return
	case d.Kind == release.Blocked && d.Breaking && d.Release != nil && plainZip(d.Release):
		writeJSON(w, http.StatusOK, wire.CheckIncompatible{Available: true, Compatible: false, UpdateID: releaseRef(d.Release),
			Version: d.Release.Version, MinBinaryVersion: minNativeOrZero(d.Release)})
		return
	}
	rel := zipUpdate(d)
	if rel == nil {
		writeJSON(w, http.StatusOK, wire.CheckNoUpdate{Available: false, Compatible: true})
		return
	}
	a, err := s.cdAnswer(ctx, r, rel, cur)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// cdAnswer builds the compatible-update answer for rel, offered to a device on cur.
func (s *Server) cdAnswer(ctx context.Context, r *http.Request, rel *release.Release, cur string) (wire.CheckUpdate, error) {
	ref := releaseRef(rel)
	integrity, err := sign.SRIFromHex(rel.SHA256)
	if err != nil {
		return wire.CheckUpdate{}, err
	}
	artifact, err := s.URLs.URL(ctx, blob.BundleKey(rel.AppID, rel.Version, rel.BundleKey), s.cfg.URLTTL)
	if err != nil {
		return wire.CheckUpdate{}, err
	}
	base := s.baseURL(r) + "/apps/" + rel.AppID + "/snapshots/" + ref
	a := wire.CheckUpdate{Available: true, Compatible: true, UpdateID: ref, Snapshot: ref, Version: rel.Version,
		URL: base + "/zip", ManifestURL: base + "/manifest", ArtifactURL: artifact, Integrity: integrity,
		SHA256: rel.SHA256, Size: rel.Size, Mandatory: rel.Mandatory, MinBinaryVersion: minNativeOrZero(rel)}
	if cur == "" {
		return a, nil
	}
	// Offer a patch only from exactly the version the device runs: it cannot apply
	// any other. Only precomputed patches are offered (no work on the check path); a
	// missing one is requested, so the next device on that version gets it.
	from, err := s.cdFind(ctx, rel.AppID, cur)
	if errors.Is(err, store.ErrNotFound) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	if !plainZip(&from) {
		return a, nil
	}
	p, err := s.state.patch(ctx, rel.AppID, publish.KindTree, from.Version, rel.Version)
	if errors.Is(err, store.ErrNotFound) {
		if from.Status == release.StatusReady && from.Version != rel.Version && !errors.Is(err, errPatchMissing) {
			s.requestPatch(ctx, rel.AppID, publish.KindTree, from.Version, rel.Version)
		}
		return a, nil
	}
	if err != nil {
		return a, err
	}
	u, err := s.URLs.URL(ctx, p.Key, s.cfg.URLTTL)
	if err != nil {
		return a, err
	}
	a.Patches = []wire.CheckPatch{{From: from.Version, URL: u, Size: p.Size, SHA256: p.SHA256}}
	return a, nil
}

// cdFind resolves a snapshot reference: a version name, else a release id.
func (s *Server) cdFind(ctx context.Context, app, ref string) (release.Release, error) {
	if release.ValidVersion(ref) == nil {
		rel, err := s.state.release(ctx, app, ref)
		if !errors.Is(err, store.ErrNotFound) {
			return rel, err
		}
	}
	if !strings.HasPrefix(ref, "rel_") {
		return release.Release{}, store.ErrNotFound
	}
	return s.state.releaseByID(ctx, app, ref) // devices send back the ids we hand out
}

// cdSnapshot resolves {appId}/{id} to a servable zip release.
func (s *Server) cdSnapshot(w http.ResponseWriter, r *http.Request) (release.Release, bool) {
	app, id := r.PathValue("appId"), r.PathValue("id")
	if release.ValidAppID(app) != nil || len(id) > cdMaxUpdateID {
		writeError(w, http.StatusNotFound, "snapshot_not_found", "no such snapshot")
		return release.Release{}, false
	}
	rel, err := s.cdFind(r.Context(), app, id)
	if err == nil && (rel.Status != release.StatusReady || rel.Disabled || !plainZip(&rel)) {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "snapshot_not_found", "no such snapshot")
		return rel, false
	}
	if err != nil {
		s.writeErr(w, r, err)
		return rel, false
	}
	return rel, true
}

// cdSnapshotZip redirects to a short-lived signed URL of the (immutable) zip.
func (s *Server) cdSnapshotZip(w http.ResponseWriter, r *http.Request) {
	rel, ok := s.cdSnapshot(w, r)
	if !ok {
		return
	}
	u, err := s.URLs.URL(r.Context(), blob.BundleKey(rel.AppID, rel.Version, rel.BundleKey), s.cfg.URLTTL)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	redirectNoStore(w, u)
}

// cdFileEntry is one file of the per-file manifest.
type cdFileEntry struct {
	Integrity string `json:"integrity"`
	Size      int64  `json:"size"`
	URL       string `json:"url"`
}

type cdManifest struct {
	Version   int                    `json:"version"`
	Timestamp string                 `json:"timestamp"`
	Files     map[string]cdFileEntry `json:"files"`
}

// cdSnapshotManifest answers the per-file manifest (format version 2) with a
// signed, content-addressed URL per file, so a client fetches only changed files.
func (s *Server) cdSnapshotManifest(w http.ResponseWriter, r *http.Request) {
	rel, ok := s.cdSnapshot(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	m, err := s.manifest(ctx, rel.AppID, rel.Version)
	if errors.Is(err, blob.ErrNotFound) {
		writeError(w, http.StatusNotFound, "snapshot_not_found", "snapshot has no manifest")
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	ts := rel.ReadyAt
	if ts.IsZero() {
		ts = rel.CreatedAt
	}
	out := cdManifest{Version: 2, Timestamp: ts.UTC().Format(time.RFC3339), Files: make(map[string]cdFileEntry, len(m.Files))}
	for _, f := range m.Files {
		integrity, err := sign.SRIFromHex(f.SHA256)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		u, err := s.URLs.URL(ctx, blob.FileKey(f.SHA256), s.cfg.URLTTL)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		out.Files[f.Path] = cdFileEntry{Integrity: integrity, Size: f.Size, URL: u}
	}
	w.Header().Set("Cache-Control", "no-store") // carries short-lived signed URLs
	writeJSON(w, http.StatusOK, out)
}

var errDeviceToken = errors.New("device token missing or wrong")

// cdRouteAuth is the AuthDeviceToken check Mount runs before the handler. A path
// the handler refuses anyway (an invalid app id; a snapshot id too long) is left
// to it, so that those keep their own answers (400 invalid_app_id, 404
// snapshot_not_found) whatever the token.
func (s *Server) cdRouteAuth(r *http.Request) error {
	app := r.PathValue("appId")
	if release.ValidAppID(app) != nil || len(r.PathValue("id")) > cdMaxUpdateID {
		return nil
	}
	return s.cdAuthorize(r, app)
}

// cdAuthorize checks the device token of a protected app (constant time).
func (s *Server) cdAuthorize(r *http.Request, app string) error {
	a, err := s.state.app(r.Context(), app)
	if err != nil || a.DeviceTokenHash == "" {
		return err
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || len(tok) > cdMaxDeviceToken || subtle.ConstantTimeCompare([]byte(store.HashKey(strings.TrimSpace(tok))), []byte(a.DeviceTokenHash)) != 1 {
		return errDeviceToken
	}
	return nil
}

func (s *Server) cdAuthError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errDeviceToken):
		writeError(w, http.StatusUnauthorized, "unauthorized", "this app needs a device token (Authorization: Bearer)")
	case errors.Is(err, errUnknownApp):
		writeError(w, http.StatusNotFound, "app_not_found", "unknown app")
	default:
		s.writeErr(w, r, err)
	}
}
