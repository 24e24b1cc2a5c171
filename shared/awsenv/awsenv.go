// Package awsenv builds the handlers' dependencies on AWS: DynamoDB for metadata, S3
// for objects, CloudFront signed URLs (or S3 presigned GETs when no CDN is set up)
// for downloads. The Lambdas call Load; otad calls Deps with its own Options when it
// runs against AWS (or emulators) instead of its embedded storage.
//
// The AWS configuration comes from the environment alone (shared/awsconf: region,
// credentials, and endpoints only from the SDK's standard variables
// AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SSM or
// AWS_ENDPOINT_URL), so the same binary runs on AWS, LocalStack and local emulators,
// and the Lambdas do not link the SDK's config package.
package awsenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/awsconf"
	"github.com/otakit/ota/shared/blob/s3blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/cdn/awscdn"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/dynamo"
)

// Environment variables read by FromEnv (template.yaml sets them).
const (
	EnvTable     = "OTA_TABLE"      // DynamoDB table name (required)
	EnvBucket    = "OTA_BUCKET"     // S3 bucket name (required)
	EnvCDNDomain = "OTA_CDN_DOMAIN" // CloudFront domain (or alternate domain name); empty: S3 presigned GETs
	// EnvCDNKeySSM names the SSM SecureString holding the CloudFront key pair id and
	// private key together as JSON (CDNKey): what template.yaml sets.
	EnvCDNKeySSM = "OTA_CDN_KEY_PARAMETER"
	// The older, separate form: a key pair id here and a parameter (or the PEM itself)
	// holding only the private key. Still read; rotating it cannot avoid a window in
	// which id and key disagree.
	EnvCDNKeyPairID     = "OTA_CDN_KEY_PAIR_ID"
	EnvCDNPrivateKey    = "OTA_CDN_PRIVATE_KEY"        // PEM itself (tests, LocalStack)
	EnvCDNPrivateKeySSM = "OTA_CDN_PRIVATE_KEY_SECRET" // older name of EnvCDNKeySSM
	EnvPublicURL        = "OTA_PUBLIC_URL"             // external base URL of the API (optional)
	EnvDefaultApp       = "OTA_DEFAULT_APP"            // app served by bare seed routes (optional)
	EnvStateTTL         = "OTA_STATE_TTL"              // channel state cache ("5s" or seconds)
	EnvURLTTL           = "OTA_URL_TTL"                // signed download URL lifetime ("1h" or seconds)
	EnvPatchBases       = "OTA_PATCH_BASES"            // patches are precomputed from the last K releases
	EnvLogLevel         = "OTA_LOG_LEVEL"              // debug, info (default), warn, error
	EnvAccessLogEvery   = "OTA_ACCESS_LOG_EVERY"       // log one request line in N (default 100; 1 = all)
	EnvCapgoURLTTL      = "OTA_CAPGO_URL_TTL"          // lifetime of the URLs in Capgo update answers ("168h")

	// defaultAccessLogEvery samples access lines on Lambda: the platform's REPORT line
	// already counts every invocation, and CloudWatch bills each ingested line.
	defaultAccessLogEvery = 100

	envLambdaLogLevel     = "AWS_LAMBDA_LOG_LEVEL" // set by Lambda's advanced logging controls
	maxPatchBases         = 50
	maxDuration           = 7 * 24 * time.Hour // S3 presigned URLs cap at 7 days
	cdnPrivateKeyMaxBytes = 16 << 10

	// maxCapgoURLTTL: CloudFront URLs may outlive S3's 7 days (S3 presigned ones are
	// capped when signed), for Android download jobs that wait longer for a network.
	maxCapgoURLTTL = 30 * 24 * time.Hour
)

// Options is everything Deps and Config need. FromEnv fills it from the Lambda
// environment; otad fills it from its flags.
type Options struct {
	Table  string
	Bucket string

	// CDNDomain enables CloudFront signed download URLs (needs a key: CDNKeyParameter,
	// or CDNKeyPairID with CDNPrivateKeyPEM). Empty: downloads are S3 presigned GETs
	// (LocalStack, first deploys).
	CDNDomain string
	// CDNKeyParameter names an SSM SecureString holding the key as JSON (CDNKey), read
	// by Deps and again every CDNKeyRefresh (0: 5 minutes) so a rotated key reaches
	// warm instances. A bare PEM there is read with CDNKeyPairID (the older form).
	CDNKeyParameter string
	CDNKeyRefresh   time.Duration
	// CDNKeyPairID with CDNPrivateKeyPEM is a fixed key (otad, tests).
	CDNKeyPairID     string
	CDNPrivateKeyPEM string

	PublicURL  string
	DefaultApp string
	StateTTL   time.Duration // 0: api default
	URLTTL     time.Duration // 0: api default
	PatchBases int           // 0: pipeline default; negative: no precomputed patches
	// AccessLogEvery logs one request line in N (server errors always); 0 or 1: all.
	AccessLogEvery int
	// CapgoURLTTL is the lifetime of the URLs in Capgo update answers; 0: api default.
	CapgoURLTTL time.Duration

	Log *slog.Logger

	// DynamoDB and S3 override the clients built from the environment (tests, otad
	// with custom options).
	DynamoDB *dynamodb.Client
	S3       *s3.Client
	// AWS is the configuration for the clients not given above and for SSM; nil:
	// awsconf.Load() (the process environment).
	AWS *awsconf.Config
}

// Load reads the environment and builds the dependencies and handler configuration:
// what every Lambda's main calls once per cold start. It also sets Go's soft memory
// limit from the function's memory size (MemoryLimit).
func Load(ctx context.Context) (api.Deps, api.Config, error) {
	o, err := FromEnv(os.Getenv)
	if err != nil {
		return api.Deps{}, api.Config{}, err
	}
	if n, ok := MemoryLimit(os.Getenv); ok {
		debug.SetMemoryLimit(n)
		o.Log.Debug("Go memory limit set from the function's memory size", "bytes", n)
	}
	d, err := Deps(ctx, o)
	if err != nil {
		return api.Deps{}, api.Config{}, err
	}
	return d, o.Config(), nil
}

// FromEnv reads Options from environment variables (getenv is os.Getenv outside
// tests). The logger writes JSON lines to stdout, which Lambda ships to CloudWatch.
func FromEnv(getenv func(string) string) (Options, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	o := Options{
		Table:            get(EnvTable),
		Bucket:           get(EnvBucket),
		CDNDomain:        get(EnvCDNDomain),
		CDNKeyParameter:  cmp.Or(get(EnvCDNKeySSM), get(EnvCDNPrivateKeySSM)),
		CDNKeyPairID:     get(EnvCDNKeyPairID),
		CDNPrivateKeyPEM: getenv(EnvCDNPrivateKey),
		PublicURL:        get(EnvPublicURL),
		DefaultApp:       get(EnvDefaultApp),
	}
	var errs []error
	var err error
	if o.StateTTL, err = duration(get(EnvStateTTL)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvStateTTL, err))
	}
	if o.URLTTL, err = duration(get(EnvURLTTL)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvURLTTL, err))
	}
	if o.CapgoURLTTL, err = durationUpTo(get(EnvCapgoURLTTL), maxCapgoURLTTL); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvCapgoURLTTL, err))
	}
	if v := get(EnvPatchBases); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxPatchBases {
			errs = append(errs, fmt.Errorf("%s: want a whole number from 0 to %d, got %q", EnvPatchBases, maxPatchBases, v))
		}
		o.PatchBases = n
		if n == 0 {
			o.PatchBases = -1 // "0" in the environment turns patches off
		}
	}
	o.AccessLogEvery = defaultAccessLogEvery
	if v := get(EnvAccessLogEvery); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: want a whole number of at least 1, got %q", EnvAccessLogEvery, v))
		}
		o.AccessLogEvery = n
	}
	level := get(EnvLogLevel)
	if level == "" {
		level = get(envLambdaLogLevel)
	}
	lv, err := logLevel(level)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", EnvLogLevel, err))
	}
	o.Log = slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: lv}))
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// Validate checks that the options are complete and consistent.
func (o Options) Validate() error {
	var errs []error
	if o.Table == "" {
		errs = append(errs, fmt.Errorf("no DynamoDB table (%s)", EnvTable))
	}
	if o.Bucket == "" {
		errs = append(errs, fmt.Errorf("no S3 bucket (%s)", EnvBucket))
	}
	if o.CDNDomain != "" {
		if strings.Contains(o.CDNDomain, "/") {
			errs = append(errs, fmt.Errorf("%s must be a bare domain name like d111111abcdef8.cloudfront.net, got %q", EnvCDNDomain, o.CDNDomain))
		}
		switch {
		case o.CDNPrivateKeyPEM != "" && o.CDNKeyPairID == "":
			errs = append(errs, fmt.Errorf("%s is set but %s is not", EnvCDNPrivateKey, EnvCDNKeyPairID))
		case o.CDNPrivateKeyPEM == "" && o.CDNKeyParameter == "":
			errs = append(errs, fmt.Errorf("%s is set but %s is not", EnvCDNDomain, EnvCDNKeySSM))
		}
	}
	if o.PublicURL != "" && !strings.HasPrefix(o.PublicURL, "https://") && !strings.HasPrefix(o.PublicURL, "http://") {
		errs = append(errs, fmt.Errorf("%s must be an absolute http(s) URL, got %q", EnvPublicURL, o.PublicURL))
	}
	return errors.Join(errs...)
}

// Config is the handler configuration the options imply.
func (o Options) Config() api.Config {
	return api.Config{
		PublicURL:      strings.TrimRight(o.PublicURL, "/"),
		DefaultApp:     o.DefaultApp,
		URLTTL:         o.URLTTL,
		StateTTL:       o.StateTTL,
		AccessLogEvery: o.AccessLogEvery,
		CapgoURLTTL:    o.CapgoURLTTL,
	}
}

// Deps builds the store, blob store, URL signer and publish pipeline. It makes no
// AWS call except reading the CloudFront key from SSM when configured so; a missing
// table or bucket shows up on the first request, not at start.
func Deps(ctx context.Context, o Options) (api.Deps, error) {
	if err := o.Validate(); err != nil {
		return api.Deps{}, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	awsConf := func() (awsconf.Config, error) {
		if o.AWS != nil {
			return *o.AWS, nil
		}
		c, err := awsconf.Load()
		if err != nil {
			return c, fmt.Errorf("aws configuration: %w", err)
		}
		o.AWS = &c
		return c, nil
	}
	ddb := o.DynamoDB
	if ddb == nil {
		c, err := awsConf()
		if err != nil {
			return api.Deps{}, err
		}
		ddb = c.DynamoDB()
	}
	s3c := o.S3
	if s3c == nil {
		c, err := awsConf()
		if err != nil {
			return api.Deps{}, err
		}
		s3c = c.S3()
	}
	presign := s3.NewPresignClient(s3c)
	st := store.New(dynamo.New(ddb, o.Table))
	blobs := s3blob.New(s3c, presign, o.Bucket)
	urls, err := downloadURLs(ctx, o, presign, log, awsConf)
	if err != nil {
		return api.Deps{}, err
	}
	pipe := publish.NewPipeline(st, blobs, log)
	switch {
	case o.PatchBases > 0:
		pipe.PatchBases = o.PatchBases
	case o.PatchBases < 0:
		pipe.PatchBases = 0
	}
	return api.Deps{Store: st, Blobs: blobs, URLs: urls, Pipeline: pipe, Log: log}, nil
}

// downloadURLs picks CloudFront signed URLs when a CDN domain is configured, else S3
// presigned GETs.
func downloadURLs(ctx context.Context, o Options, presign *s3.PresignClient, log *slog.Logger, awsConf func() (awsconf.Config, error)) (cdn.URLs, error) {
	s3urls := &awscdn.S3Presign{Presign: presign, Bucket: o.Bucket}
	if o.CDNDomain == "" {
		return s3urls, nil
	}
	if o.CDNPrivateKeyPEM != "" {
		return cloudFront(o.CDNDomain, CDNKey{KeyPairID: o.CDNKeyPairID, PrivateKeyPEM: o.CDNPrivateKeyPEM})
	}
	cfg, err := awsConf()
	if err != nil {
		return nil, err
	}
	load := func(ctx context.Context) (*awscdn.CloudFront, error) {
		v, err := ssmGetParameter(ctx, cfg, o.CDNKeyParameter)
		if err != nil {
			return nil, fmt.Errorf("read CloudFront key: %w", err)
		}
		k, err := ParseCDNKey(v, o.CDNKeyPairID)
		if err != nil {
			return nil, fmt.Errorf("CloudFront key %s: %w", o.CDNKeyParameter, err)
		}
		return cloudFront(o.CDNDomain, k)
	}
	return newRefreshingCloudFront(ctx, load, s3urls, o.CDNKeyRefresh, log)
}

func cloudFront(domain string, k CDNKey) (*awscdn.CloudFront, error) {
	if len(k.PrivateKeyPEM) > cdnPrivateKeyMaxBytes {
		return nil, fmt.Errorf("CloudFront private key: %d bytes is not a PEM key", len(k.PrivateKeyPEM))
	}
	s, err := awscdn.NewCloudFront(k.KeyPairID, domain, []byte(k.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("CloudFront signer: %w", err)
	}
	return s, nil
}

// MemoryLimit is Go's soft memory limit for a Lambda function: 90% of its memory
// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB, set by Lambda), leaving the rest to
// what the Go runtime does not count. False when GOMEMLIMIT is set (the runtime
// already applied it) or outside Lambda.
func MemoryLimit(getenv func(string) string) (int64, bool) {
	if strings.TrimSpace(getenv("GOMEMLIMIT")) != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(strings.TrimSpace(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")), 10, 64)
	if err != nil || mb < 128 || mb > 10240 { // Lambda's range
		return 0, false
	}
	return mb * (1 << 20) * 9 / 10, true
}

// duration accepts Go durations ("90s", "1h") or whole seconds ("300").
func duration(v string) (time.Duration, error) { return durationUpTo(v, maxDuration) }

// durationUpTo reads a duration ("5s", "1h") or whole seconds, from 0 to limit.
func durationUpTo(v string, limit time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseInt(v, 10, 64)
		if nerr != nil {
			return 0, fmt.Errorf("want a duration like 5s or 1h, or whole seconds, got %q", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > limit {
		return 0, fmt.Errorf("%s is out of range (0 to %s)", d, limit)
	}
	return d, nil
}

func logLevel(v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("unknown log level %q", v)
}
