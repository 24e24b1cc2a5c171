package s3blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/blob/blobtest"
	"github.com/otakit/ota/shared/testenv"
)

// The fixed credentials infra/emulators/versitygw.sh starts versitygw with.
const (
	testAccess = "test"
	testSecret = "testsecret"
)

func testClient(t testing.TB, endpoint string) *s3.Client {
	t.Helper()
	return s3.New(s3.Options{
		Region:       testenv.Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(testAccess, testSecret, ""),
		UsePathStyle: true,
	})
}

// newTestStore makes a fresh bucket on the emulator and removes it after the test.
func newTestStore(t testing.TB) (*Store, *s3.Client) {
	t.Helper()
	client := testClient(t, testenv.S3Endpoint(t))
	return newStoreOn(t, client), client
}

func newStoreOn(t testing.TB, client *s3.Client) *Store {
	t.Helper()
	ctx := context.Background()
	bucket := "ota-test-" + testenv.RandSuffix()
	if err := EnsureBucket(ctx, client, bucket); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	st := New(client, s3.NewPresignClient(client), bucket)
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := st.List(ctx, "")
		for _, k := range keys {
			_ = st.Delete(ctx, k)
		}
		_, _ = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
	})
	return st
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, st *Store, key string, off int64) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := st.Open(context.Background(), key, off)
	if err != nil {
		t.Fatalf("Open(%s, %d): %v", key, off, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, info
}

func TestEnsureBucketIdempotent(t *testing.T) {
	client := testClient(t, testenv.S3Endpoint(t))
	st := newStoreOn(t, client)
	for i := 0; i < 2; i++ {
		if err := EnsureBucket(context.Background(), client, st.Bucket()); err != nil {
			t.Fatalf("EnsureBucket again (%d): %v", i, err)
		}
	}
}

// The blob contract, on versitygw. Tests below cover what is S3's own: pagination,
// multipart uploads, and how a presigned upload binds its headers.
func TestContract(t *testing.T) {
	blobtest.Run(t, blobtest.Caps{KeepsContentType: true}, func(t *testing.T) blob.Store {
		st, _ := newTestStore(t)
		return st
	})
}

func TestListPaginates(t *testing.T) {
	st, client := newTestStore(t)
	ctx := context.Background()
	for i := 0; i < 7; i++ {
		k := "patches/p/" + string(rune('a'+i))
		if err := st.Put(ctx, k, strings.NewReader("x"), 1, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The emulator honours MaxKeys, so pagination is really exercised below.
	in := &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket()), Prefix: aws.String("patches/"), MaxKeys: aws.Int32(2)}
	pages := 0
	for p := s3.NewListObjectsV2Paginator(client, in); p.HasMorePages(); pages++ {
		if _, err := p.NextPage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if pages < 4 {
		t.Fatalf("emulator returned %d pages for MaxKeys=2", pages)
	}
	st.listPageSize = 2
	keys, err := st.List(ctx, "patches/")
	if err != nil || len(keys) != 7 || keys[0] != "patches/p/a" || keys[6] != "patches/p/g" {
		t.Fatalf("List = %v, %v", keys, err)
	}
}

func TestMultipart(t *testing.T) {
	st, _ := newTestStore(t)
	st.PartSize = minPartSize
	st.MultipartThreshold = minPartSize
	ctx := context.Background()
	body := randBytes(t, 2*minPartSize+12345)
	sum := sha256.Sum256(body)

	for _, tc := range []struct {
		name string
		size int64
	}{{"known size", int64(len(body))}, {"unknown size", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			key := "bundles/big/" + strings.ReplaceAll(tc.name, " ", "-") + ".zip"
			// A one-byte-at-a-time reader would be slow; OneByteReader on a bytes.Reader is
			// not needed: a non-seekable reader is enough to prove we do not seek.
			r := iotest.HalfReader(bytes.NewReader(body))
			if err := st.Put(ctx, key, r, tc.size, ""); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, info := readAll(t, st, key, 0)
			if sha256.Sum256(got) != sum || info.Size != int64(len(body)) {
				t.Fatalf("multipart object differs: %d bytes, info %+v", len(got), info)
			}
			tail, _ := readAll(t, st, key, int64(len(body))-100)
			if !bytes.Equal(tail, body[len(body)-100:]) {
				t.Fatal("range read of multipart object differs")
			}
		})
	}

	// Declared size larger or smaller than the body: aborted, nothing visible.
	for _, size := range []int64{int64(len(body)) + 1, int64(len(body)) - 1} {
		key := "bundles/big/wrong.zip"
		if err := st.Put(ctx, key, bytes.NewReader(body), size, ""); !errors.Is(err, blob.ErrChecksum) {
			t.Fatalf("Put with size %d: %v, want ErrChecksum", size, err)
		}
		if _, err := st.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Stat after aborted multipart: %v", err)
		}
	}

	// A read error midway aborts the upload.
	failing := io.MultiReader(bytes.NewReader(body[:minPartSize+10]), iotest.ErrReader(errors.New("disk gone")))
	if err := st.Put(ctx, "bundles/big/fail.zip", failing, -1, ""); err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("Put with failing reader: %v", err)
	}
	if _, err := st.Stat(ctx, "bundles/big/fail.zip"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after failed multipart: %v", err)
	}
}

// presignedPut sends body to a presigned upload with the returned headers.
func presignedPut(t testing.TB, up blob.Upload, body []byte, override map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(up.Method, up.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.Headers {
		if strings.EqualFold(k, "Content-Length") {
			continue
		}
		req.Header.Set(k, v)
	}
	for k, v := range override {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(msg))
	return resp
}

func TestPresignPut(t *testing.T) {
	st, _ := newTestStore(t)
	ctx := context.Background()
	body := randBytes(t, 4096)
	sum := sha256.Sum256(body)
	sumHex := hex.EncodeToString(sum[:])

	presign := func(t *testing.T, key string, ttl time.Duration) blob.Upload {
		t.Helper()
		up, err := st.PresignPut(ctx, key, sumHex, int64(len(body)), ttl)
		if err != nil {
			t.Fatalf("PresignPut: %v", err)
		}
		return up
	}
	// Codes are what S3 (and versitygw) answer; the object must not exist afterwards.
	mustRefuse := func(t *testing.T, key string, resp *http.Response, wantCode string) {
		t.Helper()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("status %d, want a 4xx refusal: %s", resp.StatusCode, b)
		}
		if code := errorCode(b); !strings.HasPrefix(code, wantCode+":") {
			t.Fatalf("refused with %d %s, want %s", resp.StatusCode, code, wantCode)
		}
		if _, err := st.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("object exists after refused upload: %v", err)
		}
	}

	t.Run("right bytes", func(t *testing.T) {
		key := blob.BundleKey("app", "1.0.0", "")
		up := presign(t, key, 5*time.Minute)
		if up.Method != http.MethodPut || up.Headers["X-Amz-Checksum-Sha256"] == "" ||
			up.Headers["Content-Length"] != "4096" || up.Headers["Content-Type"] != "application/zip" {
			t.Fatalf("upload = %+v", up)
		}
		if d := time.Until(up.Expires); d < 4*time.Minute || d > 6*time.Minute {
			t.Fatalf("Expires in %v", d)
		}
		q, _ := url.ParseQuery(strings.SplitN(up.URL, "?", 2)[1])
		if sh := q.Get("X-Amz-SignedHeaders"); !strings.Contains(sh, "x-amz-checksum-sha256") || !strings.Contains(sh, "content-length") {
			t.Fatalf("signed headers %q do not bind the checksum and length", sh)
		}
		resp := presignedPut(t, up, body, nil)
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		got, info := readAll(t, st, key, 0)
		if !bytes.Equal(got, body) || info.ContentType != "application/zip" {
			t.Fatalf("uploaded object differs (%d bytes, %+v)", len(got), info)
		}
	})

	t.Run("different bytes same length", func(t *testing.T) {
		key := blob.BundleKey("app", "1.0.1", "")
		up := presign(t, key, 5*time.Minute)
		other := bytes.Clone(body)
		other[100] ^= 0xff
		mustRefuse(t, key, presignedPut(t, up, other, nil), "BadDigest")
	})

	t.Run("different bytes with their own checksum header", func(t *testing.T) {
		key := blob.BundleKey("app", "1.0.2", "")
		up := presign(t, key, 5*time.Minute)
		other := randBytes(t, len(body))
		osum := sha256.Sum256(other)
		h := map[string]string{"X-Amz-Checksum-Sha256": b64(osum[:])}
		mustRefuse(t, key, presignedPut(t, up, other, h), "SignatureDoesNotMatch")
	})

	t.Run("shorter body", func(t *testing.T) {
		key := blob.BundleKey("app", "1.0.3", "")
		up := presign(t, key, 5*time.Minute)
		mustRefuse(t, key, presignedPut(t, up, body[:len(body)-1], nil), "SignatureDoesNotMatch")
	})

	t.Run("tampered query", func(t *testing.T) {
		key := blob.BundleKey("app", "1.0.4", "")
		up := presign(t, key, 5*time.Minute)
		if !strings.Contains(up.URL, "X-Amz-Expires=300") {
			t.Fatalf("unexpected URL %s", up.URL)
		}
		up.URL = strings.Replace(up.URL, "X-Amz-Expires=300", "X-Amz-Expires=3600", 1)
		mustRefuse(t, key, presignedPut(t, up, body, nil), "SignatureDoesNotMatch")
	})

}

// errorCode extracts <Code> from an S3 XML error body.
func errorCode(body []byte) string {
	var e struct{ Code, Message string }
	if xml.Unmarshal(body, &e) != nil {
		return "unparsed: " + string(body)
	}
	return e.Code + ": " + e.Message
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
