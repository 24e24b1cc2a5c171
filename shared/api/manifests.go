package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
)

// manifestTTL bounds how long a manifest stays cached. A version's manifest never
// changes, but a deleted and re-published version gets a new one, and entries of
// versions nobody asks for any more should not outlive their use.
const manifestTTL = 10 * time.Minute

// manifestCache keeps recently served per-file manifests in memory (LRU, at most max
// entries, each for manifestTTL), so an update answer costs no object read once the
// manifest is warm.
type manifestCache struct {
	c *lru.Cache[string, cachedManifest]
}

type cachedManifest struct {
	m  *bundle.Manifest
	at time.Time
}

func newManifestCache(max int) *manifestCache {
	return &manifestCache{c: newLRU[string, cachedManifest](max)}
}

// manifest returns a release's per-file manifest (blob.ErrNotFound when it has none).
func (s *Server) manifest(ctx context.Context, app, version string) (*bundle.Manifest, error) {
	key := blob.ManifestKey(app, version)
	c := s.manifests.c
	if e, ok := c.Get(key); ok && time.Since(e.at) < manifestTTL {
		return e.m, nil
	}
	now := time.Now()
	rc, _, err := s.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m := &bundle.Manifest{}
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(m); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", key, err)
	}
	c.Add(key, cachedManifest{m: m, at: now})
	return m, nil
}
