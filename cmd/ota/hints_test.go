package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestErrorNextSteps: each refusal the user can fix names the thing and the command
// that fixes it, whichever command met it.
func TestErrorNextSteps(t *testing.T) {
	for _, c := range []struct {
		code   string
		status int
		args   []string
		want   []string
	}{
		{"app_not_found", 404, []string{"releases", "--app", "com.x.app"}, []string{"app com.x.app does not exist", "ota app create com.x.app"}},
		{"app_not_found", 404, []string{"channel", "list", "--app", "com.x.app"}, []string{"ota app create com.x.app"}},
		{"release_not_found", 404, []string{"release", "get", "1.2.3", "--app", "com.x.app"}, []string{"no release 1.2.3", "ota releases --app com.x.app"}},
		{"version_not_found", 404, []string{"release", "delete", "1.2.3", "--app", "com.x.app"}, []string{"no release 1.2.3", "ota releases --app com.x.app"}},
		{"channel_not_found", 404, []string{"channel", "get", "beta", "--app", "com.x.app"}, []string{"no channel beta", "ota channel set beta --app com.x.app --version"}},
		{"unauthorized", 401, []string{"app", "list"}, []string{"OTA_API_KEY", "ota login"}},
		{"http_401", 401, []string{"app", "list"}, []string{"OTA_API_KEY", "ota login"}},
		{"conflict", 409, []string{"app", "list"}, []string{"server refused (HTTP 409 conflict)"}},
	} {
		t.Run(c.code+"/"+strings.Join(c.args, " "), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(c.code, "http_") { // a proxy's bare answer
					w.WriteHeader(c.status)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				w.Write([]byte(`{"error":"` + c.code + `","message":"not here"}`))
			}))
			defer srv.Close()
			_, _, err := runCLI(t, append([]string{"--server", srv.URL, "--key", testKey}, c.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) {
				t.Fatal("error shows the key")
			}
		})
	}
}
