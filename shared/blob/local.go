package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otakit/ota/shared/urlsign"
)

// Local stores objects as files under a folder. Uploads are presigned to otad's own
// PUT route (UploadPath) with an HMAC signature that binds the size and SHA-256, the
// way S3 binds x-amz-checksum-sha256.
type Local struct {
	dir     string
	tmp     string // where writes are staged before the rename
	signer  *urlsign.Signer
	baseURL string // public base URL of otad, e.g. http://127.0.0.1:8080
}

// UploadPath is the otad route prefix that receives presigned uploads.
const UploadPath = "/blob/"

// LocalOption configures NewLocal.
type LocalOption func(*Local)

// WithTempDir stages writes in dir instead of <dir>/.tmp, so that otad keeps every
// temp file in the one folder it sweeps. dir must be on the objects' file system:
// a finished write is renamed into place.
func WithTempDir(dir string) LocalOption { return func(l *Local) { l.tmp = dir } }

// NewLocal opens (creating) dir.
func NewLocal(dir string, signer *urlsign.Signer, baseURL string, opts ...LocalOption) (*Local, error) {
	l := &Local{dir: dir, tmp: filepath.Join(dir, ".tmp"), signer: signer, baseURL: strings.TrimRight(baseURL, "/")}
	for _, o := range opts {
		o(l)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("blob dir: %w", err)
	}
	if err := os.MkdirAll(l.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("blob temp dir: %w", err)
	}
	return l, nil
}

func (l *Local) path(key string) (string, error) {
	if !ValidKey(key) {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// Put writes to a temp file and renames it into place. contentType is not kept: a
// folder has no metadata beside the file, so reads derive it from the key.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	_, err := l.put(ctx, key, r, size, "")
	return err
}

// ErrChecksum: uploaded bytes do not match the declared SHA-256 or size.
var ErrChecksum = errors.New("uploaded bytes do not match the declared sha256/size")

// put honours ctx as S3 does: canceled before the rename, nothing is stored.
func (l *Local) put(ctx context.Context, key string, r io.Reader, size int64, wantSHA string) (string, error) {
	p, err := l.path(key)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(l.tmp, "put-*")
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	src := r
	if size >= 0 {
		src = io.LimitReader(r, size+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if (size >= 0 && n != size) || (wantSHA != "" && sum != wantSHA) {
		return "", ErrChecksum
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	return sum, nil
}

// Open reads key from offset off.
func (l *Local) Open(ctx context.Context, key string, off int64) (io.ReadCloser, Info, error) {
	if off < 0 { // as on S3: a file would seek before its start
		return nil, Info{}, fmt.Errorf("open %s: negative offset %d", key, off)
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, fmt.Errorf("open %s: %w", key, err)
	}
	f, info, err := l.File(key)
	if err != nil {
		return nil, info, err
	}
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, info, fmt.Errorf("open %s: %w", key, err)
		}
	}
	return f, info, nil
}

// File opens key for http.ServeContent (Range requests).
func (l *Local) File(key string) (*os.File, Info, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return f, Info{Size: st.Size(), ContentType: ContentType(key), ModTime: st.ModTime()}, nil
}

// Stat describes key.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	f, info, err := l.File(key)
	if err == nil {
		f.Close()
	}
	return info, err
}

// Delete removes key; deleting a missing key is not an error.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List returns keys under prefix in byte order, as S3 does (a walk orders by folder:
// "a/b" before "a-b").
func (l *Local) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil { // a big folder takes a while
			return err
		}
		rel, _ := filepath.Rel(l.dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".tmp" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(rel, prefix) {
			keys = append(keys, rel)
		}
		return nil
	})
	slices.Sort(keys)
	return keys, err
}

func uploadBinding(sha256hex string, size int64) string {
	return sha256hex + ":" + strconv.FormatInt(size, 10)
}

// PresignPut returns a signed PUT to otad's upload route.
func (l *Local) PresignPut(ctx context.Context, key, sha256hex string, size int64, ttl time.Duration) (Upload, error) {
	if !ValidKey(key) {
		return Upload{}, fmt.Errorf("invalid object key %q", key)
	}
	// Refused here, as on S3, rather than as a URL no upload could satisfy.
	if d, err := hex.DecodeString(sha256hex); err != nil || len(d) != sha256.Size {
		return Upload{}, fmt.Errorf("presign %s: bad sha256 %q", key, sha256hex)
	}
	if size < 0 {
		return Upload{}, fmt.Errorf("presign %s: negative size", key)
	}
	p := UploadPath + key
	q, exp := l.signer.Sign("PUT", p, uploadBinding(sha256hex, size), ttl)
	return Upload{Method: "PUT", URL: l.baseURL + p + "?" + q + "&sha256=" + sha256hex + "&size=" + strconv.FormatInt(size, 10),
		Headers: map[string]string{"Content-Type": "application/zip"}, Expires: exp}, nil
}

// SignedUpload is a presigned upload whose signature checked out: what it may write.
type SignedUpload struct {
	Key    string
	SHA256 string
	Size   int64
}

// VerifyUpload checks a presigned upload's signature (method PUT, path, query) and
// returns what it was signed for; nothing is read or written yet, so the caller can
// still refuse it (an upload URL of a release that no longer wants these bytes).
func (l *Local) VerifyUpload(urlPath string, q map[string][]string) (SignedUpload, error) {
	key, ok := strings.CutPrefix(urlPath, UploadPath)
	if !ok || !ValidKey(key) {
		return SignedUpload{}, fmt.Errorf("invalid upload path")
	}
	sum := firstOf(q["sha256"])
	size, err := strconv.ParseInt(firstOf(q["size"]), 10, 64)
	if err != nil || len(sum) != 64 {
		return SignedUpload{}, urlsign.ErrNoSig
	}
	if err := l.signer.Verify("PUT", urlPath, uploadBinding(sum, size), q); err != nil {
		return SignedUpload{}, err
	}
	return SignedUpload{Key: key, SHA256: sum, Size: size}, nil
}

// StoreUpload stores body under u.Key if its size and SHA-256 are what was signed
// (else ErrChecksum and nothing is stored).
func (l *Local) StoreUpload(ctx context.Context, u SignedUpload, body io.Reader) error {
	_, err := l.put(ctx, u.Key, body, u.Size, u.SHA256)
	return err
}

// ReceiveUpload is VerifyUpload then StoreUpload.
func (l *Local) ReceiveUpload(ctx context.Context, urlPath string, q map[string][]string, body io.Reader) (key string, err error) {
	u, err := l.VerifyUpload(urlPath, q)
	if err != nil {
		return "", err
	}
	if err := l.StoreUpload(ctx, u, body); err != nil {
		return "", err
	}
	return u.Key, nil
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// SweepTemp removes upload temp files older than age (0: all of them): what a crash
// left behind (a Put removes its own temp file on every path). It returns how many
// it removed.
func (l *Local) SweepTemp(age time.Duration) (int, error) {
	dir := l.tmp
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", dir, err)
	}
	cutoff := time.Now().Add(-age)
	n := 0
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "put-") {
			continue
		}
		info, err := e.Info()
		if err != nil || (age > 0 && !info.ModTime().Before(cutoff)) {
			continue // gone meanwhile, or an upload in progress
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
