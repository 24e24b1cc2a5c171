package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

// Adoption counters under random device histories: whatever the interleaving, the
// repeats and the lost answers, devices per version must equal the number of devices
// whose last recorded version is that version.

// ErrInjected is the failure a FaultTable injects.
var ErrInjected = errors.New("injected fault")

// FaultTable fails a share of the writes it passes on: before the write (nothing
// happened) or after it (the write happened, its answer was lost, as on a timeout).
// Reads are never failed, so a test can check the final state.
type FaultTable struct {
	store.Table
	mu   sync.Mutex
	rng  *rand.Rand
	rate float64
}

// NewFaultTable wraps t, failing the given share of writes (0 to 1), half of them
// before and half after the write, as seed draws them.
func NewFaultTable(t store.Table, seed uint64, rate float64) *FaultTable {
	return &FaultTable{Table: t, rng: rand.New(rand.NewPCG(seed, seed>>1)), rate: rate}
}

// SetRate changes the share of writes failed from now on.
func (f *FaultTable) SetRate(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = rate
}

// roll decides one write's fate: fail before it, fail after it, or neither.
func (f *FaultTable) roll() (before, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= f.rate {
		return false, false
	}
	return f.rng.IntN(2) == 0, true
}

func (f *FaultTable) Put(ctx context.Context, it store.Item, c store.Cond) (store.Item, error) {
	before, after := f.roll()
	if before {
		return store.Item{}, ErrInjected
	}
	got, err := f.Table.Put(ctx, it, c)
	if err == nil && after {
		return store.Item{}, ErrInjected
	}
	return got, err
}

func (f *FaultTable) Add(ctx context.Context, pk, sk string, delta, expires int64) (int64, error) {
	before, after := f.roll()
	if before {
		return 0, ErrInjected
	}
	n, err := f.Table.Add(ctx, pk, sk, delta, expires)
	if err == nil && after {
		return 0, ErrInjected
	}
	return n, err
}

func (f *FaultTable) Transact(ctx context.Context, ops []store.Op) error {
	before, after := f.roll()
	if before {
		return ErrInjected
	}
	err := f.Table.Transact(ctx, ops)
	if err == nil && after {
		return ErrInjected
	}
	return err
}

// deviceEvent is one report in a device's history.
type deviceEvent struct {
	kind    string // install, write, fail, channel
	version string // install, write, fail
	channel string // channel ("" clears the override)
}

func (e deviceEvent) String() string { return e.kind + ":" + e.version + e.channel }

// apply sends e for device through s, retrying (as a client retries a failed report)
// until it succeeds.
func (e deviceEvent) apply(ctx context.Context, s *store.Store, device string) error {
	var err error
	for range 100 {
		switch e.kind {
		case "install":
			err = s.RecordInstall(ctx, "app", device, e.version)
		case "write":
			// Any other writer of the record (as channel_self once was) that sets
			// the version: the counters must follow it too.
			_, err = s.UpdateDevice(ctx, "app", device, func(d *release.Device) error {
				d.Version, d.Platform = e.version, "android"
				return nil
			})
		case "fail":
			err = s.RecordFailure(ctx, "app", device, e.version)
		case "channel":
			_, err = s.SetDeviceChannel(ctx, "app", device, e.channel)
		}
		if !errors.Is(err, ErrInjected) {
			return err
		}
	}
	return fmt.Errorf("%s on %s: still failing after 100 attempts: %w", e, device, err)
}

// randomHistory is n events over a few versions, with repeats.
func randomHistory(rng *rand.Rand, n int) []deviceEvent {
	versions := []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3"}
	var h []deviceEvent
	for len(h) < n {
		v := versions[rng.IntN(len(versions))]
		var e deviceEvent
		switch r := rng.IntN(10); {
		case r < 4:
			e = deviceEvent{kind: "install", version: v}
		case r < 5:
			e = deviceEvent{kind: "write", version: v}
		case r < 7:
			e = deviceEvent{kind: "fail", version: v}
		case r < 8:
			e = deviceEvent{kind: "channel", channel: []string{"", "beta", "qa"}[rng.IntN(3)]}
		default:
			if len(h) == 0 {
				continue
			}
			e = h[len(h)-1] // a repeated report (a retried batch, a duplicate)
		}
		h = append(h, e)
	}
	return h
}

// lastVersion replays a history: the version the device's record must end with.
func lastVersion(h []deviceEvent) string {
	v := ""
	for _, e := range h {
		if e.kind == "install" || e.kind == "write" {
			v = e.version
		}
	}
	return v
}

func testStoreAdoptionProperty(t *testing.T, tb store.Table) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	ft := NewFaultTable(tb, seed+1, 0.15)
	s := store.New(ft)
	const devices, events, workers = 40, 12, 8
	histories := make([]([]deviceEvent), devices)
	for i := range histories {
		histories[i] = randomHistory(rng, events)
	}
	// Every fourth device is contested: its whole history is sent twice at once
	// (two app processes, or a client and its retry queue). Both senders end with
	// the same last event, so the replay is the same whatever the interleaving.
	type job struct {
		device string
		h      []deviceEvent
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				for _, e := range j.h {
					if err := e.apply(ctx(t), s, j.device); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	for i, h := range histories {
		dev := fmt.Sprintf("dev%02d", i)
		jobs <- job{dev, h}
		if i%4 == 0 {
			jobs <- job{dev, h}
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	want := map[string]int64{}
	clean := store.New(tb)
	for i, h := range histories {
		dev := fmt.Sprintf("dev%02d", i)
		v := lastVersion(h)
		if v != "" {
			want[v]++
		}
		d, err := clean.GetDevice(ctx(t), "app", dev)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if d.Version != v {
			t.Errorf("%s: recorded version %q, replay says %q (history %v)", dev, d.Version, v, h)
		}
	}
	adoption, err := clean.ListAdoption(ctx(t), "app")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, a := range adoption {
		got[a.Version] = a.Devices
	}
	if !maps.Equal(got, want) {
		t.Fatalf("adoption %v, replay of the events %v (versions %v)", got, want, slices.Sorted(maps.Keys(want)))
	}
}

// testStoreAdoptionLegacy: counters written before sharding still count, and a device
// leaving a version counted there lowers the total.
func testStoreAdoptionLegacy(t *testing.T, tb store.Table) {
	s := store.New(tb)
	if _, err := tb.Add(ctx(t), "APP#app", "ADOPT#1.0.0", 3, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Put(ctx(t), store.Item{PK: "DEV#app#old", SK: "D", Data: []byte(`{"app_id":"app","id":"old","version":"1.0.0"}`)}, always); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordInstall(ctx(t), "app", "old", "1.0.1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAdoption(ctx(t), "app")
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Adoption{{Version: "1.0.0", Devices: 2}, {Version: "1.0.1", Devices: 1}}; !slices.Equal(got, want) {
		t.Fatalf("adoption %+v, want %+v", got, want)
	}
}
