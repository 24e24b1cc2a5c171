// Package api holds every HTTP handler: one file per client protocol adapter, the
// management API (manage.go) and the one route table (routes.go) that otad, the
// Lambdas and template.yaml all follow.
package api

import (
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/urlsign"
)

// DefaultCapgoURLTTL is how long Capgo's own backend signs bundle URLs (604800 s).
const DefaultCapgoURLTTL = 7 * 24 * time.Hour

// Config tunes the handlers.
type Config struct {
	// PublicURL is the externally visible base URL of the API (absolute URLs in answers
	// are built from it). Empty: derived from each request's Host.
	PublicURL string
	// DefaultApp serves clients that cannot name their app (bare seed manifest routes).
	DefaultApp string
	// URLTTL is the lifetime of signed download URLs handed to devices.
	URLTTL time.Duration
	// CapgoURLTTL is the lifetime of the URLs in Capgo update answers (default 7
	// days, as Capgo signs them): the Android plugin hands them to a background job
	// that waits for connectivity as long as it takes and never asks for new ones.
	// S3 presigned URLs are capped at 7 days; CloudFront and otad URLs are not.
	CapgoURLTTL time.Duration
	// StateTTL is how long channel state is cached per process: a channel change
	// reaches devices at most this late.
	StateTTL time.Duration
	// MaxJSONBody, when set, lowers every JSON body limit to it; 0 leaves each
	// route's own limit (docs/protocols.md, Input limits).
	MaxJSONBody int64
	// MaxUploadBody limits bundle uploads received by otad or inline (Flux).
	MaxUploadBody int64
	// AccessLogEvery logs one request line in N (0 or 1: every request). Server
	// errors are always logged. On Lambda each line is billed CloudWatch ingestion
	// while the platform's own REPORT line already counts every invocation.
	AccessLogEvery int
}

func (c Config) withDefaults() Config {
	if c.URLTTL <= 0 {
		c.URLTTL = time.Hour
	}
	if c.CapgoURLTTL <= 0 {
		c.CapgoURLTTL = DefaultCapgoURLTTL
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 5 * time.Second
	}
	if c.MaxUploadBody <= 0 {
		c.MaxUploadBody = 256 << 20
	}
	return c
}

// Deps are what the handlers need; the Lambdas and otad build them differently.
type Deps struct {
	Store    *store.Store
	Blobs    blob.Store
	URLs     cdn.URLs
	Pipeline *publish.Pipeline
	Log      *slog.Logger
	// Local is set by otad: the signer of its own download/upload URLs and the folder store.
	LocalSigner *urlsign.Signer
	LocalBlobs  *blob.Local
	// PatchInProcess makes this process compute the patches requested for pairs that
	// were not precomputed (otad; implied by LocalBlobs). Off, a request only leaves
	// its marker, whose S3 notification runs the patch function.
	PatchInProcess bool
}

// Server serves every route.
type Server struct {
	Deps
	cfg       Config
	requests  atomic.Uint64 // for access log sampling
	state     *stateCache
	manifests *manifestCache
	patchJobs *patchJobs
}

// New builds a server.
func New(d Deps, cfg Config) *Server {
	cfg = cfg.withDefaults()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{Deps: d, cfg: cfg, state: newStateCache(d.Store, cfg.StateTTL), manifests: newManifestCache(64),
		patchJobs: newPatchJobs()}
}

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// secretInPath matches the Flux key-in-URL prefix and signed-URL signatures, which
// must never reach the logs.
var secretInPath = regexp.MustCompile(`/k/[^/]+`)

func redactPath(p string) string { return secretInPath.ReplaceAllString(p, "/k/REDACTED") }

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware logs each request (path only: query strings carry signatures) and turns
// panics into 500s.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.Log.Error("panic", "path", redactPath(r.URL.Path), "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal", "internal error")
				}
			}
			s.logRequest(r, sw, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

// logRequest writes the access line: always for a server error, else one in
// AccessLogEvery.
func (s *Server) logRequest(r *http.Request, sw *statusWriter, d time.Duration) {
	level := slog.LevelInfo
	if sw.status >= 500 {
		level = slog.LevelError
	} else if every := uint64(max(s.cfg.AccessLogEvery, 1)); s.requests.Add(1)%every != 0 {
		return
	}
	s.Log.Log(r.Context(), level, "request", "method", r.Method, "path", redactPath(r.URL.Path), "status", sw.status,
		"bytes", sw.bytes, "ms", d.Milliseconds())
}

// baseURL is the absolute base for URLs in answers.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
