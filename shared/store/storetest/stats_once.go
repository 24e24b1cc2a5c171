package storetest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/store"
)

// Exactly-once counting under faults: batches of de-duplicated events are sent,
// resent (overlapping, concurrently, with repeats inside a batch) and retried after
// every injected fault, some of which lose the answer of a write that happened.
// Every counter must end at the number of distinct events it counts.

// OverlappingBatches cuts events into batches the way a client's retry queue sends
// them: every step events start a batch holding them, plus up to 2*step following
// ones (a resent batch overlapping the next) and, now and then, an older event again
// (a repeat inside a batch). Every event is in at least one batch.
func OverlappingBatches[T any](rng *rand.Rand, events []T, step int) [][]T {
	var batches [][]T
	for start := 0; start < len(events); start += step {
		var b []T
		for i := range 1 + rng.IntN(2*step) {
			if j := start + i; j < len(events) {
				b = append(b, events[j])
			}
			if rng.IntN(step) == 0 {
				b = append(b, events[rng.IntN(start+1)])
			}
		}
		for i := start; i < min(start+step, len(events)); i++ {
			b = append(b, events[i])
		}
		batches = append(batches, b)
	}
	return batches
}

// retry calls fn until it fails with something other than an injected fault, as a
// client resends a batch until it gets an answer.
func retry(t *testing.T, fn func() error) {
	t.Helper()
	for range 200 {
		if err := fn(); !errors.Is(err, ErrInjected) {
			if err != nil {
				t.Error(err)
			}
			return
		}
	}
	t.Error("still failing after 200 attempts")
}

func testStoreStatsOnce(t *testing.T, tb store.Table) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>2))
	// Low enough that a resent batch of 20 (a transaction per event after a
	// conflict) gets through now and then; still hundreds of faults per run.
	s := store.New(NewFaultTable(tb, seed+1, 0.08))
	const day = "2024-05-01"
	keys := []store.StatKey{
		{Channel: "production", Version: "1.0.0", Action: "get"},
		{Channel: "production", Version: "1.0.1", Action: "get"},
		{Channel: "beta", Version: "1.0.1", Action: "download_complete"},
		{Channel: "a#b", Version: "1.0.1", Action: "get"}, // shares its item with the next
		{Channel: "a_b", Version: "1.0.1", Action: "get"},
	}
	events := make([]store.StatEvent, 150)
	for i := range events {
		events[i] = store.StatEvent{Marker: store.Marker{Fingerprint: fmt.Sprintf("ev%03d", i), TTL: time.Hour}, Key: keys[rng.IntN(len(keys))]}
	}
	// Batches of up to 20 events from a sliding window, so batches overlap (a
	// resent batch, a retry queue sending old events with new ones); some repeat an
	// event inside the batch; every event is in at least one batch.
	batches := OverlappingBatches(rng, events, 10)
	var wg sync.WaitGroup
	for _, b := range batches {
		for range 1 + rng.IntN(2) { // some batches are sent twice at once
			wg.Go(func() {
				retry(t, func() error {
					_, err := s.AddStatsOnce(ctx(t), "app", day, b)
					return err
				})
			})
		}
	}
	wg.Wait()
	want := map[string]int64{}
	for _, ev := range events {
		want[ev.Key.Channel+"|"+ev.Key.Action+"|"+ev.Key.Version]++
	}
	want["a_b|get|1.0.1"] += want["a#b|get|1.0.1"] // '#' is stored as '_'
	delete(want, "a#b|get|1.0.1")
	got := map[string]int64{}
	counts, err := store.New(tb).ReadStats(ctx(t), "app", []string{day})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		got[c.Channel+"|"+c.Action+"|"+c.Version] += c.Count
	}
	if !maps.Equal(got, want) {
		t.Fatalf("counters %v, distinct events %v", got, want)
	}
	// A batch of new events after all that is counted in full.
	n, err := store.New(tb).AddStatsOnce(ctx(t), "app", day, []store.StatEvent{events[0], {Marker: store.Marker{Fingerprint: "new", TTL: time.Hour}, Key: keys[0]}})
	if err != nil || n != 1 {
		t.Fatalf("AddStatsOnce of one seen and one new event = %d, %v; want 1", n, err)
	}
}

// deviceReport is one report of testStoreEventOnce.
type deviceReport struct {
	id      string
	device  string
	kind    string // install, fail, crash
	version string
}

func (r deviceReport) event() store.DeviceEvent {
	ev := store.DeviceEvent{Marker: store.Marker{Fingerprint: r.id, TTL: time.Hour}, Day: "2024-05-01",
		Stats: []store.StatKey{{Channel: "production", Version: r.version, Action: r.kind}}}
	switch r.kind {
	case "install":
		ev.Device, ev.Install = r.device, r.version
	case "fail":
		ev.Device, ev.Fail = r.device, r.version
	case "crash":
		ev.Once = store.Marker{Fingerprint: "crash-" + r.device + "-" + r.version, TTL: time.Hour}
		ev.OnceStats = []store.StatKey{{Channel: "production", Version: r.version, Action: "_crashed"}}
	}
	return ev
}

// testStoreEventOnce: device reports (marker, counters, device record, adoption
// and failure counts in one transaction) resent after faults count once each.
func testStoreEventOnce(t *testing.T, tb store.Table) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>2))
	s := store.New(NewFaultTable(tb, seed+1, 0.3))
	versions := []string{"1.0.0", "1.0.1", "1.0.2"}
	const devices = 12
	histories := make([][]deviceReport, devices)
	n := 0
	for d := range histories {
		dev := fmt.Sprintf("dev%02d", d)
		for range 10 {
			if h := histories[d]; len(h) > 0 && rng.IntN(5) == 0 {
				histories[d] = append(h, h[rng.IntN(len(h))]) // a resent report
				continue
			}
			n++
			histories[d] = append(histories[d], deviceReport{id: fmt.Sprintf("r%03d", n), device: dev,
				kind: []string{"install", "install", "fail", "crash"}[rng.IntN(4)], version: versions[rng.IntN(len(versions))]})
		}
	}
	var wg sync.WaitGroup
	for _, h := range histories {
		wg.Go(func() {
			for _, r := range h {
				retry(t, func() error {
					_, err := s.RecordEvent(ctx(t), "app", r.event())
					return err
				})
			}
		})
	}
	wg.Wait()

	// The replay: each report counts at its first sending.
	stats, fails, adoption := map[string]int64{}, map[string]int64{}, map[string]int64{}
	seen := map[string]bool{}
	for _, h := range histories {
		last := ""
		for _, r := range h {
			if seen[r.id] {
				continue
			}
			seen[r.id] = true
			stats[r.kind+"|"+r.version]++
			switch r.kind {
			case "install":
				last = r.version
			case "fail":
				fails[r.version]++
			case "crash":
				if k := "crash-" + r.device + "-" + r.version; !seen[k] {
					seen[k] = true
					stats["_crashed|"+r.version]++
				}
			}
		}
		if last != "" {
			adoption[last]++
		}
	}
	clean := store.New(tb)
	counts, err := clean.ReadStats(ctx(t), "app", []string{"2024-05-01"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range counts {
		got[c.Action+"|"+c.Version] += c.Count
	}
	if !maps.Equal(got, stats) {
		t.Errorf("counters %v, distinct reports %v", got, stats)
	}
	gotFails := map[string]int64{}
	for _, v := range versions {
		if n, err := clean.FailureCount(ctx(t), "app", v); err != nil {
			t.Fatal(err)
		} else if n != 0 {
			gotFails[v] = n
		}
	}
	if !maps.Equal(gotFails, fails) {
		t.Errorf("failure counts %v, distinct failure reports %v", gotFails, fails)
	}
	ad, err := clean.ListAdoption(ctx(t), "app")
	if err != nil {
		t.Fatal(err)
	}
	gotAd := map[string]int64{}
	for _, a := range ad {
		gotAd[a.Version] = a.Devices
	}
	if !maps.Equal(gotAd, adoption) {
		t.Errorf("adoption %v, replay %v", gotAd, adoption)
	}
	// A repeat says so and writes nothing.
	r := histories[0][0]
	res, err := clean.RecordEvent(ctx(t), "app", r.event())
	if err != nil || !res.Duplicate {
		t.Fatalf("RecordEvent of a counted report = %+v, %v; want a duplicate", res, err)
	}
}
