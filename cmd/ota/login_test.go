package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// isolateConfig points the user config folder at a fresh temp folder for t (once
// per test, so a login saved earlier in the same test is kept).
func isolateConfig(t *testing.T) {
	t.Helper()
	if os.Getenv("OTA_TEST_CONFIG_ISOLATED") == t.Name() {
		return
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("AppData", filepath.Join(home, "AppData")) // Windows
	t.Setenv("OTA_TEST_CONFIG_ISOLATED", t.Name())
}

// keyServer answers GET /v1/apps for one key and records which key each request sent.
type keyServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newKeyServer(t *testing.T, key string) *keyServer {
	ks := &keyServer{}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		ks.mu.Lock()
		ks.seen = append(ks.seen, got)
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if got != key {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"unauthorized","message":"invalid API key"}`))
			return
		}
		w.Write([]byte(`{"apps":[]}`))
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) last() string {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(ks.seen) == 0 {
		return ""
	}
	return ks.seen[len(ks.seen)-1]
}

func TestLoginLogout(t *testing.T) {
	isolateConfig(t)
	srv := newKeyServer(t, testKey)

	// A wrong key is refused and nothing is saved.
	_, errOut, err := runCLI(t, "login", "--server", srv.URL, "--key", testKey+"x")
	if err == nil || !strings.Contains(err.Error(), "login failed") {
		t.Fatalf("login with a wrong key: %v", err)
	}
	path, _ := profilePath()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("failed login saved %s: %v", path, err)
	}

	_, errOut, err = runCLI(t, "login", "--server", srv.URL+"/", "--key", testKey)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errOut, testKey) {
		t.Fatal("login prints the key")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("config dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	var p profile
	if err := json.Unmarshal(b, &p); err != nil || p.Server != srv.URL || p.Key != testKey {
		t.Fatalf("saved profile %+v, %v", p, err)
	}

	// No flag, no env: the login is used.
	if _, _, err := runCLI(t, "app", "list"); err != nil {
		t.Fatalf("app list with the saved login: %v", err)
	}
	if srv.last() != testKey {
		t.Fatalf("sent key %q, want the saved one", srv.last())
	}

	if _, _, err := runCLI(t, "logout"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("logout left %s", path)
	}
	_, _, err = runCLI(t, "--server", srv.URL, "app", "list")
	if err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Fatalf("after logout: %v", err)
	}
	if _, errOut, err := runCLI(t, "logout"); err != nil || !strings.Contains(errOut, "not logged in") {
		t.Fatalf("second logout: %v %q", err, errOut)
	}
}

// TestCredentialPrecedence: flag > environment > login, for the key and the server,
// and the saved key never goes to another server.
func TestCredentialPrecedence(t *testing.T) {
	isolateConfig(t)
	const envKey, flagKey = testKey + "e", testKey + "f"
	saved := newKeyServer(t, testKey)
	other := newKeyServer(t, envKey)
	if _, err := saveProfile(profile{Server: saved.URL, Key: testKey}); err != nil {
		t.Fatal(err)
	}
	run := func(env map[string]string, args ...string) {
		t.Helper()
		t.Setenv("OTA_SERVER", env["OTA_SERVER"])
		t.Setenv("OTA_API_KEY", env["OTA_API_KEY"])
		root := newRootCmd()
		root.SetArgs(append(args, "app", "list"))
		root.SetOut(new(strings.Builder))
		root.SetErr(new(strings.Builder))
		root.Execute() // refusals are expected; what was sent is checked
	}
	for _, c := range []struct {
		name    string
		env     map[string]string
		args    []string
		srv     *keyServer
		wantKey string
	}{
		{"login only", nil, nil, saved, testKey},
		{"env key beats login", map[string]string{"OTA_API_KEY": envKey}, nil, saved, envKey},
		{"flag key beats env", map[string]string{"OTA_API_KEY": envKey}, []string{"--key", flagKey}, saved, flagKey},
		{"env server beats login, saved key not sent", map[string]string{"OTA_SERVER": other.URL}, nil, other, ""},
		{"env server and env key", map[string]string{"OTA_SERVER": other.URL, "OTA_API_KEY": envKey}, nil, other, envKey},
		{"flag server beats env", map[string]string{"OTA_SERVER": other.URL}, []string{"--server", saved.URL}, saved, testKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := len(c.srv.seen)
			run(c.env, c.args...)
			if c.wantKey == "" {
				if len(c.srv.seen) != n {
					t.Fatalf("request sent with key %q, want none (no key for this server)", c.srv.last())
				}
				return
			}
			if len(c.srv.seen) == n || c.srv.last() != c.wantKey {
				t.Fatalf("server got key %q, want %q", c.srv.last(), c.wantKey)
			}
		})
	}
}
