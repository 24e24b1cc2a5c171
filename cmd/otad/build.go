package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/otakit/ota/shared/api"
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
	blobs, err := blob.NewLocal(filepath.Join(o.data, "objects"), signer, o.publicURL)
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
	srv := api.New(api.Deps{Store: st, Blobs: blobs, URLs: cdn.Local{Signer: signer, BaseURL: o.publicURL}, Pipeline: pipe, Log: log,
		LocalSigner: signer, LocalBlobs: blobs},
		api.Config{PublicURL: o.publicURL, DefaultApp: o.defaultApp, StateTTL: o.stateTTL, URLTTL: o.urlTTL})
	return srv, func() { st.Close() }, firstKey, nil
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
