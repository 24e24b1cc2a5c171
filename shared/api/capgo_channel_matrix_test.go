package api

// Channel handling by @capgo/capacitor-updater plugin line. Each row is one plugin
// release: the plugin_version its requests carry and where it keeps the device's
// channel, read in the client sources (repository Cap-go/capacitor-updater; Android
// android/src/main/java/ee/forgr/capacitor_updater/{CapgoUpdater,CapacitorUpdaterPlugin}.java,
// iOS ios/Sources/CapacitorUpdaterPlugin/{CapgoUpdater,CapacitorUpdaterPlugin}.swift).
// capgoPlugin replays what that release sends and reads, call by call; the expected
// server answers follow Capgo's backend (repository Cap-go/capgo,
// supabase/functions/_backend/plugin_runtime/plugins/channel_self.ts and
// utils/update.ts), which splits the lines at 5.34.0 / 6.34.0 / 7.34.0 / 8.0.0.
//
// What every release sends (createInfoObject): platform, device_id, app_id, custom_id,
// version_build, version_code, version_os, version_name, plugin_version, is_emulator,
// is_prod, defaultChannel. Then:
//
//   - setChannel: POST channelUrl, info + "channel". An answer with "error" rejects the
//     call; 7.34.0+ (and 6.34.0 / 5.34.0) also fire channelPrivate on
//     channel_self_set_not_allowed / cannot_update_via_private_channel and, without
//     an error, persist the channel locally (CapacitorUpdater.defaultChannel).
//   - getChannel: PUT channelUrl, info. 8.47.9+ persist the answer's "channel".
//   - unsetChannel: server-side lines DELETE channelUrl with info as a JSON body;
//     device-side lines clear the local channel and send nothing.
//   - checks: POST updateUrl, info; defaultChannel is the local channel when set, else
//     capacitor.config's defaultChannel.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// capgoChannelRow is one plugin release.
type capgoChannelRow struct {
	line          string // the npm release
	pluginVersion string // what its requests carry (a native constant that twice lagged the package)
	serverSide    bool   // read as keeping no channel (by plugin_version): setChannel stores an override
	keepsLocal    bool   // the code persists the channel and unsets it locally (no DELETE)
	syncsGet      bool   // the code persists the getChannel answer as its channel
}

// capgoChannelRows: each row's comment names the client source it is read from.
var capgoChannelRows = []capgoChannelRow{
	// v5 branch commit 775d4c81 (package 5.31.0): CapgoUpdater.java setChannel posts
	// info+channel, unsetChannel sends DELETE with a JSON body, no local channel;
	// CapacitorUpdaterPlugin.java pluginVersion = "5.31.0". Same in the Swift files.
	{line: "5.31.0", pluginVersion: "5.31.0", serverSide: true},
	// commit 211b5a06 (package 5.34.0): keeps the channel locally
	// (CapacitorUpdaterPlugin.java DEFAULT_CHANNEL_PREF_KEY) but its pluginVersion
	// constant still says "5.31.0" (both platforms), so servers read it as
	// server-side; setChannel then stores an override AND the channel locally, and
	// unsetChannel clears only the local one (the override stays, as on Capgo).
	{line: "5.34.0", pluginVersion: "5.31.0", serverSide: true, keepsLocal: true},
	// commit 12b8a571 (package 5.35.0): local channel, pluginVersion = "5.35.0".
	{line: "5.35.0", pluginVersion: "5.35.0", keepsLocal: true},
	// v6 branch commit 5f9be52d (package 6.30.0, the last 6.x before 6.34.0; there is
	// no 6.31-6.33): server-side like 5.31.0, pluginVersion = "6.27.11".
	{line: "6.30.0", pluginVersion: "6.27.11", serverSide: true},
	// commit c18bb412 (package 6.34.0): local channel, pluginVersion still "6.27.11":
	// read as server-side, like 5.34.0.
	{line: "6.34.0", pluginVersion: "6.27.11", serverSide: true, keepsLocal: true},
	// commit b0bede6c (package 6.35.0): local channel, pluginVersion = "6.35.0".
	{line: "6.35.0", pluginVersion: "6.35.0", keepsLocal: true},
	// tag 7.33.4: CapgoUpdater.java/.swift unsetChannel sends DELETE, getChannel PUT,
	// defaultChannel is only capacitor.config's.
	{line: "7.33.4", pluginVersion: "7.33.4", serverSide: true},
	// tag 7.34.0 (commit 89184c3e "make channel override functionality use
	// defaultChannel"): setChannel persists the channel after an answer without
	// error, unsetChannel is local, channelPrivate event added.
	{line: "7.34.0", pluginVersion: "7.34.0", keepsLocal: true},
	// v8 branch commit 00fa1735 ("first v8 alpha release", package 8.0.0-alpha):
	// 7.32 code, pluginVersion = "7.32.0": server-side.
	{line: "8.0.0-alpha", pluginVersion: "7.32.0", serverSide: true},
	// commit f2509156 (package 8.1.0, first stable 8.x): 7.34 channel code,
	// pluginVersion = "8.0.0".
	{line: "8.1.0", pluginVersion: "8.0.0", keepsLocal: true},
	// tag 8.51.14: as 7.34.0, plus getChannel persists the answer's channel
	// (persistDefaultChannelFromResponse, since 8.47.9) and setChannel honours
	// "unset":true (since 8.42.6; this server never sends it).
	{line: "8.51.14", pluginVersion: "8.51.14", keepsLocal: true, syncsGet: true},
}

// capgoRow returns the row of a plugin release.
func capgoRow(t testing.TB, line string) capgoChannelRow {
	t.Helper()
	for _, r := range capgoChannelRows {
		if r.line == line {
			return r
		}
	}
	t.Fatalf("no row %s", line)
	return capgoChannelRow{}
}

// capgoPlugin replays one plugin release on one device.
type capgoPlugin struct {
	t      *testing.T
	e      *testEnv
	row    capgoChannelRow
	device string
	config string // capacitor.config defaultChannel
	local  string // channel the plugin persisted (device-side lines)
}

func (p *capgoPlugin) info() map[string]any {
	ch := p.config
	if p.local != "" {
		ch = p.local
	}
	return map[string]any{"platform": "android", "device_id": p.device, "app_id": capgoApp, "custom_id": "",
		"version_build": "1.0.0", "version_code": "10", "version_os": "14", "version_name": "1.0.0",
		"plugin_version": p.row.pluginVersion, "is_emulator": false, "is_prod": true, "defaultChannel": ch}
}

// setChannel returns the answer's error code ("" on success), after the plugin read it.
func (p *capgoPlugin) setChannel(channel string) (map[string]any, string) {
	p.t.Helper()
	body := p.info()
	body["channel"] = channel
	st, _, b := p.e.do("POST", "/capgo/channel_self", body)
	m := jsonMap(p.t, b)
	if st != 200 {
		p.t.Fatalf("setChannel %q: HTTP %d %v (plugins before 8.x lose the code of a non-2xx answer)", channel, st, m)
	}
	if code, _ := m["error"].(string); code != "" {
		return m, code
	}
	if p.row.keepsLocal {
		p.local = channel
	}
	return m, ""
}

// unsetChannel returns the DELETE answer, nil when the line sends none.
func (p *capgoPlugin) unsetChannel() map[string]any {
	p.t.Helper()
	p.local = ""
	if p.row.keepsLocal {
		return nil
	}
	st, _, b := p.e.do("DELETE", "/capgo/channel_self", p.info())
	m := jsonMap(p.t, b)
	if st != 200 {
		p.t.Fatalf("unsetChannel: HTTP %d %v", st, m)
	}
	return m
}

func (p *capgoPlugin) getChannel() map[string]any {
	p.t.Helper()
	st, _, b := p.e.do("PUT", "/capgo/channel_self", p.info())
	m := jsonMap(p.t, b)
	if st != 200 {
		p.t.Fatalf("getChannel: HTTP %d %v", st, m)
	}
	if ch, _ := m["channel"].(string); p.row.syncsGet && ch != "" && ch != "builtin" {
		p.local = ch
	}
	return m
}

// check returns the version offered, or the error code of a no-update answer.
func (p *capgoPlugin) check() string {
	p.t.Helper()
	st, h, m := p.e.capgoCheck(p.info())
	if e, _ := m["error"].(string); e != "" {
		capgoWantNoUpdate(p.t, st, h, m, "", "")
		return e
	}
	return capgoWantUpdate(p.t, st, m)["version"].(string)
}

// override is the device's server-side channel ("" none, no record at all included).
func (p *capgoPlugin) override() string {
	p.t.Helper()
	d, err := p.e.store.GetDevice(context.Background(), capgoApp, p.device)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return d.Channel
}

// capgoChannelEnv: production (the default, public), beta (open to self-assignment),
// internal (private), on the given store.
func capgoChannelEnv(t *testing.T, b tableBackend) *testEnv {
	e := newTestEnvWith(t, b.open(t), envOptions{})
	t.Cleanup(e.srv.patchJobs.wait) // background patch jobs end before the store closes
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	e.publish(capgoApp, "1.1.0-beta.1", "")
	e.publish(capgoApp, "1.0.2-internal", "")
	e.capgoChannel("production", func(c *release.Channel) { c.Public = true })
	e.capgoChannel("beta", func(c *release.Channel) { c.Stable, c.AllowSelfSet = "1.1.0-beta.1", true })
	e.capgoChannel("internal", func(c *release.Channel) { c.Stable = "1.0.2-internal" })
	return e
}

func TestCapgoChannelMatrix(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		e := capgoChannelEnv(t, b)
		for i, row := range capgoChannelRows {
			t.Run(row.line, func(t *testing.T) {
				e.t = t
				p := &capgoPlugin{t: t, e: e, row: row, device: fmt.Sprintf("0e7a2f3c-5b1d-4c8e-9a6f-%012d", i)}

				// No choice yet: checks are answered from the default channel, and
				// getChannel says so (no allowSet with "default", as from Capgo).
				if v := p.check(); v != "1.0.1" {
					t.Fatalf("first check: %s", v)
				}
				if m := p.getChannel(); m["channel"] != "production" || m["status"] != "default" || m["allowSet"] != nil {
					t.Fatalf("getChannel before a choice: %v", m)
				}

				// setChannel("beta"): accepted by both storage kinds; only server-side
				// lines get an override, device-side ones get allowSet as from Capgo.
				m, code := p.setChannel("beta")
				if code != "" || m["status"] != "ok" {
					t.Fatalf("setChannel beta: %v", m)
				}
				if row.serverSide {
					if ov := p.override(); ov != "beta" || m["allowSet"] != nil {
						t.Fatalf("server-side line: override %q, answer %v", ov, m)
					}
				} else if ov := p.override(); ov != "" || m["allowSet"] != true {
					t.Fatalf("device-side line: override %q (want none), answer %v", ov, m)
				}
				// The next check is answered from beta: from the override, or from the
				// defaultChannel the plugin now sends.
				if v := p.check(); v != "1.1.0-beta.1" {
					t.Fatalf("check after setChannel beta (sends defaultChannel %q): %s", p.info()["defaultChannel"], v)
				}
				m = p.getChannel()
				if wantStatus := map[bool]string{true: "override", false: "default"}[row.serverSide]; m["channel"] != "beta" || m["status"] != wantStatus {
					t.Fatalf("getChannel after setChannel beta: %v, want beta/%s", m, wantStatus)
				}

				// Refusals come with HTTP 200 and the codes the plugin knows; nothing
				// changes on either side.
				for ch, want := range map[string]string{
					"internal":   "channel_self_set_not_allowed",        // fires channelPrivate (7.34.0+)
					"production": "public_channel_self_set_not_allowed", // public, not self-assignable
					"nosuch":     "channel_not_found",
				} {
					if _, code := p.setChannel(ch); code != want {
						t.Fatalf("setChannel %s: %q, want %s", ch, code, want)
					}
				}
				if v := p.check(); v != "1.1.0-beta.1" {
					t.Fatalf("a refused setChannel moved the device: %s", v)
				}

				// unsetChannel: DELETE (server-side) removes the override; device-side
				// lines forget their channel without a request.
				m = p.unsetChannel()
				switch {
				case row.serverSide && row.keepsLocal:
					// Local unset, no request; the override their plugin_version earned
					// stays and still wins (what Capgo does with these releases too).
					if m != nil || p.override() != "beta" || p.check() != "1.1.0-beta.1" {
						t.Fatalf("lagging plugin_version: answer %v, override %q", m, p.override())
					}
					return
				case row.serverSide:
					if m["status"] != "ok" || p.override() != "" {
						t.Fatalf("DELETE: %v, override %q", m, p.override())
					}
				case m != nil:
					t.Fatalf("device-side line sent DELETE")
				}
				if v := p.check(); v != "1.0.1" {
					t.Fatalf("check after unsetChannel: %s", v)
				}
				if m := p.getChannel(); m["channel"] != "production" || m["status"] != "default" {
					t.Fatalf("getChannel after unsetChannel: %v", m)
				}

				// A build whose capacitor.config names a private channel is refused.
				p.config, p.local = "internal", ""
				if code := p.check(); code != "cannot_update_via_private_channel" {
					t.Fatalf("check naming a private channel: %s", code)
				}
			})
		}
	})
}

// A device upgraded from a server-side line to a device-side one: the stored override
// no longer applies and getChannel no longer reports it (the new plugin keeps the
// channel itself and can only clear it locally).
func TestCapgoChannelUpgradeDropsOverride(t *testing.T) {
	e := capgoChannelEnv(t, tableBackends()[0])
	old := &capgoPlugin{t: t, e: e, row: capgoRow(t, "7.33.4"), device: "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"}
	if _, code := old.setChannel("beta"); code != "" || old.override() != "beta" {
		t.Fatalf("7.33.4 setChannel: %q, override %q", code, old.override())
	}
	upgraded := &capgoPlugin{t: t, e: e, row: capgoRow(t, "7.34.0"), device: old.device}
	if v := upgraded.check(); v != "1.0.1" {
		t.Fatalf("7.34.0 check with a 7.33.4 override: %s, want the default channel", v)
	}
	if m := upgraded.getChannel(); m["channel"] != "production" || m["status"] != "default" {
		t.Fatalf("7.34.0 getChannel with a 7.33.4 override: %v", m)
	}
	// An explicit "channel" in the PUT body is echoed (Capgo does so for these lines).
	body := upgraded.info()
	body["channel"] = "beta"
	st, _, b := e.do("PUT", "/capgo/channel_self", body)
	if m := jsonMap(t, b); st != 200 || m["channel"] != "beta" || m["status"] != "override" || m["allowSet"] != true {
		t.Fatalf("PUT with channel: %d %v", st, m)
	}
}

// A server-side override wins over the device's defaultChannel and over the private
// check, and a device on a channel that no longer allows self-assignment can neither
// move nor unset itself (cannot_override, as from Capgo). Its stats count under the
// override's channel.
func TestCapgoChannelServerSideOverride(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		e := capgoChannelEnv(t, b)
		e.capgoChannel("alpha", func(c *release.Channel) { c.Stable, c.AllowSelfSet = "1.0.2-internal", true })
		p := &capgoPlugin{t: t, e: e, row: capgoRow(t, "6.30.0"), device: "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"}
		p.config = "beta"
		if v := p.check(); v != "1.1.0-beta.1" {
			t.Fatalf("config channel: %s", v)
		}
		if _, code := p.setChannel("alpha"); code != "" {
			t.Fatalf("setChannel alpha: %s", code)
		}
		if v := p.check(); v != "1.0.2-internal" {
			t.Fatalf("override over defaultChannel: %s", v)
		}
		// The operator closes alpha: the device stays on it, even though alpha is now
		// neither public nor self-assignable, and cannot leave it by itself.
		e.capgoChannel("alpha", func(c *release.Channel) { c.AllowSelfSet = false })
		if v := p.check(); v != "1.0.2-internal" {
			t.Fatalf("override on a closed channel: %s", v)
		}
		if _, code := p.setChannel("beta"); code != "cannot_override" {
			t.Fatalf("setChannel away from a closed channel: %q", code)
		}
		if m := p.unsetChannel(); m["error"] != "cannot_override" || p.override() != "alpha" {
			t.Fatalf("unsetChannel from a closed channel: %v, override %q", m, p.override())
		}
		if m := p.getChannel(); m["channel"] != "alpha" || m["status"] != "override" || m["allowSet"] != false {
			t.Fatalf("getChannel on a closed channel: %v", m)
		}
		// Stats of the device count under alpha, where its checks are answered from.
		ev := p.info()
		ev["action"], ev["timestamp"] = "app_moved_to_foreground", time.Now().UnixMilli()
		if st, m := e.capgoStats([]any{ev}); st != 200 {
			t.Fatalf("stats: %d %v", st, m)
		}
		rows, err := e.store.ReadStats(context.Background(), capgoApp, []string{store.Day(e.store.Now())})
		if err != nil || len(rows) != 1 || rows[0].Channel != "alpha" {
			t.Fatalf("stats rows %+v, %v: want one under alpha", rows, err)
		}
		// The channel goes away: the override stops applying and DELETE removes it.
		if err := e.store.DeleteChannel(context.Background(), capgoApp, "alpha"); err != nil {
			t.Fatal(err)
		}
		e.srv.state.invalidate(capgoApp)
		if v := p.check(); v != "1.1.0-beta.1" {
			t.Fatalf("override on a deleted channel: %s", v)
		}
		if m := p.unsetChannel(); m["status"] != "ok" || p.override() != "" {
			t.Fatalf("unsetChannel of a dangling override: %v, override %q", m, p.override())
		}
		// Setting the default channel (when it allows self-assignment) leaves no override.
		e.capgoChannel("production", func(c *release.Channel) { c.AllowSelfSet = true })
		if _, code := p.setChannel("beta"); code != "" || p.override() != "beta" {
			t.Fatalf("setChannel beta: %q %q", code, p.override())
		}
		if _, code := p.setChannel("production"); code != "" || p.override() != "" {
			t.Fatalf("setChannel to the default: %q, override %q", code, p.override())
		}
	})
}

// Checks from server-side lines read device records only while the app has overrides.
func TestCapgoChannelOverrideReads(t *testing.T) {
	ct := store.Counting(tableBackends()[0].open(t))
	e := newTestEnvWith(t, ct, envOptions{ttl: time.Hour})
	t.Cleanup(e.srv.patchJobs.wait)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	e.capgoChannel("beta", func(c *release.Channel) { c.AllowSelfSet = true })
	p := &capgoPlugin{t: t, e: e, row: capgoRow(t, "7.33.4"), device: "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"}
	p.check() // warm the cache
	before := ct.Reads.Load()
	for range 20 {
		p.check()
	}
	if n := ct.Reads.Load() - before; n != 0 {
		t.Fatalf("20 checks of an app without overrides read %d items", n)
	}
	if _, code := p.setChannel("beta"); code != "" {
		t.Fatalf("setChannel: %s", code)
	}
	p.check()
	before = ct.Reads.Load()
	p.check()
	if n := ct.Reads.Load() - before; n != 1 {
		t.Fatalf("a check with overrides in the app read %d items, want the device record", n)
	}
}

// Device-written channel fields are bounded, with a 4xx and a stable code.
func TestCapgoChannelFieldLimits(t *testing.T) {
	e := capgoChannelEnv(t, tableBackends()[0])
	long := strings.Repeat("c", capgoMaxChannel+1)
	p := &capgoPlugin{t: t, e: e, row: capgoRow(t, "8.51.14"), device: "5c1d7e0a-93b2-4f6e-8d4a-2b9c0e1f3a7d"}
	for _, c := range []struct {
		method, path string
		over         map[string]any
		code         string
	}{
		{"POST", "/capgo/updates", map[string]any{"defaultChannel": long}, "invalid_channel"},
		{"POST", "/capgo/updates", map[string]any{"plugin_version": strings.Repeat("8", capgoMaxPluginVersion+1)}, "invalid_plugin_version"},
		{"POST", "/capgo/channel_self", map[string]any{"channel": long}, "invalid_channel"},
		{"PUT", "/capgo/channel_self", map[string]any{"channel": long}, "invalid_channel"},
		{"PUT", "/capgo/channel_self", map[string]any{"defaultChannel": long}, "invalid_channel"},
		{"DELETE", "/capgo/channel_self", map[string]any{"plugin_version": strings.Repeat("7", capgoMaxPluginVersion+1)}, "invalid_plugin_version"},
	} {
		body := p.info()
		for k, v := range c.over {
			body[k] = v
		}
		st, _, b := e.do(c.method, c.path, body)
		if m := jsonMap(t, b); st != 400 || m["error"] != c.code {
			t.Fatalf("%s %s %v: %d %v, want 400 %s", c.method, c.path, c.over, st, m, c.code)
		}
	}
}

// The split by plugin_version, as Capgo's backend parses it (strict semver; missing =
// 0.0.0, unparseable = server-side).
func TestCapgoServerSideChannel(t *testing.T) {
	for v, want := range map[string]bool{
		"":               false,
		"garbage":        true,
		"7.33":           true,
		"07.33.0":        true,
		"5.9.5":          true,
		"5.33.99":        true,
		"5.34.0":         false,
		"6.27.11":        true,
		"6.33.0":         true,
		"6.34.0":         false,
		"7.33.4":         true,
		"v7.33.4":        true,
		"7.34.0-alpha.0": true,
		"7.34.0":         false,
		"7.35.0-alpha.0": false,
		"8.0.0-alpha.2":  true,
		"8.0.0":          false,
		"8.51.14":        false,
		"8.51.23+build":  false,
		"4.61.11":        false, // majors outside 5-8 are never server-side on Capgo
		"10.0.0":         false,
	} {
		if got := capgoServerSideChannel(v); got != want {
			t.Errorf("capgoServerSideChannel(%q) = %v, want %v", v, got, want)
		}
	}
}
