// Package blob is object storage for bundles, files and patches: a local folder for
// otad, S3 on AWS (subpackage s3blob). Keys are slash-separated and never user-chosen
// beyond validated app ids and versions.
package blob

import (
	"context"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/otakit/ota/shared/fault"
)

// ErrNotFound: no object under the key (kind fault.NotFound: the API answers 404).
var ErrNotFound = fault.New(fault.NotFound, "object not found")

// Info describes a stored object.
type Info struct {
	Size        int64
	ContentType string
	ModTime     time.Time
}

// Upload is a presigned request the CLI sends the bundle bytes with.
type Upload struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"` // must be sent as is (checksum, content length)
	Expires time.Time         `json:"expires"`
}

// Store is the contract both backends implement; package blobtest holds its tests.
type Store interface {
	// Put stores r under key atomically: readers see the old object or the whole new one.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open reads key from byte offset off (for Range requests).
	Open(ctx context.Context, key string, off int64) (io.ReadCloser, Info, error)
	Stat(ctx context.Context, key string) (Info, error)
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// PresignPut lets a client upload exactly size bytes whose SHA-256 is sha256hex.
	PresignPut(ctx context.Context, key, sha256hex string, size int64, ttl time.Duration) (Upload, error)
}

// Object keys, in one place so otad, the Lambdas and the patch step agree.
//
// A bundle's key names one creation of a release, not just its version:
// bundles/<app>/<version>/<nonce>.zip, the nonce drawn when the release record is
// created and kept on it (release.Release.BundleKey). An upload URL is signed for a
// key; once a version is deleted and published again, URLs of the earlier creation
// point at a key no release reads: otad refuses them and, on S3 (where a presigned
// URL cannot be revoked), the patch function drops and deletes what they wrote. A new
// key per creation also keeps CDN caches, which hold bundles as immutable, from
// serving the earlier bytes. Releases created before keep bundles/<app>/<version>.zip.

// BundleKey is where a release's bundle is: stored is the key recorded on the
// release, "" for releases older than per-creation keys.
func BundleKey(app, version, stored string) string {
	if stored != "" {
		return stored
	}
	return "bundles/" + app + "/" + version + ".zip"
}

// NewBundleKey is the key of a release being created; nonce is drawn per creation
// (16 lowercase hex digits).
func NewBundleKey(app, version, nonce string) string {
	return "bundles/" + app + "/" + version + "/" + nonce + ".zip"
}

func ManifestKey(app, version string) string {
	return "manifests/" + app + "/" + version + ".json"
}
func FileKey(sha256hex string) string        { return "files/" + sha256hex[:2] + "/" + sha256hex }
func PatchKey(kind, sha256hex string) string { return "patches/" + kind + "/" + sha256hex }

// ParseBundleKey is the inverse of BundleKey and NewBundleKey (used on uploads and S3
// events): the app and version a bundle key belongs to.
func ParseBundleKey(key string) (app, version string, ok bool) {
	rest, ok := strings.CutPrefix(key, "bundles/")
	if !ok || !strings.HasSuffix(rest, ".zip") {
		return "", "", false
	}
	parts := strings.Split(strings.TrimSuffix(rest, ".zip"), "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") || (len(parts) == 3 && !nonceRe.MatchString(parts[2])) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// nonceRe is what NewBundleKey's callers draw: 8 random bytes in hex.
var nonceRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// ContentType picks the type served for a key: zips as application/zip, everything
// else as bytes (never a Content-Encoding: Capgo's iOS client would decode .br).
func ContentType(key string) string {
	switch path.Ext(key) {
	case ".zip":
		return "application/zip"
	case ".json":
		return "application/json"
	default:
		return "application/octet-stream"
	}
}

// ValidKey rejects keys that could escape a folder or confuse S3.
func ValidKey(key string) bool {
	if key == "" || len(key) > 512 || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.ContainsAny(key, "\x00?#%")
}
