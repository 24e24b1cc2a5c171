package api

import (
	"errors"
	"testing"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/publish"
)

// The statuses the API answered before the packages below it named kinds instead:
// the mapping is the one place they are decided.
func TestKindStatus(t *testing.T) {
	for k, want := range map[fault.Kind]int{
		fault.Internal: 500, fault.Invalid: 400, fault.NotFound: 404, fault.Conflict: 409,
		fault.Unprocessable: 422, fault.TooLarge: 413, fault.StorageFull: 507, fault.Unavailable: 503,
	} {
		if got := statusOf(k); got != want {
			t.Errorf("statusOf(%v) = %d, want %d", k, got, want)
		}
	}
	if got := statusOf(fault.KindOf(blob.ErrNotFound)); got != 404 {
		t.Errorf("blob.ErrNotFound: %d, want 404", got)
	}
	if got := statusOf(fault.KindOf(errors.New("boom"))); got != 500 {
		t.Errorf("an unkinded error: %d, want 500", got)
	}
	br := storeErr(&publish.Error{Kind: fault.Conflict, Code: "version_exists", Msg: "m"}, "release").(*badRequest)
	if br.Status != 409 || br.Code != "version_exists" {
		t.Errorf("publish refusal: %+v", br)
	}
}
