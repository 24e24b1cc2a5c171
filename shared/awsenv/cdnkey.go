package awsenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/cdn/awscdn"
)

// CDNKey is what the CloudFront key parameter holds: the id CloudFront gave the
// public key and the matching private key, stored together as JSON in one
// SecureString so that a function never signs with one key under the other's id.
// Rotating is one put-parameter (docs/aws.md, "Key rotation").
type CDNKey struct {
	KeyPairID     string `json:"key_pair_id"`
	PrivateKeyPEM string `json:"private_key_pem"`
}

// ParseCDNKey reads a key parameter's value: the JSON form, or (the older form) a
// bare PEM private key whose id comes from keyPairID (OTA_CDN_KEY_PAIR_ID).
func ParseCDNKey(value, keyPairID string) (CDNKey, error) {
	v := strings.TrimSpace(value)
	if !strings.HasPrefix(v, "{") {
		if keyPairID == "" {
			return CDNKey{}, fmt.Errorf(`the parameter holds a bare PEM key: store {"key_pair_id": "...", "private_key_pem": "..."} (or set %s)`, EnvCDNKeyPairID)
		}
		return CDNKey{KeyPairID: keyPairID, PrivateKeyPEM: value}, nil
	}
	var k CDNKey
	if err := json.Unmarshal([]byte(v), &k); err != nil {
		return CDNKey{}, fmt.Errorf("key parameter: not JSON: %w", err)
	}
	k.KeyPairID = strings.TrimSpace(k.KeyPairID)
	if k.KeyPairID == "" || strings.TrimSpace(k.PrivateKeyPEM) == "" {
		return CDNKey{}, errors.New(`key parameter: want both "key_pair_id" and "private_key_pem"`)
	}
	return k, nil
}

// Refresh periods of the key read from SSM.
const (
	defaultCDNKeyRefresh = 5 * time.Minute
	cdnKeyRetryAfter     = 30 * time.Second // after a failed refresh
	cdnKeyRefreshTimeout = 2 * time.Second  // a refresh delays one request at most this long
)

// refreshingCloudFront signs with the key the SSM parameter holds and reads the
// parameter again every refresh period, so a rotated key is picked up by warm
// instances too, within a bounded time rather than whenever Lambda recycles them.
// Until the parameter exists (CDN just turned on, key not written yet) it hands out
// S3 presigned GETs instead of failing every request.
type refreshingCloudFront struct {
	load     func(ctx context.Context) (*awscdn.CloudFront, error)
	fallback cdn.URLs
	refresh  time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	cur     *awscdn.CloudFront // nil: no key yet, fallback serves
	next    time.Time          // when to read the parameter again
	loading bool               // one refresh at a time; the others use cur
}

// newRefreshingCloudFront reads the key once (the cold start). A missing parameter
// is logged and served by the fallback; any other failure is returned.
func newRefreshingCloudFront(ctx context.Context, load func(context.Context) (*awscdn.CloudFront, error),
	fallback cdn.URLs, refresh time.Duration, log *slog.Logger) (*refreshingCloudFront, error) {
	r := &refreshingCloudFront{load: load, fallback: fallback, refresh: refresh, log: log, now: time.Now}
	if r.refresh <= 0 {
		r.refresh = defaultCDNKeyRefresh
	}
	cf, err := load(ctx)
	switch {
	case err == nil:
		r.cur = cf
		r.next = r.now().Add(r.refresh)
	case isParameterNotFound(err) && fallback != nil:
		log.Error("CloudFront key parameter not found: serving S3 presigned URLs until it exists", "err", err)
		r.next = r.now().Add(cdnKeyRetryAfter)
	default:
		return nil, err
	}
	return r, nil
}

// URL signs key with the current CloudFront key, reading the parameter first when
// the refresh period has passed. A failed refresh keeps the current key.
func (r *refreshingCloudFront) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	r.mu.Lock()
	cur := r.cur
	reload := !r.loading && !r.now().Before(r.next)
	if reload {
		r.loading = true
	}
	r.mu.Unlock()
	if reload {
		cur = r.reload(ctx, cur)
	}
	if cur == nil {
		return r.fallback.URL(ctx, key, ttl)
	}
	return cur.URL(ctx, key, ttl)
}

func (r *refreshingCloudFront) reload(ctx context.Context, cur *awscdn.CloudFront) *awscdn.CloudFront {
	// Detached from the request's cancellation (a client hanging up must not count
	// as an SSM failure) but bounded: this request waits for it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cdnKeyRefreshTimeout)
	defer cancel()
	cf, err := r.load(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loading = false
	if err != nil {
		r.log.Warn("CloudFront key refresh failed: keeping the current key", "err", err)
		r.next = r.now().Add(cdnKeyRetryAfter)
		return cur
	}
	if r.cur == nil || r.cur.KeyPairID != cf.KeyPairID {
		r.log.Info("CloudFront signing key loaded", "key_pair_id", cf.KeyPairID)
	}
	r.cur = cf
	r.next = r.now().Add(r.refresh)
	return cf
}
