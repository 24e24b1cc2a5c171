// Package s3blob is the S3 implementation of blob.Store.
//
// Endpoints come only from the SDK's standard environment (AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL); when one is set the client uses path-style addressing, which is
// what local emulators (versitygw, LocalStack) expect. The clients are built by
// shared/awsconf (Lambda) and shared/awsclient (CLI, otad); this package does not
// import the SDK's config package, so the Lambdas do not link it.
package s3blob

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/otakit/ota/shared/blob"
)

const (
	// DefaultPartSize is the multipart part size (S3's minimum is 5 MiB).
	DefaultPartSize = 16 << 20
	// DefaultMultipartThreshold: bodies up to this size go up in one PutObject.
	DefaultMultipartThreshold = 64 << 20
	// minPartSize is S3's minimum size of every part but the last.
	minPartSize = 5 << 20
	// partConcurrency is how many parts are uploaded at once (each buffered in memory).
	partConcurrency = 4
)

// Store is a blob.Store over one S3 bucket.
type Store struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string

	// PartSize and MultipartThreshold tune Put; zero means the defaults.
	PartSize           int64
	MultipartThreshold int64

	listPageSize int32 // tests: force small List pages
}

var _ blob.Store = (*Store)(nil)

// New returns a Store for bucket. presign may be nil, then it is derived from client.
func New(client *s3.Client, presign *s3.PresignClient, bucket string) *Store {
	if presign == nil {
		presign = s3.NewPresignClient(client)
	}
	return &Store{client: client, presign: presign, bucket: bucket}
}

// Bucket is the bucket the store writes to.
func (s *Store) Bucket() string { return s.bucket }

// EndpointFromEnv reports the S3 endpoint override from the SDK's standard
// environment (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL), or "" for AWS itself.
func EndpointFromEnv() string {
	if v := os.Getenv("AWS_ENDPOINT_URL_S3"); v != "" {
		return v
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}

func (s *Store) partSize() int64 {
	if s.PartSize >= minPartSize {
		return s.PartSize
	}
	return DefaultPartSize
}

func (s *Store) threshold() int64 {
	if s.MultipartThreshold > 0 {
		return s.MultipartThreshold
	}
	return DefaultMultipartThreshold
}

func checkKey(key string) error {
	if !blob.ValidKey(key) {
		return fmt.Errorf("invalid object key %q", key)
	}
	return nil
}

// Put stores r under key. A size >= 0 must match the bytes read (else
// blob.ErrChecksum and nothing is stored); size < 0 means unknown. Bodies above the
// multipart threshold go up as a multipart upload, which S3 publishes atomically on
// completion and which is aborted on any error.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if contentType == "" {
		contentType = blob.ContentType(key)
	}
	limit := s.threshold()
	if size >= 0 && size < limit {
		limit = size
	}
	// Read up to limit+1 bytes: enough to tell a short or long body, and to decide
	// between one PutObject and a multipart upload.
	var head bytes.Buffer
	n, err := head.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("put %s: read: %w", key, err)
	}
	if size >= 0 && ((n <= limit && n != size) || n > size) {
		return fmt.Errorf("put %s: body is not the declared %d bytes: %w", key, size, blob.ErrChecksum)
	}
	if n <= limit {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        &s.bucket,
			Key:           &key,
			Body:          bytes.NewReader(head.Bytes()),
			ContentLength: aws.Int64(n),
			ContentType:   &contentType,
		})
		return s.wrap("put", key, err)
	}
	if size >= 0 {
		r = io.LimitReader(r, size-n+1) // one byte more than declared shows up as a size error
	}
	return s.putMultipart(ctx, key, io.MultiReader(&head, r), size, contentType)
}

type part struct {
	num  int32
	data []byte
}

func (s *Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64, contentType string) (err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            &s.bucket,
		Key:               &key,
		ContentType:       &contentType,
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	uploadID := created.UploadId
	defer func() {
		if err != nil {
			// Abort even when ctx is cancelled, so no orphaned parts are billed.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket: &s.bucket, Key: &key, UploadId: uploadID,
			})
		}
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	psize := s.partSize()
	var (
		mu        sync.Mutex
		firstErr  error
		completed []types.CompletedPart
		wg        sync.WaitGroup
		sem       = make(chan struct{}, partConcurrency)
		total     int64
	)
	fail := func(e error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = e
			cancel()
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	for num := int32(1); ; num++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if failed() || ctx.Err() != nil {
			break
		}
		buf := make([]byte, psize)
		n, rerr := io.ReadFull(r, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			<-sem
			fail(fmt.Errorf("read: %w", rerr))
			break
		}
		total += int64(n)
		if n == 0 && num > 1 {
			<-sem
			break
		}
		if num > 10000 {
			<-sem
			fail(errors.New("object too large for 10000 parts"))
			break
		}
		wg.Add(1)
		go func(p part) {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket:            &s.bucket,
				Key:               &key,
				UploadId:          uploadID,
				PartNumber:        aws.Int32(p.num),
				Body:              bytes.NewReader(p.data),
				ContentLength:     aws.Int64(int64(len(p.data))),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
			})
			if err != nil {
				fail(fmt.Errorf("part %d: %w", p.num, err))
				return
			}
			mu.Lock()
			completed = append(completed, types.CompletedPart{
				PartNumber:     aws.Int32(p.num),
				ETag:           out.ETag,
				ChecksumSHA256: out.ChecksumSHA256,
			})
			mu.Unlock()
		}(part{num: num, data: buf[:n]})
		if rerr != nil { // EOF: that was the last part
			break
		}
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return s.wrap("put", key, firstErr)
	}
	if size >= 0 && total != size {
		return fmt.Errorf("put %s: got %d bytes, want %d: %w", key, total, size, blob.ErrChecksum)
	}
	sortParts(completed)
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &key,
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: completed},
	})
	return s.wrap("put", key, err)
}

func sortParts(p []types.CompletedPart) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && *p[j].PartNumber < *p[j-1].PartNumber; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

// Open reads key from byte offset off with a Range request. An offset at or past the
// end yields an empty body (like reading a file past its end).
func (s *Store) Open(ctx context.Context, key string, off int64) (io.ReadCloser, blob.Info, error) {
	if err := checkKey(key); err != nil {
		return nil, blob.Info{}, err
	}
	if off < 0 {
		return nil, blob.Info{}, fmt.Errorf("open %s: negative offset %d", key, off)
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if off > 0 {
		in.Range = aws.String("bytes=" + strconv.FormatInt(off, 10) + "-")
	}
	opts := []func(*s3.Options){func(o *s3.Options) {
		// Objects without a whole-object checksum (ranges, multipart uploads) cannot be
		// validated; the SDK would log that on every download.
		o.DisableLogOutputChecksumValidationSkipped = true
		if off > 0 {
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}}
	out, err := s.client.GetObject(ctx, in, opts...)
	if err != nil {
		if off > 0 && isInvalidRange(err) {
			info, serr := s.Stat(ctx, key)
			if serr != nil {
				return nil, info, serr
			}
			if off >= info.Size {
				return io.NopCloser(bytes.NewReader(nil)), info, nil
			}
		}
		return nil, blob.Info{}, s.wrap("open", key, err)
	}
	info := blob.Info{
		Size:        aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
	}
	if total, ok := contentRangeTotal(aws.ToString(out.ContentRange)); ok {
		info.Size = total
	} else if off > 0 {
		info.Size += off
	}
	if info.ContentType == "" {
		info.ContentType = blob.ContentType(key)
	}
	return out.Body, info, nil
}

// contentRangeTotal parses the total of "bytes 10-99/100".
func contentRangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok || total == "*" {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
}

// Stat describes key (HeadObject).
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	if err := checkKey(key); err != nil {
		return blob.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return blob.Info{}, s.wrap("stat", key, err)
	}
	info := blob.Info{
		Size:        aws.ToInt64(out.ContentLength),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
	}
	if info.ContentType == "" {
		info.ContentType = blob.ContentType(key)
	}
	return info, nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && errors.Is(s.wrap("delete", key, err), blob.ErrNotFound) {
		return nil
	}
	return s.wrap("delete", key, err)
}

// List returns the keys under prefix in S3's (lexicographic) order.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	if s.listPageSize > 0 {
		in.MaxKeys = &s.listPageSize
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// PresignPut returns a presigned PUT that S3 accepts only with exactly size bytes
// whose SHA-256 is sha256hex: the x-amz-checksum-sha256 header (base64 of the raw
// digest) and Content-Length are part of the signature, and S3 checks the body against
// the checksum. Headers must be sent as returned (Go clients set req.ContentLength
// rather than a Content-Length header).
func (s *Store) PresignPut(ctx context.Context, key, sha256hex string, size int64, ttl time.Duration) (blob.Upload, error) {
	if err := checkKey(key); err != nil {
		return blob.Upload{}, err
	}
	digest, err := hex.DecodeString(sha256hex)
	if err != nil || len(digest) != 32 {
		return blob.Upload{}, fmt.Errorf("presign %s: bad sha256 %q", key, sha256hex)
	}
	if size < 0 {
		return blob.Upload{}, fmt.Errorf("presign %s: negative size", key)
	}
	sum := base64.StdEncoding.EncodeToString(digest)
	ct := blob.ContentType(key)
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:         &s.bucket,
		Key:            &key,
		ContentLength:  aws.Int64(size),
		ContentType:    &ct,
		ChecksumSHA256: &sum,
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return blob.Upload{}, fmt.Errorf("presign %s: %w", key, err)
	}
	headers := map[string]string{}
	for k, v := range req.SignedHeader {
		if strings.EqualFold(k, "Host") || len(v) == 0 {
			continue
		}
		headers[http.CanonicalHeaderKey(k)] = strings.Join(v, ",")
	}
	// Make sure the binding headers are present even if a future SDK stops listing them.
	headers["X-Amz-Checksum-Sha256"] = sum
	headers["Content-Length"] = strconv.FormatInt(size, 10)
	if _, ok := headers["Content-Type"]; !ok {
		headers["Content-Type"] = ct
	}
	return blob.Upload{Method: req.Method, URL: req.URL, Headers: headers, Expires: presignExpiry(req.URL, ttl)}, nil
}

// presignExpiry reads X-Amz-Date + X-Amz-Expires from a presigned URL.
func presignExpiry(raw string, ttl time.Duration) time.Time {
	u, err := url.Parse(raw)
	if err == nil {
		q := u.Query()
		t, terr := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
		secs, serr := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
		if terr == nil && serr == nil {
			return t.Add(time.Duration(secs) * time.Second)
		}
	}
	return time.Now().Add(ttl).UTC().Truncate(time.Second)
}

// EnsureBucket creates bucket if it does not exist yet; it is idempotent.
func EnsureBucket(ctx context.Context, client *s3.Client, bucket string) error {
	_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("head bucket %s: %w", bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: &bucket}
	if region := client.Options().Region; region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	_, err = client.CreateBucket(ctx, in)
	if err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) || apiCode(err) == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// wrap maps missing objects to blob.ErrNotFound and adds the key to other errors.
func (s *Store) wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	if isNotFound(err) && apiCode(err) != "NoSuchBucket" {
		return fmt.Errorf("%s: %w", key, blob.ErrNotFound)
	}
	return fmt.Errorf("s3 %s %s/%s: %w", op, s.bucket, key, err)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	switch apiCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}

func isInvalidRange(err error) bool {
	return apiCode(err) == "InvalidRange" || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable
}
