package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/bundle"
)

// manifestCache keeps recently served per-file manifests in memory. They never
// change (a version is immutable), so an update answer costs no object read once
// the manifest is warm.
type manifestCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*bundle.Manifest
}

func newManifestCache(max int) *manifestCache {
	return &manifestCache{max: max, m: map[string]*bundle.Manifest{}}
}

// manifest returns a release's per-file manifest (blob.ErrNotFound when it has none).
func (s *Server) manifest(ctx context.Context, app, version string) (*bundle.Manifest, error) {
	key := blob.ManifestKey(app, version)
	c := s.manifests
	c.mu.Lock()
	m, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return m, nil
	}
	rc, _, err := s.Blobs.Open(ctx, key, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m = &bundle.Manifest{}
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(m); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", key, err)
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry: cheap and good enough here
			delete(c.m, k)
			break
		}
	}
	c.m[key] = m
	c.mu.Unlock()
	return m, nil
}
