package api

// Capgo adapter, channel handling: channel_self (POST set, PUT get, GET list, DELETE
// unset) and the channel a check is answered from. See capgo.go for the rest of the
// adapter's choices.
//
// Where a device's channel choice lives depends on its plugin line, as in Capgo's
// backend (channel_self and updates), read from plugin_version:
//
//   - Server-side lines: 5.x before 5.34.0, 6.x before 6.34.0, 7.x before 7.34.0 and
//     8.0.0 pre-releases. The plugin keeps no channel: setChannel (POST) stores an
//     override on the device record, checks apply it before anything the device
//     sends, getChannel (PUT) reports it, and unsetChannel (DELETE) removes it.
//   - Device-side lines: everything else, all 8.x included. The plugin persists the
//     channel itself and sends it as defaultChannel; unsetChannel never reaches the
//     server. POST only validates and stores nothing, PUT answers the channel the
//     device sends (or its resolved default), DELETE changes nothing.
//
// A missing plugin_version counts as device-side and an unparseable one as
// server-side, as Capgo does.
//
// Choices where Capgo leaves room or differs:
//
//   - "Public" is the channel's public flag or being the app's default channel.
//   - A check whose defaultChannel names a channel that is neither public nor open to
//     self-assignment is refused with cannot_update_via_private_channel (blocked),
//     unless a server-side override put the device there (the only server-side
//     placement this server has). A name no channel has falls back to the app's
//     default channel (a device whose channel was deleted keeps updating), and PUT
//     reports that fallback.
//   - Refusals of a valid request (channel_not_found, channel_self_set_not_allowed,
//     public_channel_self_set_not_allowed, cannot_override) are HTTP 200: plugins
//     before 8.x read a non-2xx answer as "response_error" and lose the code, so
//     the channelPrivate event would never fire. Input the server cannot read
//     (missing or oversized fields) is a 4xx with a stable code.
//   - DELETE without an override answers ok (unset is idempotent).
//   - The list holds the channels that are public or open to self-assignment and
//     that serve the device (emulator, dev build), like Capgo's.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// capgoConfirmRoutes lists this adapter's confirm routes.
func capgoConfirmRoutes() []Route {
	return []Route{
		{"POST", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelSet, AuthNone},
		{"PUT", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelGet, AuthNone},
		{"GET", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelList, AuthNone},
		{"DELETE", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelUnset, AuthNone},
	}
}

// Channel codes the plugin knows (setChannel fires channelPrivate on the first two).
const (
	capgoPrivateChannel    = "cannot_update_via_private_channel"
	capgoSelfSetNotAllowed = "channel_self_set_not_allowed"
	capgoPublicNotSelfSet  = "public_channel_self_set_not_allowed"
	capgoChannelNotFound   = "channel_not_found"
	capgoCannotOverride    = "cannot_override"
	capgoLocalChannelMinor = 34 // first 5.x, 6.x and 7.x minor that keeps the channel on the device
)

// capgoServerSideChannel reports whether a plugin keeps its channel choice on the
// server (see the top of this file). No version counts as new, an unreadable one as
// old, as in Capgo's backend.
func capgoServerSideChannel(pluginVersion string) bool {
	if pluginVersion == "" {
		return false
	}
	v, ok := parseCapgoPlugin(pluginVersion)
	if !ok {
		return true
	}
	switch v.major {
	case 5, 6, 7:
		// Below X.34.0; X.34.0-pre sorts below X.34.0 too.
		return v.minor < capgoLocalChannelMinor || (v.minor == capgoLocalChannelMinor && v.patch == 0 && v.pre)
	case 8:
		return v.minor == 0 && v.patch == 0 && v.pre
	}
	return false
}

// capgoChannelFields checks the device-written fields channel handling reads.
func capgoChannelFields(in *capgoInfo, channel string) error {
	if len(in.DefaultChannel) > capgoMaxChannel || len(channel) > capgoMaxChannel {
		return errBad("invalid_channel", "channel names are at most %d characters", capgoMaxChannel)
	}
	if len(in.PluginVersion) > capgoMaxPluginVersion {
		return errBad("invalid_plugin_version", "plugin_version is at most %d characters", capgoMaxPluginVersion)
	}
	return nil
}

// capgoPublic reports whether a channel counts as public: flagged so, or the app's
// default channel (every device without a choice is on it).
func capgoPublic(app release.App, ch *release.Channel) bool {
	return ch.Public || ch.Name == app.DefaultChannel
}

// ---- resolution

// capgoChannel picks the channel a check is answered from, in Capgo's order: the
// device's server-side override (server-side lines only), else the channel the
// device names (defaultChannel), else the app's default. A named channel the device
// may not use comes with a refusal to send as is.
func (s *Server) capgoChannel(ctx context.Context, app release.App, in *capgoInfo) (string, *capgoNoUpdate, error) {
	if err := capgoChannelFields(in, ""); err != nil {
		return "", nil, err
	}
	if in.DeviceID != "" && capgoServerSideChannel(in.PluginVersion) {
		name, err := s.capgoCheckOverride(ctx, app.ID, in.DeviceID)
		if err != nil {
			return "", nil, err
		}
		if name != "" {
			return name, nil, nil // placed there by the server: no private check
		}
	}
	name, ch, err := s.capgoNamedChannel(ctx, app, in.DefaultChannel)
	if err != nil {
		return "", nil, err
	}
	if ch != nil && !ch.AllowSelfSet && !capgoPublic(app, ch) {
		return name, &capgoNoUpdate{Error: capgoPrivateChannel, Kind: capgoBlocked,
			Message: fmt.Sprintf("Cannot update via a private channel: channel %s is neither public nor open to device self-assignment", name)}, nil
	}
	return name, nil, nil
}

// capgoEventChannel is the channel a stats event is counted under: the one the
// device's checks are answered from (the named channel even when refused, the
// default when the fields are unreadable). seen memoizes it per request: a batch
// comes from one device.
func (s *Server) capgoEventChannel(ctx context.Context, app release.App, in *capgoInfo, seen map[string]string) (string, error) {
	k := app.ID + "\x00" + in.DeviceID + "\x00" + in.PluginVersion + "\x00" + in.DefaultChannel
	if name, ok := seen[k]; ok {
		return name, nil
	}
	name, _, err := s.capgoChannel(ctx, app, in)
	var br *badRequest
	if errors.As(err, &br) {
		name, err = app.DefaultChannel, nil
	}
	if err != nil {
		return "", err
	}
	seen[k] = name
	return name, nil
}

// capgoNamedChannel resolves a channel a device names: that channel when it exists
// (ch is then set), else the app's default (ch nil; the default counts as public).
func (s *Server) capgoNamedChannel(ctx context.Context, app release.App, name string) (string, *release.Channel, error) {
	if name == "" || name == app.DefaultChannel || release.ValidChannel(name) != nil {
		return app.DefaultChannel, nil, nil
	}
	cs, err := s.state.channel(ctx, app.ID, name)
	if err != nil {
		return "", nil, err
	}
	if cs.ch == nil {
		return app.DefaultChannel, nil, nil
	}
	return name, cs.ch, nil
}

// capgoCheckOverride is the device's server-side override as a check applies it: ""
// when it has none or its channel is gone. Apps without overrides cost no device
// read (the count is cached like channel state).
func (s *Server) capgoCheckOverride(ctx context.Context, appID, device string) (string, error) {
	n, err := s.state.deviceChannels(ctx, appID)
	if err != nil || n <= 0 {
		return "", err
	}
	name, ch, err := s.capgoStoredChannel(ctx, appID, device)
	if err != nil || ch == nil {
		return "", err
	}
	return name, nil
}

// capgoStoredChannel reads a device's server-side override and its channel (nil when
// that channel no longer exists).
func (s *Server) capgoStoredChannel(ctx context.Context, appID, device string) (string, *release.Channel, error) {
	d, err := s.Store.GetDevice(ctx, appID, device)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.Channel == "") {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read device %s/%s: %w", appID, device, err)
	}
	cs, err := s.state.channel(ctx, appID, d.Channel)
	if err != nil {
		return "", nil, err
	}
	return d.Channel, cs.ch, nil
}

// capgoSetOverride stores (or clears, "") a device's server-side override.
func (s *Server) capgoSetOverride(ctx context.Context, appID, device, channel string) error {
	defer s.state.forgetDeviceChannels(appID)
	_, err := s.Store.SetDeviceChannel(ctx, appID, device, channel)
	return err
}

// ---- channel_self

type capgoChannelReq struct {
	capgoInfo
	Channel string `json:"channel"`
}

// capgoChannelInput reads a channel_self body and resolves its app.
func (s *Server) capgoChannelInput(r *http.Request, in *capgoChannelReq, needDevice bool) (release.App, error) {
	if err := s.capgoRead(r, capgoLimits, in, &in.capgoInfo); err != nil {
		return release.App{}, err
	}
	in.Channel = strings.TrimSpace(in.Channel)
	if err := capgoChannelFields(&in.capgoInfo, in.Channel); err != nil {
		return release.App{}, err
	}
	return s.capgoChannelApp(r.Context(), &in.capgoInfo, needDevice)
}

func (s *Server) capgoChannelApp(ctx context.Context, in *capgoInfo, needDevice bool) (release.App, error) {
	if err := in.normalize(); err != nil {
		return release.App{}, err
	}
	if needDevice && in.DeviceID == "" {
		return release.App{}, errBad("missing_device_id", "device_id is required")
	}
	app, err := s.state.app(ctx, in.AppID)
	if errors.Is(err, errUnknownApp) {
		return app, &badRequest{Status: http.StatusNotFound, Code: "app_not_found", Msg: "app " + in.AppID + " is not registered on this server"}
	}
	return app, err
}

// capgoQuery parses the query string of the channel_self routes that carry their
// fields there, refusing one over capgoMaxQuery bytes before parsing it.
func capgoQuery(r *http.Request) (url.Values, error) {
	if queryTooLong(r, capgoMaxQuery) {
		return nil, errBad(codeQueryTooLong, "the query string is at most %d bytes", capgoMaxQuery)
	}
	return r.URL.Query(), nil
}

// capgoRefuse answers a valid channel_self request the server declines: HTTP 200, so
// that every plugin line reads the code.
func capgoRefuse(w http.ResponseWriter, code, msg string) {
	writeError(w, http.StatusOK, code, msg)
}

// capgoChannelSet (POST, setChannel) validates a device's channel choice and, for
// server-side lines, stores it.
func (s *Server) capgoChannelSet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoChannelReq
	app, err := s.capgoChannelInput(r, &in, true)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	name := in.Channel
	if name == "" {
		s.capgoFail(w, r, errBad("missing_channel", "channel is required"))
		return
	}
	serverSide := capgoServerSideChannel(in.PluginVersion)
	if serverSide {
		// A device on a channel that does not allow self-assignment cannot leave it.
		cur, ch, err := s.capgoStoredChannel(ctx, app.ID, in.DeviceID)
		if err != nil {
			s.capgoFail(w, r, err)
			return
		}
		if ch != nil && !ch.AllowSelfSet {
			capgoRefuse(w, capgoCannotOverride, "This device is on channel "+cur+", which does not allow devices to leave it")
			return
		}
	}
	var ch *release.Channel
	if release.ValidChannel(name) == nil {
		cs, err := s.state.channel(ctx, app.ID, name)
		if err != nil {
			s.capgoFail(w, r, err)
			return
		}
		ch = cs.ch
	}
	switch {
	case ch == nil:
		capgoRefuse(w, capgoChannelNotFound, "No channel named "+name)
		return
	case !ch.AllowSelfSet && capgoPublic(app, ch):
		capgoRefuse(w, capgoPublicNotSelfSet, "Channel "+name+" is public and does not allow devices to choose it: unset the channel and the device uses the public channel")
		return
	case !ch.AllowSelfSet:
		capgoRefuse(w, capgoSelfSetNotAllowed, "Channel "+name+" does not allow devices to choose it")
		return
	}
	if !serverSide {
		// The plugin persists the channel itself once this answer has no error.
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "allowSet": true})
		return
	}
	override := name
	if name == app.DefaultChannel {
		override = "" // back to the default: no override, as Capgo drops it
	}
	if err := s.capgoSetOverride(ctx, app.ID, in.DeviceID, override); err != nil {
		s.capgoFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// capgoChannelAnswer is the PUT (getChannel) answer. allowSet comes only with an
// override, as from Capgo.
type capgoChannelAnswer struct {
	Channel  string `json:"channel"`
	Status   string `json:"status"` // override | default
	AllowSet *bool  `json:"allowSet,omitempty"`
}

// capgoChannelGet (PUT, getChannel) tells a device which channel it is on. Plugins
// from 8.47.9 persist the answer as their channel.
func (s *Server) capgoChannelGet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoChannelReq
	app, err := s.capgoChannelInput(r, &in, false)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	switch {
	case !capgoServerSideChannel(in.PluginVersion):
		// The device holds its channel: echo an explicit one, as Capgo does.
		if in.Channel != "" {
			allow := true
			writeJSON(w, http.StatusOK, capgoChannelAnswer{Channel: in.Channel, Status: "override", AllowSet: &allow})
			return
		}
	case in.DeviceID != "":
		name, ch, err := s.capgoStoredChannel(ctx, app.ID, in.DeviceID)
		if err != nil {
			s.capgoFail(w, r, err)
			return
		}
		if ch != nil {
			allow := ch.AllowSelfSet
			writeJSON(w, http.StatusOK, capgoChannelAnswer{Channel: name, Status: "override", AllowSet: &allow})
			return
		}
	}
	// The channel the device's checks are answered from.
	name, _, err := s.capgoNamedChannel(ctx, app, in.DefaultChannel)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, capgoChannelAnswer{Channel: name, Status: "default"})
}

// capgoChannelList (GET, fields in the query) lists the channels a device may be on,
// as a bare array with numeric ids.
func (s *Server) capgoChannelList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, err := capgoQuery(r)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	in := capgoInfo{AppID: q.Get("app_id"), DeviceID: q.Get("device_id"), Platform: q.Get("platform")}
	if err := in.checkLimits(); err != nil {
		s.capgoFail(w, r, err)
		return
	}
	app, err := s.capgoChannelApp(ctx, &in, false)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	chans, err := s.Store.ListChannels(ctx, app.ID)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	emulator, devBuild := q.Get("is_emulator") == "true", q.Get("is_prod") == "false"
	type item struct {
		ID           int64  `json:"id"`
		Name         string `json:"name"`
		Public       bool   `json:"public"`
		AllowSelfSet bool   `json:"allow_self_set"`
	}
	out := []item{}
	for _, c := range chans {
		public := capgoPublic(app, &c)
		if (!public && !c.AllowSelfSet) || (emulator && c.NoEmulator) || (devBuild && c.NoDevBuild) {
			continue
		}
		out = append(out, item{ID: c.ID, Name: c.Name, Public: public, AllowSelfSet: c.AllowSelfSet})
	}
	writeJSON(w, http.StatusOK, out)
}

// capgoChannelUnset (DELETE, unsetChannel of server-side lines) drops a device's
// override. The fields come as a JSON body (what those plugins send) or in the query.
func (s *Server) capgoChannelUnset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoChannelReq
	var app release.App
	var err error
	if r.ContentLength != 0 {
		app, err = s.capgoChannelInput(r, &in, true)
	} else if q, qerr := capgoQuery(r); qerr != nil {
		err = qerr
	} else {
		in.AppID, in.DeviceID, in.PluginVersion = q.Get("app_id"), q.Get("device_id"), q.Get("plugin_version")
		if err = in.checkLimits(); err == nil {
			app, err = s.capgoChannelApp(ctx, &in.capgoInfo, true)
		}
	}
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	if capgoServerSideChannel(in.PluginVersion) {
		name, ch, err := s.capgoStoredChannel(ctx, app.ID, in.DeviceID)
		if err != nil {
			s.capgoFail(w, r, err)
			return
		}
		if ch != nil && !ch.AllowSelfSet {
			capgoRefuse(w, capgoCannotOverride, "This device is on channel "+name+", which does not allow devices to leave it")
			return
		}
		if name != "" { // an override whose channel is gone goes too
			if err := s.capgoSetOverride(ctx, app.ID, in.DeviceID, ""); err != nil {
				s.capgoFail(w, r, err)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
