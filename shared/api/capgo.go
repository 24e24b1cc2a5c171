package api

// Capgo adapter: @capgo/capacitor-updater 6.x, 7.x and 8.x (docs/protocols.md, Capgo
// section; the version matrix is capgo_matrix_test.go).
//
// Choices made where the protocol leaves room (each one is tested in capgo_test.go):
//
//   - Decided answers (update, up to date, blocked, failed, revert) are always HTTP 200
//     and never a redirect. Input the server cannot read (not JSON, wrong field types,
//     missing app_id, oversized body) is a 4xx carrying the same error/message/kind
//     shape with kind "failed": the plugin reads both the same way, and the 4xx keeps
//     broken clients visible in access logs.
//   - The channel: the device's server-side override for plugin lines that keep their
//     channel on the server, else the body's defaultChannel when it names an existing
//     channel, else the app's default (see capgo_channel.go, which also refuses
//     private channels).
//   - Encryption keys (capgo_keyid.go): a device that sends a key_id is never
//     offered a plain bundle (iOS fails it) nor one encrypted for a key whose id does
//     not start with it. A missing key_id means "no key" (no encrypted bundle, it
//     would fail checksum_fail) only for plugin versions that send one when they
//     have a key; older ones are offered any bundle, as Capgo's backend does. The
//     encrypted checksum goes out in base64 to plugins too old to read hex.
//   - manifest (per-file delta download) is sent with every plain zip release: the
//     plugin uses it whenever present and fetches only the files it does not already
//     have. It is left out for encrypted releases (file hashes would have to be
//     P()-encrypted, which needs the private key the server never holds), for bundles
//     holding a file whose name ends in ".br" (the plugin would Brotli-decode it and
//     store it without ".br"), and for very large bundles; url stays the real zip.
//   - A channel set to "builtin" answers {"version":"builtin"}, except to a device
//     already running its store bundle (version_name "builtin" or equal to
//     version_build), which gets up_to_date: the plugin would otherwise reset and
//     reload the web view on every check.
//   - Stats: failure memory is fed only by reports whose version_name is the failing
//     target (checked in the 8.51.23 sources): update_fail, set_fail, decrypt_fail,
//     finish_download_fail, manifest_path_fail, download_manifest_{checksum,brotli}_fail
//     and iOS checksum_fail. unzip_fail, *_path_fail and Android checksum_fail carry the
//     RUNNING version, download_fail may too, and download_manifest_file_fail is
//     usually the network: those are only counted.
//   - Crash reports (app_crash, app_anr, foreground kills, renderer crashes; the list
//     is capgoCrashActions) name the bundle the device RUNS: they count toward that
//     version's rollout failure rate and automatic halt, once per device and
//     version, and never enter failure memory (outcome.go says why).
//   - channel_self: by plugin line, as Capgo's backend (see capgo_channel.go).
//   - No rate limiting: no 429, never a Retry-After.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/diskfull"
	"github.com/otakit/ota/shared/release"
)

// capgoCheckRoutes lists this adapter's check routes.
func capgoCheckRoutes() []Route {
	return []Route{
		{"POST", "/capgo/updates", GroupCheck, (*Server).capgoUpdates, AuthNone},
		{"POST", "/capgo/updates/manifest_size", GroupCheck, (*Server).capgoManifestSize, AuthNone},
	}
}

const (
	// capgoMaxManifestFiles bounds the per-file manifest (answer size, URL signing
	// work); larger bundles are served as the zip alone.
	capgoMaxManifestFiles = 5000
	// capgoDedupTTL is how long a stats event fingerprint is remembered (retries).
	capgoDedupTTL = 48 * time.Hour
)

// Input limits of every Capgo route (docs/protocols.md, Input limits). A plugin's
// device description is a flat object of well under 2 KB: the limits leave room for
// every plugin line and refuse only what no plugin sends. Going over one is a 4xx in
// the Capgo form (capgoFail), checked before anything is looked up or written.
const (
	capgoMaxBody      = 64 << 10 // updates and channel_self bodies
	capgoMaxStatsBody = 1 << 20  // a stats batch
	capgoMaxSizeBody  = 6 << 20  // manifest_size: up to capgoMaxManifestFiles entries echoed with signed URLs
	capgoMaxDepth     = 8        // nesting, unknown fields included (metadata is one level)
	// capgoMaxItems bounds any array or object; the lists the server reads have
	// their own, lower limit and code (capgoMaxEvents, capgoMaxManifestFiles).
	capgoMaxItems  = 2 * capgoMaxManifestFiles
	capgoMaxString = 16 << 10 // any one string as sent, unknown fields too
	capgoMaxQuery  = 4 << 10  // channel_self GET and DELETE query strings
	// capgoMaxEvents bounds one stats request (the plugin batches at most 200).
	capgoMaxEvents = 500

	capgoMaxAppID    = 128 // as release.ValidAppID
	capgoMaxDeviceID = 128 // as capgoDeviceRe
	capgoMaxPlatform = 32
	// capgoMaxChannel bounds device-sent channel names: no channel name is longer.
	capgoMaxChannel = 64
	// capgoMaxPluginVersion bounds plugin_version.
	capgoMaxPluginVersion = 64
	// capgoMaxKeyID is the longest key_id: plugins send 4 or 20 characters, and
	// Capgo's backend refuses more than 20.
	capgoMaxKeyID = 20
	// capgoMaxVersionName bounds version_name and old_version_name: a version, or
	// "<version>:<file>" in per-file failure stats.
	capgoMaxVersionName   = 64 + 1 + capgoMaxSizeFileName
	capgoMaxNative        = 128 // version_build, version_code, version_os: free text in store builds
	capgoMaxCustomID      = 256
	capgoMaxInstallSource = 256 // an installer package name
	capgoMaxAction        = 64  // as capgoActionRe
	capgoMaxTimestamp     = 32  // epoch milliseconds, as a JSON number
	// capgoMaxMetadata bounds one stats event's metadata (the plugin keeps each
	// value under 2 KiB and sends a dozen of them).
	capgoMaxMetadata = 64 << 10
	// Limits of one manifest_size entry: hashes of encrypted manifests are 512 hex
	// characters, paths and signed URLs stay far below these.
	capgoMaxSizeFileName = 1024
	capgoMaxSizeFileHash = 1024
	capgoMaxSizeURL      = 4096
)

var (
	capgoLimits      = jsonLimits{Body: capgoMaxBody, Depth: capgoMaxDepth, Items: capgoMaxItems, String: capgoMaxString}
	capgoStatsLimits = jsonLimits{Body: capgoMaxStatsBody, Depth: capgoMaxDepth, Items: capgoMaxItems, String: capgoMaxString}
	capgoSizeLimits  = jsonLimits{Body: capgoMaxSizeBody, Depth: capgoMaxDepth, Items: capgoMaxItems, String: capgoMaxString}
)

// capgoInfo is the device description every plugin request carries (createInfoObject
// in the plugin). Unknown fields are ignored.
type capgoInfo struct {
	AppID          string `json:"app_id"`
	DeviceID       string `json:"device_id"`
	Platform       string `json:"platform"`
	VersionName    string `json:"version_name"`
	VersionBuild   string `json:"version_build"`
	VersionCode    string `json:"version_code"`
	VersionOS      string `json:"version_os"`
	PluginVersion  string `json:"plugin_version"`
	CustomID       string `json:"custom_id"`
	DefaultChannel string `json:"defaultChannel"`
	IsEmulator     *bool  `json:"is_emulator"`
	IsProd         *bool  `json:"is_prod"`
	InstallSource  string `json:"install_source"`
	KeyID          string `json:"key_id"`
}

var capgoDeviceRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,127}$`)

// checkLimits refuses a device description with a field longer than its limit. It
// runs on every body as decoded, before normalize: fields that have a code of their
// own keep it.
func (in *capgoInfo) checkLimits() error {
	for _, f := range []struct {
		code, name, value string
		max               int
	}{
		{"invalid_app_id", "app_id", in.AppID, capgoMaxAppID},
		{"invalid_device_id", "device_id", in.DeviceID, capgoMaxDeviceID},
		{"invalid_channel", "defaultChannel", in.DefaultChannel, capgoMaxChannel},
		{"invalid_plugin_version", "plugin_version", in.PluginVersion, capgoMaxPluginVersion},
		{"invalid_key_id", "key_id", in.KeyID, capgoMaxKeyID},
		{codeFieldTooLong, "platform", in.Platform, capgoMaxPlatform},
		{codeFieldTooLong, "version_name", in.VersionName, capgoMaxVersionName},
		{codeFieldTooLong, "version_build", in.VersionBuild, capgoMaxNative},
		{codeFieldTooLong, "version_code", in.VersionCode, capgoMaxNative},
		{codeFieldTooLong, "version_os", in.VersionOS, capgoMaxNative},
		{codeFieldTooLong, "custom_id", in.CustomID, capgoMaxCustomID},
		{codeFieldTooLong, "install_source", in.InstallSource, capgoMaxInstallSource},
	} {
		if len(f.value) > f.max {
			return errBad(f.code, "%s is at most %d bytes", f.name, f.max)
		}
	}
	return nil
}

// capgoRead decodes a Capgo body within lim into v and checks the limits of the
// device description it carries.
func (s *Server) capgoRead(r *http.Request, lim jsonLimits, v any, in *capgoInfo) error {
	if err := s.decodeBody(r, lim, v); err != nil {
		return err
	}
	return in.checkLimits()
}

// normalize checks and canonicalizes the fields the server uses.
func (in *capgoInfo) normalize() error {
	in.AppID = strings.TrimSpace(in.AppID)
	if in.AppID == "" {
		return errBad("missing_app_id", "app_id is required")
	}
	if err := release.ValidAppID(in.AppID); err != nil {
		return errBad("invalid_app_id", "%v", err)
	}
	// Device ids are UUIDs whose case differs between platforms and plugin versions.
	in.DeviceID = strings.ToLower(strings.TrimSpace(in.DeviceID))
	if in.DeviceID != "" && !capgoDeviceRe.MatchString(in.DeviceID) {
		return errBad("invalid_device_id", "device_id must be a UUID-like id of at most 128 characters")
	}
	in.Platform = strings.ToLower(strings.TrimSpace(in.Platform))
	in.VersionName = strings.TrimSpace(in.VersionName)
	in.VersionBuild = strings.TrimSpace(in.VersionBuild)
	in.DefaultChannel = strings.TrimSpace(in.DefaultChannel)
	return nil
}

// onBuiltin reports whether the device runs the bundle shipped in the store binary:
// 8.x names it after version_build, older plugins "builtin".
func (in *capgoInfo) onBuiltin() bool {
	return in.VersionName == "builtin" || (in.VersionName != "" && in.VersionName == in.VersionBuild)
}

// current is the running bundle version as the decision compares it.
func (in *capgoInfo) current() string {
	if in.VersionName == "builtin" {
		return in.VersionBuild
	}
	return in.VersionName
}

// ---- update check

// capgoNoUpdate is every answer that is not an update. The plugin reads any error or
// kind key as "no update".
type capgoNoUpdate struct {
	Error    string `json:"error"`
	Message  string `json:"message"`
	Kind     string `json:"kind"` // up_to_date | blocked | failed
	Breaking bool   `json:"breaking,omitempty"`
	Version  string `json:"version,omitempty"`
}

// capgoUpdate is an update answer. It never has a message (JS getLatest() rejects it),
// and every field is a string, bool or the manifest (iOS decodes strictly).
type capgoUpdate struct {
	Version    string          `json:"version"`
	URL        string          `json:"url"`
	Checksum   string          `json:"checksum"`
	SessionKey string          `json:"session_key,omitempty"`
	Manifest   []capgoManifest `json:"manifest,omitempty"`
	Comment    string          `json:"comment,omitempty"`
}

type capgoManifest struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
}

const (
	capgoUpToDate = "up_to_date"
	capgoBlocked  = "blocked"
	capgoFailed   = "failed"
)

func capgoAnswer(w http.ResponseWriter, kind, code, msg string) {
	writeJSON(w, http.StatusOK, capgoNoUpdate{Error: code, Message: msg, Kind: kind})
}

// capgoBadInput answers input the server could not read: 4xx, same shape as a failed check.
func (s *Server) capgoBadInput(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeJSON(w, br.Status, capgoNoUpdate{Error: br.Code, Message: br.Msg, Kind: capgoFailed})
		return
	}
	if s.storageFull(r, err) {
		writeJSON(w, http.StatusInsufficientStorage, capgoNoUpdate{Error: diskfull.Code, Message: diskfull.Advice, Kind: capgoFailed})
		return
	}
	s.Log.Error("capgo check failed", "path", redactPath(r.URL.Path), "err", err)
	writeJSON(w, http.StatusInternalServerError, capgoNoUpdate{Error: "internal", Message: "internal error", Kind: capgoFailed})
}

// capgoFail answers an error of the other Capgo routes (stats, channel_self,
// manifest_size): client errors in the same Capgo form, anything else as writeErr.
func (s *Server) capgoFail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	if errors.As(err, &br) {
		writeJSON(w, br.Status, capgoNoUpdate{Error: br.Code, Message: br.Msg, Kind: capgoFailed})
		return
	}
	s.writeErr(w, r, err)
}

func (s *Server) capgoUpdates(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoInfo
	if err := s.capgoRead(r, capgoLimits, &in, &in); err != nil {
		s.capgoBadInput(w, r, err)
		return
	}
	if err := in.normalize(); err != nil {
		s.capgoBadInput(w, r, err)
		return
	}
	app, err := s.state.app(ctx, in.AppID)
	if errors.Is(err, errUnknownApp) {
		capgoAnswer(w, capgoFailed, "unknown_app", "app "+in.AppID+" is not registered on this server")
		return
	}
	if err != nil {
		s.capgoBadInput(w, r, err)
		return
	}
	channel, refused, err := s.capgoChannel(ctx, app, &in)
	if err != nil {
		s.capgoBadInput(w, r, err)
		return
	}
	if refused != nil {
		writeJSON(w, http.StatusOK, refused)
		return
	}
	q := release.Question{
		AppID:    in.AppID,
		Platform: in.Platform,
		Channel:  channel,
		DeviceID: in.DeviceID,
		Current:  in.current(),
		Native:   in.VersionBuild,
		Emulator: in.IsEmulator != nil && *in.IsEmulator,
		DevBuild: in.IsProd != nil && !*in.IsProd,
	}
	q.KeyAware, q.KeyID = capgoKeyQuestion(in.PluginVersion, in.KeyID)
	d, err := s.decide(ctx, q)
	if err != nil {
		s.capgoBadInput(w, r, err)
		return
	}
	s.capgoWriteDecision(w, r, &in, channel, d)
}

func (s *Server) capgoWriteDecision(w http.ResponseWriter, r *http.Request, in *capgoInfo, channel string, d release.Decision) {
	rel := d.Release
	switch d.Kind {
	case release.Revert:
		if in.onBuiltin() {
			capgoAnswer(w, capgoUpToDate, release.ReasonUpToDate, "Already on the built-in bundle")
			return
		}
		// Exactly this: the plugin checks "builtin" before anything else.
		writeJSON(w, http.StatusOK, map[string]string{"version": "builtin"})
	case release.UpToDate:
		capgoAnswer(w, capgoUpToDate, release.ReasonUpToDate, "No new version available")
	case release.NoRelease:
		switch d.Reason {
		case release.ReasonNoChannel:
			capgoAnswer(w, capgoFailed, d.Reason, "Channel "+channel+" does not exist")
		case release.ReasonPlatform:
			capgoAnswer(w, capgoBlocked, d.Reason, "Channel "+channel+" has no bundle for "+in.Platform)
		default:
			capgoAnswer(w, capgoFailed, release.ReasonNoBundle, "Channel "+channel+" has no bundle")
		}
	case release.Blocked:
		a := capgoNoUpdate{Error: d.Reason, Kind: capgoBlocked}
		switch d.Reason {
		case release.ReasonNativeTooOld:
			a.Message = fmt.Sprintf("Version %s needs native version %s or newer", rel.Version, rel.MinNative)
			a.Breaking, a.Version = true, rel.Version
		case release.ReasonFailedBefore:
			a.Message = "Version " + rel.Version + " failed on this device; it is not offered again for now"
		case release.ReasonKeyMismatch:
			a.Message = capgoKeyMessage(in, rel)
		case release.ReasonEmulator:
			a.Message = "Channel " + channel + " does not update emulators"
		case release.ReasonDevBuild:
			a.Message = "Channel " + channel + " does not update development builds"
		default:
			a.Message = "Update blocked (" + d.Reason + ")"
		}
		writeJSON(w, http.StatusOK, a)
	case release.Update:
		s.capgoWriteUpdate(w, r, in, channel, rel)
	default:
		capgoAnswer(w, capgoFailed, "internal", "unexpected decision")
	}
}

func capgoKeyMessage(in *capgoInfo, rel *release.Release) string {
	switch {
	case in.KeyID == "":
		return "Version " + rel.Version + " is encrypted and this app has no public key"
	case !rel.Encrypted():
		return "Version " + rel.Version + " is not encrypted and this app expects encrypted bundles"
	default:
		return "Version " + rel.Version + " is encrypted for another key"
	}
}

func (s *Server) capgoWriteUpdate(w http.ResponseWriter, r *http.Request, in *capgoInfo, channel string, rel *release.Release) {
	ctx := r.Context()
	enc := rel.Encrypted()
	switch {
	case enc && rel.Signatures.EncChecksum == "":
		s.Log.Error("capgo: encrypted release without encrypted checksum", "app", rel.AppID, "version", rel.Version)
		capgoAnswer(w, capgoFailed, release.ReasonNoBundle, "Version "+rel.Version+" has no encrypted checksum")
		return
	case !enc && rel.Format != "":
		// Opaque uploads (Flux chunks) are not zips a Capgo device could unpack.
		capgoAnswer(w, capgoFailed, release.ReasonNoBundle, "Channel "+channel+" has no zip bundle")
		return
	}
	zipURL, err := s.capgoURL(ctx, r, blob.BundleKey(rel.AppID, rel.Version, rel.BundleKey))
	if err != nil {
		s.capgoBadInput(w, r, err)
		return
	}
	a := capgoUpdate{Version: rel.Version, URL: zipURL, Checksum: rel.SHA256, Comment: rel.Notes}
	if enc {
		// Made by the CLI with the private key; passed on as made, in base64 for
		// plugins too old to read hex.
		a.Checksum, a.SessionKey = capgoEncChecksum(in.PluginVersion, rel.Signatures.EncChecksum), rel.Signatures.SessionKey
	} else if rel.Format == "" {
		a.Manifest = s.capgoManifest(ctx, r, rel)
	}
	writeJSON(w, http.StatusOK, a)
}

// capgoURL signs a download URL and makes sure it is absolute (the plugin refuses
// anything else). It lives CapgoURLTTL: Android downloads in a background job that
// may wait days for a network and then uses the URL it was given.
func (s *Server) capgoURL(ctx context.Context, r *http.Request, key string) (string, error) {
	u, err := s.URLs.URL(ctx, key, s.cfg.CapgoURLTTL)
	if err != nil {
		return "", fmt.Errorf("sign url for %s: %w", key, err)
	}
	if p, err := url.Parse(u); err != nil || p.Scheme == "" || p.Host == "" {
		u = s.baseURL(r) + "/" + strings.TrimLeft(u, "/")
	}
	return u, nil
}

var sha256HexRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// capgoManifest lists every file of a plain release with a signed URL each, or nil
// when the device should download the zip instead. A missing or unreadable manifest
// never fails the check: the zip is always there.
func (s *Server) capgoManifest(ctx context.Context, r *http.Request, rel *release.Release) []capgoManifest {
	if rel.Files > capgoMaxManifestFiles {
		return nil
	}
	m, err := s.manifest(ctx, rel.AppID, rel.Version)
	if err != nil {
		s.Log.Warn("capgo: manifest unavailable, serving the zip only", "app", rel.AppID, "version", rel.Version, "err", err)
		return nil
	}
	if len(m.Files) == 0 || len(m.Files) > capgoMaxManifestFiles {
		return nil
	}
	out := make([]capgoManifest, 0, len(m.Files))
	urls := map[string]string{} // one signature per distinct content
	for _, f := range m.Files {
		if strings.HasSuffix(f.Path, ".br") || !sha256HexRe.MatchString(f.SHA256) || f.Path == "" {
			return nil
		}
		u, ok := urls[f.SHA256]
		if !ok {
			if u, err = s.capgoURL(ctx, r, blob.FileKey(f.SHA256)); err != nil {
				s.Log.Warn("capgo: cannot sign file url, serving the zip only", "err", err)
				return nil
			}
			urls[f.SHA256] = u
		}
		out = append(out, capgoManifest{FileName: f.Path, FileHash: f.SHA256, DownloadURL: u})
	}
	return out
}
