package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/otakit/ota/shared/store"
)

// OutcomeKind classifies a device report for failure memory and failure rates.
type OutcomeKind int

const (
	OutcomeInfo      OutcomeKind = iota // counted only
	OutcomeInstalled                    // the new bundle booted (counts as an attempt)
	OutcomeFailed                       // install or boot failure (counts as an attempt and a failure)
	// OutcomeCrashed: the version the device RUNS crashed. It counts toward that
	// version's rollout failure rate, once per device and version (a device that
	// crashes on every launch is one failing device), without a new attempt (its
	// install was counted) and without failure memory (see recordOutcome).
	OutcomeCrashed
)

// Outcome is the neutral form of every client's report (Capgo stats, native-update
// confirm, our own client's posts).
type Outcome struct {
	AppID    string
	DeviceID string
	Channel  string
	Version  string // the version the report is about (the failing target for failures, the running one for crashes)
	Platform string
	Action   string // the client's own action name, counted as is
	Kind     OutcomeKind
	At       time.Time
}

// Counter actions derived from outcomes, next to the clients' own.
const (
	ActionInstalled = "_installed"
	ActionFailed    = "_failed"
	ActionCrashed   = "_crashed" // devices whose running version crashed, once per device and version
)

// crashDedupTTL is how long a (device, version) crash stays counted once: longer
// than a rollout lasts.
const crashDedupTTL = store.FailureMemory

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
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, true, false)
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
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, true, true)
	case OutcomeCrashed:
		// No failure memory: the device already runs the version, so memory would
		// not spare it a download loop (what it is for), and on a rolling version it
		// would move the device back to stable at its next check: a per-device
		// rollback on one crash, which may be the OS or native code. Whether the
		// version is bad is the rollout's failure rate to say, over many devices.
		if o.DeviceID == "" || o.Version == "" {
			return nil
		}
		h := sha256.Sum256([]byte("crash\x00" + o.DeviceID + "\x00" + o.Version))
		first, err := s.Store.FirstSeen(ctx, o.AppID, hex.EncodeToString(h[:]), crashDedupTTL)
		if err != nil || !first {
			return err
		}
		if _, err := s.Store.AddStat(ctx, o.AppID, day, store.StatKey{Channel: o.Channel, Version: o.Version, Action: ActionCrashed}, 1); err != nil {
			return err
		}
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, false, true)
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
