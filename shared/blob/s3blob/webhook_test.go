package s3blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/testenv"
)

// versitygwBin finds the versitygw binary infra/emulators/versitygw.sh installs:
// $OTA_VERSITYGW_BIN, else <module root>/.tools/bin/versitygw, else $PATH.
func versitygwBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OTA_VERSITYGW_BIN"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".tools", "bin", "versitygw")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("versitygw binary not found under CI; run infra/emulators/versitygw.sh install")
	}
	t.Skip("versitygw binary not found; run infra/emulators/versitygw.sh install")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startVersitygw runs a private versitygw that posts S3 events to webhook.
func startVersitygw(t *testing.T, webhook string) string {
	t.Helper()
	bin := versitygwBin(t)
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var logBuf syncBuffer
	cmd := exec.Command(bin, "--access", testAccess, "--secret", testSecret, "--region", testenv.Region,
		"--port", addr, "--quiet", "--event-webhook-url", webhook, "posix", t.TempDir())
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case <-done:
			t.Fatalf("versitygw exited:\n%s", logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not up on %s within 30s:\n%s", addr, logBuf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWebhookEventsDecode checks that versitygw's --event-webhook-url posts bodies
// that decode into events.S3Event with the bucket and key, for a plain Put, a
// presigned PUT (what `ota release` does), a multipart upload and a delete.
func TestWebhookEventsDecode(t *testing.T) {
	testenv.S3Endpoint(t) // same skip/fail rule as the other emulator tests
	var (
		mu     sync.Mutex
		bodies [][]byte
		got    = make(chan struct{}, 100)
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		got <- struct{}{}
	}))
	defer hook.Close()

	endpoint := startVersitygw(t, hook.URL)
	st := newStoreOn(t, testClient(t, endpoint))
	ctx := context.Background()

	putKey := blob.BundleKey("app", "1.0.0", "")
	if err := st.Put(ctx, putKey, strings.NewReader("zipbytes"), 8, ""); err != nil {
		t.Fatal(err)
	}
	presKey := blob.BundleKey("app", "2.0.0+build.7", "")
	body := []byte("presigned zip body")
	sum := sha256.Sum256(body)
	up, err := st.PresignPut(ctx, presKey, hex.EncodeToString(sum[:]), int64(len(body)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp := presignedPut(t, up, body, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("presigned put: %d", resp.StatusCode)
	}
	st.PartSize, st.MultipartThreshold = minPartSize, minPartSize
	mpKey := blob.BundleKey("app", "3.0.0", "")
	mpBody := randBytes(t, minPartSize+1)
	if err := st.Put(ctx, mpKey, bytes.NewReader(mpBody), int64(len(mpBody)), ""); err != nil {
		t.Fatal(err)
	}
	spaceKey := "files/sp/a b+c=d&e.bin"
	if err := st.Put(ctx, spaceKey, strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, putKey); err != nil {
		t.Fatal(err)
	}

	type rec struct {
		name string
		size int64
	}
	want := map[string]rec{
		putKey:   {"ObjectCreated:Put", 8},
		presKey:  {"ObjectCreated:Put", int64(len(body))},
		mpKey:    {"ObjectCreated:CompleteMultipartUpload", 0}, // versitygw reports size 0 here
		spaceKey: {"ObjectCreated:Put", 1},
	}
	deadline := time.After(15 * time.Second)
	for {
		seen := map[string]rec{}
		var deleted, testEvents int
		var directErr error
		mu.Lock()
		for _, b := range bodies {
			var direct events.S3Event
			if err := json.Unmarshal(b, &direct); err != nil {
				directErr = err
			}
			ev, err := DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent: %v\n%s", err, b)
			}
			if len(ev.Records) == 0 {
				testEvents++ // the s3:TestEvent versitygw posts at startup
				continue
			}
			for _, r := range ev.Records {
				if r.S3.Bucket.Name != st.Bucket() {
					t.Fatalf("event bucket %q, want %q\n%s", r.S3.Bucket.Name, st.Bucket(), b)
				}
				if r.EventSource != "aws:s3" || r.EventTime.IsZero() {
					t.Fatalf("event source/time: %+v", r)
				}
				key := r.S3.Object.URLDecodedKey
				if k, err := url.QueryUnescape(r.S3.Object.Key); err != nil || k != key {
					t.Fatalf("Key %q does not unescape to URLDecodedKey %q", r.S3.Object.Key, key)
				}
				if strings.HasPrefix(r.EventName, "ObjectRemoved:") && key == putKey {
					deleted++
					continue
				}
				seen[key] = rec{r.EventName, r.S3.Object.Size}
			}
		}
		n := len(bodies)
		mu.Unlock()
		if deleted > 0 && len(seen) == len(want) {
			for k, w := range want {
				if seen[k] != w {
					t.Errorf("event for %s = %+v, want %+v", k, seen[k], w)
				}
			}
			if directErr == nil {
				t.Log("versitygw events now decode with a plain json.Unmarshal; DecodeEvent's workaround may go")
			}
			t.Logf("%d webhook posts (%d startup test events) decoded", n, testEvents)
			return
		}
		select {
		case <-got:
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("missing events: seen %v deleted=%d; bodies:\n%s", seen, deleted, bytes.Join(bodies, []byte("\n")))
		}
	}
}
