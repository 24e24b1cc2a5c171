// Package awscdn makes download URLs on AWS: CloudFront signed URLs (canned policy)
// when a distribution is configured, S3 presigned GETs otherwise (e.g. LocalStack).
package awscdn

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/cloudfront/sign"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
)

// CloudFront signs https://<Domain>/<key> with a canned policy (Expires,
// Signature, Key-Pair-Id), verified by CloudFront against the public key registered
// under KeyPairID in the distribution's trusted key group.
type CloudFront struct {
	KeyPairID string
	Domain    string // e.g. d111111abcdef8.cloudfront.net or a CNAME; scheme optional
	Signer    *sign.URLSigner
}

var (
	_ cdn.URLs = (*CloudFront)(nil)
	_ cdn.URLs = (*S3Presign)(nil)
)

// NewCloudFront builds a signer from a PEM private key: PKCS#8 ("BEGIN PRIVATE
// KEY") or PKCS#1 ("BEGIN RSA PRIVATE KEY", what `openssl genrsa` writes).
func NewCloudFront(keyPairID, domain string, privateKeyPEM []byte) (*CloudFront, error) {
	if keyPairID == "" {
		return nil, errors.New("cloudfront: empty key pair id")
	}
	host := strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(domain, "https://"), "http://"), "/")
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return nil, fmt.Errorf("cloudfront: bad domain %q", domain)
	}
	var signer crypto.Signer
	s, err := sign.LoadPEMPrivKeyPKCS8AsSigner(bytes.NewReader(privateKeyPEM))
	if err == nil {
		signer = s
	} else if k, err1 := sign.LoadPEMPrivKey(bytes.NewReader(privateKeyPEM)); err1 == nil {
		signer = k
	} else {
		return nil, fmt.Errorf("cloudfront: private key: %w", err)
	}
	return &CloudFront{KeyPairID: keyPairID, Domain: host, Signer: sign.NewURLSigner(keyPairID, signer)}, nil
}

// ObjectURL is the unsigned https URL of key on the distribution, its path escaped
// with EscapeKey.
func (c *CloudFront) ObjectURL(key string) (string, error) {
	if !blob.ValidKey(key) {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	host := strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(c.Domain, "https://"), "http://"), "/")
	return "https://" + host + "/" + EscapeKey(key), nil
}

// EscapeKey percent-encodes every byte of each segment of an object key except
// RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~), keeping the '/' between
// segments. url.PathEscape leaves sub-delimiters such as '+', '=', ';' and '@' as
// they are, and an S3 origin behind CloudFront reads a literal '+' as a space:
// versions carry '+' (semver build metadata, 1.0.0+42). Escaping every reserved
// byte also leaves CloudFront, S3 and the signed resource one spelling of the path.
func EscapeKey(key string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key) + len(key)/4)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '/' || unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// URL returns the key's URL signed with a canned policy expiring at now+ttl.
func (c *CloudFront) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if c.Signer == nil {
		return "", errors.New("cloudfront: no signer")
	}
	u, err := c.ObjectURL(key)
	if err != nil {
		return "", err
	}
	signed, err := c.Signer.Sign(u, time.Now().Add(ttl))
	if err != nil {
		return "", fmt.Errorf("cloudfront sign %s: %w", key, err)
	}
	return signed, nil
}

// S3Presign returns presigned S3 GETs, for setups without a distribution.
type S3Presign struct {
	Presign *s3.PresignClient
	Bucket  string
}

// MaxPresignTTL is the longest lifetime SigV4 allows a presigned URL.
const MaxPresignTTL = 7 * 24 * time.Hour

// URL returns a presigned GET for key valid for ttl, at most MaxPresignTTL (S3
// refuses longer ones outright). It also dies with the credentials that signed it:
// a Lambda role's session lasts hours.
func (p *S3Presign) URL(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if !blob.ValidKey(key) {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	ttl = min(ttl, MaxPresignTTL)
	req, err := p.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &p.Bucket, Key: &key},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign get %s: %w", key, err)
	}
	return req.URL, nil
}
