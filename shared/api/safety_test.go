package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/testenv"
)

// Release safety through real HTTP: staged rollouts, automatic halts, failure
// memory, rollback, stats, audit and cleanup. Every test runs on bbolt and on
// DynamoDB Local (subtests "bolt" and "dynamodb").

const sfApp = "com.example.safety"

// sfNative is the native version the simulated devices run; no bundle version uses
// it (Capgo treats version_name == version_build as "on the built-in bundle").
const sfNative = "5.0.0"

func TestSafety(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		t.Run("RolloutBuckets", func(t *testing.T) { sfRolloutBuckets(t, b) })
		t.Run("AutoHalt", func(t *testing.T) { sfAutoHalt(t, b) })
		t.Run("AutoHaltBelowThreshold", func(t *testing.T) { sfAutoHaltBelow(t, b) })
		t.Run("FailureMemory", func(t *testing.T) { sfFailureMemory(t, b) })
		t.Run("Rollback", func(t *testing.T) { sfRollback(t, b) })
		t.Run("RollbackRacesPromote", func(t *testing.T) { sfRollbackRace(t, b) })
		t.Run("Stats", func(t *testing.T) { sfStats(t, b) })
		t.Run("Audit", func(t *testing.T) { sfAudit(t, b) })
		t.Run("BadInput", func(t *testing.T) { sfBadInput(t, b) })
		t.Run("Cleanup", func(t *testing.T) { sfCleanup(t, b) })
	})
}

// ---- helpers

func sfEnv(t *testing.T, b tableBackend, o envOptions) *testEnv {
	t.Helper()
	e := newTestEnvWith(t, b.open(t), o)
	e.createApp(sfApp)
	return e
}

// sfAdmin sends an authenticated management request and decodes the JSON answer.
func (e *testEnv) sfAdmin(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	return e.sfAs(e.admin, method, path, body)
}

func (e *testEnv) sfAs(secret, method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var hdr []string
	if secret != "" {
		hdr = []string{"Authorization", "Bearer " + secret}
	}
	st, _, b := e.do(method, path, body, hdr...)
	if len(b) == 0 {
		return st, nil
	}
	return st, jsonMap(e.t, b)
}

// sfOK requires a 2xx answer.
func (e *testEnv) sfOK(method, path string, body any) map[string]any {
	e.t.Helper()
	st, m := e.sfAdmin(method, path, body)
	if st/100 != 2 {
		e.t.Fatalf("%s %s: HTTP %d %v", method, path, st, m)
	}
	return m
}

// sfDecode re-decodes part of an answer into a typed value.
func sfDecode[T any](t testing.TB, v any) T {
	t.Helper()
	var out T
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

func (e *testEnv) sfRollout(channel, version string, percent float64) release.Channel {
	e.t.Helper()
	m := e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/"+channel+"/rollout", map[string]any{"version": version, "percent": percent})
	return sfDecode[release.Channel](e.t, m["channel"])
}

func (e *testEnv) sfAction(channel, action string) release.Channel {
	e.t.Helper()
	m := e.sfOK("POST", "/v1/apps/"+sfApp+"/channels/"+channel+"/rollout/"+action, nil)
	return sfDecode[release.Channel](e.t, m["channel"])
}

func (e *testEnv) sfRollback(channel string, body map[string]any) release.Channel {
	e.t.Helper()
	m := e.sfOK("POST", "/v1/apps/"+sfApp+"/channels/"+channel+"/rollback", body)
	return sfDecode[release.Channel](e.t, m["channel"])
}

type sfChannelOut struct {
	Channel release.Channel      `json:"channel"`
	History []store.ChannelEvent `json:"history"`
}

func (e *testEnv) sfChannel(channel string) sfChannelOut {
	e.t.Helper()
	return sfDecode[sfChannelOut](e.t, e.sfOK("GET", "/v1/apps/"+sfApp+"/channels/"+channel, nil))
}

type sfStatusOut struct {
	Channels []struct {
		release.Channel
		RolloutHealth *struct {
			Attempts int64 `json:"attempts"`
			Failures int64 `json:"failures"`
		} `json:"rollout_health"`
	} `json:"channels"`
	CacheSeconds float64 `json:"cache_seconds"`
}

func (e *testEnv) sfStatus(channel string) (release.Channel, int64, int64) {
	e.t.Helper()
	out := sfDecode[sfStatusOut](e.t, e.sfOK("GET", "/v1/apps/"+sfApp+"/status", nil))
	for _, c := range out.Channels {
		if c.Name == channel {
			var att, fails int64
			if h := c.RolloutHealth; h != nil {
				att, fails = h.Attempts, h.Failures
			}
			return c.Channel, att, fails
		}
	}
	e.t.Fatalf("status has no channel %s", channel)
	return release.Channel{}, 0, 0
}

func (e *testEnv) sfAudit() []store.AuditEntry {
	e.t.Helper()
	m := e.sfOK("GET", "/v1/apps/"+sfApp+"/audit?limit=1000", nil)
	return sfDecode[[]store.AuditEntry](e.t, m["entries"])
}

func (e *testEnv) sfKeyID(secret string) string {
	e.t.Helper()
	k, err := e.store.LookupKey(context.Background(), secret)
	if err != nil {
		e.t.Fatal(err)
	}
	return k.ID
}

// sfCapgoBody is a Capgo 8.x Android check from device running current.
func sfCapgoBody(device, current string) map[string]any {
	b := map[string]any{"app_id": sfApp, "platform": "android", "version_name": current, "version_build": sfNative,
		"version_code": "10", "version_os": "14", "plugin_version": "8.51.23", "is_emulator": false, "is_prod": true,
		"defaultChannel": ""}
	if device != "" {
		b["device_id"] = device
	}
	return b
}

// sfCheckAt runs a Capgo update check against base ("" = this env's server) and
// returns the version offered ("builtin" for a revert, "" for no update) and the answer.
func (e *testEnv) sfCheckAt(base, device, current string) (string, map[string]any) {
	e.t.Helper()
	return e.sfCheckBody(base, sfCapgoBody(device, current))
}

func (e *testEnv) sfCheckBody(base string, body map[string]any) (string, map[string]any) {
	e.t.Helper()
	st, _, b := e.do("POST", base+"/capgo/updates", body)
	m := jsonMap(e.t, b)
	if st != 200 {
		e.t.Fatalf("capgo check: HTTP %d %v", st, m)
	}
	if _, failed := m["error"]; failed {
		return "", m
	}
	v, _ := m["version"].(string)
	return v, m
}

func (e *testEnv) sfCheck(device, current string) (string, map[string]any) {
	e.t.Helper()
	return e.sfCheckAt(e.http.URL, device, current)
}

// sfReport posts our own client's install outcome.
func (e *testEnv) sfReport(device, channel, version, status string) {
	e.t.Helper()
	st, _, b := e.do("POST", "/v1/device/report", map[string]any{"app_id": sfApp, "device_id": device, "channel": channel,
		"version": version, "status": status})
	if st != 200 {
		e.t.Fatalf("device report: HTTP %d %s", st, b)
	}
}

var sfEventTS atomic.Int64

// sfEvent is a Capgo stats event; version is the bundle the event is about.
func sfEvent(device, action, version, channel string) map[string]any {
	ev := sfCapgoBody(device, version)
	ev["action"] = action
	ev["defaultChannel"] = channel
	ev["timestamp"] = time.Now().UnixMilli()*1000 + sfEventTS.Add(1)%1000
	return ev
}

func (e *testEnv) sfCapgoStats(events ...map[string]any) {
	e.t.Helper()
	st, _, b := e.do("POST", "/capgo/stats", events)
	if st != 200 {
		e.t.Fatalf("capgo stats: HTTP %d %s", st, b)
	}
}

// ---- staged rollouts

// sfRolloutBuckets: raising the percentage only adds devices (none leaves), the share
// matches the percentage, devices without an id stay on stable, and the in-process
// cache sees every change at once.
func sfRolloutBuckets(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{ttl: time.Minute}) // management writes invalidate this process's cache
	e.publish(sfApp, "1.0.0", "production")
	e.publish(sfApp, "1.1.0", "")
	const n = 300
	devices := make([]string, n)
	for i := range devices {
		devices[i] = fmt.Sprintf("5f0c7d2e-%04d-4a1b-9c3d-00000000%04d", i, i)
	}
	var salt string
	prev := map[string]bool{}
	for _, pct := range []float64{10, 50, 100} {
		ch := e.sfRollout("production", "1.1.0", pct)
		if salt == "" {
			salt = ch.Rolling.Salt
		} else if ch.Rolling.Salt != salt {
			t.Fatalf("salt changed from %s to %s when raising to %g%%", salt, ch.Rolling.Salt, pct)
		}
		in := map[string]bool{}
		for _, d := range devices {
			v, m := e.sfCheck(d, "1.0.0")
			switch v {
			case "1.1.0":
				in[d] = true
			case "":
				if m["error"] != release.ReasonUpToDate {
					t.Fatalf("device %s at %g%%: %v", d, pct, m)
				}
			default:
				t.Fatalf("device %s at %g%%: offered %s", d, pct, v)
			}
			if in[d] != release.InRollout(d, salt, pct) {
				t.Fatalf("device %s at %g%%: in rollout %v over HTTP, %v by InRollout", d, pct, in[d], !in[d])
			}
		}
		for d := range prev {
			if !in[d] {
				t.Fatalf("device %s left the rollout when it grew to %g%%", d, pct)
			}
		}
		// Binomial(n, p): within 4.5 standard deviations.
		p := pct / 100
		if sd := math.Sqrt(n * p * (1 - p)); math.Abs(float64(len(in))-n*p) > 4.5*sd+0.5 {
			t.Fatalf("%d of %d devices at %g%%", len(in), n, pct)
		}
		t.Logf("%g%%: %d of %d devices", pct, len(in), n)
		prev = in
		// A device that sends no id gets the stable release.
		if v, _ := e.sfCheck("", "0.9.0"); v != "1.0.0" {
			t.Fatalf("anonymous device at %g%%: offered %q, want stable 1.0.0", pct, v)
		}
	}
	// A new rollout (another version) draws a new salt: who goes first is reshuffled.
	e.publish(sfApp, "1.2.0", "")
	if ch := e.sfRollout("production", "1.2.0", 5); ch.Rolling.Salt == salt || ch.Rolling.Version != "1.2.0" {
		t.Fatalf("new rollout kept the salt: %+v", ch.Rolling)
	}
}

// ---- automatic halt

func sfAutoHalt(t *testing.T, b tableBackend) {
	logs := &logBuffer{}
	e := sfEnv(t, b, envOptions{log: logs})
	e.publish(sfApp, "1.0.0", "production")
	e.publish(sfApp, "1.1.0", "")
	e.sfRollout("production", "1.1.0", 100)

	// 10 failures: 100% but below the 50 attempts the default policy waits for.
	for i := range 5 {
		e.sfReport(fmt.Sprintf("dev-f%d", i), "", "1.1.0", "failed")
	}
	var evs []map[string]any
	for i := 5; i < 10; i++ {
		evs = append(evs, sfEvent(fmt.Sprintf("dev-f%d", i), "update_fail", "1.1.0", ""))
	}
	e.sfCapgoStats(evs...)
	ch, att, fails := e.sfStatus("production")
	if ch.Rolling == nil || ch.Rolling.Halted || att != 10 || fails != 10 {
		t.Fatalf("after 10 failures: %+v attempts %d failures %d", ch.Rolling, att, fails)
	}
	// 39 successes: 49 attempts, still not enough to judge.
	for i := range 20 {
		e.sfReport(fmt.Sprintf("dev-ok%d", i), "production", "1.1.0", "installed")
	}
	evs = nil
	for i := 20; i < 39; i++ {
		evs = append(evs, sfEvent(fmt.Sprintf("dev-ok%d", i), "set", "1.1.0", ""))
	}
	e.sfCapgoStats(evs...)
	if ch, att, _ = e.sfStatus("production"); ch.Rolling.Halted || att != 49 {
		t.Fatalf("after 49 attempts: %+v attempts %d", ch.Rolling, att)
	}
	if v, _ := e.sfCheck("dev-new-0", "1.0.0"); v != "1.1.0" {
		t.Fatalf("before the halt a device got %q", v)
	}
	// The 50th attempt is the 11th failure: 22% > 20%.
	e.sfCapgoStats(sfEvent("dev-f10", "update_fail", "1.1.0", ""))
	ch, att, fails = e.sfStatus("production")
	if ch.Rolling == nil || !ch.Rolling.Halted || att != 50 || fails != 11 {
		t.Fatalf("after 11 of 50 failed: %+v attempts %d failures %d", ch.Rolling, att, fails)
	}
	if want := "auto-halted: 11 of 50 installs failed (limit 20% after 50)"; ch.Rolling.HaltReason != want {
		t.Fatalf("halt reason %q, want %q", ch.Rolling.HaltReason, want)
	}
	if ch.Stable != "1.0.0" || ch.Rolling.Version != "1.1.0" {
		t.Fatalf("halt changed more than the rollout: %+v", ch)
	}
	// Devices get stable again, in the rollout or not.
	for i := range 5 {
		if v, m := e.sfCheck(fmt.Sprintf("dev-new-%d", i), "1.0.0"); v != "" || m["error"] != release.ReasonUpToDate {
			t.Fatalf("after the halt: offered %q %v", v, m)
		}
	}
	if v, _ := e.sfCheck("dev-new-9", "0.9.0"); v != "1.0.0" {
		t.Fatalf("after the halt an old device got %q, want stable", v)
	}
	// More failures arrive: the halt is logged, audited and in history once.
	for i := 11; i < 14; i++ {
		e.sfReport(fmt.Sprintf("dev-f%d", i), "", "1.1.0", "failed")
	}
	var halts []store.AuditEntry
	for _, a := range e.sfAudit() {
		if a.Action == "rollout.auto_halt" {
			halts = append(halts, a)
		}
	}
	if len(halts) != 1 || halts[0].KeyID != "auto-halt" || halts[0].Target != "production" || !strings.Contains(halts[0].Detail, "11 of 50") {
		t.Fatalf("auto-halt audit entries: %+v", halts)
	}
	if h := e.sfChannel("production").History; len(h) == 0 || h[0].Action != "rollout.auto_halt" || h[0].Actor != "auto-halt" || !h[0].Channel.Rolling.Halted {
		t.Fatalf("history does not end with the halt: %+v", h)
	}
	if n := strings.Count(logs.String(), `"msg":"rollout halted"`); n != 1 {
		t.Fatalf("halt logged %d times:\n%s", n, logs)
	}
	// An operator can still promote or replace it; a resume clears the reason.
	if ch := e.sfAction("production", "resume"); ch.Rolling.Halted || ch.Rolling.HaltReason != "" {
		t.Fatalf("resume: %+v", ch.Rolling)
	}
	// After a resume the rate counts from there: one more failure does not re-halt on
	// the old totals, a fresh failure storm after MinAttempts does.
	e.sfReport("dev-after-0", "", "1.1.0", "failed")
	if ch, _, _ := e.sfStatus("production"); ch.Rolling.Halted {
		t.Fatalf("a resumed rollout halted again on its old totals")
	}
	for i := 1; i < 50; i++ {
		e.sfReport(fmt.Sprintf("dev-after-%d", i), "", "1.1.0", "failed")
	}
	if ch, _, _ := e.sfStatus("production"); !ch.Rolling.Halted {
		t.Fatalf("50 failures after the resume did not halt it")
	}
}

// sfAutoHaltBelow: at (not above) the threshold the rollout continues; a channel's
// own policy replaces the defaults.
func sfAutoHaltBelow(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	e.publish(sfApp, "1.0.0", "beta")
	e.publish(sfApp, "1.1.0", "")
	e.sfRollout("beta", "1.1.0", 100)
	for i := range 48 {
		e.sfReport(fmt.Sprintf("dev-ok%d", i), "beta", "1.1.0", "installed")
	}
	for i := range 6 {
		e.sfReport(fmt.Sprintf("dev-f%d", i), "beta", "1.1.0", "failed")
	}
	var evs []map[string]any
	for i := 6; i < 12; i++ {
		evs = append(evs, sfEvent(fmt.Sprintf("dev-f%d", i), "update_fail", "1.1.0", "beta"))
	}
	e.sfCapgoStats(evs...)
	ch, att, fails := e.sfStatus("beta")
	if ch.Rolling.Halted || att != 60 || fails != 12 {
		t.Fatalf("12 of 60 (20%%) failed: %+v attempts %d failures %d", ch.Rolling, att, fails)
	}
	e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/beta", map[string]any{"max_failure_rate": 0.5, "min_attempts": 4})
	// The policy applies to the running totals: 12 of 60 is far below 50%.
	e.sfReport("dev-ok-more", "beta", "1.1.0", "installed")
	if ch, _, _ = e.sfStatus("beta"); ch.Rolling.Halted {
		t.Fatalf("halted below its channel's policy: %+v", ch.Rolling)
	}
	// A Capgo device may name beta once it is open to self-assignment.
	e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/beta", map[string]any{"allow_self_set": true})
	body := sfCapgoBody("dev-any", "1.0.0")
	body["defaultChannel"] = "beta"
	if v, m := e.sfCheckBody(e.http.URL, body); v != "1.1.0" {
		t.Fatalf("rollout did not continue: offered %q %v", v, m)
	}

	// canary: 50% after 4.
	e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/canary", map[string]any{"version": "1.0.0", "max_failure_rate": 0.5, "min_attempts": 4})
	e.sfRollout("canary", "1.1.0", 100)
	for i, s := range []string{"failed", "installed", "failed", "installed"} {
		e.sfReport(fmt.Sprintf("can-%d", i), "canary", "1.1.0", s)
	}
	if ch, _, _ = e.sfStatus("canary"); ch.Rolling.Halted {
		t.Fatal("2 of 4 halted a 50% policy")
	}
	e.sfReport("can-4", "canary", "1.1.0", "failed")
	if ch, _, _ = e.sfStatus("canary"); !ch.Rolling.Halted || !strings.Contains(ch.Rolling.HaltReason, "3 of 5 installs failed (limit 50% after 4)") {
		t.Fatalf("3 of 5 did not halt a 50%% policy: %+v", ch.Rolling)
	}
	if ch, _, _ = e.sfStatus("beta"); ch.Rolling.Halted {
		t.Fatal("a halt on canary halted beta")
	}
}

// ---- failure memory

func sfFailureMemory(t *testing.T, b tableBackend) {
	clock := &envClock{}
	e := sfEnv(t, b, envOptions{clock: clock.now})
	e.publish(sfApp, "1.0.0", "production")
	e.publish(sfApp, "1.1.0", "")
	e.sfRollout("production", "1.1.0", 100)
	e.sfReport("bad-1", "", "1.1.0", "failed")                              // our client
	e.sfCapgoStats(sfEvent("bad-2", "update_fail", "1.1.0:index.html", "")) // Capgo, per-file form
	for _, d := range []string{"bad-1", "bad-2"} {
		if v, m := e.sfCheck(d, "1.0.0"); v != "" || m["error"] != release.ReasonUpToDate {
			t.Fatalf("%s was offered the rollout it failed: %q %v", d, v, m)
		}
		if v, _ := e.sfCheck(d, "0.9.0"); v != "1.0.0" {
			t.Fatalf("%s on an old bundle: offered %q, want stable 1.0.0", d, v)
		}
	}
	if v, _ := e.sfCheck("good-1", "1.0.0"); v != "1.1.0" {
		t.Fatalf("another device: offered %q, want 1.1.0", v)
	}
	// Promoted to stable: still not offered to the devices that failed it.
	e.sfAction("production", "promote")
	if v, m := e.sfCheck("bad-1", "1.0.0"); v != "" || m["error"] != release.ReasonFailedBefore || m["kind"] != "blocked" {
		t.Fatalf("bad-1 after promote: %q %v", v, m)
	}
	if v, _ := e.sfCheck("good-2", "1.0.0"); v != "1.1.0" {
		t.Fatalf("good-2 after promote: offered %q", v)
	}
	// The memory expires.
	clock.advance(store.FailureMemory - time.Hour)
	if v, _ := e.sfCheck("bad-1", "1.0.0"); v != "" {
		t.Fatalf("bad-1 offered %q before the memory expired", v)
	}
	clock.advance(2 * time.Hour)
	for _, d := range []string{"bad-1", "bad-2"} {
		if v, m := e.sfCheck(d, "1.0.0"); v != "1.1.0" {
			t.Fatalf("%s after the memory expired: %q %v", d, v, m)
		}
	}
}

// ---- rollback

func sfRollback(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		e.publish(sfApp, v, "")
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/production", map[string]any{"version": v})
	}
	e.sfRollout("production", "1.3.0", 50)
	keyID := e.sfKeyID(e.admin)

	// Default: the stable release before the current one; the rollout goes too.
	ch := e.sfRollback("production", map[string]any{})
	if ch.Stable != "1.1.0" || ch.Rolling != nil || ch.Builtin {
		t.Fatalf("rollback: %+v", ch)
	}
	for i := range 20 { // every device, in the old rollout's bucket or not
		if v, _ := e.sfCheck(fmt.Sprintf("dev-%d", i), "1.2.0"); v != "1.1.0" {
			t.Fatalf("next check after rollback: offered %q, want 1.1.0", v)
		}
	}
	// Again (a retried command): further back, never to the release rolled back from.
	if ch = e.sfRollback("production", map[string]any{}); ch.Stable != "1.0.0" {
		t.Fatalf("second rollback: %+v", ch)
	}
	if st, m := e.sfAdmin("POST", "/v1/apps/"+sfApp+"/channels/production/rollback", map[string]any{}); st != 409 || m["error"] != "no_previous_release" {
		t.Fatalf("third rollback: %d %v", st, m)
	}
	// To a named version.
	if ch = e.sfRollback("production", map[string]any{"to": "1.2.0"}); ch.Stable != "1.2.0" || ch.Builtin {
		t.Fatalf("rollback --to: %+v", ch)
	}
	if v, _ := e.sfCheck("dev-x", "1.3.0"); v != "1.2.0" {
		t.Fatalf("after --to: offered %q", v)
	}
	// To the bundle inside the store binary.
	if ch = e.sfRollback("production", map[string]any{"builtin": true}); !ch.Builtin {
		t.Fatalf("rollback --builtin: %+v", ch)
	}
	if v, _ := e.sfCheck("dev-x", "1.2.0"); v != "builtin" {
		t.Fatalf("after --builtin: offered %q, want builtin", v)
	}
	if v, m := e.sfCheck("dev-x", "builtin"); v != "" || m["error"] != release.ReasonUpToDate {
		t.Fatalf("device on builtin after --builtin: %q %v", v, m)
	}
	// History keeps every step, newest first, with who did it.
	out := e.sfChannel("production")
	var actions []string
	for _, h := range out.History {
		actions = append(actions, h.Action)
	}
	want := []string{"rollback", "rollback", "rollback", "rollback", "rollout.set", "channel.set", "channel.set", "channel.set"}
	if !reflect.DeepEqual(actions, want) {
		t.Fatalf("history %v, want %v", actions, want)
	}
	if h := out.History[0]; h.Actor != keyID || !h.Channel.Builtin || !reflect.DeepEqual(h.Channel, out.Channel) {
		t.Fatalf("last history entry %+v does not match the channel %+v", h, out.Channel)
	}

	// Another process (a Lambda instance with its own cache) sees the change at most
	// its cache TTL later.
	const ttl = 300 * time.Millisecond
	peer := e.peerServer(ttl)
	if v, _ := e.sfCheckAt(peer.URL, "dev-y", "1.2.0"); v != "builtin" {
		t.Fatalf("peer before: %q", v)
	}
	e.sfRollback("production", map[string]any{"to": "1.1.0"})
	start := time.Now()
	for {
		v, _ := e.sfCheckAt(peer.URL, "dev-y", "1.2.0")
		if v == "1.1.0" {
			break
		}
		if time.Since(start) > ttl+2*time.Second {
			t.Fatalf("peer still serves %q %v after the rollback", v, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("peer with a %v cache saw the rollback after %v", ttl, time.Since(start).Round(time.Millisecond))
}

// sfRollbackRace: operators racing (promote, rollback) end in one consistent state:
// the channel is what its last history entry says, and every successful change wrote
// exactly one history entry.
func sfRollbackRace(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		e.publish(sfApp, v, "")
	}
	e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/production", map[string]any{"version": "1.0.0"})
	rounds := 25
	if b.name == "dynamodb" {
		rounds = 10
	}
	ctx := context.Background()
	hist0, err := e.store.ChannelHistory(ctx, sfApp, "production", 0)
	if err != nil {
		t.Fatal(err)
	}
	wrote := len(hist0)
	base := e.http.URL + "/v1/apps/" + sfApp + "/channels/production"
	for round := range rounds {
		cur := e.sfChannel("production").Channel
		target := "1.2.0"
		if cur.Stable == target {
			target = "1.1.0"
		}
		e.sfRollout("production", target, 50)
		wrote++
		reqs := []struct {
			path string
			body any
		}{
			{base + "/rollout/promote", nil},
			{base + "/rollback", map[string]any{"to": "1.0.0"}},
			{base + "/rollout/promote", nil},
			{base + "/rollback", map[string]any{}},
		}
		var wg sync.WaitGroup
		var ok atomic.Int64
		for _, rq := range reqs {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", rq.path, strings.NewReader(sfJSON(rq.body)))
				req.Header.Set("Authorization", "Bearer "+e.admin)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 409: // no rollout left to promote, or nothing to roll back to
				default:
					t.Errorf("round %d: %s: HTTP %d", round, rq.path, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		if ok.Load() == 0 {
			t.Fatalf("round %d: no operation succeeded", round)
		}
		wrote += int(ok.Load())
		out := e.sfChannel("production")
		last := out.History[0]
		if !reflect.DeepEqual(last.Channel, out.Channel) {
			t.Fatalf("round %d: channel %+v differs from its last history entry %+v", round, out.Channel, last.Channel)
		}
		if out.Channel.Rolling != nil || (last.Action != "rollback" && last.Action != "rollout.promote") {
			t.Fatalf("round %d: final state %+v after %s", round, out.Channel, last.Action)
		}
		// Devices see exactly that state.
		if v, _ := e.sfCheck("dev-r", "0.9.0"); v != out.Channel.Stable {
			t.Fatalf("round %d: device offered %q, channel serves %s", round, v, out.Channel.Stable)
		}
	}
	hist, err := e.store.ChannelHistory(ctx, sfApp, "production", 0)
	if err != nil {
		t.Fatal(err)
	}
	// A request that succeeded without changing anything (a rollback to the release
	// already served) adds no entry: history holds changes only, at least the
	// rollout and one change per round.
	if len(hist) > wrote || len(hist) < len(hist0)+2*rounds {
		t.Fatalf("history has %d entries, %d requests succeeded over %d rounds", len(hist), wrote, rounds)
	}
	for i := 1; i < len(hist); i++ {
		a, b := hist[i-1].Channel, hist[i].Channel
		a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
		if reflect.DeepEqual(a, b) {
			t.Fatalf("history entries %d and %d hold the same state: %+v", i-1, i, a)
		}
	}
}

func sfJSON(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ---- stats

func sfStats(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	e.publish(sfApp, "1.0.0", "production")
	e.publish(sfApp, "1.1.0", "beta")
	e.setStable(sfApp, "production", "1.1.0")
	for i := range 3 {
		e.sfReport(fmt.Sprintf("d%d", i), "", "1.1.0", "installed")
	}
	e.sfReport("d3", "", "1.1.0", "failed")
	e.sfCapgoStats(
		sfEvent("d4", "set", "1.1.0", ""),
		sfEvent("d5", "set", "1.1.0", ""),
		sfEvent("d6", "update_fail", "1.1.0", ""),
		sfEvent("d7", "download_complete", "1.1.0", ""),
	)
	e.sfReport("d8", "beta", "1.1.0", "installed")
	e.sfReport("d9", "", "1.0.0", "installed")

	type statsOut struct {
		Days     []string          `json:"days"`
		Counts   []store.StatCount `json:"counts"`
		Versions []struct {
			Version     string  `json:"version"`
			Installed   int64   `json:"installed"`
			Failed      int64   `json:"failed"`
			SuccessRate float64 `json:"success_rate"`
		} `json:"versions"`
		Adoption []store.Adoption `json:"adoption"`
	}
	get := func(q string) statsOut {
		t.Helper()
		return sfDecode[statsOut](t, e.sfOK("GET", "/v1/apps/"+sfApp+"/stats"+q, nil))
	}
	all := get("?days=2")
	if len(all.Days) != 2 || all.Days[1] != store.Day(time.Now()) {
		t.Fatalf("days %v", all.Days)
	}
	counts := map[string]int64{}
	for _, c := range all.Counts {
		k := c.Channel + "/" + c.Version + "/" + c.Action
		if _, dup := counts[k]; dup {
			t.Fatalf("counter %s listed twice: shards not summed", k)
		}
		counts[k] = c.Count
	}
	want := map[string]int64{
		"production/1.1.0/client_installed": 3, "production/1.1.0/client_failed": 1,
		"production/1.1.0/set": 2, "production/1.1.0/update_fail": 1, "production/1.1.0/download_complete": 1,
		"production/1.1.0/_installed": 5, "production/1.1.0/_failed": 2,
		"beta/1.1.0/client_installed": 1, "beta/1.1.0/_installed": 1,
		"production/1.0.0/client_installed": 1, "production/1.0.0/_installed": 1,
	}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts\n got %v\nwant %v", counts, want)
	}
	rate := map[string][3]float64{}
	for _, v := range all.Versions {
		rate[v.Version] = [3]float64{float64(v.Installed), float64(v.Failed), v.SuccessRate}
	}
	if rate["1.1.0"] != [3]float64{6, 2, 0.75} || rate["1.0.0"] != [3]float64{1, 0, 1} {
		t.Fatalf("versions %+v", all.Versions)
	}
	beta := get("?channel=beta")
	if len(beta.Days) != 7 || len(beta.Versions) != 1 || beta.Versions[0].Installed != 1 || beta.Versions[0].SuccessRate != 1 {
		t.Fatalf("beta stats %+v", beta)
	}
	for _, c := range beta.Counts {
		if c.Channel != "beta" {
			t.Fatalf("channel filter let through %+v", c)
		}
	}
	if none := get("?channel=nope"); len(none.Counts) != 0 || len(none.Versions) != 0 {
		t.Fatalf("unknown channel: %+v", none)
	}
	// Adoption: devices per version they last installed. d0-d2, d4, d5, d8 run 1.1.0,
	// d9 runs 1.0.0; then d9 moves to 1.1.0 and d0 reports 1.1.0 again (no change).
	e.sfReport("d9", "", "1.1.0", "installed")
	e.sfReport("d0", "", "1.1.0", "installed")
	adoption := map[string]int64{}
	for _, a := range get("").Adoption {
		adoption[a.Version] = a.Devices
	}
	if !reflect.DeepEqual(adoption, map[string]int64{"1.1.0": 7}) {
		t.Fatalf("adoption %v, want 7 devices on 1.1.0 and none left on 1.0.0", adoption)
	}
}

// ---- audit

func sfAudit(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	e.publish(sfApp, "1.0.0", "")
	e.publish(sfApp, "1.1.0", "")
	// A key scoped to this app only (not admin).
	secret := store.NewKeySecret()
	k, err := e.store.CreateKey(context.Background(), secret, "ci", []string{sfApp}, false, "test")
	if err != nil {
		t.Fatal(err)
	}
	ch := "/v1/apps/" + sfApp + "/channels/production"
	steps := []struct {
		method, path string
		body         any
		action       string
	}{
		{"PUT", ch, map[string]any{"version": "1.0.0"}, "channel.set"},
		{"PUT", ch + "/rollout", map[string]any{"version": "1.1.0", "percent": 5}, "rollout.set"},
		{"PUT", ch + "/rollout", map[string]any{"version": "1.1.0", "percent": 25}, "rollout.set"},
		{"POST", ch + "/rollout/halt", nil, "rollout.halt"},
		{"POST", ch + "/rollout/resume", nil, "rollout.resume"},
		{"POST", ch + "/rollout/promote", nil, "rollout.promote"},
		{"POST", ch + "/rollback", map[string]any{}, "rollback"},
		{"POST", ch + "/rollback", map[string]any{"builtin": true}, "rollback"},
		{"POST", "/v1/apps/" + sfApp + "/cleanup", map[string]any{"keep": 5}, "cleanup"},
	}
	for _, s := range steps {
		if st, m := e.sfAs(secret, s.method, s.path, s.body); st != 200 {
			t.Fatalf("%s %s: %d %v", s.method, s.path, st, m)
		}
	}
	entries := e.sfAudit()
	if len(entries) != len(steps) {
		t.Fatalf("%d audit entries for %d actions: %+v", len(entries), len(steps), entries)
	}
	for i, s := range steps { // newest first
		a := entries[len(entries)-1-i]
		if a.Action != s.action || a.KeyID != k.ID || a.AppID != sfApp || a.At.IsZero() {
			t.Errorf("entry %d: %+v, want %s by %s", i, a, s.action, k.ID)
		}
		if s.action != "cleanup" && a.Target != "production" {
			t.Errorf("entry %d: target %q", i, a.Target)
		}
	}
	if d := entries[2].Detail; entries[2].Action != "rollback" || !strings.Contains(d, "stable=1.0.0") {
		t.Errorf("rollback detail %q does not say where the channel went", d)
	}
	// limit, and scope: another app's key sees nothing.
	m := e.sfOK("GET", "/v1/apps/"+sfApp+"/audit?limit=2", nil)
	if got := sfDecode[[]store.AuditEntry](t, m["entries"]); len(got) != 2 || got[0].Action != "cleanup" {
		t.Fatalf("limit 2: %+v", got)
	}
	other := store.NewKeySecret()
	if _, err := e.store.CreateKey(context.Background(), other, "other", []string{"com.example.other"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	if st, m := e.sfAs(other, "GET", "/v1/apps/"+sfApp+"/audit", nil); st != 403 || m["error"] != "forbidden" {
		t.Fatalf("other app's key: %d %v", st, m)
	}
}

// ---- bad input

// sfBadInput: every refusal has its status and stable code, and writes nothing:
// no channel change, no history, no audit entry, no counter.
func sfBadInput(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	e.publish(sfApp, "1.0.0", "production")
	e.publish(sfApp, "1.1.0", "")
	e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/empty", map[string]any{"public": true}) // a channel without a release
	pending := testenv.Zip(t, map[string]string{"index.html": "pending"})
	if _, _, err := e.pipe.Create(context.Background(), publish.Input{AppID: sfApp, Version: "1.2.0", SHA256: sha256hex(pending), Size: int64(len(pending))}); err != nil {
		t.Fatal(err)
	}
	other := store.NewKeySecret()
	if _, err := e.store.CreateKey(context.Background(), other, "other", []string{"com.example.other"}, false, "test"); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		ctx := context.Background()
		var sb strings.Builder
		for _, name := range []string{"production", "empty", "x"} {
			c, _ := e.store.GetChannel(ctx, sfApp, name)
			h, _ := e.store.ChannelHistory(ctx, sfApp, name, 0)
			fmt.Fprintf(&sb, "%s %+v %d\n", name, c, len(h))
		}
		a, _ := e.store.ListAudit(ctx, sfApp, 0)
		s, _ := e.store.ReadStats(ctx, sfApp, []string{store.Day(time.Now())})
		d, derr := e.store.GetDevice(ctx, sfApp, "dev-1")
		fmt.Fprintf(&sb, "audit %d stats %v device %+v %v\n", len(a), s, d, derr)
		return sb.String()
	}
	before := snapshot()

	app := "/v1/apps/" + sfApp
	ch := app + "/channels/production"
	cases := []struct {
		name, method, path string
		body               any
		key                string // "" = admin, "-" = none
		status             int
		code               string
	}{
		{"rollout without key", "PUT", ch + "/rollout", map[string]any{"version": "9.9.9", "percent": 5}, "-", 401, "unauthorized"},
		{"rollout other app's key", "PUT", ch + "/rollout", map[string]any{"version": "9.9.9", "percent": 5}, other, 403, "forbidden"},
		{"rollout no percent", "PUT", ch + "/rollout", map[string]any{"version": "1.1.0"}, "", 400, "invalid_percent"},
		{"rollout percent above 100", "PUT", ch + "/rollout", map[string]any{"version": "1.1.0", "percent": 100.5}, "", 400, "invalid_percent"},
		{"rollout negative percent", "PUT", ch + "/rollout", map[string]any{"version": "1.1.0", "percent": -1}, "", 400, "invalid_percent"},
		{"rollout percent string", "PUT", ch + "/rollout", `{"version":"1.1.0","percent":"50"}`, "", 400, "invalid_type"},
		{"rollout no version", "PUT", ch + "/rollout", map[string]any{"percent": 5}, "", 400, "invalid_version"},
		{"rollout reserved version", "PUT", ch + "/rollout", map[string]any{"version": "latest", "percent": 5}, "", 400, "invalid_version"},
		{"rollout unknown version", "PUT", ch + "/rollout", map[string]any{"version": "9.9.9", "percent": 5}, "", 404, "release_not_found"},
		{"rollout pending release", "PUT", ch + "/rollout", map[string]any{"version": "1.2.0", "percent": 5}, "", 409, "release_not_ready"},
		{"rollout of the stable release", "PUT", ch + "/rollout", map[string]any{"version": "1.0.0", "percent": 5}, "", 400, "already_stable"},
		{"rollout on a channel without release", "PUT", app + "/channels/empty/rollout", map[string]any{"version": "1.1.0", "percent": 5}, "", 400, "no_stable_release"},
		{"rollout on a new channel", "PUT", app + "/channels/x/rollout", map[string]any{"version": "1.1.0", "percent": 5}, "", 400, "no_stable_release"},
		{"rollout bad channel", "PUT", app + "/channels/a%20b/rollout", map[string]any{"version": "1.1.0", "percent": 5}, "", 400, "invalid_channel"},
		{"rollout not JSON", "PUT", ch + "/rollout", "{", "", 400, "invalid_json"},
		{"rollout empty body", "PUT", ch + "/rollout", nil, "", 400, "empty_body"},
		{"rollout unknown app", "PUT", "/v1/apps/com.nope/channels/production/rollout", map[string]any{"version": "1.1.0", "percent": 5}, "", 404, "app_not_found"},
		{"promote without rollout", "POST", ch + "/rollout/promote", nil, "", 409, "no_rollout"},
		{"halt without rollout", "POST", ch + "/rollout/halt", nil, "", 409, "no_rollout"},
		{"unknown rollout action", "POST", ch + "/rollout/explode", nil, "", 404, "route_not_found"},
		{"promote missing channel", "POST", app + "/channels/x/rollout/promote", nil, "", 404, "channel_not_found"},
		{"rollback without key", "POST", ch + "/rollback", map[string]any{"to": "9.9.9"}, "-", 401, "unauthorized"},
		{"rollback missing channel", "POST", app + "/channels/x/rollback", map[string]any{}, "", 404, "channel_not_found"},
		{"rollback unknown version", "POST", ch + "/rollback", map[string]any{"to": "9.9.9"}, "", 404, "release_not_found"},
		{"rollback pending version", "POST", ch + "/rollback", map[string]any{"to": "1.2.0"}, "", 409, "release_not_ready"},
		{"rollback to and builtin", "POST", ch + "/rollback", map[string]any{"to": "1.1.0", "builtin": true}, "", 400, "invalid_rollback"},
		{"rollback bad version", "POST", ch + "/rollback", map[string]any{"to": "../x"}, "", 400, "invalid_version"},
		{"rollback builtin not bool", "POST", ch + "/rollback", `{"builtin":"yes"}`, "", 400, "invalid_type"},
		{"rollback with no earlier release", "POST", ch + "/rollback", map[string]any{}, "", 409, "no_previous_release"},
		{"status without key", "GET", app + "/status", nil, "-", 401, "unauthorized"},
		{"stats days 0", "GET", app + "/stats?days=0", nil, "", 400, "invalid_days"},
		{"stats days 367", "GET", app + "/stats?days=367", nil, "", 400, "invalid_days"},
		{"stats days text", "GET", app + "/stats?days=week", nil, "", 400, "invalid_days"},
		{"audit other app's key", "GET", app + "/audit", nil, other, 403, "forbidden"},
		{"cleanup keep 0", "POST", app + "/cleanup", map[string]any{"keep": 0}, "", 400, "invalid_keep"},
		{"cleanup no keep", "POST", app + "/cleanup", map[string]any{}, "", 400, "invalid_keep"},
		{"cleanup keep text", "POST", app + "/cleanup", `{"keep":"all"}`, "", 400, "invalid_type"},
		{"cleanup without key", "POST", app + "/cleanup", map[string]any{"keep": 1}, "-", 401, "unauthorized"},
		{"policy rate above 1", "PUT", ch, map[string]any{"max_failure_rate": 1.5}, "", 400, "invalid_policy"},
		{"policy min attempts 0", "PUT", ch, map[string]any{"min_attempts": 0}, "", 400, "invalid_policy"},
		{"report bad status", "POST", "/v1/device/report", map[string]any{"app_id": sfApp, "device_id": "dev-1", "version": "1.0.0", "status": "exploded"}, "-", 400, "invalid_status"},
		{"report no device", "POST", "/v1/device/report", map[string]any{"app_id": sfApp, "version": "1.0.0", "status": "failed"}, "-", 400, "invalid_device_id"},
		{"report bad version", "POST", "/v1/device/report", map[string]any{"app_id": sfApp, "device_id": "dev-1", "version": "builtin", "status": "failed"}, "-", 400, "invalid_version"},
		{"report unknown app", "POST", "/v1/device/report", map[string]any{"app_id": "com.nope", "device_id": "dev-1", "version": "1.0.0", "status": "failed"}, "-", 404, "app_not_found"},
	}
	for _, c := range cases {
		key := e.admin
		switch c.key {
		case "-":
			key = ""
		case "":
		default:
			key = c.key
		}
		st, m := e.sfAs(key, c.method, c.path, c.body)
		if st != c.status || m["error"] != c.code {
			t.Errorf("%s: HTTP %d %v, want %d %s", c.name, st, m, c.status, c.code)
		}
		if msg, _ := m["message"].(string); msg == "" {
			t.Errorf("%s: no message", c.name)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("refused requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// ---- cleanup through the API

func sfCleanup(t *testing.T, b tableBackend) {
	e := sfEnv(t, b, envOptions{})
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3"} {
		e.publish(sfApp, v, "")
	}
	e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/production", map[string]any{"version": "1.0.3"})
	path := "/v1/apps/" + sfApp + "/cleanup"
	dry := sfDecode[publish.Report](t, e.sfOK("POST", path, map[string]any{"keep": 1, "dry_run": true})["report"])
	if !reflect.DeepEqual(dry.Deleted, []string{"1.0.2", "1.0.1", "1.0.0"}) || !dry.DryRun {
		t.Fatalf("dry run %+v", dry)
	}
	if rels, _ := e.store.ListReleases(context.Background(), sfApp); len(rels) != 4 {
		t.Fatalf("dry run deleted: %d releases left", len(rels))
	}
	rep := sfDecode[publish.Report](t, e.sfOK("POST", path, map[string]any{"keep": 1})["report"])
	if !reflect.DeepEqual(rep.Deleted, []string{"1.0.2", "1.0.1", "1.0.0"}) || rep.Patches == 0 || len(rep.Errors) > 0 {
		t.Fatalf("cleanup %+v", rep)
	}
	// Fresh objects stay for CleanupMinAge even when nothing references them.
	if rep.Files != 0 || rep.RecentObjects == 0 {
		t.Fatalf("cleanup deleted fresh objects: %+v", rep)
	}
	m := e.sfOK("GET", "/v1/apps/"+sfApp+"/releases", nil)
	if rels := sfDecode[[]release.Release](t, m["releases"]); len(rels) != 1 || rels[0].Version != "1.0.3" {
		t.Fatalf("releases left: %+v", rels)
	}
	if st, m := e.sfAdmin("GET", "/v1/apps/"+sfApp+"/releases/1.0.0", nil); st != 404 {
		t.Fatalf("deleted release still served: %d %v", st, m)
	}
	if v, _ := e.sfCheck("dev-1", "1.0.0"); v != "1.0.3" {
		t.Fatalf("devices after cleanup: offered %q", v)
	}
	if st, m := e.sfAdmin("DELETE", "/v1/apps/"+sfApp+"/releases/1.0.3", nil); st != 409 || m["error"] != "release_in_use" {
		t.Fatalf("delete of the stable release: %d %v", st, m)
	}
	var actions []string
	for _, a := range e.sfAudit() {
		actions = append(actions, a.Action)
	}
	if len(actions) < 2 || actions[0] != "cleanup" || actions[1] != "cleanup.dry_run" {
		t.Fatalf("audit %v", actions)
	}
}

// ---- cost of a check

// TestSafetyStoreCallsPerCheck measures metadata calls per device check with the
// default state cache: a steady channel costs almost nothing; failure memory for a
// served version adds one device read per check.
func TestSafetyStoreCallsPerCheck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		ct := store.Counting(b.open(t))
		e := newTestEnvWith(t, ct, envOptions{ttl: Config{}.withDefaults().StateTTL})
		e.createApp(sfApp)
		e.publish(sfApp, "1.0.0", "production")
		e.publish(sfApp, "1.1.0", "")
		e.sfRollout("production", "1.1.0", 30)
		const checks = 1000
		measure := func(what string) (float64, time.Duration) {
			e.sfCheck("warm-up", "0.9.0")
			ct.Reads.Store(0)
			ct.Writes.Store(0)
			ct.Queries.Store(0)
			start := time.Now()
			for i := range checks {
				if v, _ := e.sfCheck(fmt.Sprintf("dev-%04d", i), "0.9.0"); v != "1.0.0" && v != "1.1.0" {
					t.Fatalf("check %d: offered %q", i, v)
				}
			}
			took := time.Since(start)
			per := float64(ct.Total()) / checks
			t.Logf("%s, %s: %.4f store calls per check (%d reads, %d queries, %d writes for %d checks in %v)",
				b.name, what, per, ct.Reads.Load(), ct.Queries.Load(), ct.Writes.Load(), checks, took.Round(time.Millisecond))
			return per, took
		}
		// What one cold load costs (once per state TTL per process).
		e.srv.state.invalidate(sfApp)
		before := ct.Total()
		e.sfCheck("cold", "0.9.0")
		t.Logf("%s: a check with a cold cache costs %d store calls", b.name, ct.Total()-before)
		if per, _ := measure("steady channel"); per >= 0.05 {
			t.Fatalf("steady channel: %.4f store calls per check, want < 0.05", per)
		}
		// A device failed the rolling version: checks now read device records.
		e.sfReport("bad-device", "", "1.1.0", "failed")
		per, took := measure("failure memory active")
		reloads := math.Ceil(took.Seconds()/e.srv.cfg.StateTTL.Seconds()) + 1
		if limit := 1 + reloads*8/checks; per > limit {
			t.Fatalf("failure memory: %.4f store calls per check, want at most %.4f", per, limit)
		}
	})
}
