package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindOf(t *testing.T) {
	gone := New(NotFound, "gone")
	for _, c := range []struct {
		err  error
		want Kind
	}{
		{nil, Internal},
		{errors.New("plain"), Internal},
		{gone, NotFound},
		{fmt.Errorf("wrapped: %w", gone), NotFound},
		{errors.Join(errors.New("plain"), New(Conflict, "clash")), Conflict},
	} {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("KindOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", gone), gone) || errors.Is(New(NotFound, "gone"), gone) {
		t.Error("sentinels must compare by identity")
	}
}
