package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/wire"
)

// Our own Go device client (shared/client) checks over check-device and reports
// install outcomes here.

// deviceConfirmRoutes lists this adapter's confirm routes.
func deviceConfirmRoutes() []Route {
	return []Route{
		{"POST", "/v1/device/report", GroupConfirm, (*Server).deviceReport, AuthNone},
	}
}

// Input limits of the report route (docs/protocols.md, Input limits): a flat object
// of short strings.
const (
	deviceMaxBody   = 16 << 10
	deviceMaxID     = 128
	deviceMaxDetail = 4 << 10 // free text from the client; logged nowhere, stored nowhere
)

var deviceLimits = jsonLimits{Body: deviceMaxBody, Depth: 4, Items: 64, String: deviceMaxDetail}

func (s *Server) deviceReport(w http.ResponseWriter, r *http.Request) {
	var in wire.DeviceReport
	if err := s.decodeBody(r, deviceLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := checkFields(field{"detail", in.Detail, deviceMaxDetail}); err != nil {
		s.writeErr(w, r, err)
		return
	}
	kind := map[string]OutcomeKind{"installed": OutcomeInstalled, "failed": OutcomeFailed}
	k, ok := kind[in.Status]
	switch {
	case release.ValidAppID(in.AppID) != nil:
		s.writeErr(w, r, errBad("invalid_app_id", "app_id is missing or invalid"))
		return
	case in.DeviceID == "" || len(in.DeviceID) > deviceMaxID:
		s.writeErr(w, r, errBad("invalid_device_id", "device_id is missing or too long"))
		return
	case release.ValidVersion(in.Version) != nil:
		s.writeErr(w, r, errBad("invalid_version", "version is missing or invalid"))
		return
	case in.Channel != "" && release.ValidChannel(in.Channel) != nil:
		s.writeErr(w, r, errBad("invalid_channel", "channel is invalid"))
		return
	case !ok:
		s.writeErr(w, r, errBad("invalid_status", "status must be installed or failed"))
		return
	}
	if _, err := s.state.app(r.Context(), in.AppID); errors.Is(err, errUnknownApp) {
		writeError(w, http.StatusNotFound, "app_not_found", "unknown app")
		return
	} else if err != nil {
		s.writeErr(w, r, err)
		return
	}
	err := s.recordOutcome(r.Context(), Outcome{AppID: in.AppID, DeviceID: strings.ToLower(in.DeviceID), Channel: in.Channel,
		Version: in.Version, Action: "client_" + in.Status, Kind: k})
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
