package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
)

// The management API (/v1): JSON in and out, an API key in Authorization: Bearer,
// every change audited.

// manageAdminRoutes lists the admin routes of the management API.
func manageAdminRoutes() []Route {
	return []Route{
		{"GET", "/v1/apps", GroupAdmin, (*Server).listApps, AuthKey},
		{"POST", "/v1/apps", GroupAdmin, (*Server).createApp, AuthKeyAdmin},
		{"GET", "/v1/apps/{app}", GroupAdmin, (*Server).getApp, AuthKeyApp},
		{"PATCH", "/v1/apps/{app}", GroupAdmin, (*Server).updateApp, AuthKeyApp},
		{"GET", "/v1/apps/{app}/releases", GroupAdmin, (*Server).listReleases, AuthKeyApp},
		{"GET", "/v1/apps/{app}/releases/{version}", GroupAdmin, (*Server).getRelease, AuthKeyApp},
		{"DELETE", "/v1/apps/{app}/releases/{version}", GroupAdmin, (*Server).deleteRelease, AuthKeyApp},
		{"GET", "/v1/apps/{app}/channels", GroupAdmin, (*Server).listChannels, AuthKeyApp},
		{"GET", "/v1/apps/{app}/channels/{channel}", GroupAdmin, (*Server).getChannel, AuthKeyApp},
		{"PUT", "/v1/apps/{app}/channels/{channel}", GroupAdmin, (*Server).setChannel, AuthKeyApp},
		{"GET", "/v1/keys", GroupAdmin, (*Server).listKeys, AuthKeyAdmin},
		{"POST", "/v1/keys", GroupAdmin, (*Server).createKey, AuthKeyAdmin},
		{"DELETE", "/v1/keys/{id}", GroupAdmin, (*Server).revokeKey, AuthKeyAdmin},
	}
}

// manageUploadRoutes lists the upload routes of the management API (release creation).
func manageUploadRoutes() []Route {
	return []Route{
		{"POST", "/v1/apps/{app}/releases", GroupUpload, (*Server).createRelease, AuthKeyApp},
		{"POST", "/v1/apps/{app}/releases/{version}/complete", GroupUpload, (*Server).completeRelease, AuthKeyApp},
	}
}

// Input limits of the management API (docs/protocols.md, Input limits). Every
// route checks the API key before it reads a body, and every body is bounded as a
// whole and field by field before anything is stored.
const (
	manageMaxBody   = 64 << 10
	manageMaxDepth  = 8
	manageMaxItems  = 256      // any array or object
	manageMaxString = 16 << 10 // any one string as sent
	manageMaxName   = 256      // app and key names
	manageMaxSecret = 512      // flux_secret (device_token: cdMaxDeviceToken, what the header may carry)
	// manageMaxKeyApps bounds the apps one key is scoped to.
	manageMaxKeyApps = 100
	// manageMaxNotes bounds release notes: they go out in every update answer.
	manageMaxNotes     = 8 << 10
	manageMaxPlatform  = 32
	manageMaxMinNative = 64 // as a version
	// manageMaxSignature bounds each signature field: RSA-4096 in base64 is 684
	// bytes, Capgo's encrypted checksum 512 hex, a seed statement a few hundred.
	manageMaxSignature = 4 << 10
)

var manageLimits = jsonLimits{Body: manageMaxBody, Depth: manageMaxDepth, Items: manageMaxItems, String: manageMaxString}

// storeErr maps store errors to API errors.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &badRequest{Status: http.StatusNotFound, Code: what + "_not_found", Msg: what + " not found"}
	case errors.Is(err, store.ErrExists):
		return &badRequest{Status: http.StatusConflict, Code: what + "_exists", Msg: what + " already exists"}
	case errors.Is(err, store.ErrConflict):
		return &badRequest{Status: http.StatusConflict, Code: "conflict", Msg: "concurrent change, retry"}
	}
	var pe *publish.Error
	if errors.As(err, &pe) {
		return &badRequest{Status: statusOf(pe.Kind), Code: pe.Code, Msg: pe.Msg}
	}
	return err
}

// appParam returns the {app} of an AuthKeyApp route, which must exist, and the key
// Mount checked for it (the id is valid and in the key's scope by then).
func (s *Server) appParam(r *http.Request) (release.App, store.APIKey, error) {
	k, err := keyFrom(r.Context())
	if err != nil {
		return release.App{}, k, err
	}
	a, err := s.Store.GetApp(r.Context(), r.PathValue("app"))
	return a, k, storeErr(err, "app")
}

// appRead answers a read of one app's data: the key's scope is checked, fetch runs
// and its result is the JSON answer.
func appRead(s *Server, w http.ResponseWriter, r *http.Request, fetch func(ctx context.Context, a release.App) (any, error)) {
	a, _, err := s.appParam(r)
	if err == nil {
		var v any
		if v, err = fetch(r.Context(), a); err == nil {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	s.writeErr(w, r, err)
}

// orEmpty makes a nil list encode as [] (clients iterate it).
func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	k, err := keyFrom(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	apps, err := s.Store.ListApps(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	out := []wire.AppView{}
	for _, a := range apps {
		if k.Allows(a.ID) {
			out = append(out, wire.ViewApp(a))
		}
	}
	writeJSON(w, http.StatusOK, wire.AppsAnswer{Apps: out})
}

// appInput is the app body with the server's checks as methods.
type appInput wire.AppInput

// checkLimits refuses an app input with a field longer than its limit.
func (in appInput) checkLimits() error {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return checkFields(
		field{"name", str(in.Name), manageMaxName},
		field{"flux_secret", str(in.FluxSecret), manageMaxSecret},
		field{"device_token", str(in.DeviceToken), cdMaxDeviceToken},
	)
}

func (in appInput) apply(a *release.App) error {
	if err := in.checkLimits(); err != nil {
		return err
	}
	if in.Name != nil {
		a.Name = *in.Name
	}
	if in.DefaultChannel != nil {
		if err := release.ValidChannel(*in.DefaultChannel); err != nil {
			return errBad("invalid_channel", "%v", err)
		}
		a.DefaultChannel = *in.DefaultChannel
	}
	if in.FluxSecret != nil {
		if *in.FluxSecret != "" && len(*in.FluxSecret) < 16 {
			return errBad("weak_flux_secret", "flux_secret must have at least 16 characters")
		}
		a.FluxSecret = *in.FluxSecret
	}
	if in.DeviceToken != nil {
		switch {
		case *in.DeviceToken == "":
			a.DeviceTokenHash = ""
		case len(*in.DeviceToken) < 16:
			return errBad("weak_device_token", "device_token must have at least 16 characters")
		default:
			a.DeviceTokenHash = store.HashKey(*in.DeviceToken)
		}
	}
	if in.NativeUpdateSignature != nil {
		if err := release.ValidNativeUpdateSignature(*in.NativeUpdateSignature); err != nil {
			return errBad("invalid_native_update_signature", "%v", err)
		}
		a.NativeUpdateSignature = *in.NativeUpdateSignature
	}
	return nil
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	k, err := keyFrom(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in appInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := release.ValidAppID(in.ID); err != nil {
		s.writeErr(w, r, errBad("invalid_app_id", "%v", err))
		return
	}
	a := release.App{ID: in.ID, DefaultChannel: "production", CreatedAt: s.Store.Now().UTC()}
	if err := in.apply(&a); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := s.Store.CreateApp(r.Context(), a); err != nil {
		s.writeErr(w, r, storeErr(err, "app"))
		return
	}
	s.state.invalidate(a.ID)
	s.audit(r.Context(), k, a.ID, "app.create", a.ID, "")
	writeJSON(w, http.StatusCreated, wire.ViewApp(a))
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	appRead(s, w, r, func(_ context.Context, a release.App) (any, error) { return wire.ViewApp(a), nil })
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request) {
	a, k, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in appInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	a, err = s.Store.UpdateApp(r.Context(), a.ID, func(x *release.App) error { return in.apply(x) })
	if err != nil {
		s.writeErr(w, r, storeErr(err, "app"))
		return
	}
	s.state.invalidate(a.ID)
	s.audit(r.Context(), k, a.ID, "app.update", a.ID, "")
	writeJSON(w, http.StatusOK, wire.ViewApp(a))
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	appRead(s, w, r, func(ctx context.Context, a release.App) (any, error) {
		rels, err := s.Store.ListReleases(ctx, a.ID)
		return wire.ReleasesAnswer{Releases: orEmpty(rels)}, err
	})
}

// createRelease records a pending release and answers with the presigned upload.
func (s *Server) createRelease(w http.ResponseWriter, r *http.Request) {
	a, k, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in publish.Input
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := checkReleaseInput(&in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	in.AppID, in.CreatedBy = a.ID, k.ID
	rel, up, err := s.Pipeline.Create(r.Context(), in)
	if err != nil {
		s.writeErr(w, r, storeErr(err, "release"))
		return
	}
	s.audit(r.Context(), k, a.ID, "release.create", rel.Version, rel.SHA256)
	writeJSON(w, http.StatusCreated, wire.CreateReleaseAnswer{Release: rel, Upload: up})
}

// checkReleaseInput refuses a release with a field longer than its limit. The
// pipeline checks what the values mean (version, sha256 and format by patterns that
// bound them too).
func checkReleaseInput(in *publish.Input) error {
	if len(in.MinNative) > manageMaxMinNative {
		return errBad("invalid_min_native", "min_native is at most %d bytes", manageMaxMinNative)
	}
	sig := in.Signatures
	return checkFields(
		field{"platform", in.Platform, manageMaxPlatform},
		field{"notes", in.Notes, manageMaxNotes},
		field{"signatures.pss", sig.PSS, manageMaxSignature},
		field{"signatures.pkcs1", sig.PKCS1, manageMaxSignature},
		field{"signatures.flux", sig.Flux, manageMaxSignature},
		field{"signatures.session_key", sig.SessionKey, manageMaxSignature},
		field{"signatures.enc_checksum", sig.EncChecksum, manageMaxSignature},
		field{"signatures.key_id", sig.KeyID, manageMaxSignature},
		field{"signatures.statement", sig.Statement, manageMaxSignature},
		field{"signatures.statement_sig", sig.StatementSig, manageMaxSignature},
	)
}

// versionParam validates the {version} path value: a name no release can have is
// refused before it reaches the store (whose keys have a length limit of their own).
func versionParam(r *http.Request) (string, error) {
	v := r.PathValue("version")
	if err := release.ValidVersion(v); err != nil {
		return "", errBad("invalid_version", "%v", err)
	}
	return v, nil
}

// completeRelease is called by the CLI after its upload. Where this process owns the
// pipeline (otad, also on S3 storage where no S3 event reaches it) it validates the
// bundle now; on Lambda the S3 event does that and this only reports the status.
// Ingest is idempotent, so a late or repeated call changes nothing.
func (s *Server) completeRelease(w http.ResponseWriter, r *http.Request) {
	a, _, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	version, err := versionParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	rel, err := s.Store.GetRelease(r.Context(), a.ID, version)
	if err != nil {
		s.writeErr(w, r, storeErr(err, "release"))
		return
	}
	if rel.Status == release.StatusPending && s.inProcessPatches() {
		err := s.Pipeline.Ingest(r.Context(), blob.BundleKey(a.ID, version, rel.BundleKey))
		var pe *publish.Error
		switch {
		case errors.Is(err, blob.ErrNotFound):
			s.writeErr(w, r, &badRequest{Status: http.StatusConflict, Code: "upload_missing", Msg: "no uploaded bytes for this release yet"})
			return
		case errors.Is(err, publish.ErrBusy): // another request is validating it: answer pending
		case err != nil && !errors.As(err, &pe): // a refusal is recorded on the release
			s.writeErr(w, r, err)
			return
		case err == nil:
			s.precomputeLater(r.Context(), a.ID, version) // in the background: the answer does not wait
		}
		s.state.invalidate(a.ID)
		if rel, err = s.Store.GetRelease(r.Context(), a.ID, version); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, wire.ReleaseAnswer{Release: rel})
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request) {
	a, _, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	version, err := versionParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	rel, err := s.Store.GetRelease(r.Context(), a.ID, version)
	if err != nil {
		s.writeErr(w, r, storeErr(err, "release"))
		return
	}
	var patches []wire.PatchView
	if ps, err := s.Store.ListPatches(r.Context(), a.ID, publish.KindTree); err == nil {
		for _, p := range ps {
			if p.To == rel.Version {
				patches = append(patches, s.viewPatch(r, p))
			}
		}
	}
	writeJSON(w, http.StatusOK, wire.ReleaseDetail{Release: rel, Patches: patches})
}

func (s *Server) viewPatch(r *http.Request, p store.Patch) wire.PatchView {
	u, _ := s.URLs.URL(r.Context(), p.Key, s.cfg.URLTTL)
	return wire.PatchView{From: p.From, To: p.To, Size: p.Size, SHA256: p.SHA256, URL: u}
}

// deleteRelease refuses releases a channel still points at; it removes the record
// and the bundle (content-addressed files may be shared and stay).
func (s *Server) deleteRelease(w http.ResponseWriter, r *http.Request) {
	a, k, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	version, err := versionParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	rel, err := s.Store.GetRelease(r.Context(), a.ID, version)
	if err != nil {
		s.writeErr(w, r, storeErr(err, "release"))
		return
	}
	chs, err := s.Store.ListChannels(r.Context(), a.ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	for _, c := range chs {
		if c.Stable == version || (c.Rolling != nil && c.Rolling.Version == version) {
			s.writeErr(w, r, &badRequest{Status: http.StatusConflict, Code: "release_in_use", Msg: "channel " + c.Name + " uses this release"})
			return
		}
	}
	if err := s.Store.DeleteRelease(r.Context(), a.ID, version); err != nil {
		s.writeErr(w, r, storeErr(err, "release"))
		return
	}
	for _, key := range []string{blob.BundleKey(a.ID, version, rel.BundleKey), blob.ManifestKey(a.ID, version)} {
		if err := s.Blobs.Delete(r.Context(), key); err != nil {
			s.Log.Warn("delete object failed", "key", key, "err", err)
		}
	}
	s.state.invalidate(a.ID)
	s.audit(r.Context(), k, a.ID, "release.delete", version, "")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) {
	appRead(s, w, r, func(ctx context.Context, a release.App) (any, error) {
		chs, err := s.Store.ListChannels(ctx, a.ID)
		return wire.ChannelsAnswer{Channels: orEmpty(chs)}, err
	})
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	appRead(s, w, r, func(ctx context.Context, a release.App) (any, error) {
		name := r.PathValue("channel")
		if err := release.ValidChannel(name); err != nil {
			return nil, errBad("invalid_channel", "%v", err)
		}
		c, err := s.Store.GetChannel(ctx, a.ID, name)
		if err != nil {
			return nil, storeErr(err, "channel")
		}
		hist, err := s.Store.ChannelHistory(ctx, a.ID, c.Name, 20)
		return wire.ChannelDetail{Channel: c, History: hist}, err
	})
}

// setChannel creates or changes a channel; setting a version needs a ready release.
func (s *Server) setChannel(w http.ResponseWriter, r *http.Request) {
	a, k, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	name := r.PathValue("channel")
	if err := release.ValidChannel(name); err != nil {
		s.writeErr(w, r, errBad("invalid_channel", "%v", err))
		return
	}
	var in wire.ChannelInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if in.MaxFailureRate != nil && (*in.MaxFailureRate <= 0 || *in.MaxFailureRate > 1) {
		s.writeErr(w, r, errBad("invalid_policy", "max_failure_rate must be in (0, 1]"))
		return
	}
	if in.MinAttempts != nil && *in.MinAttempts < 1 {
		s.writeErr(w, r, errBad("invalid_policy", "min_attempts must be at least 1"))
		return
	}
	if in.Version != nil {
		if err := release.ValidVersion(*in.Version); err != nil {
			s.writeErr(w, r, errBad("invalid_version", "%v", err))
			return
		}
		if err := s.requireReady(r, a.ID, *in.Version); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	c, err := s.Store.UpdateChannel(r.Context(), a.ID, name, k.ID, "channel.set", func(c *release.Channel, _ bool) error {
		if in.Version != nil {
			c.Stable, c.Builtin = *in.Version, false
		}
		setIf(&c.Public, in.Public)
		setIf(&c.AllowSelfSet, in.AllowSelfSet)
		setIf(&c.NoEmulator, in.NoEmulator)
		setIf(&c.NoDevBuild, in.NoDevBuild)
		setIf(&c.Policy.MaxFailureRate, in.MaxFailureRate)
		setIf(&c.Policy.MinAttempts, in.MinAttempts)
		return nil
	})
	if err != nil {
		s.writeErr(w, r, storeErr(err, "channel"))
		return
	}
	s.state.invalidate(a.ID)
	s.audit(r.Context(), k, a.ID, "channel.set", name, c.Stable)
	writeJSON(w, http.StatusOK, wire.ChannelAnswer{Channel: c})
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// requireReady checks a version can be pointed at.
func (s *Server) requireReady(r *http.Request, app, version string) error {
	rel, err := s.Store.GetRelease(r.Context(), app, version)
	if err != nil {
		return storeErr(err, "release")
	}
	if rel.Status != release.StatusReady {
		return &badRequest{Status: http.StatusConflict, Code: "release_not_ready", Msg: "release " + version + " is " + string(rel.Status)}
	}
	return nil
}

// ---- keys

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	if _, err := keyFrom(r.Context()); err != nil {
		s.writeErr(w, r, err)
		return
	}
	ks, err := s.Store.ListKeys(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	for i := range ks {
		ks[i].Hash = "" // not secret, but of no use to anyone
	}
	if ks == nil {
		ks = []store.APIKey{}
	}
	writeJSON(w, http.StatusOK, wire.KeysAnswer{Keys: ks})
}

// createKey returns the secret exactly once; only its hash is stored.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	k, err := keyFrom(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in wire.KeyInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := checkFields(field{"name", in.Name, manageMaxName}); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if len(in.Apps) > manageMaxKeyApps {
		s.writeErr(w, r, errTooMany("apps", manageMaxKeyApps))
		return
	}
	if len(in.Apps) == 0 {
		s.writeErr(w, r, errBad("apps_required", "a key must be scoped to at least one app (or \"*\")"))
		return
	}
	for _, a := range in.Apps {
		if a != "*" && release.ValidAppID(a) != nil {
			s.writeErr(w, r, errBad("invalid_app_id", "invalid app id %q", a))
			return
		}
	}
	secret := store.NewKeySecret()
	nk, err := s.Store.CreateKey(r.Context(), secret, in.Name, slices.Compact(slices.Sorted(slices.Values(in.Apps))), in.Admin, k.ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.audit(r.Context(), k, "", "key.create", nk.ID, in.Name)
	nk.Hash = ""
	writeJSON(w, http.StatusCreated, wire.CreateKeyAnswer{Key: nk, Secret: secret})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, err := keyFrom(r.Context())
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	rk, err := s.Store.RevokeKey(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeErr(w, r, storeErr(err, "key"))
		return
	}
	s.audit(r.Context(), k, "", "key.revoke", rk.ID, "")
	rk.Hash = ""
	writeJSON(w, http.StatusOK, wire.RevokeKeyAnswer{Key: rk, RevokedAt: rk.RevokedAt.Format(time.RFC3339)})
}
