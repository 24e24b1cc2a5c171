// Package cdn makes the short-lived download URLs devices fetch bundles, files and
// patches from: CloudFront signed URLs or S3 presigned GETs on AWS (subpackage awscdn),
// HMAC-signed URLs served by otad itself locally.
package cdn

import (
	"context"
	"strings"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/urlsign"
)

// URLs signs download URLs for object keys.
type URLs interface {
	URL(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// DownloadPath is otad's route prefix for signed downloads.
const DownloadPath = "/dl/"

// Local signs URLs to otad's own download route.
type Local struct {
	Signer  *urlsign.Signer
	BaseURL string
}

// URL returns BaseURL/dl/<key>?exp=..&sig=..
func (l Local) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	p := DownloadPath + key
	q, _ := l.Signer.Sign("GET", p, "", ttl)
	return strings.TrimRight(l.BaseURL, "/") + p + "?" + q, nil
}

// VerifyLocal checks a download request's path and query and returns the key.
func VerifyLocal(s *urlsign.Signer, urlPath string, q map[string][]string) (string, error) {
	key, ok := strings.CutPrefix(urlPath, DownloadPath)
	if !ok || !blob.ValidKey(key) {
		return "", urlsign.ErrBadSig
	}
	return key, s.Verify("GET", urlPath, "", q)
}
