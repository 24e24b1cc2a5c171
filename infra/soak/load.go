package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Request kinds, as reported.
const (
	kindCapgoCheck = "capgo_check"
	kindNUCheck    = "nu_check"
	kindCapgoStats = "capgo_stats"
	kindPublish    = "ota_release"
	kindRollout    = "ota_rollout"
)

var kinds = []string{kindCapgoCheck, kindNUCheck, kindCapgoStats, kindPublish, kindRollout}

// killWindow is the time from the kill -9 until otad answers again (plus a grace
// period): transport errors of requests that overlap it are expected.
type killWindow struct {
	mu         sync.Mutex
	start, end time.Time // end is zero while otad is down
}

func (k *killWindow) open() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.start, k.end = time.Now(), time.Time{}
}

func (k *killWindow) close(grace time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.end = time.Now().Add(grace)
}

// overlaps reports whether a request that ran from a to b overlapped the window.
func (k *killWindow) overlaps(a, b time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.start.IsZero() || b.Before(k.start) {
		return false
	}
	return k.end.IsZero() || a.Before(k.end)
}

// kindFigures are the figures of one request kind.
type kindFigures struct {
	lat        []time.Duration // successful requests
	serverErrs int             // 5xx answers; failed ota commands
	unexpected int             // other answers the protocol does not give here
	transport  int             // transport errors outside the kill window
	tolerated  int             // transport errors (failed commands) during the kill window
	firstErr   string
}

func (s *kindFigures) note(msg string) {
	if s.firstErr == "" {
		s.firstErr = msg
	}
}

// recorder collects every request's outcome.
type recorder struct {
	mu     sync.Mutex
	kinds  map[string]*kindFigures
	window *killWindow
}

func newRecorder(w *killWindow) *recorder {
	r := &recorder{kinds: map[string]*kindFigures{}, window: w}
	for _, k := range kinds {
		r.kinds[k] = &kindFigures{}
	}
	return r
}

// record notes one request from start to now. ok says the answer was one the
// protocol gives; err is a transport error (no answer).
func (r *recorder) record(kind string, start time.Time, status int, ok bool, err error) {
	end := time.Now()
	inWindow := err != nil && r.window.overlaps(start, end)
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.kinds[kind]
	switch {
	case err != nil && inWindow:
		s.tolerated++
	case err != nil:
		s.transport++
		s.note(err.Error())
	case status >= 500:
		s.serverErrs++
		s.note(fmt.Sprintf("HTTP %d", status))
	case !ok:
		s.unexpected++
		s.note(fmt.Sprintf("HTTP %d", status))
	default:
		s.lat = append(s.lat, end.Sub(start))
	}
}

// recordCLI notes one ota command from start to now: a failure is an error unless
// it overlapped the kill window.
func (r *recorder) recordCLI(kind string, start time.Time, err error) {
	end := time.Now()
	inWindow := err != nil && r.window.overlaps(start, end)
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.kinds[kind]
	switch {
	case err == nil:
		s.lat = append(s.lat, end.Sub(start))
	case inWindow:
		s.tolerated++
	default:
		s.serverErrs++
		s.note(err.Error())
	}
}

// device is a simulated phone. Each is driven by one worker only, so its events
// reach the server in order.
type device struct {
	id      string
	running string // bundle version it runs ("" = the one in the store build)
	offered string // version a check offered, reported by its next stats event
	lastTS  int64  // last event timestamp (ms): strictly increasing per device
}

// expected counts what the server must report once every event is acknowledged.
type expected struct {
	installed map[string]int64 // "set" events per version
	failed    map[string]int64 // "update_fail" events per version
	lastSet   map[string]string
	events    int64
	resent    int64 // batches sent again because their first answer was lost
}

func newExpected() *expected {
	return &expected{installed: map[string]int64{}, failed: map[string]int64{}, lastSet: map[string]string{}}
}

// worker sends device requests in a closed loop: one at a time, as fast as answered.
type worker struct {
	base    string
	app     string
	client  *http.Client
	rec     *recorder
	devices []*device
	rng     *rand.Rand
	ready   func() []string // versions ready on the server
	exp     *expected
}

// run loops until ctx ends. The stats batch in flight is then still resent until
// acknowledged (bounded by drain), so that the expected counts are exact.
func (w *worker) run(ctx context.Context, drain time.Duration) error {
	for ctx.Err() == nil {
		switch p := w.rng.IntN(100); {
		case p < 45:
			w.capgoCheck(ctx)
		case p < 65:
			w.nuCheck(ctx)
		default:
			if err := w.stats(ctx, drain); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *worker) pick() *device { return w.devices[w.rng.IntN(len(w.devices))] }

const nativeVersion = "1.0.0" // the store build every simulated device runs

func (w *worker) capgoCheck(ctx context.Context) {
	d := w.pick()
	name := d.running
	if name == "" {
		name = "builtin"
	}
	body := map[string]any{"app_id": w.app, "device_id": d.id, "platform": "android", "version_name": name,
		"version_build": nativeVersion, "version_code": "10", "version_os": "14", "plugin_version": "8.51.23",
		"is_emulator": false, "is_prod": true, "defaultChannel": ""}
	start := time.Now()
	status, b, err := w.post(ctx, "/capgo/updates", body)
	if ctx.Err() != nil {
		return
	}
	var a struct {
		Version string `json:"version"`
		URL     string `json:"url"`
	}
	ok := status == http.StatusOK && json.Unmarshal(b, &a) == nil
	w.rec.record(kindCapgoCheck, start, status, ok, err)
	if ok && a.URL != "" && a.Version != "" && a.Version != d.running {
		d.offered = a.Version
	}
}

func (w *worker) nuCheck(ctx context.Context) {
	d := w.pick()
	q := url.Values{"appId": {w.app}, "deviceId": {d.id}, "platform": {"android"}, "currentVersion": {d.running}}
	if d.running == "" {
		q.Set("currentVersion", nativeVersion)
	}
	start := time.Now()
	status, b, err := w.do(ctx, "GET", "/api/v1/updates/check?"+q.Encode(), nil)
	if ctx.Err() != nil {
		return
	}
	var a struct {
		Version string `json:"version"`
	}
	// 404 {"available":false} is native-update's "no update".
	ok := (status == http.StatusOK && json.Unmarshal(b, &a) == nil) || status == http.StatusNotFound
	w.rec.record(kindNUCheck, start, status, ok, err)
	if status == http.StatusOK && a.Version != "" && a.Version != d.running {
		d.offered = a.Version
	}
}

// stats sends one batch of install ("set") and failure ("update_fail") events for
// up to three devices: a device reports what a check offered it, else a reinstall
// of a ready version. The batch is sent again, byte for byte, until the server
// acknowledges it: the server deduplicates events by device, action, timestamp and
// version, so an event whose answer was lost (kill -9) must count exactly once.
func (w *worker) stats(ctx context.Context, drain time.Duration) error {
	type sent struct {
		d       *device
		action  string
		version string
	}
	var batch []sent
	var events []map[string]any
	seen := map[*device]bool{}
	for range 1 + w.rng.IntN(3) {
		d := w.pick()
		if seen[d] {
			continue
		}
		seen[d] = true
		v := d.offered
		if v == "" {
			rs := w.ready()
			v = rs[w.rng.IntN(len(rs))]
		}
		action := "set"
		if w.rng.IntN(100) < 8 {
			action = "update_fail"
		}
		ts := max(time.Now().UnixMilli(), d.lastTS+1)
		d.lastTS = ts
		batch = append(batch, sent{d, action, v})
		old := d.running
		if old == "" {
			old = "builtin"
		}
		events = append(events, map[string]any{"app_id": w.app, "device_id": d.id, "platform": "android",
			"version_name": v, "old_version_name": old, "version_build": nativeVersion, "plugin_version": "8.51.23",
			"is_emulator": false, "is_prod": true, "action": action, "timestamp": ts})
	}
	body, err := json.Marshal(events)
	if err != nil {
		return err
	}
	deadline := time.Time{}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		// Not ctx: a batch in flight when the run ends is still resolved.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		status, _, err := w.do(rctx, "POST", "/capgo/stats", body)
		cancel()
		ok := status == http.StatusOK
		w.rec.record(kindCapgoStats, start, status, ok, err)
		if ok {
			break
		}
		if attempt == 0 {
			w.exp.resent++
		}
		if deadline.IsZero() && ctx.Err() != nil {
			deadline = time.Now().Add(drain)
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("a stats batch was not acknowledged within %s after the run", drain)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range batch {
		w.exp.events++
		if s.action == "set" {
			w.exp.installed[s.version]++
			w.exp.lastSet[s.d.id] = s.version
			s.d.running = s.version
		} else {
			w.exp.failed[s.version]++
		}
		if s.d.offered == s.version {
			s.d.offered = ""
		}
	}
	return nil
}

func (w *worker) post(ctx context.Context, path string, v any) (int, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	return w.do(ctx, "POST", path, b)
}

// do sends one request and reads the whole answer.
func (w *worker) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// percentile of sorted durations (p in 0..100).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}
