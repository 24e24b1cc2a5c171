package release

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"time"
)

// Question is the neutral form of every client's update check.
type Question struct {
	AppID    string
	Platform string // ios, android, electron, web; "" unknown
	Channel  string // resolved by the adapter: explicit, device override or app default
	DeviceID string // "" when the protocol sends none: stable release only
	Current  string // running bundle version; "" unknown
	Native   string // native app version; "" unknown
	Emulator bool   // known to be an emulator
	DevBuild bool   // known to be a non-production build
	// KeyAware: the client reports its encryption key (Capgo's key_id), so KeyID ""
	// means it has none. Otherwise KeyID is the start of the key's id: Capgo plugins
	// send its first 4 or 20 characters depending on their version. Clients that do
	// not report their key are offered any release.
	KeyAware bool
	KeyID    string
}

// Kind is the shape of an answer.
type Kind int

const (
	NoRelease Kind = iota // nothing to offer (no channel, no bundle)
	UpToDate
	Update
	Blocked
	Revert // go back to the bundle inside the store binary
)

func (k Kind) String() string {
	return [...]string{"no_release", "up_to_date", "update", "blocked", "revert"}[k]
}

// Reason codes reuse Capgo's where one exists, so the Capgo adapter can pass them on.
const (
	ReasonNoChannel     = "no_channel"
	ReasonNoBundle      = "no_bundle"
	ReasonUpToDate      = "no_new_version_available"
	ReasonNativeTooOld  = "disable_auto_update_under_native"
	ReasonFailedBefore  = "disable_failed_version"
	ReasonKeyMismatch   = "key_id_mismatch"
	ReasonEmulator      = "disable_emulator"
	ReasonDevBuild      = "disable_dev_build"
	ReasonPlatform      = "disable_platform"
	ReasonRevertBuiltin = "revert_to_builtin"
)

// Decision is the neutral answer.
type Decision struct {
	Kind     Kind
	Reason   string
	Release  *Release // the release offered (Update) or withheld (Blocked with a release)
	Breaking bool     // the release needs a newer native binary
	Rolling  bool     // the release came from the channel's rollout
}

// State is everything Decide reads. Releases holds at least the channel's stable and
// rolling releases, keyed by version.
type State struct {
	Channel  *Channel
	Releases map[string]*Release
	Device   *Device // nil when unknown
	Now      time.Time
}

// Decide answers one device's check. It is pure: same inputs, same answer.
func Decide(q Question, s State) Decision {
	ch := s.Channel
	if ch == nil {
		return Decision{Kind: NoRelease, Reason: ReasonNoChannel}
	}
	if ch.Builtin {
		return Decision{Kind: Revert, Reason: ReasonRevertBuiltin}
	}
	if q.Emulator && ch.NoEmulator {
		return Decision{Kind: Blocked, Reason: ReasonEmulator}
	}
	if q.DevBuild && ch.NoDevBuild {
		return Decision{Kind: Blocked, Reason: ReasonDevBuild}
	}

	stable := servable(s.Releases[ch.Stable], q.Platform)
	target, rolling := stable, false
	if r := ch.Rolling; r != nil && !r.Halted && q.DeviceID != "" && InRollout(q.DeviceID, r.Salt, r.Percent) {
		if rel := servable(s.Releases[r.Version], q.Platform); rel != nil && !s.Device.FailedRecently(rel.Version, s.Now) {
			target, rolling = rel, true
		}
	}
	if target == nil {
		if q.Platform != "" && anyPlatformMismatch(s.Releases, ch) {
			return Decision{Kind: NoRelease, Reason: ReasonPlatform}
		}
		return Decision{Kind: NoRelease, Reason: ReasonNoBundle}
	}
	d := Decision{Release: target, Rolling: rolling}
	switch {
	case q.Current == target.Version:
		d.Kind, d.Reason = UpToDate, ReasonUpToDate
	case s.Device.FailedRecently(target.Version, s.Now):
		// Offering it again would loop: download, fail, revert, download...
		d.Kind, d.Reason = Blocked, ReasonFailedBefore
	case q.Native != "" && target.MinNative != "" && CompareVersions(q.Native, target.MinNative) < 0:
		d.Kind, d.Reason, d.Breaking = Blocked, ReasonNativeTooOld, true
	case q.KeyAware && !KeyFits(q.KeyID, target):
		d.Kind, d.Reason = Blocked, ReasonKeyMismatch
	default:
		d.Kind = Update
	}
	return d
}

// KeyFits reports whether a device whose key id starts with keyID ("" = no key)
// can install r: an encrypted release needs the key it was encrypted for, a plain
// one a device without a key (a device with a key reads the plain checksum as an
// encrypted one and fails). A short keyID only rules out keys that start otherwise.
func KeyFits(keyID string, r *Release) bool {
	if !r.Encrypted() {
		return keyID == ""
	}
	return keyID != "" && strings.HasPrefix(r.Signatures.KeyID, keyID)
}

// servable returns r if a device on platform may be offered it.
func servable(r *Release, platform string) *Release {
	if r == nil || r.Status != StatusReady || r.Disabled {
		return nil
	}
	if r.Platform != "" && platform != "" && r.Platform != platform {
		return nil
	}
	return r
}

func anyPlatformMismatch(rels map[string]*Release, ch *Channel) bool {
	r := rels[ch.Stable]
	return r != nil && r.Status == StatusReady && !r.Disabled && r.Platform != ""
}

// InRollout reports whether a device falls inside a rollout of percent (0..100).
// The bucket depends only on device and salt, so raising percent never moves a device
// out, and a new rollout (new salt) reshuffles who goes first.
func InRollout(deviceID, salt string, percent float64) bool {
	return Bucket(deviceID, salt) < percent*100
}

// Bucket maps a device to [0, 10000) basis points.
func Bucket(deviceID, salt string) float64 {
	h := sha256.Sum256([]byte(salt + "\x00" + deviceID))
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / float64(1<<53) * 10000
}
