package api

import (
	"context"
	"time"

	"github.com/otakit/ota/shared/store"
)

// OutcomeKind classifies a device report for failure memory and failure rates.
type OutcomeKind int

const (
	OutcomeInfo      OutcomeKind = iota // counted only
	OutcomeInstalled                    // the new bundle booted (counts as an attempt)
	OutcomeFailed                       // install or boot failure (counts as an attempt and a failure)
)

// Outcome is the neutral form of every client's report (Capgo stats, native-update
// confirm, our own client's posts).
type Outcome struct {
	AppID    string
	DeviceID string
	Channel  string
	Version  string // the version the report is about (the failing target for failures)
	Platform string
	Action   string // the client's own action name, counted as is
	Kind     OutcomeKind
	At       time.Time
}

// Counter actions derived from outcomes, next to the clients' own.
const (
	ActionInstalled = "_installed"
	ActionFailed    = "_failed"
)

// recordOutcome counts the report per day, remembers failures per device, and
// feeds the rollout's failure rate.
func (s *Server) recordOutcome(ctx context.Context, o Outcome) error {
	if o.At.IsZero() {
		o.At = s.Store.Now()
	}
	if o.Channel == "" {
		if app, err := s.state.app(ctx, o.AppID); err == nil {
			o.Channel = app.DefaultChannel
		}
	}
	day := store.Day(o.At)
	if _, err := s.Store.AddStat(ctx, o.AppID, day, store.StatKey{Channel: o.Channel, Version: o.Version, Action: o.Action}, 1); err != nil {
		return err
	}
	switch o.Kind {
	case OutcomeInstalled:
		if _, err := s.Store.AddStat(ctx, o.AppID, day, store.StatKey{Channel: o.Channel, Version: o.Version, Action: ActionInstalled}, 1); err != nil {
			return err
		}
		if o.DeviceID != "" && o.Version != "" {
			if err := s.Store.RecordInstall(ctx, o.AppID, o.DeviceID, o.Version); err != nil {
				return err
			}
		}
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, false)
	case OutcomeFailed:
		if _, err := s.Store.AddStat(ctx, o.AppID, day, store.StatKey{Channel: o.Channel, Version: o.Version, Action: ActionFailed}, 1); err != nil {
			return err
		}
		if o.DeviceID != "" && o.Version != "" {
			if err := s.Store.RecordFailure(ctx, o.AppID, o.DeviceID, o.Version); err != nil {
				return err
			}
			s.invalidateForFailure(o.AppID, o.Version)
		}
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, true)
	}
	return nil
}

// invalidateForFailure drops the app's cached state when a cached channel serves
// version but does not know yet that a device failed it (checks then start reading
// device records). Once known, further failures keep the cache: a failure storm does
// not turn every check into a reload.
func (s *Server) invalidateForFailure(app, version string) {
	c := s.state
	c.mu.Lock()
	stale := false
	for k, e := range c.chans {
		if _, serves := e.rels[version]; k[0] == app && serves && !e.failed[version] {
			stale = true
			break
		}
	}
	c.mu.Unlock()
	if stale {
		c.invalidate(app)
	}
}
