package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkCapgoCheck measures one Capgo update check through the whole handler
// stack (routing, JSON, cached channel state, decision, signed URL, manifest),
// in process, on embedded storage. Run: go test -run '^$' -bench CapgoCheck ./shared/api/
func BenchmarkCapgoCheck(b *testing.B) {
	e := newTestEnv(b)
	e.srv.cfg.StateTTL = 5 * time.Second
	e.srv.state.ttl = 5 * time.Second
	e.createApp("com.example.bench")
	e.publish("com.example.bench", "1.0.1", "production")
	h := e.srv.Handler()
	body := []byte(`{"app_id":"com.example.bench","device_id":"8b0e2f64-3c1d-4a9e-b7f5-2d6c8a1e0f93","platform":"android","version_name":"builtin","version_build":"1.0.0","version_code":"1","version_os":"14","plugin_version":"8.51.23","custom_id":"","defaultChannel":"","is_emulator":false,"is_prod":true}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/capgo/updates", bytes.NewReader(body)))
		if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"version":"1.0.1"`)) {
			b.Fatalf("check: %d %s", w.Code, w.Body.Bytes())
		}
	}
}
