package publish

import (
	"maps"
	"slices"
	"testing"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// ev is a history entry: the channel state after an action.
func ev(action, stable string, mod ...func(c *release.Channel)) store.ChannelEvent {
	c := release.Channel{Name: "production", Stable: stable}
	for _, m := range mod {
		m(&c)
	}
	return store.ChannelEvent{Action: action, Channel: c}
}

func rolling(v string) func(c *release.Channel) {
	return func(c *release.Channel) { c.Rolling = &release.Rollout{Version: v, Percent: 10, Salt: "s"} }
}

func builtin(c *release.Channel) { c.Builtin = true }

// newestFirst turns a history written oldest first into what ChannelHistory returns.
func newestFirst(h ...store.ChannelEvent) []store.ChannelEvent {
	slices.Reverse(h)
	return h
}

func TestReachable(t *testing.T) {
	allReady := func(string) bool { return true }
	only := func(vs ...string) func(string) bool {
		return func(v string) bool { return slices.Contains(vs, v) }
	}
	prod := func(stable string, mod ...func(c *release.Channel)) release.Channel {
		return ev("", stable, mod...).Channel
	}
	cases := []struct {
		name   string
		chs    []ChannelRefs
		ready  func(string) bool
		recent int
		want   map[string]string
	}{
		{
			name: "no channels",
			want: map[string]string{},
		},
		{
			name:  "stable and rollout, no history",
			chs:   []ChannelRefs{{Channel: prod("1.0.1", rolling("1.0.2"))}},
			ready: allReady,
			want:  map[string]string{"1.0.1": "channel production (stable)", "1.0.2": "channel production (rollout)"},
		},
		{
			name:  "halted rollout still reachable",
			chs:   []ChannelRefs{{Channel: prod("1.0.1", rolling("1.0.2"), func(c *release.Channel) { c.Rolling.Halted = true })}},
			ready: allReady,
			want:  map[string]string{"1.0.1": "channel production (stable)", "1.0.2": "channel production (rollout)"},
		},
		{
			// The reported bug: the previous stable is far back in the history (many
			// entries since), beyond what recent covers; a rollback still goes there.
			name: "previous stable beyond the recent window",
			chs: []ChannelRefs{{Channel: prod("1.0.2"), History: newestFirst(append([]store.ChannelEvent{
				ev("channel.set", "1.0.0"), ev("channel.set", "1.0.1"), ev("channel.set", "1.0.2"),
			}, slices.Repeat([]store.ChannelEvent{ev("channel.set", "1.0.2")}, 30)...)...)}},
			ready:  allReady,
			recent: 20,
			want:   map[string]string{"1.0.2": "channel production (stable)", "1.0.1": "channel production history (rollback target)"},
		},
		{
			name: "recent window adds older entries",
			chs: []ChannelRefs{{Channel: prod("1.0.2"), History: newestFirst(
				ev("channel.set", "1.0.0"), ev("rollout.set", "1.0.0", rolling("0.9.9")), ev("channel.set", "1.0.1"), ev("channel.set", "1.0.2"),
			)}},
			ready:  allReady,
			recent: 20,
			want: map[string]string{"1.0.2": "channel production (stable)", "1.0.1": "channel production history (rollback target)",
				"1.0.0": "channel production history (recent)", "0.9.9": "channel production history (recent)"},
		},
		{
			name: "target skips releases that are not ready (deleted or failed)",
			chs: []ChannelRefs{{Channel: prod("1.0.3"), History: newestFirst(
				ev("channel.set", "1.0.0"), ev("channel.set", "1.0.1"), ev("channel.set", "1.0.2"), ev("channel.set", "1.0.3"),
			)}},
			ready: only("1.0.0", "1.0.3"),
			want:  map[string]string{"1.0.3": "channel production (stable)", "1.0.0": "channel production history (rollback target)"},
		},
		{
			// After rolling back from 1.0.2, a second rollback must not bring 1.0.2
			// back: the next target is 1.0.0.
			name: "after a rollback, the release rolled back from is no target",
			chs: []ChannelRefs{{Channel: prod("1.0.1"), History: newestFirst(
				ev("channel.set", "1.0.0"), ev("channel.set", "1.0.1"), ev("channel.set", "1.0.2"), ev(store.ActionRollback, "1.0.1"),
			)}},
			ready: allReady,
			want:  map[string]string{"1.0.1": "channel production (stable)", "1.0.0": "channel production history (rollback target)"},
		},
		{
			// rollback --builtin keeps the stable release on the channel: neither it
			// (built-in state) nor 1.0.1 (rolled back from) is a target.
			name: "built-in states are no target",
			chs: []ChannelRefs{{Channel: prod("1.0.2"), History: newestFirst(
				ev("channel.set", "1.0.0"), ev("channel.set", "1.0.1"), ev(store.ActionRollback, "1.0.1", builtin), ev("channel.set", "1.0.2"),
			)}},
			ready: allReady,
			want:  map[string]string{"1.0.2": "channel production (stable)", "1.0.0": "channel production history (rollback target)"},
		},
		{
			name: "promoted rollout: the stable it replaced is the target",
			chs: []ChannelRefs{{Channel: prod("1.0.2"), History: newestFirst(
				ev("channel.set", "1.0.1"), ev("rollout.set", "1.0.1", rolling("1.0.2")), ev("rollout.promote", "1.0.2"),
			)}},
			ready: allReady,
			want:  map[string]string{"1.0.2": "channel production (stable)", "1.0.1": "channel production history (rollback target)"},
		},
		{
			name: "nothing to roll back to",
			chs: []ChannelRefs{{Channel: prod("1.0.0"), History: newestFirst(
				ev("channel.set", ""), ev("channel.set", "1.0.0"),
			)}},
			ready: allReady,
			want:  map[string]string{"1.0.0": "channel production (stable)"},
		},
		{
			name: "each channel its own target; serving wins over history as the reason",
			chs: []ChannelRefs{
				{Channel: prod("2.0.0"), History: newestFirst(ev("channel.set", "1.0.0"), ev("channel.set", "2.0.0"))},
				{Channel: release.Channel{Name: "beta", Stable: "1.0.0"}, History: []store.ChannelEvent{
					{Action: "channel.set", Channel: release.Channel{Name: "beta", Stable: "1.0.0"}},
					{Action: "channel.set", Channel: release.Channel{Name: "beta", Stable: "0.9.0"}},
				}},
			},
			ready: allReady,
			want: map[string]string{"2.0.0": "channel production (stable)", "1.0.0": "channel beta (stable)",
				"0.9.0": "channel beta history (rollback target)"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Reachable(c.chs, c.ready, c.recent)
			if !maps.Equal(got, c.want) {
				t.Fatalf("Reachable = %v\nwant        %v", got, c.want)
			}
		})
	}
}

// TestRollbackCandidates: the order a rollback tries releases in, which Reachable
// follows to keep the one it would pick.
func TestRollbackCandidates(t *testing.T) {
	hist := newestFirst(ev("channel.set", "1.0.0"), ev("channel.set", "1.0.1"), ev("channel.set", "1.0.1"),
		ev("channel.set", "1.0.2"), ev(store.ActionRollback, "1.0.1"), ev("channel.set", "1.0.3"))
	got := store.RollbackCandidates(hist, "1.0.3")
	if want := []string{"1.0.1", "1.0.0"}; !slices.Equal(got, want) {
		t.Fatalf("candidates %v, want %v (1.0.2 was rolled back from)", got, want)
	}
}
