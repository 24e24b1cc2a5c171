package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/store/dynamo"
	"github.com/otakit/ota/shared/testenv"
	"github.com/otakit/ota/shared/urlsign"
)

// The same test environment as newTestEnv, on any store.Table: the suites that must
// hold on every metadata backend run once on bbolt and once on DynamoDB Local.

// tableBackend opens a fresh, empty table for one test.
type tableBackend struct {
	name string
	// available skips (or, under CI, fails) t when the backend cannot run here.
	available func(t *testing.T)
	open      func(t *testing.T) store.Table
}

func tableBackends() []tableBackend {
	return []tableBackend{
		{"bolt", func(*testing.T) {}, func(t *testing.T) store.Table {
			t.Helper()
			tbl, err := bolt.Open(filepath.Join(t.TempDir(), "meta.db"))
			if err != nil {
				t.Fatal(err)
			}
			return tbl
		}},
		{"dynamodb", func(t *testing.T) { testenv.DynamoEndpoint(t) }, func(t *testing.T) store.Table {
			t.Helper()
			// Skips without the emulator on a developer machine; fails under CI.
			client := testenv.DynamoClient(t, testenv.DynamoEndpoint(t))
			name := testenv.TableName(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dynamo.CreateTable(ctx, client, name); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := dynamo.DeleteTable(ctx, client, name); err != nil {
					t.Errorf("delete table %s: %v", name, err)
				}
			})
			return dynamo.New(client, name)
		}},
	}
}

// forEachBackend runs fn as subtests "bolt" and "dynamodb".
func forEachBackend(t *testing.T, fn func(t *testing.T, b tableBackend)) {
	for _, b := range tableBackends() {
		t.Run(b.name, func(t *testing.T) {
			b.available(t)
			fn(t, b)
		})
	}
}

// envOptions tune newTestEnvWith.
type envOptions struct {
	// ttl is the state cache TTL; 0 = time.Nanosecond as in newTestEnv (no caching).
	ttl time.Duration
	// clock replaces the store's clock (nil = real time).
	clock func() time.Time
	// log receives the server's JSON log (nil = discarded).
	log io.Writer
}

// newTestEnvOn is newTestEnv on tbl.
func newTestEnvOn(t *testing.T, tbl store.Table) *testEnv {
	return newTestEnvWith(t, tbl, envOptions{})
}

// newTestEnvWith is newTestEnv on tbl with options.
func newTestEnvWith(t *testing.T, tbl store.Table, o envOptions) *testEnv {
	t.Helper()
	dir := t.TempDir()
	st := store.New(tbl)
	if o.clock != nil {
		st = st.WithClock(o.clock)
	}
	t.Cleanup(func() { st.Close() })
	signer, err := urlsign.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, store: st, signer: signer}
	mux := http.NewServeMux()
	e.http = httptest.NewServer(mux)
	t.Cleanup(e.http.Close)
	e.blobs, err = blob.NewLocal(filepath.Join(dir, "blobs"), signer, e.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	w := o.log
	if w == nil {
		w = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(w, nil))
	e.pipe = publish.NewPipeline(st, e.blobs, log)
	ttl := o.ttl
	if ttl == 0 {
		ttl = time.Nanosecond
	}
	e.srv = New(Deps{Store: st, Blobs: e.blobs, URLs: cdn.Local{Signer: signer, BaseURL: e.http.URL}, Pipeline: e.pipe, Log: log,
		LocalSigner: signer, LocalBlobs: e.blobs}, Config{StateTTL: ttl})
	mux.Handle("/", e.srv.Handler())
	e.admin = store.NewKeySecret()
	if _, err := st.CreateKey(context.Background(), e.admin, "test admin", []string{"*"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// peerServer starts another server on the same store and blobs, the way another Lambda
// instance or otad process shares the table: it has its own state cache of ttl.
func (e *testEnv) peerServer(ttl time.Duration) *httptest.Server {
	e.t.Helper()
	srv := New(Deps{Store: e.store, Blobs: e.blobs, URLs: cdn.Local{Signer: e.signer, BaseURL: e.http.URL}, Pipeline: e.pipe,
		Log: e.srv.Log, LocalSigner: e.signer, LocalBlobs: e.blobs}, Config{StateTTL: ttl})
	h := httptest.NewServer(srv.Handler())
	e.t.Cleanup(h.Close)
	return h
}

// envClock is real time plus an adjustable offset (failure memory expiry).
type envClock struct{ off atomic.Int64 }

func (c *envClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *envClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// logBuffer is a log sink safe for concurrent handlers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
