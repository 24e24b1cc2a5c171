package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// Capgo answers sign their URLs for CapgoURLTTL (7 days by default, as Capgo's
// backend signs bundles for 604800 s): the Android download job may start days
// after the check. Other clients keep URLTTL.
func TestCapgoURLLifetime(t *testing.T) {
	e := newTestEnv(t)
	e.createApp(capgoApp)
	e.publish(capgoApp, "1.0.1", "production")
	expiresIn := func(h http.Handler) time.Duration {
		t.Helper()
		j, _ := json.Marshal(capgoDevice(t, "", "1.0.0", nil))
		req := httptest.NewRequest("POST", e.http.URL+"/capgo/updates", bytes.NewReader(j))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		m := capgoWantUpdate(t, rec.Code, jsonMap(t, rec.Body.Bytes()))
		var min time.Duration
		urls := []string{m["url"].(string)}
		for _, it := range m["manifest"].([]any) {
			urls = append(urls, it.(map[string]any)["download_url"].(string))
		}
		for _, s := range urls {
			u, _ := url.Parse(s)
			exp, err := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
			if err != nil {
				t.Fatalf("no expiry in %s", s)
			}
			if d := time.Until(time.Unix(exp, 0)); min == 0 || d < min {
				min = d
			}
		}
		return min
	}
	if d := expiresIn(e.srv.Handler()); d < DefaultCapgoURLTTL-time.Minute || d > DefaultCapgoURLTTL {
		t.Fatalf("Capgo URLs expire in %v, want %v", d, DefaultCapgoURLTTL)
	}
	custom := New(e.srv.Deps, Config{StateTTL: time.Nanosecond, CapgoURLTTL: 48 * time.Hour})
	if d := expiresIn(custom.Handler()); d < 48*time.Hour-time.Minute || d > 48*time.Hour {
		t.Fatalf("Capgo URLs expire in %v, want 48h", d)
	}

	// The general lifetime is untouched: a native-update answer's URL.
	st, _, b := e.do("GET", "/native-update/"+capgoApp+"/check?channel=production", nil)
	m := jsonMap(t, b)
	u, err := url.Parse(fmt.Sprint(m["url"]))
	if st != 200 || err != nil {
		t.Fatalf("native-update check: %d %v", st, m)
	}
	exp, _ := strconv.ParseInt(u.Query().Get("exp"), 10, 64)
	if d := time.Until(time.Unix(exp, 0)); d <= 0 || d > time.Hour {
		t.Fatalf("a native-update URL lives %v, want URLTTL (1h)", d)
	}
}
