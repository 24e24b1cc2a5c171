package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUploadBarRate: a burst right after the start (the socket buffer filling) must
// not be drawn as an absurd rate; after the throttle the rate is bytes over time.
func TestUploadBarRate(t *testing.T) {
	var out bytes.Buffer
	bar := newUploadBar(1<<30, &out)
	bar.Add64(64 << 20)
	if s := out.String(); strings.Contains(s, "GiB/s") || strings.Contains(s, "TiB/s") {
		t.Fatalf("first tick shows %q", s)
	}
	time.Sleep(barThrottle + 50*time.Millisecond)
	bar.Add64(64 << 20) // the bar redraws when the percentage changes
	// 128 MiB over >= 0.3 s is at most ~427 MiB/s.
	m := regexp.MustCompile(`([0-9.]+) (B|KiB|MiB|GiB|TiB)/s\)`).FindAllStringSubmatch(out.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no rate drawn: %q", out.String())
	}
	last := m[len(m)-1]
	v, _ := strconv.ParseFloat(last[1], 64)
	if last[2] != "MiB" || v > 450 {
		t.Fatalf("rate %s %s/s, want at most ~427 MiB/s: %q", last[1], last[2], out.String())
	}
	if !strings.Contains(out.String(), "MiB/1.0 GiB") {
		t.Fatalf("sizes not in IEC units like fmtBytes: %q", out.String())
	}
}
