package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/wire"
)

// Release safety: staged rollouts, rollback, automatic halts, stats and audit.
// Every channel change is one conditional write (store.UpdateChannel), so racing
// operators end in one consistent state, and each change lands in the channel history.

// safetyAdminRoutes lists the admin routes of rollouts, rollbacks, status and audit.
func safetyAdminRoutes() []Route {
	return []Route{
		{"PUT", "/v1/apps/{app}/channels/{channel}/rollout", GroupAdmin, (*Server).setRollout, AuthKeyApp},
		{"POST", "/v1/apps/{app}/channels/{channel}/rollout/{action}", GroupAdmin, (*Server).rolloutAction, AuthKeyApp},
		{"POST", "/v1/apps/{app}/channels/{channel}/rollback", GroupAdmin, (*Server).rollback, AuthKeyApp},
		{"GET", "/v1/apps/{app}/status", GroupAdmin, (*Server).status, AuthKeyApp},
		{"GET", "/v1/apps/{app}/stats", GroupAdmin, (*Server).stats, AuthKeyApp},
		{"GET", "/v1/apps/{app}/audit", GroupAdmin, (*Server).auditLog, AuthKeyApp},
	}
}

func newSalt() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// channelParams authenticates the request for its {app} and validates {channel}.
// It runs before anything else reads the store, so a caller without a key for the
// app learns nothing (not even whether a version exists).
func (s *Server) channelParams(r *http.Request) (release.App, store.APIKey, string, error) {
	a, k, err := s.appParam(r)
	if err != nil {
		return a, k, "", err
	}
	name := r.PathValue("channel")
	if err := release.ValidChannel(name); err != nil {
		return a, k, "", errBad("invalid_channel", "%v", err)
	}
	return a, k, name, nil
}

// channelChange runs one audited channel update and answers with the new state.
func (s *Server) channelChange(w http.ResponseWriter, r *http.Request, a release.App, k store.APIKey, name, action string, fn func(c *release.Channel, exists bool) error) {
	c, err := s.Store.UpdateChannel(r.Context(), a.ID, name, k.ID, action, fn)
	if err != nil {
		s.writeErr(w, r, storeErr(err, "channel"))
		return
	}
	s.state.invalidate(a.ID)
	s.audit(r.Context(), k, a.ID, action, name, describeChannel(c))
	writeJSON(w, http.StatusOK, wire.ChannelAnswer{Channel: c})
}

func describeChannel(c release.Channel) string {
	d := "stable=" + c.Stable
	if c.Builtin {
		d = "builtin"
	}
	if ro := c.Rolling; ro != nil {
		d += fmt.Sprintf(" rolling=%s@%g%%", ro.Version, ro.Percent)
		if ro.Halted {
			d += " halted"
		}
	}
	return d
}

var errNoChannel = &badRequest{Status: http.StatusNotFound, Code: "channel_not_found", Msg: "channel not found"}

// setRollout starts a rollout of version to percent of the channel's devices, or
// changes the percentage of the running one (same version keeps its salt, so raising
// the percentage never moves a device back).
func (s *Server) setRollout(w http.ResponseWriter, r *http.Request) {
	a, k, name, err := s.channelParams(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in wire.RolloutInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := release.ValidVersion(in.Version); err != nil {
		s.writeErr(w, r, errBad("invalid_version", "%v", err))
		return
	}
	if in.Percent == nil || *in.Percent < 0 || *in.Percent > 100 {
		s.writeErr(w, r, errBad("invalid_percent", "percent must be between 0 and 100"))
		return
	}
	if err := s.requireReady(r, a.ID, in.Version); err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.channelChange(w, r, a, k, name, "rollout.set", func(c *release.Channel, exists bool) error {
		if !exists || (c.Stable == "" && !c.Builtin) {
			return errBad("no_stable_release", "set the channel's stable release before rolling out another")
		}
		if c.Stable == in.Version {
			return errBad("already_stable", "version %s is already the channel's stable release", in.Version)
		}
		if c.Rolling == nil || c.Rolling.Version != in.Version {
			c.Rolling = &release.Rollout{Version: in.Version, Salt: newSalt(), StartedAt: s.Store.Now().UTC()}
		}
		c.Rolling.Percent = *in.Percent
		return nil
	})
}

// rolloutAction is promote (rolling becomes stable), halt or resume.
func (s *Server) rolloutAction(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	switch action {
	case "promote", "halt", "resume":
	default:
		s.writeErr(w, r, &badRequest{Status: http.StatusNotFound, Code: "route_not_found", Msg: "unknown rollout action " + action})
		return
	}
	a, k, name, err := s.channelParams(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.channelChange(w, r, a, k, name, "rollout."+action, func(c *release.Channel, exists bool) error {
		if !exists {
			return errNoChannel
		}
		if c.Rolling == nil {
			return &badRequest{Status: http.StatusConflict, Code: "no_rollout", Msg: "the channel has no rollout"}
		}
		if action == "resume" && c.Rolling.Halted {
			att, fails, err := s.Store.RolloutOutcomes(r.Context(), a.ID, name, c.Rolling.Salt)
			if err != nil {
				return err
			}
			c.Rolling.BaseAttempts, c.Rolling.BaseFailures = att, fails
		}
		switch action {
		case "promote":
			c.Stable, c.Builtin, c.Rolling = c.Rolling.Version, false, nil
		case "halt":
			c.Rolling.Halted, c.Rolling.HaltReason = true, "halted by operator"
		case "resume":
			c.Rolling.Halted, c.Rolling.HaltReason = false, ""
		}
		return nil
	})
}

// rollback points the channel at an earlier release (default: the stable release
// before the current one, from the channel history) or at the built-in bundle, and
// drops any rollout. Devices see it on their next check, at most StateTTL later.
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	a, k, name, err := s.channelParams(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in wire.RollbackInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	app := a.ID
	if in.To != "" {
		if in.Builtin {
			s.writeErr(w, r, errBad("invalid_rollback", "give either to or builtin, not both"))
			return
		}
		if err := release.ValidVersion(in.To); err != nil {
			s.writeErr(w, r, errBad("invalid_version", "%v", err))
			return
		}
		if err := s.requireReady(r, app, in.To); err != nil {
			s.writeErr(w, r, err)
			return
		}
	}
	s.channelChange(w, r, a, k, name, store.ActionRollback, func(c *release.Channel, exists bool) error {
		if !exists {
			return errNoChannel
		}
		c.Rolling = nil
		switch {
		case in.Builtin:
			c.Builtin = true
		case in.To != "":
			c.Stable, c.Builtin = in.To, false
		default:
			prev, err := s.previousStable(r.Context(), app, name, c.Stable)
			if err != nil {
				return err
			}
			c.Stable, c.Builtin = prev, false
		}
		return nil
	})
}

// previousStable is the first of the channel history's rollback candidates that is
// still a ready release (store.RollbackCandidates; retention keeps that one).
func (s *Server) previousStable(ctx context.Context, app, channel, current string) (string, error) {
	hist, err := s.Store.ChannelHistory(ctx, app, channel, store.RollbackHistoryDepth)
	if err != nil {
		return "", fmt.Errorf("read history of channel %s: %w", channel, err)
	}
	for _, v := range store.RollbackCandidates(hist, current) {
		rel, err := s.Store.GetRelease(ctx, app, v)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil { // not "gone": going further back would skip a good release
			return "", fmt.Errorf("read release %s: %w", v, err)
		}
		if rel.Status == release.StatusReady {
			return v, nil
		}
	}
	return "", &badRequest{Status: http.StatusConflict, Code: "no_previous_release", Msg: "no earlier release in the channel history; use --to VERSION or --builtin"}
}

// checkRolloutHealth counts an outcome (an install attempt, a failure, or both)
// against the channel's rollout and halts the rollout when its failure rate crosses
// the channel's policy.
func (s *Server) checkRolloutHealth(ctx context.Context, app, channel, version string, attempt, failed bool) error {
	cs, err := s.state.channel(ctx, app, channel)
	if err != nil || cs.ch == nil || cs.ch.Rolling == nil || cs.ch.Rolling.Version != version || cs.ch.Rolling.Halted {
		return err
	}
	ro, pol := cs.ch.Rolling, cs.ch.Policy.Effective()
	att, fails, err := s.Store.AddRolloutOutcome(ctx, app, channel, ro.Salt, attempt, failed)
	if err != nil {
		return err
	}
	att, fails = att-ro.BaseAttempts, fails-ro.BaseFailures // since the last resume
	if att < pol.MinAttempts || float64(fails)/float64(att) <= pol.MaxFailureRate {
		return nil
	}
	reason := fmt.Sprintf("auto-halted: %d of %d installs failed (limit %.0f%% after %d)", fails, att, pol.MaxFailureRate*100, pol.MinAttempts)
	halted := false
	_, err = s.Store.UpdateChannel(ctx, app, channel, "auto-halt", "rollout.auto_halt", func(c *release.Channel, exists bool) error {
		halted = false // the function runs again when another writer got there first
		if !exists || c.Rolling == nil || c.Rolling.Salt != ro.Salt || c.Rolling.Halted {
			return store.ErrUnchanged // already halted, promoted or replaced
		}
		c.Rolling.Halted, c.Rolling.HaltReason = true, reason
		halted = true
		return nil
	})
	s.state.invalidate(app)
	if err != nil || !halted {
		// Another report (or process) halted it first: log and audit the halt once.
		return err
	}
	s.Log.Warn("rollout halted", "app", app, "channel", channel, "version", version, "attempts", att, "failures", fails)
	s.audit(ctx, store.APIKey{ID: "auto-halt"}, app, "rollout.auto_halt", channel, reason)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	a, _, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	chs, err := s.Store.ListChannels(r.Context(), a.ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	out := []wire.ChannelStatus{}
	for _, c := range chs {
		cs := wire.ChannelStatus{Channel: c}
		if c.Rolling != nil {
			att, fails, err := s.Store.RolloutOutcomes(r.Context(), a.ID, c.Name, c.Rolling.Salt)
			if err != nil {
				s.writeErr(w, r, err)
				return
			}
			cs.RolloutHealth = &wire.RolloutHealth{Attempts: att, Failures: fails}
		}
		out = append(out, cs)
	}
	writeJSON(w, http.StatusOK, wire.StatusAnswer{App: wire.ViewApp(a), Channels: out, CacheSeconds: s.cfg.StateTTL.Seconds()})
}

// stats serves daily counters: per channel, version and action, plus the derived
// install success rate per version.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	a, _, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	days := 7
	if v := r.URL.Query().Get("days"); v != "" {
		if days, err = strconv.Atoi(v); err != nil || days < 1 || days > 366 {
			s.writeErr(w, r, errBad("invalid_days", "days must be between 1 and 366"))
			return
		}
	}
	channel := r.URL.Query().Get("channel")
	now := s.Store.Now()
	var dayList []string
	for i := days - 1; i >= 0; i-- {
		dayList = append(dayList, store.Day(now.Add(-time.Duration(i)*24*time.Hour)))
	}
	counts, err := s.Store.ReadStats(r.Context(), a.ID, dayList)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	rows := []store.StatCount{}
	sum := map[string]*wire.VersionStats{}
	var order []string
	for _, c := range counts {
		if channel != "" && c.Channel != channel {
			continue
		}
		rows = append(rows, c)
		if c.Action != ActionInstalled && c.Action != ActionFailed && c.Action != ActionCrashed {
			continue
		}
		v := sum[c.Version]
		if v == nil {
			v = &wire.VersionStats{Version: c.Version}
			sum[c.Version] = v
			order = append(order, c.Version)
		}
		switch c.Action {
		case ActionInstalled:
			v.Installed += c.Count
		case ActionFailed:
			v.Failed += c.Count
		default:
			v.Crashed += c.Count
		}
	}
	versions := []wire.VersionStats{}
	for _, k := range order {
		v := sum[k]
		if t := v.Installed + v.Failed; t > 0 {
			v.SuccessRate = float64(v.Installed) / float64(t)
		}
		versions = append(versions, *v)
	}
	adoption, err := s.Store.ListAdoption(r.Context(), a.ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.StatsAnswer{Days: dayList, Counts: rows, Versions: versions, Adoption: orEmpty(adoption)})
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n <= 1000 {
		limit = n
	}
	appRead(s, w, r, func(ctx context.Context, a release.App) (any, error) {
		entries, err := s.Store.ListAudit(ctx, a.ID, limit)
		return wire.AuditAnswer{Entries: orEmpty(entries)}, err
	})
}
