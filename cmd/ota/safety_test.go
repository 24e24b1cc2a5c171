package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// sfRun runs the safety commands in a command tree of their own (so these tests do
// not depend on the root command's list) and returns stdout, stderr and the error.
func sfRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runTree(t, func() *cobra.Command {
		g := &globals{}
		root := &cobra.Command{Use: "ota", SilenceUsage: true, SilenceErrors: true}
		pf := root.PersistentFlags()
		pf.StringVar(&g.server, "server", defaultServer, "")
		pf.StringVar(&g.key, "key", "", "")
		pf.BoolVar(&g.json, "json", false, "")
		root.AddCommand(newSafetyCmds(g)...)
		return root
	}, args...)
}

// TestSafetyArgs: bad invocations fail before any request, saying what is wrong.
func TestSafetyArgs(t *testing.T) {
	app, ch := []string{"--app", "com.example.app"}, []string{"--channel", "production"}
	with := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	checkArgErrors(t, sfRun, []argCase{
		{"rollout without app", with([]string{"rollout"}, ch, []string{"--version", "1.0.0", "--percent", "5"}), "--app is required"},
		{"rollout bad app", with([]string{"rollout", "--app", "bad app"}, ch, []string{"--version", "1.0.0", "--percent", "5"}), "invalid app id"},
		{"rollout without channel", with([]string{"rollout"}, app, []string{"--version", "1.0.0", "--percent", "5"}), "--channel is required"},
		{"rollout bad channel", with([]string{"rollout"}, app, []string{"--channel", "a/b", "--version", "1.0.0", "--percent", "5"}), "--channel"},
		{"rollout without version", with([]string{"rollout"}, app, ch, []string{"--percent", "5"}), "--version is required"},
		{"rollout reserved version", with([]string{"rollout"}, app, ch, []string{"--version", "latest", "--percent", "5"}), "reserved"},
		{"rollout without percent", with([]string{"rollout"}, app, ch, []string{"--version", "1.0.0"}), "--percent is required"},
		{"rollout percent above 100", with([]string{"rollout"}, app, ch, []string{"--version", "1.0.0", "--percent", "101"}), "between 0 and 100"},
		{"rollout negative percent", with([]string{"rollout"}, app, ch, []string{"--version", "1.0.0", "--percent=-1"}), "between 0 and 100"},
		{"rollout percent not a number", with([]string{"rollout"}, app, ch, []string{"--version", "1.0.0", "--percent", "half"}), "invalid argument"},
		{"rollout stray argument", with([]string{"rollout", "1.0.0"}, app, ch), "unknown command"},
		{"promote without channel", with([]string{"rollout", "promote"}, app), "--channel is required"},
		{"halt without app", with([]string{"rollout", "halt"}, ch), "--app is required"},
		{"resume extra argument", with([]string{"rollout", "resume", "now"}, app, ch), "unknown command"},
		{"policy nothing", with([]string{"rollout", "policy"}, app, ch), "nothing to set"},
		{"policy rate 20", with([]string{"rollout", "policy"}, app, ch, []string{"--max-failure-rate", "20"}), "20%"},
		{"policy rate 0", with([]string{"rollout", "policy"}, app, ch, []string{"--max-failure-rate", "0"}), "--max-failure-rate"},
		{"policy min attempts 0", with([]string{"rollout", "policy"}, app, ch, []string{"--min-attempts", "0"}), "at least 1"},
		{"rollback without channel", with([]string{"rollback"}, app), "--channel is required"},
		{"rollback to and builtin", with([]string{"rollback"}, app, ch, []string{"--to", "1.0.0", "--builtin"}), "not both"},
		{"rollback bad to", with([]string{"rollback"}, app, ch, []string{"--to", "builtin"}), "reserved"},
		{"rollback empty to", with([]string{"rollback"}, app, ch, []string{"--to", ""}), "--to is required"},
		{"status without app", []string{"status"}, "--app is required"},
		{"status argument", with([]string{"status", "x"}, app), "unknown command"},
		{"stats days 0", with([]string{"stats"}, app, []string{"--days", "0"}), "between 1 and 366"},
		{"stats days 400", with([]string{"stats"}, app, []string{"--days", "400"}), "between 1 and 366"},
		{"stats bad channel", with([]string{"stats"}, app, []string{"--channel", "a b"}), "--channel"},
		{"audit limit 0", with([]string{"audit"}, app, []string{"--limit", "0"}), "between 1 and 1000"},
		{"audit without app", []string{"audit"}, "--app is required"},
		{"cleanup without keep", with([]string{"cleanup"}, app), "--keep is required"},
		{"cleanup keep 0", with([]string{"cleanup"}, app, []string{"--keep", "0"}), "at least 1"},
		{"cleanup without app", []string{"cleanup", "--keep", "3"}, "--app is required"},
	})
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"0.2": 0.2, "20%": 0.2, "1": 1, "100%": 1, "0.5%": 0.005} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "20", "0", "-0.1", "150%", "x"} {
		if _, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q): no error", in)
		}
	}
}

// sfRequest is one request the fake server received.
type sfRequest struct {
	Method, Path, Query string
	Body                map[string]any
}

// sfServer answers the management API with canned JSON and records requests.
func sfServer(t *testing.T, answers map[string]string) (*httptest.Server, func() []sfRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []sfRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"unauthorized","message":"missing or invalid API key"}`)
			return
		}
		rq := sfRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &rq.Body); err != nil {
				t.Errorf("%s %s: body %q is not a JSON object", r.Method, r.URL.Path, b)
			}
		}
		mu.Lock()
		got = append(got, rq)
		mu.Unlock()
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"route_not_found","message":"no such route"}`)
			return
		}
		status := 200
		if strings.HasPrefix(a, "409 ") {
			status, a = 409, a[4:]
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, a)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []sfRequest {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
}

const (
	sfChannelJSON = `{"channel":{"app_id":"com.example.app","name":"production","id":1,"stable":"1.0.0",` +
		`"rolling":{"version":"1.1.0","percent":25,"salt":"ab","halted":true,"halt_reason":"auto-halted: 11 of 50 installs failed (limit 20% after 50)","started_at":"2026-11-02T10:00:00Z"},` +
		`"public":false,"allow_self_set":false,"policy":{"max_failure_rate":0.1},"updated_at":"2026-11-02T10:00:00Z"}}`
	sfStatusJSON = `{"app":{"id":"com.example.app","default_channel":"production","created_at":"2026-11-01T00:00:00Z","flux_secret_set":false},` +
		`"channels":[` + `{"app_id":"com.example.app","name":"beta","id":2,"builtin":true,"public":false,"allow_self_set":false,"updated_at":"2026-11-02T09:00:00Z"},` +
		`{"app_id":"com.example.app","name":"production","id":1,"stable":"1.0.0",` +
		`"rolling":{"version":"1.1.0","percent":25,"salt":"ab","halted":true,"halt_reason":"auto-halted: 11 of 50 installs failed (limit 20% after 50)","started_at":"2026-11-02T10:00:00Z"},` +
		`"public":false,"allow_self_set":false,"updated_at":"2026-11-02T10:00:00Z","rollout_health":{"attempts":50,"failures":11}}],"cache_seconds":5}`
	sfStatsJSON = `{"days":["2026-11-01","2026-11-02"],"counts":[` +
		`{"day":"2026-11-02","channel":"production","version":"1.1.0","action":"_installed","count":6},` +
		`{"day":"2026-11-02","channel":"production","version":"1.1.0","action":"_failed","count":2}],` +
		`"versions":[{"version":"1.1.0","installed":6,"failed":2,"success_rate":0.75}]}`
	sfAuditJSON = `{"entries":[{"at":"2026-11-02T10:00:01Z","app_id":"com.example.app","key_id":"auto-halt","action":"rollout.auto_halt","target":"production","detail":"auto-halted"},` +
		`{"at":"2026-11-02T09:00:00Z","app_id":"com.example.app","key_id":"key_abc","action":"rollout.set","target":"production","detail":"stable=1.0.0 rolling=1.1.0@25%"}]}`
	sfCleanupJSON = `{"report":{"app":"com.example.app","keep":2,"dry_run":true,"deleted":["0.9.0"],"kept":[{"version":"1.1.0","reason":"newest"},{"version":"0.8.0","reason":"channel production history (rollback target)"}],` +
		`"patches":3,"files":4,"patch_objects":2,"orphans":0,"recent_objects":1,"file_sweep":"done"}}`
)

// TestSafetyCommands: each command sends the right request and prints the answer,
// as a table or (--json) as JSON.
func TestSafetyCommands(t *testing.T) {
	const chPath = "/v1/apps/com.example.app/channels/production"
	srv, requests := sfServer(t, map[string]string{
		"PUT " + chPath + "/rollout":            sfChannelJSON,
		"POST " + chPath + "/rollout/promote":   sfChannelJSON,
		"POST " + chPath + "/rollout/halt":      sfChannelJSON,
		"POST " + chPath + "/rollout/resume":    `409 {"error":"no_rollout","message":"the channel has no rollout"}`,
		"PUT " + chPath:                         sfChannelJSON,
		"POST " + chPath + "/rollback":          sfChannelJSON,
		"GET /v1/apps/com.example.app/status":   sfStatusJSON,
		"GET /v1/apps/com.example.app/stats":    sfStatsJSON,
		"GET /v1/apps/com.example.app/audit":    sfAuditJSON,
		"POST /v1/apps/com.example.app/cleanup": sfCleanupJSON,
	})
	base := []string{"--server", srv.URL, "--key", testKey}
	app, ch := []string{"--app", "com.example.app"}, []string{"--channel", "production"}
	cases := []struct {
		name string
		args []string
		req  sfRequest // Body nil: none expected (or any)
		out  []string  // in stdout
	}{
		{"rollout", append(append([]string{"rollout"}, app...), append(ch, "--version", "1.1.0", "--percent", "25")...),
			sfRequest{"PUT", chPath + "/rollout", "", map[string]any{"version": "1.1.0", "percent": 25.0}},
			[]string{"1.0.0 + rolling 1.1.0 at 25% (halted)", "halt reason: auto-halted"}},
		{"promote", append(append([]string{"rollout", "promote"}, app...), ch...), sfRequest{Method: "POST", Path: chPath + "/rollout/promote"}, []string{"production"}},
		{"halt", append(append([]string{"rollout", "halt"}, app...), ch...), sfRequest{Method: "POST", Path: chPath + "/rollout/halt"}, []string{"production"}},
		{"policy", append(append([]string{"rollout", "policy"}, app...), append(ch, "--max-failure-rate", "10%")...),
			sfRequest{"PUT", chPath, "", map[string]any{"max_failure_rate": 0.1}}, []string{"halt above 10% after 50"}},
		{"rollback", append(append([]string{"rollback"}, app...), ch...), sfRequest{"POST", chPath + "/rollback", "", map[string]any{}}, []string{"production"}},
		{"rollback to", append(append([]string{"rollback"}, app...), append(ch, "--to", "0.9.0")...),
			sfRequest{"POST", chPath + "/rollback", "", map[string]any{"to": "0.9.0"}}, nil},
		{"rollback builtin", append(append([]string{"rollback"}, app...), append(ch, "--builtin")...),
			sfRequest{"POST", chPath + "/rollback", "", map[string]any{"builtin": true}}, nil},
		{"status", append([]string{"status"}, app...), sfRequest{Method: "GET", Path: "/v1/apps/com.example.app/status"},
			[]string{"HALTED", "11/50 (22.0%)", "halt above 20% after 50 (default)", "builtin", "halted production: auto-halted: 11 of 50", "within 5 s"}},
		{"stats", append([]string{"stats"}, append(app, "--channel", "production", "--days", "2")...),
			sfRequest{Method: "GET", Path: "/v1/apps/com.example.app/stats", Query: "channel=production&days=2"},
			[]string{"2026-11-01 to 2026-11-02", "75.0%", "_failed"}},
		{"stats default", append([]string{"stats"}, app...), sfRequest{Method: "GET", Path: "/v1/apps/com.example.app/stats", Query: "days=7"}, nil},
		{"audit", append([]string{"audit"}, append(app, "--limit", "10")...), sfRequest{Method: "GET", Path: "/v1/apps/com.example.app/audit", Query: "limit=10"},
			[]string{"rollout.auto_halt", "key_abc", "2026-11-02 10:00:01Z"}},
		{"cleanup", append([]string{"cleanup"}, append(app, "--keep", "2", "--dry-run")...),
			sfRequest{"POST", "/v1/apps/com.example.app/cleanup", "", map[string]any{"keep": 2.0, "dry_run": true}},
			[]string{"dry run", "releases would delete: 0.9.0", "rollback target", "4 files", "run again with --now"}},
		{"cleanup now", append([]string{"cleanup"}, append(app, "--keep", "2", "--now")...),
			sfRequest{"POST", "/v1/apps/com.example.app/cleanup", "", map[string]any{"keep": 2.0, "dry_run": false, "now": true}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := sfRun(t, append(base, c.args...)...)
			if err != nil {
				t.Fatalf("ota %v: %v", c.args, err)
			}
			t.Logf("ota %s:\n%s", strings.Join(c.args, " "), out)
			reqs := requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests: %+v", len(reqs), reqs)
			}
			r := reqs[0]
			if r.Method != c.req.Method || r.Path != c.req.Path || r.Query != c.req.Query {
				t.Fatalf("request %s %s?%s, want %s %s?%s", r.Method, r.Path, r.Query, c.req.Method, c.req.Path, c.req.Query)
			}
			if c.req.Body != nil && !jsonEqual(r.Body, c.req.Body) {
				t.Fatalf("body %v, want %v", r.Body, c.req.Body)
			}
			for _, s := range c.out {
				if !strings.Contains(out, s) {
					t.Errorf("output does not show %q:\n%s", s, out)
				}
			}
			// --json: valid JSON on stdout, the same request.
			jout, _, err := sfRun(t, append(append(base, "--json"), c.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			requests()
			var v map[string]any
			if err := json.Unmarshal([]byte(jout), &v); err != nil {
				t.Fatalf("--json output is not a JSON object: %v\n%s", err, jout)
			}
		})
	}
	// A refusal shows the server's code.
	_, _, err := sfRun(t, append(base, append(append([]string{"rollout", "resume"}, app...), ch...)...)...)
	if err == nil || errorCode(err) != "no_rollout" || !strings.Contains(err.Error(), "the channel has no rollout") {
		t.Fatalf("refusal: %v", err)
	}
	// A change reminds that devices see it after the cache time.
	_, stderr, err := sfRun(t, append(base, append(append([]string{"rollback"}, app...), ch...)...)...)
	if err != nil || !strings.Contains(stderr, "5 s by default") {
		t.Fatalf("rollback note: %q %v", stderr, err)
	}
}

func jsonEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
