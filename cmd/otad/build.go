package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/awsclient"
	"github.com/otakit/ota/shared/awsenv"
	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/urlsign"
)

// build wires storage, URL signing and the handlers. It returns the admin key when
// it generated one on first start (to be printed once).
func build(ctx context.Context, log *slog.Logger, o options) (*api.Server, func(), string, error) {
	cfg := api.Config{PublicURL: o.publicURL, DefaultApp: o.defaultApp, StateTTL: o.stateTTL, URLTTL: o.urlTTL, CapgoURLTTL: o.capgoURLTTL}
	if o.table != "" || o.bucket != "" {
		return buildAWS(ctx, log, o, cfg)
	}
	if err := os.MkdirAll(o.data, 0o750); err != nil {
		return nil, nil, "", fmt.Errorf("data folder: %w", err)
	}
	secret, err := loadOrCreateSecret(filepath.Join(o.data, "url-signing.key"))
	if err != nil {
		return nil, nil, "", err
	}
	signer, err := urlsign.New(secret)
	if err != nil {
		return nil, nil, "", err
	}
	tbl, err := bolt.Open(filepath.Join(o.data, "meta.db"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("open database: %w", err)
	}
	st := store.New(tbl)
	// Every temp file (uploads being received, bundles being checked, patches being
	// made) goes to one folder next to the data, not /tmp (often RAM). Whatever is
	// there now was left by a process that died: the database lock taken above means
	// no other otad uses this data folder, and nothing runs yet. The same holds for
	// objects/.tmp, where uploads were staged before.
	tmpDir := filepath.Join(o.data, "tmp")
	objects := filepath.Join(o.data, "objects")
	n, err := prepareTemp(tmpDir, 0)
	if err == nil {
		err = os.RemoveAll(filepath.Join(objects, ".tmp"))
	}
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	if n > 0 {
		log.Info("removed temp files left by an earlier run", "count", n)
	}
	blobs, err := blob.NewLocal(objects, signer, o.publicURL, blob.WithTempDir(tmpDir))
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	firstKey, err := ensureAdminKey(ctx, st, os.Getenv("OTA_ADMIN_KEY"))
	if err != nil {
		st.Close()
		return nil, nil, "", err
	}
	pipe := publish.NewPipeline(st, blobs, log)
	pipe.TempDir = tmpDir
	// Sole user of the database: a lease left on a release by the earlier run is
	// void, so a publish it interrupted is retried at once, not after the lease.
	pipe.Exclusive = true
	srv := api.New(api.Deps{Store: st, Blobs: blobs, URLs: cdn.Local{Signer: signer, BaseURL: o.publicURL}, Pipeline: pipe, Log: log,
		LocalSigner: signer, LocalBlobs: blobs}, cfg)
	return srv, func() { st.Close() }, firstKey, nil
}

// buildAWS runs the same handlers on DynamoDB + S3 (+ CloudFront signed URLs), for
// self-hosters who want AWS storage without Lambda, and for tests on the emulators.
// Endpoints come from the SDK's standard environment (AWS_ENDPOINT_URL...).
func buildAWS(ctx context.Context, log *slog.Logger, o options, cfg api.Config) (*api.Server, func(), string, error) {
	ao := awsenv.Options{Table: o.table, Bucket: o.bucket, CDNDomain: o.cdnDomain, CDNKeyPairID: o.cdnKeyID,
		PublicURL: o.publicURL, DefaultApp: o.defaultApp, StateTTL: o.stateTTL, URLTTL: o.urlTTL, Log: log}
	if o.cdnKeyFile != "" {
		pem, err := os.ReadFile(o.cdnKeyFile)
		if err != nil {
			return nil, nil, "", fmt.Errorf("read CloudFront key: %w", err)
		}
		ao.CDNPrivateKeyPEM = string(pem)
	}
	// The SDK's full configuration chain (profiles, SSO, ...), not the Lambda-only
	// environment awsenv falls back to.
	var err error
	if ao.DynamoDB, err = awsclient.DynamoDBFromEnv(ctx); err != nil {
		return nil, nil, "", err
	}
	if ao.S3, err = awsclient.S3FromEnv(ctx); err != nil {
		return nil, nil, "", err
	}
	deps, err := awsenv.Deps(ctx, ao)
	if err != nil {
		return nil, nil, "", err
	}
	deps.PatchInProcess = true // no patch function here: compute requested patches in-process
	// With a data folder given, bundle and patch temp copies go there, as with
	// embedded storage (else to the system's, one folder per job). Only stale entries
	// are swept: nothing here guarantees this otad is the folder's only user.
	if o.dataSet {
		deps.Pipeline.TempDir = filepath.Join(o.data, "tmp")
		if n, err := prepareTemp(deps.Pipeline.TempDir, staleTemp); err != nil {
			return nil, nil, "", err
		} else if n > 0 {
			log.Info("removed stale temp files", "count", n)
		}
	}
	firstKey, err := ensureAdminKey(ctx, deps.Store, os.Getenv("OTA_ADMIN_KEY"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w (does table %s exist? create it with: ota infra init --table %s --bucket %s)", err, o.table, o.table, o.bucket)
	}
	return api.New(deps, cfg), func() {}, firstKey, nil
}

// loadOrCreateSecret keeps the URL signing secret across restarts, so signed URLs
// stay valid until they expire.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read signing secret: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write signing secret: %w", err)
	}
	return b, nil
}

// ensureAdminKey creates the first admin key when there is none: OTA_ADMIN_KEY if
// set, else a generated one that is returned to be printed once.
func ensureAdminKey(ctx context.Context, st *store.Store, fromEnv string) (string, error) {
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("list keys: %w", err)
	}
	if len(keys) > 0 {
		return "", nil
	}
	secret, generated := fromEnv, false
	if secret == "" {
		secret, generated = store.NewKeySecret(), true
	}
	if _, err := st.CreateKey(ctx, secret, "first admin key", []string{"*"}, true, "otad"); err != nil {
		return "", fmt.Errorf("create first admin key (OTA_ADMIN_KEY must start with %q and have 32+ characters after it): %w", store.KeyPrefix, err)
	}
	if generated {
		return secret, nil
	}
	return "", nil
}

// staleTemp is the age after which an unchanged temp entry is a leftover where otad
// may not be the folder's only user (on AWS storage).
const staleTemp = time.Hour

// prepareTemp creates the temp folder dir and removes its entries unchanged for age
// (0: all of them).
func prepareTemp(dir string, age time.Duration) (int, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("temp folder: %w", err)
	}
	return publish.SweepTemp(dir, age)
}
