package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// On Lambda the access line is sampled (AccessLogEvery); a server error is always
// logged, at error level.
func TestAccessLogSampling(t *testing.T) {
	var logs logBuffer
	s := New(Deps{Log: slog.New(slog.NewJSONHandler(&logs, nil))}, Config{AccessLogEvery: 10})
	h := s.Mount([]Route{
		{"GET", "/ok", GroupLocal, func(_ *Server, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, AuthNone},
		{"GET", "/boom", GroupLocal, func(*Server, http.ResponseWriter, *http.Request) { panic("boom") }, AuthNone},
	})
	for range 30 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/ok", nil))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
	if w.Code != 500 {
		t.Fatalf("panic answered %d", w.Code)
	}
	out := logs.String()
	if n := strings.Count(out, `"msg":"request","method":"GET","path":"/ok"`); n != 3 {
		t.Errorf("%d access lines for 30 requests sampled 1 in 10, want 3:\n%s", n, out)
	}
	if !strings.Contains(out, `"level":"ERROR","msg":"request","method":"GET","path":"/boom","status":500`) {
		t.Errorf("the server error was not logged at error level:\n%s", out)
	}
}
