package api

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/storetest"
)

// TestCapgoStatsExactlyOnce: Capgo stats batches, resent overlapping and
// concurrently and retried after every 5xx, while a share of the store's writes
// fail before they happen or happen and lose their answer (a crash or a timeout
// after the commit). Every counter, plain (get, download_complete) or outcome (set,
// update_fail, app_crash and the derived _installed, _failed, _crashed), must end
// at the number of distinct events it counts. With the marker written apart from
// the counters, a lost answer turned the resend into a duplicate and lost the event.
func TestCapgoStatsExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, seed>>2))
		ft := storetest.NewFaultTable(b.open(t), seed+1, 0)
		e := newTestEnvOn(t, ft)
		e.createApp(sfApp)
		e.publish(sfApp, "1.0.0", "production")
		e.publish(sfApp, "1.0.1", "production")

		actions := []string{"get", "download_complete", "set", "update_fail", "app_crash"}
		versions := []string{"1.0.0", "1.0.1"}
		type sent struct{ device, action, version string }
		var events []map[string]any
		var meta []sent
		for range 160 {
			s := sent{fmt.Sprintf("dev%02d", rng.IntN(16)), actions[rng.IntN(len(actions))], versions[rng.IntN(len(versions))]}
			events = append(events, sfEvent(s.device, s.action, s.version, ""))
			meta = append(meta, s)
		}
		// Overlapping batches (a resent batch, a retry queue sending old events with
		// new ones), some with an event twice; every event is in one at least.
		batches := storetest.OverlappingBatches(rng, events, 8)

		ft.SetRate(0.1)
		jobs := make(chan []map[string]any)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for bt := range jobs {
					e.sendUntilAnswered(bt)
				}
			})
		}
		for _, bt := range batches {
			jobs <- bt
			if rng.IntN(3) == 0 {
				jobs <- bt // sent twice at once
			}
		}
		close(jobs)
		wg.Wait()
		ft.SetRate(0)

		want := map[string]int64{}
		crashed := map[sent]bool{}
		for _, s := range meta {
			want[s.action+"|"+s.version]++
			switch s.action {
			case "set":
				want[ActionInstalled+"|"+s.version]++
			case "update_fail":
				want[ActionFailed+"|"+s.version]++
			case "app_crash":
				if k := (sent{device: s.device, version: s.version}); !crashed[k] {
					crashed[k] = true
					want[ActionCrashed+"|"+s.version]++
				}
			}
		}
		days := []string{store.Day(time.Now())}
		if d := store.Day(time.Now().Add(-time.Hour)); d != days[0] { // the run crossed midnight
			days = append(days, d)
		}
		counts, err := e.store.ReadStats(t.Context(), sfApp, days)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, c := range counts {
			got[c.Action+"|"+c.Version] += c.Count
		}
		if !maps.Equal(got, want) {
			t.Fatalf("counters %v\ndistinct events %v", got, want)
		}
	})
}

// sendUntilAnswered posts a stats batch until it is answered without a server
// error, as the plugin resends a batch it got no answer for.
func (e *testEnv) sendUntilAnswered(batch []map[string]any) {
	for range 200 {
		st, _, b := e.do("POST", "/capgo/stats", batch)
		if st == 200 {
			return
		}
		if st < 500 {
			e.t.Errorf("capgo stats: HTTP %d %s", st, b)
			return
		}
	}
	e.t.Error("capgo stats: still failing after 200 attempts")
}
