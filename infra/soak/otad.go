package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// otadProc is one run of otad on the soak's data folder and address.
type otadProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// server starts, kills and restarts otad, always on the same data folder and
// address, and reads its logs.
type server struct {
	bin, data, addr, adminKey string
	logs                      *logScan

	mu   sync.Mutex
	proc *otadProc
}

// start runs otad and waits until /healthz answers.
func (s *server) start(ctx context.Context) error {
	cmd := exec.Command(s.bin, "--data", s.data, "--addr", s.addr)
	cmd.Env = append(cleanEnv(), "OTA_ADMIN_KEY="+s.adminKey)
	cmd.Stdout = io.Discard // the quickstart text
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start otad: %w", err)
	}
	p := &otadProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		s.logs.scan(stderr) // until the pipe closes
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("otad exited at start: %v (last errors: %s)", p.err, s.logs.lastErrors())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if healthy(ctx, "http://"+s.addr) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("otad not healthy after 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func healthy(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc.cmd.Process.Pid
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (s *server) kill9() error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 otad: %w", err)
	}
	<-p.done
	return nil
}

// stop asks otad to shut down (SIGINT) and returns its exit error; after 15 s it
// is killed.
func (s *server) stop() error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return fmt.Errorf("otad had already exited: %v", p.err)
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return p.err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("otad did not stop within 15s of SIGINT")
	}
}

// cleanEnv is the environment without the caller's OTA_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTA_") {
			env = append(env, kv)
		}
	}
	return env
}

// logScan counts otad's log lines by level and keeps the last error lines. Access
// lines are not kept: under load there are millions.
type logScan struct {
	mu     sync.Mutex
	levels map[string]int
	errs   []string
}

func newLogScan() *logScan { return &logScan{levels: map[string]int{}} }

func (l *logScan) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var rec struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(line, &rec) != nil {
			rec.Level = "OTHER"
		}
		l.mu.Lock()
		l.levels[rec.Level]++
		if rec.Level == "ERROR" {
			l.errs = append(l.errs, string(bytes.Clone(line)))
			if len(l.errs) > 10 {
				l.errs = l.errs[1:]
			}
		}
		l.mu.Unlock()
	}
}

func (l *logScan) count(level string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.levels[level]
}

func (l *logScan) lastErrors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.errs, "\n")
}

// procMem is what /proc/<pid>/status says about a process's memory, in KiB.
type procMem struct {
	RSS, Anon, File, HWM int64
}

func (m procMem) String() string {
	return fmt.Sprintf("%.1f MiB (anon %.1f, file %.1f)", mib(m.RSS), mib(m.Anon), mib(m.File))
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func readMem(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n
		case "RssAnon":
			m.Anon = n
		case "RssFile":
			m.File = n
		case "VmHWM":
			m.HWM = n
		}
	}
	return m, nil
}

// openFDs counts the process's open file descriptors.
func openFDs(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es), err
}

// tempFiles lists the files in otad's temp folders (upload and pipeline copies).
func tempFiles(data string) []string {
	var out []string
	for _, d := range []string{filepath.Join(data, "tmp"), filepath.Join(data, "objects", ".tmp")} {
		es, _ := os.ReadDir(d)
		for _, e := range es {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	return out
}
