package api

// Crash and health reports of @capgo/capacitor-updater (8.46.0 and later, and the
// 5.50/6.50/7.50 backports): AndroidAppExitReporter.java and
// reportPreviousWebViewRenderProcessGone in CapacitorUpdaterPlugin.java (Android),
// AppHealthTracker.swift (iOS), 8.51.14. Each names the bundle the device RUNS.

import (
	"context"
	"fmt"
	"testing"

	"github.com/otakit/ota/shared/release"
)

func TestCapgoOutcomeKind(t *testing.T) {
	for _, tc := range []struct {
		action, platform, versionName string
		meta                          string
		want                          OutcomeKind
	}{
		{"set", "android", "2.0.0", "", OutcomeInstalled},
		{"update_fail", "android", "2.0.0", "", OutcomeFailed},
		{"checksum_fail", "ios", "2.0.0", "", OutcomeFailed},
		{"checksum_fail", "android", "1.0.0", "", OutcomeInfo},
		{"app_crash", "android", "2.0.0", `{"exit_reason":"crash","exit_importance":"100"}`, OutcomeCrashed},
		{"app_crash", "ios", "2.0.0", `{"exit_reason":"unclean_foreground_exit"}`, OutcomeCrashed},
		{"app_crash_native", "android", "2.0.0", "", OutcomeCrashed},
		{"app_anr", "android", "2.0.0", "", OutcomeCrashed},
		{"app_initialization_failure", "android", "2.0.0", "", OutcomeCrashed},
		{"app_killed_low_memory", "android", "2.0.0", `{"exit_importance":"100"}`, OutcomeCrashed},
		{"app_killed_low_memory", "android", "2.0.0", `{"exit_importance":"200"}`, OutcomeCrashed},
		{"app_killed_low_memory", "android", "2.0.0", `{"exit_importance":"400"}`, OutcomeInfo}, // cached in the background
		{"app_killed_low_memory", "android", "2.0.0", "", OutcomeInfo},
		{"app_killed_excessive_resource_usage", "android", "2.0.0", `{"exit_importance":"125"}`, OutcomeCrashed},
		{"app_killed_excessive_resource_usage", "android", "2.0.0", `{"exit_importance":"300"}`, OutcomeInfo},
		{"webview_render_process_gone", "android", "2.0.0", `{"did_crash":"true","reported_after_restart":"true"}`, OutcomeCrashed},
		{"webview_render_process_gone", "android", "2.0.0", `{"did_crash":"false"}`, OutcomeInfo},
		{"webview_render_process_gone", "android", "2.0.0", `{"error_type":"render_process_gone"}`, OutcomeInfo}, // from JavaScript
		{"webview_render_process_gone", "android", "2.0.0", `{"did_crash":true}`, OutcomeInfo},                   // not the plugin's shape
		{"webview_render_process_gone", "android", "2.0.0", `"x"`, OutcomeInfo},
		{"app_launch_timeout", "android", "2.0.0", "", OutcomeInfo}, // update_fail follows and counts
		{"app_memory_warning", "ios", "2.0.0", "", OutcomeInfo},
		{"webview_unclean_restart", "android", "2.0.0", "", OutcomeInfo},
		{"webview_javascript_error", "android", "2.0.0", "", OutcomeInfo},
		{"webview_content_process_terminated", "ios", "2.0.0", "", OutcomeInfo},
		{"app_crash", "android", "1.0.0", "", OutcomeInfo}, // on the store bundle (version_name = version_build)
		{"app_crash", "ios", "builtin", "", OutcomeInfo},
	} {
		ev := capgoEvent{capgoInfo: capgoInfo{Platform: tc.platform, VersionName: tc.versionName, VersionBuild: "1.0.0"}, Action: tc.action}
		if tc.meta != "" {
			ev.Metadata = []byte(tc.meta)
		}
		if got := capgoOutcomeKind(&ev); got != tc.want {
			t.Errorf("%s %s %s %s: %v, want %v", tc.action, tc.platform, tc.versionName, tc.meta, got, tc.want)
		}
	}
}

// A crash of the running version counts toward that version's rollout failure rate
// and halts it, once per device, without failure memory.
func TestCapgoCrashCountsAgainstRunningVersion(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.0", "production")
	e.publish(capgoApp, "2.0.0", "")
	e.capgoChannel("production", func(c *release.Channel) {
		c.Rolling = &release.Rollout{Version: "2.0.0", Percent: 100, Salt: "s1"}
		c.Policy = release.Policy{MinAttempts: 10, MaxFailureRate: 0.2}
	})
	ctx := context.Background()
	rollout := func() (int64, int64) {
		t.Helper()
		att, fails, err := e.store.RolloutOutcomes(ctx, capgoApp, "production", "s1")
		if err != nil {
			t.Fatal(err)
		}
		return att, fails
	}
	dev := func(i int) string { return fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i) }
	ts := int64(1795338000000)
	stat := func(device, action, version, meta string) {
		t.Helper()
		ts++
		ev := capgoStatEvent(t, device, action, version, ts)
		if meta != "" {
			ev["metadata"] = map[string]any{"exit_importance": meta}
		}
		if st, m := e.capgoStats([]any{ev}); st != 200 {
			t.Fatalf("stats %d %v", st, m)
		}
	}

	for i := range 10 {
		stat(dev(i), "set", "2.0.0", "")
	}
	// Device 0 crashes on every launch: one failing device.
	for range 3 {
		stat(dev(0), "app_crash", "2.0.0", "100")
	}
	if att, fails := rollout(); att != 10 || fails != 1 {
		t.Fatalf("rollout after one crashing device: %d attempts, %d failures; want 10, 1", att, fails)
	}
	if n := e.capgoStat("2.0.0", "app_crash"); n != 3 {
		t.Fatalf("app_crash counted %d times, want 3", n)
	}
	if n := e.capgoStat("2.0.0", ActionCrashed); n != 1 {
		t.Fatalf("%s = %d, want 1", ActionCrashed, n)
	}
	// No failure memory: the crashing device keeps its version, and is not moved
	// back to stable by its next check.
	if d, err := e.store.GetDevice(ctx, capgoApp, dev(0)); err == nil && len(d.Failed) != 0 {
		t.Fatalf("a crash entered failure memory: %v", d.Failed)
	}
	st, h, m := e.capgoCheck(capgoDevice(t, dev(0), "2.0.0", nil))
	capgoWantNoUpdate(t, st, h, m, "up_to_date", release.ReasonUpToDate)

	// Reports that are not the bundle's fault, or of another version, do not count.
	stat(dev(1), "app_killed_low_memory", "2.0.0", "400")
	stat(dev(1), "app_crash", "1.0.0", "")          // the stable version: not the rollout's
	stat(dev(1), "app_launch_timeout", "2.0.0", "") // update_fail carries that failure
	if att, fails := rollout(); att != 10 || fails != 1 {
		t.Fatalf("rollout: %d attempts, %d failures; want 10, 1", att, fails)
	}
	if ro := e.capgoRollout(); ro.Halted {
		t.Fatalf("halted at 1 failing device in 10: %+v", ro)
	}

	// Two more devices: an ANR and a foreground low-memory kill. 3 of 10 > 20%: halted.
	stat(dev(2), "app_anr", "2.0.0", "")
	stat(dev(3), "app_killed_low_memory", "2.0.0", "100")
	if att, fails := rollout(); att != 10 || fails != 3 {
		t.Fatalf("rollout: %d attempts, %d failures; want 10, 3", att, fails)
	}
	if ro := e.capgoRollout(); !ro.Halted {
		t.Fatalf("3 crashing devices of 10 did not halt the rollout: %+v", ro)
	}
	// A halted rollout serves the stable release to devices that never ran 2.0.0.
	st, _, m = e.capgoCheck(capgoDevice(t, dev(50), "0.9.0", nil))
	if v := capgoWantUpdate(t, st, m)["version"]; v != "1.0.0" {
		t.Fatalf("after the halt: %v", m)
	}
}

// capgoRollout reads the production channel's rollout from the store.
func (e *testEnv) capgoRollout() release.Rollout {
	e.t.Helper()
	c, err := e.store.GetChannel(context.Background(), capgoApp, "production")
	if err != nil || c.Rolling == nil {
		e.t.Fatalf("no rollout: %+v %v", c, err)
	}
	return *c.Rolling
}
