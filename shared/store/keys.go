package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// APIKey is a management credential. Only the SHA-256 of the secret is stored.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Hash      string    `json:"hash,omitempty"`
	Prefix    string    `json:"prefix"` // first characters of the secret, to recognise it
	Apps      []string  `json:"apps"`   // app ids the key may act on; "*" = all
	Admin     bool      `json:"admin"`  // may create apps and manage keys
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Allows reports whether the key may act on app.
func (k APIKey) Allows(app string) bool {
	return k.RevokedAt.IsZero() && (slices.Contains(k.Apps, "*") || slices.Contains(k.Apps, app))
}

// KeyPrefix starts every secret, so leaked keys are easy to grep for.
const KeyPrefix = "ota_"

// HashKey is how secrets are stored and looked up.
func HashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// NewKeySecret returns a fresh random secret.
func NewKeySecret() string { return KeyPrefix + randHex(24) }

// CreateKey stores a key for secret (only its hash) and returns the record.
func (s *Store) CreateKey(ctx context.Context, secret, name string, apps []string, admin bool, by string) (APIKey, error) {
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) < len(KeyPrefix)+32 {
		return APIKey{}, fmt.Errorf("key secret must start with %q and have at least 32 random characters", KeyPrefix)
	}
	k := APIKey{ID: "key_" + randHex(6), Name: name, Hash: HashKey(secret), Prefix: secret[:len(KeyPrefix)+6],
		Apps: apps, Admin: admin, CreatedAt: s.now().UTC(), CreatedBy: by}
	_, err := putDoc(ctx, s.t, "KEYS", k.Hash, k, Cond{Kind: IfAbsent}, 0)
	if errors.Is(err, ErrConflict) {
		return APIKey{}, fmt.Errorf("key: %w", ErrExists)
	}
	return k, err
}

// LookupKey finds a live key by its secret; ErrNotFound for unknown or revoked keys.
func (s *Store) LookupKey(ctx context.Context, secret string) (APIKey, error) {
	d, err := getDoc[APIKey](ctx, s.t, "KEYS", HashKey(secret))
	if err != nil {
		return APIKey{}, err
	}
	if !d.V.RevokedAt.IsZero() {
		return APIKey{}, ErrNotFound
	}
	return d.V, nil
}

// ListKeys returns every key record (hashes only), oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]APIKey, error) {
	ks, err := queryDocs[APIKey](ctx, s.t, Query{PK: "KEYS"})
	slices.SortFunc(ks, func(a, b APIKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return ks, err
}

// RevokeKey marks a key revoked by id.
func (s *Store) RevokeKey(ctx context.Context, id string) (APIKey, error) {
	ks, err := s.ListKeys(ctx)
	if err != nil {
		return APIKey{}, err
	}
	for _, k := range ks {
		if k.ID == id {
			return update(ctx, s.t, "KEYS", k.Hash, 0, func(k *APIKey, ok bool) error {
				if !ok {
					return ErrNotFound
				}
				if k.RevokedAt.IsZero() {
					k.RevokedAt = s.now().UTC()
				}
				return nil
			})
		}
	}
	return APIKey{}, fmt.Errorf("key %s: %w", id, ErrNotFound)
}
