package api

import (
	"strings"
	"testing"

	"github.com/otakit/ota/shared/publish"
)

// TestCleanupNowAPI: `now` reaches the pipeline, young objects of the deleted
// releases go at once, and the audit entry says so.
func TestCleanupNowAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		e := sfEnv(t, b, envOptions{})
		for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
			e.publish(sfApp, v, "")
		}
		e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/production", map[string]any{"version": "1.0.2"})
		path := "/v1/apps/" + sfApp + "/cleanup"
		rep := sfDecode[publish.Report](t, e.sfOK("POST", path, map[string]any{"keep": 1})["report"])
		if len(rep.Deleted) != 2 || rep.Files != 0 || rep.RecentObjects == 0 {
			t.Fatalf("without now: %+v, want releases deleted and their young files kept", rep)
		}
		rep = sfDecode[publish.Report](t, e.sfOK("POST", path, map[string]any{"keep": 1, "now": true})["report"])
		if !rep.Now || rep.Files == 0 || rep.FileSweep != "done" || len(rep.Errors) > 0 {
			t.Fatalf("with now: %+v, want the young files of 1.0.0 and 1.0.1 deleted", rep)
		}
		if a := e.sfAudit(); len(a) == 0 || a[0].Action != "cleanup" || !strings.HasSuffix(a[0].Detail, " now") {
			t.Fatalf("audit %+v, want the cleanup with now", a)
		}
		if v, _ := e.sfCheck("5f0c7d2e-0000-4a1b-9c3d-000000000002", "1.0.0"); v != "1.0.2" {
			t.Fatalf("devices after cleanup --now: offered %q", v)
		}
	})
}
