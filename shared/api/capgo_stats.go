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
	"strconv"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// capgoStatsRoutes lists this adapter's stats routes.
func capgoStatsRoutes() []Route {
	return []Route{
		{"POST", "/capgo/stats", GroupStats, (*Server).capgoStats, AuthNone},
	}
}

// capgoEvent is one stats event: the device description plus what happened.
type capgoEvent struct {
	capgoInfo
	Action         string      `json:"action"`
	OldVersionName string      `json:"old_version_name"`
	Timestamp      json.Number `json:"timestamp"` // epoch ms; absent on download-worker events
	// Metadata is string to string in the plugin; kept raw so that another shape
	// never refuses the batch (it is only read, see meta).
	Metadata json.RawMessage `json:"metadata"`
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

// capgoCrashActions report that the bundle the device RUNS crashed or hung, with
// that bundle as version_name (plugin 8.46.0 and later, and the 5.50/6.50/7.50
// backports: AndroidAppExitReporter.java reads ApplicationExitInfo at the next
// launch, AppHealthTracker.swift an unclean foreground exit). The value says when
// the report needs its metadata to tell a fault from the system's housekeeping.
//
// Left out, counted only: app_launch_timeout (always sent together with update_fail
// for the same bundle, which already counts as its failure), app_memory_warning (the
// app lives on), webview_unclean_restart (any kill while a page was open) and the
// page-level webview_* errors, which the app's own JavaScript can report too.
var capgoCrashActions = map[string]func(meta func(string) string) bool{
	"app_crash":                  nil, // Android REASON_CRASH; iOS unclean exit in the foreground
	"app_crash_native":           nil,
	"app_anr":                    nil,
	"app_initialization_failure": nil,
	// Killed for memory or resources: the system does that to background apps all
	// the time; only a kill while the user could see the app is the bundle's fault.
	"app_killed_low_memory":               capgoVisibleExit,
	"app_killed_excessive_resource_usage": capgoVisibleExit,
	// The WebView's renderer died: crashed (did_crash "true"), or was reclaimed by
	// the system (did_crash "false"; also when JavaScript reports one without it).
	"webview_render_process_gone": func(meta func(string) string) bool { return meta("did_crash") == "true" },
}

// capgoImportanceVisible is ActivityManager.RunningAppProcessInfo.IMPORTANCE_VISIBLE:
// at or below it (foreground 100, foreground service 125) the user saw the app.
const capgoImportanceVisible = 200

func capgoVisibleExit(meta func(string) string) bool {
	n, err := strconv.Atoi(meta("exit_importance"))
	return err == nil && n > 0 && n <= capgoImportanceVisible
}

// capgoOutcomeKind classifies an event for the neutral outcome.
func capgoOutcomeKind(ev *capgoEvent) OutcomeKind {
	switch {
	case ev.Action == "set":
		return OutcomeInstalled
	case capgoFailureActions[ev.Action]:
		return OutcomeFailed
	case ev.Action == "checksum_fail" && ev.Platform == "ios":
		// iOS names the downloaded bundle; Android names the running one.
		return OutcomeFailed
	}
	if cond, ok := capgoCrashActions[ev.Action]; ok && !ev.onBuiltin() {
		// On the store bundle version_name is the native version, not a release.
		if cond == nil || cond(ev.meta) {
			return OutcomeCrashed
		}
	}
	return OutcomeInfo
}

// meta returns a string value of the event's metadata, "" when absent, not a
// string or the metadata is not a small object.
func (ev *capgoEvent) meta(key string) string {
	if len(ev.Metadata) == 0 || len(ev.Metadata) > capgoMaxMetadata {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(ev.Metadata, &m) != nil {
		return ""
	}
	v, _ := m[key].(string)
	return v
}

func (s *Server) capgoStats(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	events, err := s.capgoReadEvents(r)
	if err != nil {
		s.capgoFail(w, r, err)
		return
	}
	type counter struct {
		app string
		key store.StatKey
	}
	counts := map[counter]int64{} // counters of events without a timestamp, added once per batch
	var order []counter
	once := map[string][]store.StatEvent{} // per app: de-duplicated counter events
	var apps []string
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
		// A timestamped event is recognized when its batch is resent; its marker is
		// written in the same transaction as what it counts.
		var marker store.Marker
		if ts := ev.Timestamp.String(); ts != "" {
			h := sha256.Sum256([]byte(ev.DeviceID + "\x00" + ev.Action + "\x00" + ts + "\x00" + ev.VersionName))
			marker = store.Marker{Fingerprint: hex.EncodeToString(h[:]), TTL: capgoDedupTTL}
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
		kind := capgoOutcomeKind(&ev)
		if kind != OutcomeInfo && release.ValidVersion(version) != nil {
			kind = OutcomeInfo // "builtin", "unknown", "": nothing to remember
		}
		if kind == OutcomeInfo {
			c := counter{app.ID, store.StatKey{Channel: channel, Version: version, Action: ev.Action}}
			if marker.Fingerprint != "" {
				if _, ok := once[app.ID]; !ok {
					apps = append(apps, app.ID)
				}
				once[app.ID] = append(once[app.ID], store.StatEvent{Marker: marker, Key: c.key})
				continue
			}
			if _, ok := counts[c]; !ok {
				order = append(order, c)
			}
			counts[c]++
			continue
		}
		o := Outcome{AppID: app.ID, DeviceID: ev.DeviceID, Channel: channel, Version: version,
			Platform: ev.Platform, Action: ev.Action, Kind: kind, At: now, Marker: marker}
		if err := s.recordOutcome(ctx, o); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	for _, app := range apps {
		if _, err := s.Store.AddStatsOnce(ctx, app, store.Day(now), once[app]); err != nil {
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
	if err := s.decodeBody(r, capgoStatsLimits, &raw); err != nil {
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
		if err := events[i].checkLimits(); err != nil {
			var br *badRequest
			if errors.As(err, &br) {
				br.Msg = fmt.Sprintf("event %d: %s", i, br.Msg)
			}
			return nil, err
		}
	}
	return events, nil
}

// checkLimits refuses an event with a field longer than its limit.
func (ev *capgoEvent) checkLimits() error {
	if err := ev.capgoInfo.checkLimits(); err != nil {
		return err
	}
	return checkFields(
		field{"action", ev.Action, capgoMaxAction},
		field{"old_version_name", ev.OldVersionName, capgoMaxVersionName},
		field{"timestamp", ev.Timestamp.String(), capgoMaxTimestamp},
		field{"metadata", string(ev.Metadata), capgoMaxMetadata},
	)
}
