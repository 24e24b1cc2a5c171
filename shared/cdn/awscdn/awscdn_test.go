package awscdn

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/blob/s3blob"
	"github.com/otakit/ota/shared/testenv"
)

// verifyCloudFront checks a canned-policy signed URL the way CloudFront does: the
// query must carry Expires, Signature and Key-Pair-Id; the policy is rebuilt from the
// URL as sent (its path byte for byte) without those parameters and the expiry; the
// signature is CloudFront's base64 ('+' '=' '/' replaced by '-' '_' '~') of an
// RSA-SHA1 PKCS#1 v1.5 signature.
func verifyCloudFront(raw string, keys map[string]*rsa.PublicKey, now time.Time) error {
	base, rawQuery, _ := strings.Cut(raw, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return err
	}
	for _, p := range []string{"Expires", "Signature", "Key-Pair-Id"} {
		if len(q[p]) != 1 {
			return fmt.Errorf("want exactly one %s", p)
		}
	}
	if _, ok := q["Policy"]; ok {
		return errors.New("custom policy, want canned")
	}
	exp, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
	if err != nil {
		return fmt.Errorf("Expires: %w", err)
	}
	pub, ok := keys[q.Get("Key-Pair-Id")]
	if !ok {
		return fmt.Errorf("unknown key pair id %q", q.Get("Key-Pair-Id"))
	}
	sigText := strings.NewReplacer("-", "+", "_", "=", "~", "/").Replace(q.Get("Signature"))
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("Signature: %w", err)
	}
	// The resource is the URL with the signing parameters removed.
	var rest []string
	for _, p := range strings.Split(rawQuery, "&") {
		name, _, _ := strings.Cut(p, "=")
		if name != "Expires" && name != "Signature" && name != "Key-Pair-Id" {
			rest = append(rest, p)
		}
	}
	resource := base
	if len(rest) > 0 {
		resource += "?" + strings.Join(rest, "&")
	}
	policy := `{"Statement":[{"Resource":"` + resource + `","Condition":{"DateLessThan":{"AWS:EpochTime":` +
		strconv.FormatInt(exp, 10) + `}}}]}`
	h := sha1.Sum([]byte(policy))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, h[:], sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if now.Unix() >= exp {
		return errors.New("expired")
	}
	return nil
}

func newKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pkcs8PEM(t *testing.T, k *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func TestCloudFrontSignedURL(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	ctx := context.Background()
	for name, pemBytes := range map[string][]byte{"pkcs8": pkcs8PEM(t, key), "pkcs1": pkcs1PEM(key)} {
		t.Run(name, func(t *testing.T) {
			cf, err := NewCloudFront("K2JCJMDEHXQW5F", "https://d111111abcdef8.cloudfront.net/", pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]*rsa.PublicKey{"K2JCJMDEHXQW5F": &key.PublicKey}
			now := time.Now()
			signed, err := cf.URL(ctx, "bundles/app/1.0.0+build.7.zip", 10*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(signed, "https://d111111abcdef8.cloudfront.net/bundles/app/1.0.0%2Bbuild.7.zip?Expires=") {
				t.Fatalf("URL = %s", signed)
			}
			if err := verifyCloudFront(signed, keys, now); err != nil {
				t.Fatalf("verify: %v (%s)", err, signed)
			}
			u, _ := url.Parse(signed)
			exp, _ := strconv.ParseInt(u.Query().Get("Expires"), 10, 64)
			if d := time.Unix(exp, 0).Sub(now); d < 9*time.Minute || d > 11*time.Minute {
				t.Fatalf("expires in %v", d)
			}
			if err := verifyCloudFront(signed, keys, time.Unix(exp, 0)); err == nil {
				t.Fatal("verified at the expiry time")
			}

			tampered := map[string]string{
				"other key":    strings.Replace(signed, "1.0.0%2Bbuild.7.zip", "1.0.1.zip", 1),
				"literal plus": strings.Replace(signed, "%2B", "+", 1),
				"later expiry": strings.Replace(signed, "Expires="+strconv.FormatInt(exp, 10), "Expires="+strconv.FormatInt(exp+3600, 10), 1),
				"other domain": strings.Replace(signed, "d111111abcdef8", "d222222abcdef8", 1),
				"extra param":  signed + "&x=1",
				"http":         strings.Replace(signed, "https://", "http://", 1),
				"flipped sig":  flipSig(signed),
				"other key id": strings.Replace(signed, "Key-Pair-Id=K2JCJMDEHXQW5F", "Key-Pair-Id=KOTHER", 1),
			}
			for what, bad := range tampered {
				if err := verifyCloudFront(bad, keys, now); err == nil {
					t.Errorf("%s: tampered URL verified: %s", what, bad)
				}
			}
			wrong := map[string]*rsa.PublicKey{"K2JCJMDEHXQW5F": &other.PublicKey}
			if err := verifyCloudFront(signed, wrong, now); err == nil {
				t.Error("verified with the wrong public key")
			}
		})
	}

	if _, err := NewCloudFront("K1", "d1.cloudfront.net", []byte("not a key")); err == nil {
		t.Error("accepted a bad PEM")
	}
	if _, err := NewCloudFront("", "d1.cloudfront.net", pkcs1PEM(key)); err == nil {
		t.Error("accepted an empty key pair id")
	}
	if _, err := NewCloudFront("K1", "d1.cloudfront.net/path?x", pkcs1PEM(key)); err == nil {
		t.Error("accepted a domain with a path")
	}
	cf, _ := NewCloudFront("K1", "d1.cloudfront.net", pkcs1PEM(key))
	if _, err := cf.URL(ctx, "../etc/passwd", time.Minute); err == nil {
		t.Error("signed an invalid key")
	}
	if got, _ := cf.ObjectURL("files/sp/a b.bin"); got != "https://d1.cloudfront.net/files/sp/a%20b.bin" {
		t.Errorf("ObjectURL escapes to %s", got)
	}
}

// Every reserved byte of a key is percent-encoded in the signed path (an S3 origin
// reads a literal '+' as a space), the signature covers that spelling, and the path
// decodes back to the key.
func TestCloudFrontEscapesReservedCharacters(t *testing.T) {
	key := newKey(t)
	cf, err := NewCloudFront("K2JCJMDEHXQW5F", "d111111abcdef8.cloudfront.net", pkcs1PEM(key))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]*rsa.PublicKey{"K2JCJMDEHXQW5F": &key.PublicKey}
	for _, k := range []string{
		"bundles/com.example.app/1.0.0+42.zip",
		"patches/app/1.0.0+build.7/2.0.0-rc.1+exp.sha.5114f85",
		"files/sp/a b.bin",
		"files/x/user@host=1;2,3!$&'()*:[]~_-.bin",
		"manifests/app/caf\u00e9+\u00fc.json",
	} {
		signed, err := cf.URL(context.Background(), k, time.Minute)
		if err != nil {
			t.Fatalf("%q: %v", k, err)
		}
		if err := verifyCloudFront(signed, keys, time.Now()); err != nil {
			t.Errorf("%q: verify: %v (%s)", k, err, signed)
		}
		path, _, _ := strings.Cut(strings.TrimPrefix(signed, "https://d111111abcdef8.cloudfront.net/"), "?")
		for i := 0; i < len(path); i++ {
			if c := path[i]; c != '/' && c != '%' && !unreserved(c) {
				t.Errorf("%q: path %s keeps %q unescaped", k, path, c)
			}
		}
		if got, err := url.PathUnescape(path); err != nil || got != k {
			t.Errorf("%q: path %s decodes to %q (%v)", k, path, got, err)
		}
		if strings.Count(path, "/") != strings.Count(k, "/") {
			t.Errorf("%q: path %s changed the segments", k, path)
		}
	}
}

// S3 presigned GETs (the SDK) and CloudFront URLs spell a key's path the same way.
func TestS3PresignEscapesLikeCloudFront(t *testing.T) {
	client := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
	p := &S3Presign{Presign: s3.NewPresignClient(client), Bucket: "ota-bucket"}
	k := "bundles/app/1.0.0+42 x@=;,!.zip"
	signed, err := p.URL(context.Background(), k, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://ota-bucket.s3.us-east-1.amazonaws.com/" + EscapeKey(k) + "?"; !strings.HasPrefix(signed, want) {
		t.Errorf("presigned URL %s, want prefix %s", signed, want)
	}
}

// flipSig changes one character of the signature to another valid one.
func flipSig(signed string) string {
	i := strings.Index(signed, "Signature=") + len("Signature=") + 5
	c := byte('A')
	if signed[i] == 'A' {
		c = 'B'
	}
	return signed[:i] + string(c) + signed[i+1:]
}

func TestS3PresignGet(t *testing.T) {
	endpoint := testenv.S3Endpoint(t)
	ctx := context.Background()
	client := s3.New(s3.Options{
		Region:       testenv.Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "testsecret", ""),
		UsePathStyle: true,
	})
	bucket := "ota-cdn-" + testenv.RandSuffix()
	if err := s3blob.EnsureBucket(ctx, client, bucket); err != nil {
		t.Fatal(err)
	}
	st := s3blob.New(client, nil, bucket)
	key := "bundles/app/1.0.0.zip"
	if err := st.Put(ctx, key, strings.NewReader("zip bytes"), 9, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = st.Delete(context.Background(), key)
		_, _ = client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: &bucket})
	})

	p := &S3Presign{Presign: s3.NewPresignClient(client), Bucket: bucket}
	signed, err := p.URL(ctx, key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(signed); code != http.StatusOK || body != "zip bytes" {
		t.Fatalf("GET = %d %q", code, body)
	}
	if code, _ := get(strings.Replace(signed, "X-Amz-Expires=60", "X-Amz-Expires=600", 1)); code != http.StatusForbidden {
		t.Fatalf("tampered GET = %d, want 403", code)
	}
	if _, err := p.URL(ctx, "/bad", time.Minute); err == nil {
		t.Fatal("presigned an invalid key")
	}
}

// Capgo answers sign URLs for days: S3 presigned GETs stop at SigV4's 7 days (S3
// refuses a longer X-Amz-Expires), CloudFront canned policies take the full lifetime.
func TestLongLifetimes(t *testing.T) {
	ctx := context.Background()
	client := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
	p := &S3Presign{Presign: s3.NewPresignClient(client), Bucket: "ota-bucket"}
	for ttl, want := range map[time.Duration]string{
		time.Hour:           "3600",
		7 * 24 * time.Hour:  "604800",
		30 * 24 * time.Hour: "604800",
	} {
		signed, err := p.URL(ctx, "bundles/app/1.0.0.zip", ttl)
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(signed)
		if got := u.Query().Get("X-Amz-Expires"); got != want {
			t.Errorf("presign for %v: X-Amz-Expires=%s, want %s", ttl, got, want)
		}
	}

	cf, err := NewCloudFront("K1", "d1.cloudfront.net", pkcs1PEM(newKey(t)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	signed, err := cf.URL(ctx, "bundles/app/1.0.0.zip", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	exp, _ := strconv.ParseInt(u.Query().Get("Expires"), 10, 64)
	if d := time.Unix(exp, 0).Sub(now); d < 30*24*time.Hour-time.Minute {
		t.Errorf("CloudFront URL expires in %v, want 30 days", d)
	}
}
