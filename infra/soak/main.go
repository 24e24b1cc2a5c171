// Command soak is a bounded soak test of otad on loopback. It starts a real otad on
// a temp data folder and runs mixed load for a few minutes: Capgo and native-update
// device checks, Capgo stats (install and failure events), and publishes and staged
// rollouts through the ota CLI. Half-way it kills otad with SIGKILL and restarts it
// on the same data folder. It then checks that nothing failed outside the kill
// window, that the install, failure and adoption counts `ota stats` reports equal
// the events sent (each event exactly once, also those in flight at the kill), and
// that otad leaks neither memory, file descriptors nor temp files; and prints the
// figures. Run it with `make soak` (infra/soak/soak.sh builds the binaries).
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"
)

type config struct {
	ota, otad        string
	duration         time.Duration
	concurrency      int
	devicesPerWorker int
	kill             bool
	killAt           time.Duration
	warmup           time.Duration
	adminPeriod      time.Duration
	maxRSSGrowth     float64
	keep             bool
}

func main() {
	var c config
	flag.StringVar(&c.ota, "ota", "", "the ota CLI binary (required)")
	flag.StringVar(&c.otad, "otad", "", "the otad binary (required)")
	flag.DurationVar(&c.duration, "duration", 3*time.Minute, "how long the load runs")
	flag.IntVar(&c.concurrency, "concurrency", 32, "device workers sending requests one after the other")
	flag.IntVar(&c.devicesPerWorker, "devices", 32, "simulated devices per worker")
	flag.BoolVar(&c.kill, "kill", true, "kill -9 otad once during the run and restart it")
	flag.DurationVar(&c.killAt, "kill-at", 0, "when to kill -9 otad (default: half-way)")
	flag.DurationVar(&c.warmup, "warmup", 20*time.Second, "load before the steady-state memory sample, after start and after the restart")
	flag.DurationVar(&c.adminPeriod, "admin-period", 8*time.Second, "one publish + rollout cycle per period")
	flag.Float64Var(&c.maxRSSGrowth, "max-rss-growth", 1.5, "largest allowed ratio of otad's anonymous memory at the end to its steady state")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp folder (data, bundles)")
	flag.Parse()
	if c.ota == "" || c.otad == "" {
		fmt.Fprintln(os.Stderr, "soak: -ota and -otad are required (infra/soak/soak.sh builds them)")
		os.Exit(2)
	}
	if c.killAt <= 0 {
		c.killAt = c.duration / 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, c, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

const app = "com.example.soak"

// figures are the measurements the report prints and the checks read.
type figures struct {
	loadTime               time.Duration
	downFor                time.Duration // kill -9 until healthy again
	fdIdleStart, fdIdleEnd int
	fdMax                  int
	memIdleStart           procMem
	memWarm1, memKill      procMem // first process: steady state, just before the kill
	memWarm2, memEnd       procMem // after the restart: steady state, idle at the end
	tempLeftByKill         []string
	tempEnd                []string
	cleanStop              error
	exp                    *expected
	got                    statsAnswer
	workerErrs             []error
	published, rollouts    int
}

func run(ctx context.Context, c config, out io.Writer) (bool, error) {
	tmp, err := os.MkdirTemp("", "ota-soak-")
	if err != nil {
		return false, err
	}
	if c.keep {
		fmt.Fprintln(out, "data and bundles kept in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return false, err
	}
	srv := &server{bin: c.otad, data: filepath.Join(tmp, "data"), addr: addr, adminKey: newAdminKey(), logs: newLogScan()}
	if err := srv.start(ctx); err != nil {
		return false, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.stop()
		}
	}()
	base := "http://" + addr
	ota := cli{bin: c.ota, base: base, key: srv.adminKey}
	ready := &readyVersions{}
	if _, err := ota.run(ctx, "app", "create", app); err != nil {
		return false, err
	}
	first, err := writeBundle(filepath.Join(tmp, "bundles"), "1.0.1")
	if err != nil {
		return false, err
	}
	if _, err := ota.run(ctx, "release", first, "--app", app, "--version", "1.0.1", "--channel", "production"); err != nil {
		return false, err
	}
	ready.add("1.0.1")

	f := &figures{exp: newExpected()}
	time.Sleep(time.Second) // the CLI's connections close
	pid := srv.pid()
	if f.fdIdleStart, err = openFDs(pid); err != nil {
		return false, fmt.Errorf("open fds of otad (needs /proc): %w", err)
	}
	f.memIdleStart, _ = readMem(pid)

	window := &killWindow{}
	rec := newRecorder(window)
	transport := &http.Transport{MaxIdleConns: 4 * c.concurrency, MaxIdleConnsPerHost: 4 * c.concurrency, IdleConnTimeout: 30 * time.Second}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()

	var wg sync.WaitGroup
	var mu sync.Mutex
	exps := make([]*expected, c.concurrency)
	for i := range c.concurrency {
		devs := make([]*device, c.devicesPerWorker)
		for j := range devs {
			devs[j] = &device{id: fmt.Sprintf("00000000-0000-4000-8000-%012x", i*c.devicesPerWorker+j)}
		}
		exps[i] = newExpected()
		w := &worker{base: base, app: app, client: client, rec: rec, devices: devs,
			rng: rand.New(rand.NewPCG(uint64(i), 42)), ready: ready.list, exp: exps[i]}
		wg.Go(func() {
			if err := w.run(loadCtx, time.Minute); err != nil {
				mu.Lock()
				f.workerErrs = append(f.workerErrs, err)
				mu.Unlock()
			}
		})
	}
	adm := &admin{ota: ota, app: app, dir: filepath.Join(tmp, "bundles"), rec: rec, ready: ready, window: window,
		period: c.adminPeriod, next: 2}
	wg.Go(func() { adm.run(loadCtx) })
	// File descriptors under load, sampled (the idle counts are what must match).
	wg.Go(func() {
		for loadCtx.Err() == nil {
			if n, err := openFDs(srv.pid()); err == nil {
				mu.Lock()
				f.fdMax = max(f.fdMax, n)
				mu.Unlock()
			}
			sleepCtx(loadCtx, 2*time.Second)
		}
	})

	t0 := time.Now()
	fmt.Fprintf(out, "soak: otad on %s, %d workers x %d devices, %s of load, kill -9 at %s\n",
		base, c.concurrency, c.devicesPerWorker, c.duration, c.killAt)
	sleepCtx(ctx, min(c.warmup, c.killAt))
	f.memWarm1, _ = readMem(pid)
	sleepCtx(ctx, time.Until(t0.Add(c.killAt)))
	f.memKill, _ = readMem(pid)

	restarted := time.Now()
	if c.kill {
		window.open()
		killed := time.Now()
		if err := srv.kill9(); err != nil {
			return false, err
		}
		f.tempLeftByKill = tempFiles(srv.data)
		if err := srv.start(ctx); err != nil {
			return false, fmt.Errorf("restart after kill -9: %w", err)
		}
		f.downFor = time.Since(killed)
		transport.CloseIdleConnections()
		window.close(time.Second) // requests started just before healthy may still fail
		restarted = time.Now()
		fmt.Fprintf(out, "soak: otad killed at %s, answering again after %s\n", killed.Sub(t0).Round(time.Millisecond), f.downFor.Round(time.Millisecond))
	}

	sleepCtx(ctx, min(time.Until(restarted.Add(c.warmup)), time.Until(t0.Add(c.duration))))
	pid = srv.pid()
	f.memWarm2, _ = readMem(pid)
	sleepCtx(ctx, time.Until(t0.Add(c.duration)))
	stopLoad()
	wg.Wait()
	f.loadTime = time.Since(t0)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	f.published, f.rollouts = adm.published, adm.rollouts
	for _, e := range exps {
		f.exp.merge(e)
	}

	// Idle: background patch jobs finish and connections close; then nothing the
	// load opened may be left.
	transport.CloseIdleConnections()
	f.tempEnd, f.fdIdleEnd = settle(ctx, srv, f.tempLeftByKill, f.fdIdleStart)
	f.memEnd, _ = readMem(pid)

	b, err := ota.run(ctx, "--json", "stats", "--app", app, "--days", "2")
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, &f.got); err != nil {
		return false, fmt.Errorf("ota stats --json: %w", err)
	}
	stopped = true
	f.cleanStop = srv.stop()
	return report(out, c, rec, srv.logs, f), nil
}

// settle waits (up to 30 s) until otad's temp folders hold only what the kill left
// and its descriptor count is back to the idle one, and returns both.
func settle(ctx context.Context, srv *server, leftByKill []string, fdIdle int) ([]string, int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		temp := slices.DeleteFunc(tempFiles(srv.data), func(p string) bool { return slices.Contains(leftByKill, p) })
		fds, _ := openFDs(srv.pid())
		if (len(temp) == 0 && fds <= fdIdle) || time.Now().After(deadline) || ctx.Err() != nil {
			return temp, fds
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (e *expected) merge(o *expected) {
	for k, v := range o.installed {
		e.installed[k] += v
	}
	for k, v := range o.failed {
		e.failed[k] += v
	}
	maps.Copy(e.lastSet, o.lastSet) // devices are disjoint between workers
	e.events += o.events
	e.resent += o.resent
}

// statsAnswer is what `ota stats --json` prints.
type statsAnswer struct {
	Versions []struct {
		Version   string `json:"version"`
		Installed int64  `json:"installed"`
		Failed    int64  `json:"failed"`
	} `json:"versions"`
	Adoption []struct {
		Version string `json:"version"`
		Devices int64  `json:"devices"`
	} `json:"adoption"`
}

// countDiffs compares the counts the server reports with the events sent.
func countDiffs(exp *expected, got statsAnswer) []string {
	gotInst, gotFail, gotAdopt := map[string]int64{}, map[string]int64{}, map[string]int64{}
	for _, v := range got.Versions {
		gotInst[v.Version] += v.Installed
		gotFail[v.Version] += v.Failed
	}
	for _, a := range got.Adoption {
		gotAdopt[a.Version] += a.Devices
	}
	wantAdopt := map[string]int64{}
	for _, v := range exp.lastSet {
		wantAdopt[v]++
	}
	var diffs []string
	for _, c := range []struct {
		what      string
		want, got map[string]int64
	}{{"installed", exp.installed, gotInst}, {"failed", exp.failed, gotFail}, {"adoption (devices)", wantAdopt, gotAdopt}} {
		keys := slices.Sorted(maps.Keys(c.want))
		for k := range c.got {
			if _, ok := c.want[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if c.want[k] != c.got[k] {
				diffs = append(diffs, fmt.Sprintf("%s %s: server %d, sent %d", c.what, k, c.got[k], c.want[k]))
			}
		}
	}
	return diffs
}

// report prints the figures and the checks, and returns whether all checks passed.
func report(out io.Writer, c config, rec *recorder, logs *logScan, f *figures) bool {
	secs := f.loadTime.Seconds()
	fmt.Fprintf(out, "\nload: %s, %d device workers, %d devices, %d releases published, %d rollout commands\n",
		f.loadTime.Round(time.Second), c.concurrency, c.concurrency*c.devicesPerWorker, f.published, f.rollouts)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\treq/s\tp50 ms\tp99 ms\tmax ms\terrors\ttransport errors\tkill window\t")
	errs := 0
	var firstErrs []string
	rec.mu.Lock()
	for _, k := range kinds {
		s := rec.kinds[k]
		lat := sortedCopy(s.lat)
		n := len(lat) + s.serverErrs + s.unexpected + s.transport + s.tolerated
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t\n", k, n, float64(n)/secs,
			ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 100)), s.serverErrs+s.unexpected, s.transport, s.tolerated)
		errs += s.serverErrs + s.unexpected + s.transport
		if s.firstErr != "" {
			firstErrs = append(firstErrs, k+": "+s.firstErr)
		}
	}
	rec.mu.Unlock()
	tw.Flush()
	fmt.Fprintf(out, "errors: 5xx answers, unexpected answers and failed ota commands; kill window: transport errors (failed commands) while otad was down (%s)\n",
		f.downFor.Round(time.Millisecond))
	fmt.Fprintf(out, "stats events: %d acknowledged; %d batches sent again after a lost answer\n", f.exp.events, f.exp.resent)
	fmt.Fprintf(out, "otad memory: idle after setup %s; steady %s; before kill %s; after restart steady %s; end (idle) %s; peak %.1f MiB\n",
		f.memIdleStart, f.memWarm1, f.memKill, f.memWarm2, f.memEnd, mib(max(f.memKill.HWM, f.memEnd.HWM)))
	fmt.Fprintf(out, "open fds: idle at start %d, idle at end %d, max under load %d\n", f.fdIdleStart, f.fdIdleEnd, f.fdMax)
	fmt.Fprintf(out, "temp files: %d at the end (plus %d left by the kill -9, removed by otad's sweep once an hour old)\n",
		len(f.tempEnd), len(f.tempLeftByKill))
	fmt.Fprintf(out, "otad log: %d ERROR, %d WARN lines\n", logs.count("ERROR"), logs.count("WARN"))

	pass := true
	check := func(ok bool, what string, detail ...string) {
		mark := "ok  "
		if !ok {
			mark, pass = "FAIL", false
		}
		fmt.Fprintf(out, "%s %s\n", mark, what)
		for _, d := range detail {
			fmt.Fprintf(out, "       %s\n", d)
		}
	}
	fmt.Fprintln(out)
	check(errs == 0, fmt.Sprintf("no errors outside the kill window (%d)", errs), firstErrs...)
	var werrs []string
	for _, e := range f.workerErrs {
		werrs = append(werrs, e.Error())
	}
	check(len(werrs) == 0, "every stats batch acknowledged", werrs...)
	diffs := countDiffs(f.exp, f.got)
	if len(diffs) > 0 && f.exp.resent > 0 {
		// Every batch was acknowledged in the end, so a count below what was sent is
		// an event the server marked as seen (retries are deduplicated) without
		// counting it: its writes are not atomic, and the kill fell between them.
		diffs = append(diffs, "(counts below what was sent, with batches resent after the kill: events deduplicated on resend whose first delivery was only partly written)")
	}
	check(len(diffs) == 0, fmt.Sprintf("ota stats counts equal the events sent (installed, failed per version; adoption over %d devices)", len(f.exp.lastSet)), diffs...)
	limit := int64(float64(f.memWarm2.Anon) * c.maxRSSGrowth)
	check(f.memEnd.Anon <= limit && f.memKill.Anon <= int64(float64(f.memWarm1.Anon)*c.maxRSSGrowth),
		fmt.Sprintf("otad anonymous memory within %.1fx of steady state (before kill %.1f -> %.1f MiB, after restart %.1f -> %.1f MiB)",
			c.maxRSSGrowth, mib(f.memWarm1.Anon), mib(f.memKill.Anon), mib(f.memWarm2.Anon), mib(f.memEnd.Anon)))
	check(f.fdIdleEnd <= f.fdIdleStart, fmt.Sprintf("open fds back to idle (%d -> %d)", f.fdIdleStart, f.fdIdleEnd))
	check(len(f.tempEnd) == 0, "no temp files left by the live process", f.tempEnd...)
	stopDetail := []string{}
	if f.cleanStop != nil {
		stopDetail = append(stopDetail, f.cleanStop.Error())
	}
	check(f.cleanStop == nil, "otad stops cleanly on SIGINT", stopDetail...)
	if le := logs.lastErrors(); le != "" && !pass {
		fmt.Fprintf(out, "\nlast otad ERROR lines:\n%s\n", le)
	}
	if pass {
		fmt.Fprintln(out, "\nsoak: PASS")
	} else {
		fmt.Fprintln(out, "\nsoak: FAIL")
	}
	return pass
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// freeLoopbackAddr picks a free port on 127.0.0.1; otad is restarted on the same one.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func newAdminKey() string {
	b := make([]byte, 24)
	_, _ = crand.Read(b)
	return "ota_" + hex.EncodeToString(b)
}
