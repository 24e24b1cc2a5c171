package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// cli runs the built ota binary against the soak's otad.
type cli struct {
	bin, base, key string
}

// run executes ota with args and returns its stdout; the error carries stderr.
func (c cli) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(cleanEnv(), "OTA_SERVER="+c.base, "OTA_API_KEY="+c.key)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("ota %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// readyVersions is the list of releases known to be ready, shared with the workers.
type readyVersions struct {
	mu sync.Mutex
	vs []string
}

func (r *readyVersions) add(v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vs = append(r.vs, v)
}

func (r *readyVersions) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.vs
}

// writeBundle makes a web bundle for version under dir: mostly the same bytes from
// one version to the next (as real releases), so that patches are worth computing.
func writeBundle(dir, version string) (string, error) {
	root := filepath.Join(dir, version)
	files := map[string]string{
		"index.html":      "<!doctype html><html><head><script src=\"js/app.js\"></script></head><body>" + version + "</body></html>",
		"js/vendor.js":    pseudoText(1, 96<<10),
		"js/app.js":       pseudoText(2, 24<<10) + "\nconsole.log(" + fmt.Sprintf("%q", version) + ");\n" + pseudoText(seedOf(version), 4<<10),
		"assets/logo.svg": "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			return "", err
		}
	}
	return root, nil
}

func seedOf(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// pseudoText is n bytes of JavaScript-looking text, the same for the same seed.
func pseudoText(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := []string{"function", "return", "const", "let", "if", "else", "for", "await", "async", "this", "value", "state", "render", "props", "=>", "{", "}", "(", ")", ";"}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n"[r.IntN(8)/7])
	}
	return b.String()[:n]
}

// admin publishes a release and walks it through a staged rollout (set, halt,
// resume, raise, promote) with the ota CLI, one cycle per period, until ctx ends.
type admin struct {
	ota    cli
	app    string
	dir    string // bundles
	rec    *recorder
	ready  *readyVersions
	window *killWindow
	period time.Duration
	next   int // patch number of the next version

	published, rollouts int
}

func (a *admin) run(ctx context.Context) {
	for ctx.Err() == nil {
		a.cycle(ctx)
	}
}

// cycle runs one release's steps; a step that fails ends the cycle (the next one
// starts from a new version, whatever state the failed step left).
func (a *admin) cycle(ctx context.Context) {
	v := fmt.Sprintf("1.0.%d", a.next)
	a.next++
	dir, err := writeBundle(a.dir, v)
	if err != nil {
		a.rec.recordCLI(kindPublish, time.Now(), err)
		return
	}
	ch := []string{"--app", a.app, "--channel", "production"}
	steps := []struct {
		kind  string
		args  []string
		pause time.Duration
	}{
		{kindPublish, []string{"release", dir, "--app", a.app, "--version", v}, 0},
		{kindRollout, append([]string{"rollout", "--version", v, "--percent", "20"}, ch...), a.period / 4},
		{kindRollout, append([]string{"rollout", "halt"}, ch...), 0},
		{kindRollout, append([]string{"rollout", "resume"}, ch...), 0},
		{kindRollout, append([]string{"rollout", "--version", v, "--percent", "60"}, ch...), a.period / 4},
		{kindRollout, append([]string{"rollout", "promote"}, ch...), a.period / 4},
	}
	for _, s := range steps {
		if ctx.Err() != nil {
			return
		}
		start := time.Now()
		_, err := a.ota.run(ctx, s.args...)
		if ctx.Err() != nil {
			return // the run ended mid-command: not a result
		}
		a.rec.recordCLI(s.kind, start, err)
		if err != nil {
			return
		}
		if s.kind == kindPublish {
			a.ready.add(v)
			a.published++
		} else {
			a.rollouts++
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.pause):
		}
	}
}
