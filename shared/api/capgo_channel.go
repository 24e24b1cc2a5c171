package api

// Capgo adapter, channel_self: the device's channel choice (see capgo.go for the
// adapter's choices).

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// capgoConfirmRoutes lists this adapter's confirm routes.
func capgoConfirmRoutes() []Route {
	return []Route{
		{"POST", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelSet},
		{"PUT", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelGet},
		{"GET", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelList},
		{"DELETE", "/capgo/channel_self", GroupConfirm, (*Server).capgoChannelUnset},
	}
}

type capgoChannelReq struct {
	capgoInfo
	Channel string `json:"channel"`
}

// capgoChannelInput reads a channel_self body and resolves its app.
func (s *Server) capgoChannelInput(r *http.Request, in *capgoChannelReq, needDevice bool) (release.App, error) {
	if err := decodeJSON(r, s.cfg.MaxJSONBody, in); err != nil {
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

// capgoChannelSet (POST) lets a device pick its channel.
func (s *Server) capgoChannelSet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoChannelReq
	app, err := s.capgoChannelInput(r, &in, true)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	name := strings.TrimSpace(in.Channel)
	if name == "" {
		writeError(w, http.StatusBadRequest, "missing_channel", "channel is required")
		return
	}
	override := name
	if name == app.DefaultChannel {
		override = "" // going back to the default is always allowed
	} else {
		if release.ValidChannel(name) != nil {
			writeError(w, http.StatusBadRequest, "channel_not_found", "no channel named "+name)
			return
		}
		cs, err := s.state.channel(ctx, app.ID, name)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		if cs.ch == nil {
			writeError(w, http.StatusBadRequest, "channel_not_found", "no channel named "+name)
			return
		}
		if !cs.ch.AllowSelfSet {
			writeError(w, http.StatusForbidden, "channel_self_set_not_allowed", "channel "+name+" does not allow devices to choose it")
			return
		}
	}
	if _, err := s.Store.UpdateDevice(ctx, app.ID, in.DeviceID, func(d *release.Device) error {
		d.Channel = override
		if in.Platform != "" {
			d.Platform = in.Platform
		}
		if in.VersionName != "" {
			d.Version = in.VersionName
		}
		return nil
	}); err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// capgoChannelGet (PUT) tells a device which channel it is on.
func (s *Server) capgoChannelGet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoChannelReq
	app, err := s.capgoChannelInput(r, &in, false)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	name, status := "", "default"
	if in.DeviceID != "" {
		d, err := s.Store.GetDevice(ctx, app.ID, in.DeviceID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.writeErr(w, r, err)
			return
		}
		if err == nil && d.Channel != "" {
			if cs, err := s.state.channel(ctx, app.ID, d.Channel); err == nil && cs.ch != nil {
				name, status = d.Channel, "override"
			}
		}
	}
	if name == "" {
		// The channel the device's checks are answered from (the plugin persists it).
		if name, err = s.capgoChannel(ctx, app, in.DefaultChannel); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	allow := false
	if cs, err := s.state.channel(ctx, app.ID, name); err == nil && cs.ch != nil {
		allow = cs.ch.AllowSelfSet
	}
	writeJSON(w, http.StatusOK, struct {
		Channel  string `json:"channel"`
		Status   string `json:"status"`
		AllowSet bool   `json:"allowSet"`
	}{name, status, allow})
}

// capgoChannelList (GET, fields in the query) lists the channels a device may choose,
// as a bare array with numeric ids.
func (s *Server) capgoChannelList(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	in := capgoInfo{AppID: q.Get("app_id"), DeviceID: q.Get("device_id"), Platform: q.Get("platform")}
	app, err := s.capgoChannelApp(ctx, &in, false)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	chans, err := s.Store.ListChannels(ctx, app.ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	type item struct {
		ID           int64  `json:"id"`
		Name         string `json:"name"`
		Public       bool   `json:"public"`
		AllowSelfSet bool   `json:"allow_self_set"`
	}
	out := []item{}
	for _, c := range chans {
		if c.AllowSelfSet {
			out = append(out, item{ID: c.ID, Name: c.Name, Public: c.Public, AllowSelfSet: true})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// capgoChannelUnset (DELETE, plugin 6.x) drops a device's channel override. The
// fields come as a JSON body or in the query.
func (s *Server) capgoChannelUnset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in capgoChannelReq
	var app release.App
	var err error
	if r.ContentLength != 0 {
		app, err = s.capgoChannelInput(r, &in, true)
	} else {
		q := r.URL.Query()
		in.AppID, in.DeviceID = q.Get("app_id"), q.Get("device_id")
		app, err = s.capgoChannelApp(ctx, &in.capgoInfo, true)
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	d, err := s.Store.GetDevice(ctx, app.ID, in.DeviceID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeErr(w, r, err)
		return
	}
	if err == nil && d.Channel != "" {
		if _, err := s.Store.UpdateDevice(ctx, app.ID, in.DeviceID, func(d *release.Device) error {
			d.Channel = ""
			return nil
		}); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// capgoChannel resolves the channel a device asks for: its persisted channel when it
// exists, else the app's default.
func (s *Server) capgoChannel(ctx context.Context, app release.App, requested string) (string, error) {
	if requested == "" || requested == app.DefaultChannel || release.ValidChannel(requested) != nil {
		return app.DefaultChannel, nil
	}
	cs, err := s.state.channel(ctx, app.ID, requested)
	if err != nil {
		return "", err
	}
	if cs.ch == nil {
		return app.DefaultChannel, nil
	}
	return requested, nil
}
