package api

import (
	"slices"
	"testing"
)

// Each group's route function lists only that group's routes, and Routes() is
// exactly all of them (the Lambdas mount the per-group lists, otad all of Routes()).
func TestGroupRoutes(t *testing.T) {
	byGroup := map[Group][]Route{
		GroupCheck:   CheckRoutes(),
		GroupConfirm: ConfirmRoutes(),
		GroupStats:   StatsRoutes(),
		GroupUpload:  UploadRoutes(),
		GroupAdmin:   AdminRoutes(),
		GroupLocal:   localRoutes(),
	}
	n := 0
	for g, rs := range byGroup {
		if len(rs) == 0 {
			t.Errorf("group %s has no routes", g)
		}
		for _, r := range rs {
			if r.Group != g {
				t.Errorf("%s is listed with the %s routes but belongs to group %s", r.Pattern(), g, r.Group)
			}
			if r.Handler == nil {
				t.Errorf("%s has no handler", r.Pattern())
			}
		}
		n += len(rs)
	}
	all := Routes()
	if len(all) != n {
		t.Errorf("Routes() has %d routes, the groups %d", len(all), n)
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.Pattern()] {
			t.Errorf("%s is declared twice", r.Pattern())
		}
		seen[r.Pattern()] = true
		if !slices.ContainsFunc(byGroup[r.Group], func(o Route) bool { return o.Pattern() == r.Pattern() }) {
			t.Errorf("%s (group %s) is missing from its group's routes", r.Pattern(), r.Group)
		}
	}
}
