package release

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func ready(v string, mod ...func(*Release)) *Release {
	r := &Release{AppID: "a", Version: v, Status: StatusReady, SHA256: "x"}
	for _, m := range mod {
		m(r)
	}
	return r
}

func TestDecide(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v1, v2 := ready("1.0.0"), ready("2.0.0")
	native2 := ready("2.0.0", func(r *Release) { r.MinNative = "2.0.0" })
	enc := ready("2.0.0", func(r *Release) { r.Signatures.KeyID = "MIIBCgKCAQEAabcdefgh"; r.Signatures.SessionKey = "iv:key" })
	encNoID := ready("2.0.0", func(r *Release) { r.Signatures.SessionKey = "iv:key" })
	ios := ready("2.0.0", func(r *Release) { r.Platform = "ios" })
	pending := &Release{Version: "2.0.0", Status: StatusPending}
	disabled := ready("2.0.0", func(r *Release) { r.Disabled = true })
	rels := func(rs ...*Release) map[string]*Release {
		m := map[string]*Release{}
		for _, r := range rs {
			m[r.Version] = r
		}
		return m
	}
	stable := func(v string) *Channel { return &Channel{Name: "production", Stable: v} }
	rolling := func(pct float64, halted bool) *Channel {
		return &Channel{Name: "production", Stable: "1.0.0", Rolling: &Rollout{Version: "2.0.0", Percent: pct, Salt: "s", Halted: halted}}
	}
	failed := &Device{ID: "d", Failed: map[string]int64{"2.0.0": now.Add(time.Hour).Unix()}}
	expired := &Device{ID: "d", Failed: map[string]int64{"2.0.0": now.Add(-time.Hour).Unix()}}

	tests := []struct {
		name     string
		q        Question
		s        State
		kind     Kind
		reason   string
		version  string
		breaking bool
	}{
		{"no channel", Question{}, State{}, NoRelease, ReasonNoChannel, "", false},
		{"channel without release", Question{}, State{Channel: stable("")}, NoRelease, ReasonNoBundle, "", false},
		{"stable release offered", Question{Current: "0.9.0"}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Update, "", "2.0.0", false},
		{"unknown current gets head", Question{}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Update, "", "2.0.0", false},
		{"downgrade is an update (version is identity)", Question{Current: "3.0.0"}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Update, "", "2.0.0", false},
		{"up to date", Question{Current: "2.0.0"}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, UpToDate, ReasonUpToDate, "2.0.0", false},
		{"pending release invisible", Question{}, State{Channel: stable("2.0.0"), Releases: rels(pending)}, NoRelease, ReasonNoBundle, "", false},
		{"disabled release invisible", Question{}, State{Channel: stable("2.0.0"), Releases: rels(disabled)}, NoRelease, ReasonNoBundle, "", false},
		{"native too old", Question{Native: "1.9.9"}, State{Channel: stable("2.0.0"), Releases: rels(native2)}, Blocked, ReasonNativeTooOld, "2.0.0", true},
		{"native equal passes", Question{Native: "2.0.0"}, State{Channel: stable("2.0.0"), Releases: rels(native2)}, Update, "", "2.0.0", false},
		{"native unknown passes (client enforces)", Question{}, State{Channel: stable("2.0.0"), Releases: rels(native2)}, Update, "", "2.0.0", false},
		{"native numeric compare", Question{Native: "10.0.0"}, State{Channel: stable("2.0.0"), Releases: rels(native2)}, Update, "", "2.0.0", false},
		{"builtin revert", Question{Current: "2.0.0"}, State{Channel: &Channel{Builtin: true, Stable: "2.0.0"}, Releases: rels(v2)}, Revert, ReasonRevertBuiltin, "", false},
		{"key mismatch", Question{KeyAware: true, KeyID: "MIIBCgKCAQEAzzzzzzzz"}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"key match", Question{KeyAware: true, KeyID: "MIIBCgKCAQEAabcdefgh"}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Update, "", "2.0.0", false},
		{"encrypted to keyless device", Question{KeyAware: true}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"plain to keyed device", Question{KeyAware: true, KeyID: "MIIBCgKCAQEAabcdefgh"}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"key ignored by key-unaware clients", Question{}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Update, "", "2.0.0", false},
		{"4-char key prefix fits", Question{KeyAware: true, KeyID: "MIIB"}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Update, "", "2.0.0", false},
		{"4-char key prefix of another key size", Question{KeyAware: true, KeyID: "MIIC"}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"4-char key prefix, plain release", Question{KeyAware: true, KeyID: "MIIB"}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"key longer than the release's", Question{KeyAware: true, KeyID: "MIIBCgKCAQEAabcdefghX"}, State{Channel: stable("2.0.0"), Releases: rels(enc)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"encrypted without recorded key id", Question{KeyAware: true}, State{Channel: stable("2.0.0"), Releases: rels(encNoID)}, Blocked, ReasonKeyMismatch, "2.0.0", false},
		{"plain to keyless device", Question{KeyAware: true}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Update, "", "2.0.0", false},
		{"plain to key-unaware client", Question{}, State{Channel: stable("2.0.0"), Releases: rels(v2)}, Update, "", "2.0.0", false},
		{"emulator blocked", Question{Emulator: true}, State{Channel: &Channel{Stable: "2.0.0", NoEmulator: true}, Releases: rels(v2)}, Blocked, ReasonEmulator, "", false},
		{"dev build blocked", Question{DevBuild: true}, State{Channel: &Channel{Stable: "2.0.0", NoDevBuild: true}, Releases: rels(v2)}, Blocked, ReasonDevBuild, "", false},
		{"platform mismatch", Question{Platform: "android"}, State{Channel: stable("2.0.0"), Releases: rels(ios)}, NoRelease, ReasonPlatform, "", false},
		{"platform match", Question{Platform: "ios"}, State{Channel: stable("2.0.0"), Releases: rels(ios)}, Update, "", "2.0.0", false},
		{"failed before: blocked", Question{DeviceID: "d"}, State{Channel: stable("2.0.0"), Releases: rels(v2), Device: failed, Now: now}, Blocked, ReasonFailedBefore, "2.0.0", false},
		{"failure memory expires", Question{DeviceID: "d"}, State{Channel: stable("2.0.0"), Releases: rels(v2), Device: expired, Now: now}, Update, "", "2.0.0", false},
		{"rollout 100% gets rolling", Question{DeviceID: "d"}, State{Channel: rolling(100, false), Releases: rels(v1, v2)}, Update, "", "2.0.0", false},
		{"rollout 0% gets stable", Question{DeviceID: "d"}, State{Channel: rolling(0, false), Releases: rels(v1, v2)}, Update, "", "1.0.0", false},
		{"no device id never rolls", Question{}, State{Channel: rolling(100, false), Releases: rels(v1, v2)}, Update, "", "1.0.0", false},
		{"halted rollout serves stable", Question{DeviceID: "d"}, State{Channel: rolling(100, true), Releases: rels(v1, v2)}, Update, "", "1.0.0", false},
		{"failed rolling falls back to stable", Question{DeviceID: "d"}, State{Channel: rolling(100, false), Releases: rels(v1, v2), Device: failed, Now: now}, Update, "", "1.0.0", false},
		{"on stable while rolling elsewhere", Question{DeviceID: "d", Current: "1.0.0"}, State{Channel: rolling(0, false), Releases: rels(v1, v2)}, UpToDate, ReasonUpToDate, "1.0.0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.q, tc.s)
			if d.Kind != tc.kind || d.Reason != tc.reason || d.Breaking != tc.breaking {
				t.Fatalf("got %v/%q breaking=%v, want %v/%q breaking=%v", d.Kind, d.Reason, d.Breaking, tc.kind, tc.reason, tc.breaking)
			}
			got := ""
			if d.Release != nil {
				got = d.Release.Version
			}
			if got != tc.version {
				t.Fatalf("release %q, want %q", got, tc.version)
			}
		})
	}
}

// TestRolloutSimulation: 10,000 devices through 10% -> 50% -> 100%: bucket sizes
// within 1 point of target (about 2 standard deviations at 50% for 10,000 devices),
// and no device ever moves back to stable.
func TestRolloutSimulation(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 42))
	devices := make([]string, 10000)
	for i := range devices {
		devices[i] = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
	salt := fmt.Sprintf("%016x", rng.Uint64()) // new rollouts get a random salt too
	in := map[string]bool{}
	for _, pct := range []float64{10, 50, 100} {
		n := 0
		for _, d := range devices {
			got := InRollout(d, salt, pct)
			if in[d] && !got {
				t.Fatalf("device %s moved back at %v%%", d, pct)
			}
			in[d] = got
			if got {
				n++
			}
		}
		share := float64(n) / float64(len(devices)) * 100
		if share < pct-1 || share > pct+1 {
			t.Fatalf("at %v%%: %.2f%% of devices in rollout", pct, share)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.0", "1.0.0", 0}, {"1.2.0", "1.10.0", -1}, {"2.0.0", "1.99.99", 1},
		{"1.0.0-beta", "1.0.0", -1}, {"1.0.0-alpha", "1.0.0-beta", -1}, {"v1.2.3", "1.2.3", 0},
		{"1.0.0+45", "1.0.0", 0}, {"1.2.3rc1", "1.2.3", 0}, {"10", "9.9", 1},
	}
	for _, tc := range tests {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q,%q)=%d want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestValidIDs(t *testing.T) {
	for _, ok := range []string{"com.example.app", "a", "app_1-2"} {
		if ValidAppID(ok) != nil {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", "a b", "a#b", ".hidden"} {
		if ValidAppID(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, bad := range []string{"builtin", "latest", "1.0/2", "a#b", ""} {
		if ValidVersion(bad) == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
}
