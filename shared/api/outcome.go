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
	// Marker de-duplicates the report (a resent batch); zero when the client sends
	// nothing to tell a repeat by. It is written with everything the report counts.
	Marker store.Marker
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
// feeds the rollout's failure rate. The report's marker, counters and device write
// go in one transaction, so a report counts once however it is resent; a repeat
// changes nothing. The rollout check and cache invalidation come after the write:
// they may run again on a resend, which they tolerate.
func (s *Server) recordOutcome(ctx context.Context, o Outcome) error {
	if o.At.IsZero() {
		o.At = s.Store.Now()
	}
	if o.Channel == "" {
		if app, err := s.state.app(ctx, o.AppID); err == nil {
			o.Channel = app.DefaultChannel
		}
	}
	key := func(action string) store.StatKey {
		return store.StatKey{Channel: o.Channel, Version: o.Version, Action: action}
	}
	ev := store.DeviceEvent{Marker: o.Marker, Day: store.Day(o.At), Stats: []store.StatKey{key(o.Action)}}
	device := o.DeviceID != "" && o.Version != ""
	switch o.Kind {
	case OutcomeInstalled:
		ev.Stats = append(ev.Stats, key(ActionInstalled))
		if device {
			ev.Device, ev.Install = o.DeviceID, o.Version
		}
	case OutcomeFailed:
		ev.Stats = append(ev.Stats, key(ActionFailed))
		if device {
			ev.Device, ev.Fail = o.DeviceID, o.Version
		}
	case OutcomeCrashed:
		// No failure memory: the device already runs the version, so memory would
		// not spare it a download loop (what it is for), and on a rolling version it
		// would move the device back to stable at its next check: a per-device
		// rollback on one crash, which may be the OS or native code. Whether the
		// version is bad is the rollout's failure rate to say, over many devices.
		if device {
			h := sha256.Sum256([]byte("crash\x00" + o.DeviceID + "\x00" + o.Version))
			ev.Once = store.Marker{Fingerprint: hex.EncodeToString(h[:]), TTL: crashDedupTTL}
			ev.OnceStats = []store.StatKey{key(ActionCrashed)}
		}
	}
	res, err := s.Store.RecordEvent(ctx, o.AppID, ev)
	if err != nil || res.Duplicate {
		return err
	}
	switch o.Kind {
	case OutcomeInstalled:
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, true, false)
	case OutcomeFailed:
		if device {
			s.invalidateForFailure(o.AppID, o.Version)
		}
		return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, true, true)
	case OutcomeCrashed:
		if res.OnceFirst {
			return s.checkRolloutHealth(ctx, o.AppID, o.Channel, o.Version, false, true)
		}
	}
	return nil
}

// invalidateForFailure drops the app's cached state when a cached channel serves
// version but does not know yet that a device failed it (checks then start reading
// device records). Once known, further failures keep the cache: a failure storm does
// not turn every check into a reload.
func (s *Server) invalidateForFailure(app, version string) {
	c := s.state
	stale := c.servesUnfailed(app, version)
	if stale {
		c.invalidate(app)
	}
}
