package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/wire"
)

// Retention: delete old releases no channel needs, and the objects nothing references
// any more (publish.Pipeline.Cleanup has the rules).

// retentionAdminRoutes lists the admin routes of retention.
func retentionAdminRoutes() []Route {
	return []Route{
		{"POST", "/v1/apps/{app}/cleanup", GroupAdmin, (*Server).cleanup, AuthKeyApp},
	}
}

func (s *Server) cleanup(w http.ResponseWriter, r *http.Request) {
	a, k, err := s.appParam(r)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	var in wire.CleanupInput
	if err := s.decodeBody(r, manageLimits, &in); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if in.Keep == nil || *in.Keep < 1 {
		s.writeErr(w, r, errBad("invalid_keep", "keep (the number of newest releases to keep) must be at least 1"))
		return
	}
	if s.Pipeline == nil {
		writeError(w, http.StatusNotImplemented, "not_available", "cleanup is not available on this server")
		return
	}
	rep, err := s.Pipeline.CleanupWith(r.Context(), a.ID, publish.CleanupOptions{Keep: *in.Keep, DryRun: in.DryRun, Now: in.Now})
	if err != nil {
		s.writeErr(w, r, storeErr(err, "app"))
		return
	}
	if len(rep.Deleted) > 0 && !in.DryRun {
		s.state.invalidate(a.ID)
	}
	action := "cleanup"
	if in.DryRun {
		action = "cleanup.dry_run"
	}
	detail := fmt.Sprintf("deleted=%s patches=%d files=%d patch_objects=%d orphans=%d",
		strings.Join(rep.Deleted, ","), rep.Patches, rep.Files, rep.PatchObjects, rep.Orphans)
	if in.Now {
		detail += " now"
	}
	if len(rep.Errors) > 0 {
		detail += fmt.Sprintf(" errors=%d", len(rep.Errors))
	}
	s.audit(r.Context(), k, a.ID, action, fmt.Sprintf("keep=%d", *in.Keep), detail)
	writeJSON(w, http.StatusOK, wire.CleanupAnswer{Report: rep})
}
