// Command otad runs every route of the OTA server in one process on embedded
// storage (bbolt + a local folder), or on DynamoDB + S3 when configured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/otakit/ota/shared/api"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log, os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		return
	} else if err != nil {
		log.Error("otad stopped", "err", err)
		os.Exit(1)
	}
}

type options struct {
	data, addr, publicURL, defaultApp string
	table, bucket, cdnDomain          string
	cdnKeyID, cdnKeyFile              string
	memoryLimit                       string
	dataSet                           bool // --data or OTA_DATA given (not the default)
	stateTTL, urlTTL, capgoURLTTL     time.Duration
}

// jobDrainTimeout is how long shutdown waits for a background patch job before it
// cancels it and closes the store.
const jobDrainTimeout = 30 * time.Second

const usageHeader = `otad runs every route of the OTA server in one process, on embedded storage
(bbolt + a local folder) or on DynamoDB + S3.

Memory: otad sets Go's soft memory limit to 1GiB unless GOMEMLIMIT or
--memory-limit says otherwise. Patches are precomputed in the background, one at a
time, within a budget kept below that limit; pairs that would not fit or would not
pay (very large or incompressible files) are skipped and logged.

Environment: OTA_ADMIN_KEY sets the admin key on first start (otherwise one is
generated and printed once). Each flag's default comes from the variable shown
beside it; the flag wins over the variable.

Flags:
`

// flagEnv names the environment variable each flag defaults from, so --help can
// show both (a deployment usually sets variables, a shell usually sets flags).
var flagEnv = map[string]string{
	"data":           "OTA_DATA",
	"addr":           "OTA_ADDR",
	"public-url":     "OTA_PUBLIC_URL",
	"default-app":    "OTA_DEFAULT_APP",
	"dynamodb-table": "OTA_TABLE",
	"s3-bucket":      "OTA_BUCKET",
	"cdn-domain":     "OTA_CDN_DOMAIN",
	"cdn-key-id":     "OTA_CDN_KEY_ID",
	"cdn-key-file":   "OTA_CDN_KEY_FILE",
	"memory-limit":   "GOMEMLIMIT",
}

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("otad", flag.ContinueOnError)
	fs.StringVar(&o.data, "data", envOr("OTA_DATA", "./.ota-data"), "folder `DIR` for the embedded database, bundles and temp files")
	fs.StringVar(&o.addr, "addr", envOr("OTA_ADDR", "127.0.0.1:8080"), "listen address `HOST:PORT`")
	fs.StringVar(&o.publicURL, "public-url", os.Getenv("OTA_PUBLIC_URL"), "externally visible base `URL` (default http://ADDR)")
	fs.StringVar(&o.defaultApp, "default-app", os.Getenv("OTA_DEFAULT_APP"), "`APP` served by routes that cannot name one")
	fs.StringVar(&o.table, "dynamodb-table", os.Getenv("OTA_TABLE"), "use this DynamoDB `TABLE` instead of the embedded database")
	fs.StringVar(&o.bucket, "s3-bucket", os.Getenv("OTA_BUCKET"), "use this S3 `BUCKET` instead of the local folder")
	fs.StringVar(&o.cdnDomain, "cdn-domain", os.Getenv("OTA_CDN_DOMAIN"), "CloudFront `DOMAIN` for signed download URLs (with --s3-bucket)")
	fs.StringVar(&o.cdnKeyID, "cdn-key-id", os.Getenv("OTA_CDN_KEY_ID"), "CloudFront key pair `ID`")
	fs.StringVar(&o.cdnKeyFile, "cdn-key-file", os.Getenv("OTA_CDN_KEY_FILE"), "CloudFront PKCS#8 private key `FILE` (PEM)")
	fs.DurationVar(&o.stateTTL, "state-ttl", 5*time.Second, "how long channel state is cached (max delay of a channel change)")
	fs.DurationVar(&o.urlTTL, "url-ttl", time.Hour, "lifetime of signed download URLs")
	fs.DurationVar(&o.capgoURLTTL, "capgo-url-ttl", api.DefaultCapgoURLTTL, "lifetime of the download URLs in Capgo update answers (Android may start the download days later)")
	fs.StringVar(&o.memoryLimit, "memory-limit", "", "Go soft memory `LIMIT`, e.g. 1GiB, 512MiB or off (default 1GiB, or GOMEMLIMIT when set)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		printFlags(fs.Output(), fs)
	}
	return fs
}

// printFlags is flag.PrintDefaults with GNU-style "--name VALUE (ENV)" lines.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		if env := flagEnv[f.Name]; env != "" {
			line += " (" + env + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, usage)
		if f.DefValue != "" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func run(log *slog.Logger, args []string) error {
	var o options
	fs := newFlagSet(&o)
	err := fs.Parse(args)
	if err != nil {
		return err
	}
	o.dataSet = os.Getenv("OTA_DATA") != ""
	fs.Visit(func(f *flag.Flag) { o.dataSet = o.dataSet || f.Name == "data" })
	// Set before build: the patch budget is derived from it.
	limit, err := applyMemoryLimit(o.memoryLimit, os.Getenv("GOMEMLIMIT"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if o.publicURL == "" {
		o.publicURL = "http://" + ln.Addr().String()
	}
	srv, closeFn, firstKey, err := build(ctx, log, o)
	if err != nil {
		ln.Close()
		return err
	}
	defer closeFn()
	// Runs before closeFn: background patch jobs write to the store.
	defer func() {
		jctx, cancel := context.WithTimeout(context.Background(), jobDrainTimeout)
		defer cancel()
		if err := srv.DrainJobs(jctx); err != nil {
			log.Warn("shutdown: background jobs canceled", "err", err)
		}
	}()

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: maxHeaderBytes}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("otad listening", "addr", ln.Addr().String(), "public_url", o.publicURL, "data", o.data, "memory_limit", limit)
	printQuickstart(o.publicURL, firstKey)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// maxHeaderBytes bounds a request's line and headers (431 above it). Clients send a
// few hundred bytes, signed URLs included; API Gateway allows 10 KiB.
const maxHeaderBytes = 16 << 10

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// printQuickstart tells a new user how to publish a first release. The admin key
// is printed only when otad generated it, once.
func printQuickstart(base, key string) {
	keyLine := "export OTA_API_KEY=<the admin key you set in OTA_ADMIN_KEY or that otad printed on first start>"
	if key != "" {
		keyLine = "export OTA_API_KEY=" + key + "   # shown once: store it now"
	}
	fmt.Fprintf(os.Stdout, `
otad is serving at %[1]s

Publish a first release (in another terminal, from the repository):
  export OTA_SERVER=%[1]s
  %[2]s
  go run ./cmd/ota app create com.example.app
  go run ./cmd/ota release testdata/quickstart/www --app com.example.app --version 1.0.1 --channel production

Then point a Capacitor app whose store build is 1.0.0 (@capgo/capacitor-updater) at it:
  updateUrl  %[1]s/capgo/updates
  statsUrl   %[1]s/capgo/stats
  channelUrl %[1]s/capgo/channel_self
or ask as a device would:
  curl -s -X POST %[1]s/capgo/updates -H 'Content-Type: application/json' \
    -d '{"app_id":"com.example.app","device_id":"00000000-0000-4000-8000-000000000001","platform":"android","version_name":"builtin","version_build":"1.0.0","is_emulator":false,"is_prod":true}'

`, base, keyLine)
}
