package api

import (
	"slices"
	"testing"

	"github.com/otakit/ota/shared/publish"
)

// TestRollbackSurvivesCleanup is the reported sequence on both backends: each
// release is published and `ota release --channel production` re-run many times for
// it; `ota cleanup --keep 1` must leave the release `ota rollback` goes back to, and
// the rollback must find it.
func TestRollbackSurvivesCleanup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		e := sfEnv(t, b, envOptions{})
		ch := "/v1/apps/" + sfApp + "/channels/production"
		for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
			e.publish(sfApp, v, "")
			for range publish.CleanupHistoryDepth + 5 {
				e.sfOK("PUT", ch, map[string]any{"version": v})
			}
		}
		if h := sfDecode[sfChannelOut](t, e.sfOK("GET", ch, nil)).History; len(h) != 3 {
			t.Fatalf("history has %d entries, want 3 (one per change)", len(h))
		}
		rep := sfDecode[publish.Report](t, e.sfOK("POST", "/v1/apps/"+sfApp+"/cleanup", map[string]any{"keep": 1})["report"])
		if slices.Contains(rep.Deleted, "1.0.1") || !slices.Contains(rep.Kept, publish.KeptRelease{Version: "1.0.1", Reason: "channel production history (rollback target)"}) {
			t.Fatalf("cleanup deleted %v, kept %+v: want 1.0.1 kept as the rollback target", rep.Deleted, rep.Kept)
		}
		if c := e.sfRollback("production", map[string]any{}); c.Stable != "1.0.1" {
			t.Fatalf("rollback went to %q, want 1.0.1", c.Stable)
		}
		if v, _ := e.sfCheck("5f0c7d2e-0000-4a1b-9c3d-000000000001", "1.0.2"); v != "1.0.1" {
			t.Fatalf("after the rollback devices are offered %q, want 1.0.1", v)
		}
	})
}
