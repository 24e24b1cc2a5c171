package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// The native-update adapter (Capacitor plugin `native-update` 1.x and
// `capacitor-native-update` 2.0), see docs/protocols.md.
//
// Devices send only `GET {serverUrl}/check?channel=C`: no app id (it is in the path),
// no device id, no current or native version. So the device route always answers the
// channel's stable release, and "nothing to offer" is a 404 (Android treats any 2xx
// JSON object as an update).

// nativeUpdateCheckRoutes lists this adapter's check routes.
func nativeUpdateCheckRoutes() []Route {
	return []Route{
		{"GET", "/native-update/{appId}/check", GroupCheck, (*Server).nuDeviceCheck, AuthNone},
		{"GET", "/native-update/{appId}/bundles/{version}", GroupCheck, (*Server).nuBundle, AuthNone},
		{"GET", "/api/v1/updates/check", GroupCheck, (*Server).nuAPICheck, AuthNone},
		{"GET", "/api/v1/bundles/{version}", GroupCheck, (*Server).nuBundle, AuthNone},
	}
}

// nativeUpdateConfirmRoutes lists this adapter's confirm routes.
func nativeUpdateConfirmRoutes() []Route {
	return []Route{
		{"POST", "/api/v1/updates/confirm", GroupConfirm, (*Server).nuConfirm, AuthNone},
	}
}

// Input limits of the native-update routes (docs/protocols.md, Input limits):
// devices send a short query string, the confirm body is a flat object of a few
// short strings.
const (
	nuMaxQuery    = 4 << 10 // bytes of a check query string (the web fallback adds a few parameters)
	nuMaxVersion  = 128     // currentVersion: what the app reports it runs
	nuMaxDeviceID = 128     // as validDeviceID
	nuMaxPlatform = 32      // as validPlatform
	nuMaxBody     = 16 << 10
)

var nuConfirmLimits = jsonLimits{Body: nuMaxBody, Depth: 4, Items: 64, String: 1 << 10}

// nuQuery parses a check query string, refusing one over nuMaxQuery bytes before
// parsing it.
func nuQuery(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if queryTooLong(r, nuMaxQuery) {
		nuBad(w, codeQueryTooLong)
		return nil, false
	}
	return r.URL.Query(), true
}

// nuAnswer is the update answer: a superset of the field names every client
// variant reads. Signature fields appear only when the release carries them.
type nuAnswer struct {
	Available          bool   `json:"available"`
	UpdateAvailable    bool   `json:"updateAvailable"`
	Version            string `json:"version"`
	LatestVersion      string `json:"latestVersion"`
	URL                string `json:"url"`
	DownloadURL        string `json:"downloadUrl"`
	BundleURL          string `json:"bundleUrl"`
	Notes              string `json:"notes"`
	Description        string `json:"description"`
	ReleaseNotes       string `json:"releaseNotes"`
	Checksum           string `json:"checksum"`
	Signature          string `json:"signature,omitempty"`
	SignaturePSS       string `json:"signaturePss,omitempty"`
	SignaturePKCS1     string `json:"signaturePkcs1,omitempty"`
	SignatureAlgorithm string `json:"signatureAlgorithm,omitempty"`
	Size               int64  `json:"size"`
	Mandatory          bool   `json:"mandatory"`
	MinAppVersion      string `json:"minAppVersion"`
	MinNativeVersion   string `json:"minNativeVersion"`
	Channel            string `json:"channel"`
}

// Signature algorithm names of the `signatureAlgorithm` field.
const (
	nuAlgPSS   = "RSA-PSS-SHA256"
	nuAlgPKCS1 = "RSA-PKCS1-SHA256"
)

// nuNoUpdate is the one "nothing to offer" answer: non-2xx for Android, available:false for iOS.
func nuNoUpdate(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusNotFound, map[string]any{"available": false, "updateAvailable": false})
}

// nuBad answers malformed input: still non-2xx and available:false.
func nuBad(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"available": false, "updateAvailable": false, "error": code})
}

// nuDeviceCheck serves GET /native-update/{appId}/check?channel=C, what devices send.
// The web fallback's extra parameters (version, appId, platform) and X-App-* headers
// are ignored: the answer depends on the app in the path and the channel only.
func (s *Server) nuDeviceCheck(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("appId")
	if release.ValidAppID(app) != nil {
		nuBad(w, "invalid_app_id")
		return
	}
	q, ok := nuQuery(w, r)
	if !ok {
		return
	}
	ch := q.Get("channel")
	if ch != "" && release.ValidChannel(ch) != nil {
		nuBad(w, "invalid_channel")
		return
	}
	s.nuCheck(w, r, release.Question{AppID: app, Channel: ch})
}

// nuAPICheck serves the documented GET /api/v1/updates/check. deviceId is our
// extension: with it the device gets rollout bucketing and failure memory.
func (s *Server) nuAPICheck(w http.ResponseWriter, r *http.Request) {
	q, ok := nuQuery(w, r)
	if !ok {
		return
	}
	app := q.Get("appId")
	if app == "" {
		app = s.cfg.DefaultApp
	}
	switch {
	case app == "":
		nuBad(w, "app_id_required")
		return
	case release.ValidAppID(app) != nil:
		nuBad(w, "invalid_app_id")
		return
	}
	ch := q.Get("channel")
	if ch != "" && release.ValidChannel(ch) != nil {
		nuBad(w, "invalid_channel")
		return
	}
	cur := q.Get("currentVersion")
	if len(cur) > nuMaxVersion {
		nuBad(w, "invalid_current_version")
		return
	}
	dev := normDeviceID(q.Get("deviceId"))
	if !validDeviceID(dev) {
		nuBad(w, "invalid_device_id")
		return
	}
	platform := strings.ToLower(q.Get("platform"))
	if !validPlatform(platform) {
		nuBad(w, "invalid_platform")
		return
	}
	s.nuCheck(w, r, release.Question{AppID: app, Channel: ch, Current: cur, DeviceID: dev, Platform: platform})
}

// nuCheck decides and answers in the native-update form.
func (s *Server) nuCheck(w http.ResponseWriter, r *http.Request, q release.Question) {
	ctx := r.Context()
	d, err := s.decide(ctx, q)
	if errors.Is(err, errUnknownApp) {
		nuNoUpdate(w)
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	rel := zipUpdate(d)
	if rel == nil {
		// Up to date, blocked (failure memory) and revert all read "nothing to offer":
		// this protocol has no revert signal and no reason field the devices read.
		nuNoUpdate(w)
		return
	}
	u, err := s.URLs.URL(ctx, blob.BundleKey(rel.AppID, rel.Version, rel.BundleKey), s.cfg.URLTTL)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	app, err := s.state.app(ctx, q.AppID)
	if err != nil && !errors.Is(err, errUnknownApp) {
		s.writeErr(w, r, err)
		return
	}
	ch := q.Channel
	if ch == "" {
		ch = app.DefaultChannel
	}
	a := nuAnswer{
		Available: true, UpdateAvailable: true,
		Version: rel.Version, LatestVersion: rel.Version,
		URL: u, DownloadURL: u, BundleURL: u,
		Notes: rel.Notes, Description: rel.Notes, ReleaseNotes: rel.Notes,
		Checksum:       rel.SHA256,
		SignaturePSS:   rel.Signatures.PSS,
		SignaturePKCS1: rel.Signatures.PKCS1,
		Size:           rel.Size, Mandatory: rel.Mandatory,
		MinAppVersion: minNativeOrZero(rel), MinNativeVersion: minNativeOrZero(rel),
		Channel: ch,
	}
	a.Signature, a.SignatureAlgorithm = nuSignature(rel.Signatures, app.NativeUpdateSignature)
	w.Header().Set("Cache-Control", "no-store") // carries a short-lived signed URL
	writeJSON(w, http.StatusOK, a)
}

// nuSignature picks what `signature` carries. The plugin reads only that field and
// its versions verify different schemes (1.x: PSS salt 32; 2.0's SecurityManager:
// PKCS#1 v1.5), so the app chooses. A chosen scheme the release lacks leaves
// `signature` out: the other scheme would fail on every such device. Unset ("")
// is PSS when the release has it, else PKCS#1.
func nuSignature(sigs release.Signatures, scheme string) (sig, alg string) {
	if scheme == "" {
		scheme = release.SigPSS
		if sigs.PSS == "" {
			scheme = release.SigPKCS1
		}
	}
	switch {
	case scheme == release.SigPSS && sigs.PSS != "":
		return sigs.PSS, nuAlgPSS
	case scheme == release.SigPKCS1 && sigs.PKCS1 != "":
		return sigs.PKCS1, nuAlgPKCS1
	}
	return "", ""
}

// nuBundle serves GET /api/v1/bundles/{version}?appId= and
// GET /native-update/{appId}/bundles/{version}: a 302 to a short-lived signed URL.
func (s *Server) nuBundle(w http.ResponseWriter, r *http.Request) {
	if queryTooLong(r, nuMaxQuery) {
		writeError(w, http.StatusBadRequest, codeQueryTooLong, fmt.Sprintf("the query string is at most %d bytes", nuMaxQuery))
		return
	}
	app := r.PathValue("appId")
	if app == "" {
		app = r.URL.Query().Get("appId")
	}
	if app == "" {
		app = s.cfg.DefaultApp
	}
	switch {
	case app == "":
		writeError(w, http.StatusBadRequest, "app_id_required", "appId is required")
		return
	case release.ValidAppID(app) != nil:
		writeError(w, http.StatusBadRequest, "invalid_app_id", "invalid app id")
		return
	}
	ctx := r.Context()
	rel, err := s.servableRelease(ctx, app, r.PathValue("version"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && !plainZip(&rel)) {
		writeError(w, http.StatusNotFound, "bundle_not_found", "no such bundle")
		return
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	u, err := s.URLs.URL(ctx, blob.BundleKey(rel.AppID, rel.Version, rel.BundleKey), s.cfg.URLTTL)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	redirectNoStore(w, u)
}

// nuConfirmBody is POST /api/v1/updates/confirm. Pointers tell "absent" from zero.
type nuConfirmBody struct {
	AppID    *string `json:"appId"`
	Version  *string `json:"version"`
	Platform *string `json:"platform"`
	Success  *bool   `json:"success"`
	DeviceID *string `json:"deviceId"`
	Channel  *string `json:"channel"`
}

// nuConfirm records an install outcome. No shipped client sends it (notifyAppReady
// stays local); apps whose JS calls it feed failure memory and failure rates.
func (s *Server) nuConfirm(w http.ResponseWriter, r *http.Request) {
	var b nuConfirmBody
	if err := s.decodeBody(r, nuConfirmLimits, &b); err != nil {
		s.writeErr(w, r, err)
		return
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	app, version, dev, platform, ch := str(b.AppID), str(b.Version), normDeviceID(str(b.DeviceID)), strings.ToLower(str(b.Platform)), str(b.Channel)
	switch {
	case app == "" || version == "" || b.Success == nil:
		writeError(w, http.StatusBadRequest, "missing_field", "appId, version (strings) and success (bool) are required")
		return
	case release.ValidAppID(app) != nil:
		writeError(w, http.StatusBadRequest, "invalid_app_id", "invalid app id")
		return
	case release.ValidVersion(version) != nil:
		writeError(w, http.StatusBadRequest, "invalid_version", "invalid version")
		return
	case !validDeviceID(dev):
		writeError(w, http.StatusBadRequest, "invalid_device_id", "deviceId must be at most 128 printable characters")
		return
	case !validPlatform(platform):
		writeError(w, http.StatusBadRequest, "invalid_platform", "invalid platform")
		return
	case ch != "" && release.ValidChannel(ch) != nil:
		writeError(w, http.StatusBadRequest, "invalid_channel", "invalid channel")
		return
	}
	ctx := r.Context()
	if _, err := s.state.app(ctx, app); errors.Is(err, errUnknownApp) {
		writeError(w, http.StatusNotFound, "app_not_found", "unknown app")
		return
	} else if err != nil {
		s.writeErr(w, r, err)
		return
	}
	if _, err := s.Store.GetRelease(ctx, app, version); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "version_not_found", "unknown version")
		return
	} else if err != nil {
		s.writeErr(w, r, err)
		return
	}
	o := Outcome{AppID: app, DeviceID: dev, Channel: ch, Version: version, Platform: platform,
		Action: "native_update_confirm", Kind: OutcomeInstalled}
	if !*b.Success {
		o.Action, o.Kind = "native_update_fail", OutcomeFailed
	}
	if err := s.recordOutcome(ctx, o); err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ---- helpers shared by the native-update, Flux, seed and check-device adapters

// zipUpdate returns the release a zip-downloading client may be offered, or nil.
func zipUpdate(d release.Decision) *release.Release {
	if d.Kind != release.Update || d.Release == nil || !plainZip(d.Release) {
		return nil
	}
	return d.Release
}

// plainZip reports whether a release's served bytes are a plain zip. Opaque Flux
// chunks and Capgo-encrypted bundles are not: their checksum would match and the
// unzip on the device would then fail, so zip-only clients never see them.
func plainZip(r *release.Release) bool {
	return r.Format != release.FormatChunk && !r.Encrypted()
}

// minNativeOrZero is the release's minimum native version, "0.0.0" when unset (so
// clients that check it as semver accept it).
func minNativeOrZero(r *release.Release) string {
	if r.MinNative == "" {
		return "0.0.0"
	}
	return r.MinNative
}

// servableRelease loads a release devices may download by name: it exists, is
// ready and is not disabled. Anything else is store.ErrNotFound.
func (s *Server) servableRelease(ctx context.Context, app, version string) (release.Release, error) {
	if release.ValidAppID(app) != nil || release.ValidVersion(version) != nil {
		return release.Release{}, store.ErrNotFound
	}
	rel, err := s.state.release(ctx, app, version) // cached: on every download and check
	if err != nil {
		return rel, err
	}
	if rel.Status != release.StatusReady || rel.Disabled {
		return rel, store.ErrNotFound
	}
	return rel, nil
}

// normDeviceID makes device ids comparable across adapters: UUIDs arrive in either
// case depending on platform and plugin (the Capgo adapter lowercases them too), and
// failure memory must find the same device whichever route it came through.
func normDeviceID(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validDeviceID accepts "" (unknown) or up to nuMaxDeviceID printable ASCII characters.
func validDeviceID(s string) bool {
	if len(s) > nuMaxDeviceID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// validPlatform accepts "" (unknown) or a short lowercase word (ios, android, web...).
func validPlatform(s string) bool {
	if len(s) > nuMaxPlatform {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
