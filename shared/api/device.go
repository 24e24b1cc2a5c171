package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/release"
)

// Our own Go device client (shared/client) checks over check-device and reports
// install outcomes here.

// deviceConfirmRoutes lists this adapter's confirm routes.
func deviceConfirmRoutes() []Route {
	return []Route{
		{"POST", "/v1/device/report", GroupConfirm, (*Server).deviceReport},
	}
}

type deviceReportInput struct {
	AppID    string `json:"app_id"`
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	Version  string `json:"version"`
	Status   string `json:"status"` // installed | failed
	Detail   string `json:"detail"`
}

func (s *Server) deviceReport(w http.ResponseWriter, r *http.Request) {
	var in deviceReportInput
	if err := decodeJSON(r, s.cfg.MaxJSONBody, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	kind := map[string]OutcomeKind{"installed": OutcomeInstalled, "failed": OutcomeFailed}
	k, ok := kind[in.Status]
	switch {
	case release.ValidAppID(in.AppID) != nil:
		s.writeErr(w, r, errBad("invalid_app_id", "app_id is missing or invalid"))
		return
	case in.DeviceID == "" || len(in.DeviceID) > 128:
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
