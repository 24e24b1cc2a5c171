package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultMemoryLimit is otad's soft memory limit when neither --memory-limit nor
// GOMEMLIMIT sets one: patch work is budgeted below it (publish.PatchBudget), and
// the garbage collector works harder near it instead of letting the heap double.
const defaultMemoryLimit = 1 << 30

// memoryLimit picks Go's soft memory limit: the flag, else GOMEMLIMIT (which the
// runtime applied already, so it is left alone), else defaultMemoryLimit. ok is
// false when nothing is to be set.
func memoryLimit(flagVal, env string) (limit int64, ok bool, err error) {
	switch {
	case strings.TrimSpace(flagVal) != "":
		n, err := parseBytes(flagVal)
		if err != nil {
			return 0, false, fmt.Errorf("--memory-limit: %w", err)
		}
		return n, true, nil
	case strings.TrimSpace(env) != "":
		return 0, false, nil
	}
	return defaultMemoryLimit, true, nil
}

// applyMemoryLimit sets the limit memoryLimit picks and returns the one in force.
func applyMemoryLimit(flagVal, env string) (int64, error) {
	n, ok, err := memoryLimit(flagVal, env)
	if err != nil {
		return 0, err
	}
	if ok {
		debug.SetMemoryLimit(n)
	}
	return debug.SetMemoryLimit(-1), nil
}

// parseBytes reads a size the way GOMEMLIMIT does: a whole number of bytes with an
// optional B, KiB, MiB, GiB or TiB suffix; "off" means no limit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return math.MaxInt64, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("want a size like 1GiB, 512MiB or a number of bytes, or off; got %q", s)
	}
	return n * mult, nil
}
