package api

// Capgo adapter, stats: POST /capgo/stats (see capgo.go for the adapter's choices).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// capgoStatsRoutes lists this adapter's stats routes.
func capgoStatsRoutes() []Route {
	return []Route{
		{"POST", "/capgo/stats", GroupStats, (*Server).capgoStats},
	}
}

// capgoEvent is one stats event: the device description plus what happened.
type capgoEvent struct {
	capgoInfo
	Action         string      `json:"action"`
	OldVersionName string      `json:"old_version_name"`
	Timestamp      json.Number `json:"timestamp"` // epoch ms; absent on download-worker events
}

var capgoActionRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,63}$`)

// capgoFailureActions report an install or boot failure with the failing TARGET as
// version_name (possibly "<version>:<file>"); they feed failure memory and failure
// rates. See the file comment for the actions deliberately left out.
var capgoFailureActions = map[string]bool{
	"update_fail":                     true, // no notifyAppReady() in time: the device reverted
	"set_fail":                        true,
	"decrypt_fail":                    true,
	"finish_download_fail":            true,
	"manifest_path_fail":              true,
	"download_manifest_checksum_fail": true,
	"download_manifest_brotli_fail":   true,
}

// capgoOutcomeKind classifies an event for the neutral outcome.
func capgoOutcomeKind(action, platform string) OutcomeKind {
	switch {
	case action == "set":
		return OutcomeInstalled
	case capgoFailureActions[action]:
		return OutcomeFailed
	case action == "checksum_fail" && platform == "ios":
		// iOS names the downloaded bundle; Android names the running one.
		return OutcomeFailed
	}
	return OutcomeInfo
}

func (s *Server) capgoStats(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	events, err := s.capgoReadEvents(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	type counter struct {
		app string
		key store.StatKey
	}
	counts := map[counter]int64{} // plain counters, added once per batch
	var order []counter
	ignored := 0
	channels := map[string]string{} // device -> channel its events count under
	now := s.Store.Now()
	for _, ev := range events {
		if ev.normalize() != nil || !capgoActionRe.MatchString(ev.Action) {
			ignored++
			continue
		}
		app, err := s.state.app(ctx, ev.AppID)
		if errors.Is(err, errUnknownApp) {
			ignored++
			continue
		}
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		if ts := ev.Timestamp.String(); ts != "" {
			h := sha256.Sum256([]byte(ev.DeviceID + "\x00" + ev.Action + "\x00" + ts + "\x00" + ev.VersionName))
			fresh, err := s.Store.FirstSeen(ctx, app.ID, hex.EncodeToString(h[:]), capgoDedupTTL)
			if err != nil {
				s.writeErr(w, r, err)
				return
			}
			if !fresh {
				continue // a retried batch
			}
		}
		channel, err := s.capgoEventChannel(ctx, app, &ev.capgoInfo, channels)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		version, _, _ := strings.Cut(ev.VersionName, ":") // "<version>:<file>" on per-file failures
		if version != "" && version != "builtin" && version != "unknown" && release.ValidVersion(version) != nil {
			version = "invalid" // keeps junk out of the counter keys
		}
		kind := capgoOutcomeKind(ev.Action, ev.Platform)
		if kind != OutcomeInfo && release.ValidVersion(version) != nil {
			kind = OutcomeInfo // "builtin", "unknown", "": nothing to remember
		}
		if kind == OutcomeInfo {
			c := counter{app.ID, store.StatKey{Channel: channel, Version: version, Action: ev.Action}}
			if _, ok := counts[c]; !ok {
				order = append(order, c)
			}
			counts[c]++
			continue
		}
		o := Outcome{AppID: app.ID, DeviceID: ev.DeviceID, Channel: channel, Version: version,
			Platform: ev.Platform, Action: ev.Action, Kind: kind, At: now}
		if err := s.recordOutcome(ctx, o); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	for _, c := range order {
		if _, err := s.Store.AddStat(ctx, c.app, store.Day(now), c.key, counts[c]); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	if ignored > 0 {
		s.Log.Info("capgo stats: events ignored (unknown app or unreadable)", "ignored", ignored, "events", len(events))
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// capgoReadEvents reads a stats body: a JSON array of events or one event. Every
// event is type-checked before anything is written, so a bad body writes nothing.
func (s *Server) capgoReadEvents(r *http.Request) ([]capgoEvent, error) {
	var raw json.RawMessage
	if err := decodeJSON(r, s.cfg.MaxJSONBody, &raw); err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	var items []json.RawMessage
	switch {
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, errBad("invalid_json", "body is not valid JSON: %v", err)
		}
	case len(raw) > 0 && raw[0] == '{':
		items = []json.RawMessage{raw}
	default:
		return nil, errBad("invalid_type", "body must be an event object or an array of events")
	}
	if len(items) > capgoMaxEvents {
		return nil, &badRequest{Status: http.StatusRequestEntityTooLarge, Code: "too_many_events",
			Msg: fmt.Sprintf("at most %d events per request", capgoMaxEvents)}
	}
	events := make([]capgoEvent, len(items))
	for i, it := range items {
		if b := bytes.TrimSpace(it); len(b) == 0 || b[0] != '{' {
			return nil, errBad("invalid_type", "event %d is not an object", i)
		}
		if err := json.Unmarshal(it, &events[i]); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, errBad("invalid_type", "event %d: field %q must be %s", i, te.Field, te.Type)
			}
			return nil, errBad("invalid_json", "event %d: %v", i, err)
		}
	}
	return events, nil
}
