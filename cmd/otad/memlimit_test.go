package main

import (
	"math"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		flag, env string
		want      int64
		set, err  bool
	}{
		{"", "", 1 << 30, true, false},             // default
		{"", "2GiB", 0, false, false},              // GOMEMLIMIT, applied by the runtime
		{"512MiB", "2GiB", 512 << 20, true, false}, // the flag wins
		{"1048576", "", 1 << 20, true, false},      // bytes
		{"64KiB", "", 64 << 10, true, false},
		{"100B", "", 100, true, false},
		{"off", "", math.MaxInt64, true, false},
		{"1.5GiB", "", 0, false, true},
		{"lots", "", 0, false, true},
		{"-1MiB", "", 0, false, true},
	} {
		got, set, err := memoryLimit(tc.flag, tc.env)
		if got != tc.want || set != tc.set || (err != nil) != tc.err {
			t.Errorf("memoryLimit(%q, %q) = %d, %v, %v", tc.flag, tc.env, got, set, err)
		}
	}
}
