package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otakit/ota/shared/store"
)

// Adoption through every route that reports what a device runs, on both backends:
// random histories of installs and failures (Capgo stats, our client's report,
// native-update confirm), channel_self (which carries a version_name that is not a
// report), repeats and concurrent devices, with some answers of device and counter
// writes lost (the write happened, the server saw an error, the client retried).
// Afterwards `ota stats` adoption must equal a replay of the events: per version,
// the devices whose last install it was.

// lostAnswers fails, after applying it, a share of the writes that touch a device
// record or an adoption counter, as a timeout after the commit does.
type lostAnswers struct {
	store.Table
	mu   sync.Mutex
	rng  *rand.Rand
	rate float64
}

var errLostAnswer = errors.New("answer lost after the write")

func adoptionKey(pk, sk string) bool {
	return strings.HasPrefix(pk, "DEV#") || strings.Contains(pk, "ADOPT#") || strings.HasPrefix(sk, "ADOPT#")
}

func (l *lostAnswers) lose(touches bool, err error) error {
	if err != nil || !touches {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rng.Float64() < l.rate {
		return errLostAnswer
	}
	return nil
}

func (l *lostAnswers) Put(ctx context.Context, it store.Item, c store.Cond) (store.Item, error) {
	got, err := l.Table.Put(ctx, it, c)
	return got, l.lose(adoptionKey(it.PK, it.SK), err)
}

func (l *lostAnswers) Add(ctx context.Context, pk, sk string, delta, expires int64) (int64, error) {
	n, err := l.Table.Add(ctx, pk, sk, delta, expires)
	return n, l.lose(adoptionKey(pk, sk), err)
}

func (l *lostAnswers) Transact(ctx context.Context, ops []store.Op) error {
	touches := false
	for _, op := range ops {
		touches = touches || adoptionKey(op.Item.PK, op.Item.SK)
	}
	return l.lose(touches, l.Table.Transact(ctx, ops))
}

// adEvent is one request a device sends.
type adEvent struct {
	route   string // capgo, report, confirm, channel
	version string
	ok      bool   // install (true) or failure
	channel string // channel_self: the channel chosen
	capgo   map[string]any
}

// installs reports whether the event records the version as the device's.
func (ev adEvent) installs() bool { return ev.route != "channel" && ev.ok }

func (ev adEvent) String() string {
	if ev.route == "channel" {
		return "channel:" + ev.channel
	}
	return fmt.Sprintf("%s:%s:%v", ev.route, ev.version, ev.ok)
}

// adSend posts the event for device, retrying server errors as clients do, and
// reports the last answer.
func (e *testEnv) adSend(device string, ev adEvent) (int, string) {
	for range 50 {
		st, body := e.adSendOnce(device, ev)
		if st < 500 {
			return st, body
		}
	}
	return e.adSendOnce(device, ev)
}

func (e *testEnv) adSendOnce(device string, ev adEvent) (int, string) {
	var st int
	var b []byte
	switch ev.route {
	case "capgo":
		st, _, b = e.do("POST", "/capgo/stats", []map[string]any{ev.capgo})
	case "report":
		status := map[bool]string{true: "installed", false: "failed"}[ev.ok]
		st, _, b = e.do("POST", "/v1/device/report", map[string]any{"app_id": sfApp, "device_id": device, "version": ev.version, "status": status})
	case "confirm":
		st, _, b = e.do("POST", "/api/v1/updates/confirm", map[string]any{"appId": sfApp, "deviceId": device, "version": ev.version,
			"platform": "android", "success": ev.ok})
	case "channel":
		// version_name is what the app runs as the plugin sees it, not a report of an
		// install: it must not move the device (the reported drift).
		body := sfCapgoBody(device, ev.version)
		body["channel"] = ev.channel
		st, _, b = e.do("POST", "/capgo/channel_self", body)
	}
	return st, string(b)
}

func adHistory(rng *rand.Rand, device string, n int, versions []string) []adEvent {
	var h []adEvent
	for len(h) < n {
		v := versions[rng.IntN(len(versions))]
		var ev adEvent
		switch r := rng.IntN(12); {
		case r < 3:
			action := map[bool]string{true: "set", false: "update_fail"}[r < 2]
			ev = adEvent{route: "capgo", version: v, ok: r < 2, capgo: sfEvent(device, action, v, "")}
		case r < 6:
			ev = adEvent{route: "report", version: v, ok: r < 5}
		case r < 8:
			ev = adEvent{route: "confirm", version: v, ok: r < 7}
		case r < 10:
			ev = adEvent{route: "channel", version: v, channel: []string{"beta", "production"}[rng.IntN(2)]}
		default:
			if len(h) == 0 {
				continue
			}
			ev = h[len(h)-1] // a repeat (Capgo drops it by its timestamp; the others apply it again)
		}
		h = append(h, ev)
	}
	return h
}

func TestAdoptionMatchesReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b tableBackend) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		tbl := &lostAnswers{Table: b.open(t), rng: rand.New(rand.NewPCG(seed+1, seed)), rate: 0.1}
		e := newTestEnvWith(t, tbl, envOptions{ttl: time.Minute})
		e.createApp(sfApp)
		versions := []string{"1.0.0", "1.0.1", "1.0.2"}
		for _, v := range versions {
			e.publish(sfApp, v, "")
		}
		e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/production", map[string]any{"version": "1.0.0", "allow_self_set": true})
		e.sfOK("PUT", "/v1/apps/"+sfApp+"/channels/beta", map[string]any{"version": "1.0.1", "allow_self_set": true})

		const devices, events, workers = 24, 10, 8
		type job struct {
			device string
			h      []adEvent
		}
		var jobs []job
		want := map[string]int64{}
		last := map[string]string{}
		for i := range devices {
			dev := fmt.Sprintf("5f0c7d2e-ad00-4a1b-9c3d-%012d", i)
			h := adHistory(rng, dev, events, versions)
			contested := i%4 == 0
			if contested {
				// Sent twice at once. Capgo drops the second copy of each event (same
				// timestamp) while the other routes apply theirs again, so the copies
				// end on an install no route drops.
				h = append(h, adEvent{route: "report", version: versions[rng.IntN(len(versions))], ok: true})
			}
			v := ""
			for _, ev := range h {
				if ev.installs() {
					v = ev.version
				}
			}
			if v != "" {
				want[v]++
			}
			last[dev] = v
			jobs = append(jobs, job{dev, h})
			if contested {
				jobs = append(jobs, job{dev, h})
			}
		}
		rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

		queue := make(chan job)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for range workers {
			wg.Go(func() {
				for j := range queue {
					for _, ev := range j.h {
						if st, body := e.adSend(j.device, ev); st != 200 || strings.Contains(body, `"error"`) {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("%s %v: HTTP %d %s", j.device, ev, st, body))
							mu.Unlock()
						}
					}
				}
			})
		}
		for _, j := range jobs {
			queue <- j
		}
		close(queue)
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d requests failed, first: %s", len(failures), failures[0])
		}

		for dev, v := range last {
			d, err := e.store.GetDevice(context.Background(), sfApp, dev)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			if d.Version != v {
				t.Errorf("%s: recorded version %q, replay says %q", dev, d.Version, v)
			}
		}
		type statsOut struct {
			Adoption []store.Adoption `json:"adoption"`
		}
		got := map[string]int64{}
		for _, a := range sfDecode[statsOut](t, e.sfOK("GET", "/v1/apps/"+sfApp+"/stats", nil)).Adoption {
			got[a.Version] = a.Devices
		}
		if !maps.Equal(got, want) {
			t.Fatalf("stats adoption %v, replay of the events %v", got, want)
		}
	})
}
