// Package urlsign makes and checks HMAC-signed, expiring URLs, the otad stand-in for
// CloudFront signed URLs (downloads) and S3 presigned PUTs (uploads).
package urlsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signer signs paths with one secret.
type Signer struct {
	secret []byte
	now    func() time.Time
}

// New returns a signer; secret must be at least 32 bytes.
func New(secret []byte) (*Signer, error) {
	if len(secret) < 32 {
		return nil, errors.New("url signing secret must be at least 32 bytes")
	}
	return &Signer{secret: secret, now: time.Now}, nil
}

// WithClock returns a copy that reads the time from now (tests).
func (s *Signer) WithClock(now func() time.Time) *Signer { c := *s; c.now = now; return &c }

var (
	ErrExpired = errors.New("signed url expired")
	ErrBadSig  = errors.New("signed url signature invalid")
	ErrNoSig   = errors.New("signed url parameters missing")
)

func (s *Signer) mac(method, path, extra string, exp int64) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(method + "\n" + path + "\n" + extra + "\n" + strconv.FormatInt(exp, 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the query string (exp, sig) that authorizes method on path until
// now+ttl; extra binds more data (e.g. the expected sha256 of an upload).
func (s *Signer) Sign(method, path, extra string, ttl time.Duration) (query string, expires time.Time) {
	expires = s.now().Add(ttl).Truncate(time.Second)
	exp := expires.Unix()
	q := url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {s.mac(method, path, extra, exp)}}
	return q.Encode(), expires
}

// Verify checks the exp and sig parameters of q for method and path.
func (s *Signer) Verify(method, path, extra string, q url.Values) error {
	expS, sig := q.Get("exp"), q.Get("sig")
	if expS == "" || sig == "" {
		return ErrNoSig
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return ErrBadSig
	}
	if !hmac.Equal([]byte(sig), []byte(s.mac(strings.ToUpper(method), path, extra, exp))) {
		return ErrBadSig
	}
	if s.now().Unix() >= exp {
		return ErrExpired
	}
	return nil
}
