package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/otakit/ota/shared/blob"
)

// Downloads: every route that hands a device object bytes (seed zips, Flux chunks and
// patches, native-update bundles, check-device snapshots) goes through serveObject or
// redirectNoStore, so one rule decides where the bytes come from.
//
// A Lambda response is capped at 6 MB (about 4.4 MB of binary once base64-encoded),
// so on AWS no object byte passes through a function: the route answers 302 to a
// short-lived CloudFront signed URL (or an S3 presigned GET without a CDN). Every
// client this server speaks to follows that redirect (docs/protocols.md, "Downloads
// and redirects"). otad on its own folder has no CDN in front of it and streams.

// immutableCache marks version-pinned or content-addressed objects.
const immutableCache = "public, max-age=31536000, immutable"

// servesBytes reports whether this process streams object bytes itself (otad on its
// local folder) rather than redirecting to a signed URL.
func (s *Server) servesBytes() bool { return s.LocalBlobs != nil }

// download describes an object a route hands out.
type download struct {
	key          string
	contentType  string
	etag         string // quoted; "" for none
	cacheControl string // of the bytes (the redirect itself is never cached)
}

// serveObject answers with the object's bytes (Range, If-None-Match and HEAD
// supported) or, where this process does not serve bytes, a redirect to a signed
// URL. Errors before the first byte are returned for the caller to answer in its
// protocol's form (blob.ErrNotFound for a missing object).
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, d download) error {
	if !s.servesBytes() {
		u, err := s.URLs.URL(r.Context(), d.key, s.cfg.URLTTL)
		if err != nil {
			return err
		}
		redirectNoStore(w, u)
		return nil
	}
	info, err := s.Blobs.Stat(r.Context(), d.key)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", d.contentType)
	h.Set("Accept-Ranges", "bytes")
	if d.etag != "" {
		h.Set("ETag", d.etag)
	}
	if d.cacheControl != "" {
		h.Set("Cache-Control", d.cacheControl)
	}
	rs := &blobSeeker{ctx: r.Context(), st: s.Blobs, key: d.key, size: info.Size}
	defer rs.Close()
	// ServeContent writes the exact Content-Length, answers 206 to Range and 304 to a
	// matching If-None-Match, and copies with a fixed buffer: the object is never held
	// in memory.
	http.ServeContent(w, r, "", time.Time{}, rs)
	return nil
}

// redirectNoStore answers 302 to a short-lived signed URL; the redirect itself must
// not be cached (the URL expires, the object behind it does not).
func redirectNoStore(w http.ResponseWriter, u string) {
	w.Header().Set("Location", u)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// blobSeeker is an io.ReadSeeker over a stored object: Seek only moves the offset,
// the next Read opens the object there (so it works the same on the local folder and
// on S3).
type blobSeeker struct {
	ctx  context.Context
	st   blob.Store
	key  string
	size int64
	off  int64
	rc   io.ReadCloser
}

func (b *blobSeeker) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if b.rc == nil {
		rc, _, err := b.st.Open(b.ctx, b.key, b.off)
		if err != nil {
			return 0, err
		}
		b.rc = rc
	}
	n, err := b.rc.Read(p)
	b.off += int64(n)
	return n, err
}

func (b *blobSeeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.off + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return 0, errors.New("blobSeeker: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("blobSeeker: negative position")
	}
	if abs != b.off && b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
	b.off = abs
	return abs, nil
}

func (b *blobSeeker) Close() error {
	if b.rc != nil {
		err := b.rc.Close()
		b.rc = nil
		return err
	}
	return nil
}
