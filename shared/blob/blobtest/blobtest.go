// Package blobtest is the contract every blob.Store backend must pass. Each backend's
// tests call Run with a constructor for a fresh, empty store; the same cases then run
// against the local folder (otad) and S3, which keeps them interchangeable. Where the
// backends differ on purpose, Caps says so and the cases check each side of it.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/fault"
)

// Caps are the deliberate differences between backends.
type Caps struct {
	// KeepsContentType: Put stores the content type it is given and reads return it
	// (S3 keeps it as object metadata). Without it the type is always derived from
	// the key (blob.ContentType): the local folder keeps no metadata beside the file.
	KeepsContentType bool
}

// Run runs every contract case as a parallel subtest. newStore must return a fresh,
// empty store whose presigned uploads (PresignPut) can be sent over HTTP: for the
// local folder that means a server with otad's upload route at its base URL.
func Run(t *testing.T, caps Caps, newStore func(t *testing.T) blob.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newStore(t), caps)
		})
	}
}

var cases = []struct {
	name string
	fn   func(t *testing.T, st blob.Store, caps Caps)
}{
	{"PutOpenStat", testPutOpenStat},
	{"OpenOffsets", testOpenOffsets},
	{"Overwrite", testOverwrite},
	{"OverwriteAtomic", testOverwriteAtomic},
	{"EmptyObject", testEmptyObject},
	{"SizeMismatchStoresNothing", testSizeMismatch},
	{"NotFound", testNotFound},
	{"Delete", testDelete},
	{"ListPrefixOrder", testListPrefixOrder},
	{"InvalidKeysRefused", testInvalidKeys},
	{"CanceledContext", testCanceledContext},
	{"ContentType", testContentType},
	{"PresignedUpload", testPresignedUpload},
	{"PresignedUploadRefusals", testPresignedRefusals},
	{"PresignedUploadExpired", testPresignedExpired},
	{"PresignBadInput", testPresignBadInput},
}

func put(t *testing.T, st blob.Store, key string, body []byte) {
	t.Helper()
	if err := st.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), ""); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func read(t *testing.T, st blob.Store, key string, off int64) ([]byte, blob.Info) {
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

// absent fails unless key is not stored.
func absent(t *testing.T, st blob.Store, key string) {
	t.Helper()
	if _, err := st.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%s) = %v, want ErrNotFound", key, err)
	}
}

func testPutOpenStat(t *testing.T, st blob.Store, _ Caps) {
	body := []byte("hello, bundle bytes")
	key := blob.BundleKey("app1", "1.0.0", "")
	put(t, st, key, body)
	got, info := read(t, st, key, 0)
	if !bytes.Equal(got, body) {
		t.Fatalf("Open = %q, want %q", got, body)
	}
	if info.Size != int64(len(body)) || info.ContentType != "application/zip" || info.ModTime.IsZero() {
		t.Fatalf("Open info = %+v", info)
	}
	if d := time.Since(info.ModTime); d < -time.Minute || d > time.Minute {
		t.Errorf("ModTime %v is not about now", info.ModTime)
	}
	si, err := st.Stat(context.Background(), key)
	if err != nil || si.Size != info.Size || si.ContentType != info.ContentType || si.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, %v; Open said %+v", si, err, info)
	}
}

// Open from an offset serves Range requests: the rest of the bytes, with the whole
// object's size; at or past the end an empty body, like a file.
func testOpenOffsets(t *testing.T, st blob.Store, _ Caps) {
	body := []byte("hello, bundle bytes")
	key := blob.FileKey(strings.Repeat("ab", 32))
	put(t, st, key, body)
	got, info := read(t, st, key, 7)
	if string(got) != "bundle bytes" || info.Size != int64(len(body)) {
		t.Fatalf("Open at 7 = %q, %+v", got, info)
	}
	for _, off := range []int64{int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 10} {
		got, info := read(t, st, key, off)
		if !bytes.Equal(got, body[min(off, int64(len(body))):]) || info.Size != int64(len(body)) {
			t.Fatalf("Open at %d = %q, %+v", off, got, info)
		}
	}
	if rc, _, err := st.Open(context.Background(), key, -1); err == nil {
		rc.Close()
		t.Fatal("Open at a negative offset succeeded")
	}
}

// A second Put replaces the object whole, also with an unknown size (-1).
func testOverwrite(t *testing.T, st blob.Store, _ Caps) {
	key := blob.ManifestKey("app1", "1.0.0")
	put(t, st, key, []byte(`{"first":"a longer version"}`))
	second := []byte(`{"second":1}`)
	if err := st.Put(context.Background(), key, bytes.NewReader(second), -1, ""); err != nil {
		t.Fatalf("Put unknown size: %v", err)
	}
	got, info := read(t, st, key, 0)
	if !bytes.Equal(got, second) || info.Size != int64(len(second)) {
		t.Fatalf("after overwrite = %q, %+v", got, info)
	}
}

// Readers during an overwrite see the old object or the whole new one, never a mix
// or a missing key (Put's promise; the API serves objects while they are rewritten).
func testOverwriteAtomic(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	key := blob.FileKey(strings.Repeat("ef", 32))
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 200<<10)}
	put(t, st, key, versions[0])
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 6 {
			v := versions[(i+1)%2]
			if err := st.Put(ctx, key, bytes.NewReader(v), int64(len(v)), ""); err != nil {
				t.Errorf("Put #%d: %v", i, err)
				return
			}
		}
	}()
	defer func() { <-done }() // no Put outlives the test, even one that fails early
	for reads := 0; ; reads++ {
		select {
		case <-done:
			if reads == 0 {
				t.Log("no read overlapped the overwrites")
			}
			return
		default:
		}
		rc, info, err := st.Open(ctx, key, 0)
		if err != nil {
			t.Fatalf("Open during overwrite: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read during overwrite: %v", err)
		}
		if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
			t.Fatalf("read %d bytes (info %+v) that are neither version", len(got), info)
		}
	}
}

func testEmptyObject(t *testing.T, st blob.Store, _ Caps) {
	key := "files/00/empty"
	put(t, st, key, nil)
	if got, info := read(t, st, key, 0); len(got) != 0 || info.Size != 0 {
		t.Fatalf("empty = %q %+v", got, info)
	}
}

// A body shorter or longer than declared is blob.ErrChecksum and stores nothing,
// not even over an existing object.
func testSizeMismatch(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	body := []byte("some bytes")
	for _, size := range []int64{int64(len(body)) + 1, int64(len(body)) - 1} {
		if err := st.Put(ctx, "files/ab/short", bytes.NewReader(body), size, ""); !errors.Is(err, blob.ErrChecksum) {
			t.Fatalf("Put %d bytes as %d: %v, want ErrChecksum", len(body), size, err)
		}
		absent(t, st, "files/ab/short")
	}
	put(t, st, "files/ab/kept", body)
	if err := st.Put(ctx, "files/ab/kept", strings.NewReader("x"), 2, ""); !errors.Is(err, blob.ErrChecksum) {
		t.Fatalf("Put over an object: %v, want ErrChecksum", err)
	}
	if got, _ := read(t, st, "files/ab/kept", 0); !bytes.Equal(got, body) {
		t.Fatalf("failed Put changed the object: %q", got)
	}
}

// Missing objects are blob.ErrNotFound, of kind fault.NotFound (the API's 404).
func testNotFound(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	missing := "bundles/app1/nope.zip"
	put(t, st, "bundles/app1/other.zip", []byte("x")) // a bucket or folder that is not empty
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, blob.ErrNotFound) || fault.KindOf(err) != fault.NotFound {
			t.Fatalf("%s missing: %v (kind %v), want ErrNotFound", op, err, fault.KindOf(err))
		}
	}
	_, err := st.Stat(ctx, missing)
	check("Stat", err)
	for _, off := range []int64{0, 5} {
		rc, _, err := st.Open(ctx, missing, off)
		if err == nil {
			rc.Close()
		}
		check("Open", err)
	}
	_, err = st.Stat(ctx, "nodir/at/all")
	check("Stat under no folder", err)
}

// Delete removes; deleting what is not there is not an error.
func testDelete(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	key := blob.PatchKey("tree", strings.Repeat("cd", 32))
	put(t, st, key, []byte("patch"))
	for i := range 2 {
		if err := st.Delete(ctx, key); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	absent(t, st, key)
	if err := st.Delete(ctx, "never/stored"); err != nil {
		t.Fatalf("Delete never stored: %v", err)
	}
	if keys, err := st.List(ctx, "patches/"); err != nil || len(keys) != 0 {
		t.Fatalf("List after Delete = %q, %v", keys, err)
	}
}

// List returns full keys under a plain string prefix (not only whole folders), in
// byte order, as S3 does: "a-b" sorts before "a/b".
func testListPrefixOrder(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	keys := []string{"manifests/app1/2.json", "manifests/app1/1.json", "manifests/app1-x/1.json",
		"manifests/app1/10/a.json", "manifests/app2/1.json", "bundles/app1/1.zip"}
	for _, k := range keys {
		put(t, st, k, []byte("{}"))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"manifests/app1/", []string{"manifests/app1/1.json", "manifests/app1/10/a.json", "manifests/app1/2.json"}},
		{"manifests/app1", []string{"manifests/app1-x/1.json", "manifests/app1/1.json", "manifests/app1/10/a.json", "manifests/app1/2.json"}},
		{"manifests/app1/1", []string{"manifests/app1/1.json", "manifests/app1/10/a.json"}},
		{"nothing/", nil},
	} {
		got, err := st.List(ctx, tc.prefix)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
	all, err := st.List(ctx, "")
	want := slices.Clone(keys)
	slices.Sort(want)
	if err != nil || !slices.Equal(all, want) {
		t.Errorf("List all = %q, %v; want %q", all, err, want)
	}
}

// Keys ValidKey refuses are refused by every operation that takes a key, before any
// I/O: on the local folder they could escape it.
func testInvalidKeys(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	sum := strings.Repeat("0", 64)
	for _, key := range []string{"", "/abs", "../x", "a/../b", "a//b", "a/./b", "a\\b", "a?b", "a%2Fb", "a/", strings.Repeat("k", 513)} {
		if err := st.Put(ctx, key, strings.NewReader("x"), 1, ""); err == nil {
			t.Errorf("Put(%q) accepted", key)
		}
		if rc, _, err := st.Open(ctx, key, 0); err == nil {
			rc.Close()
			t.Errorf("Open(%q) accepted", key)
		}
		if _, err := st.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) accepted", key)
		}
		if err := st.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) accepted", key)
		}
		if _, err := st.PresignPut(ctx, key, sum, 1, time.Minute); err == nil {
			t.Errorf("PresignPut(%q) accepted", key)
		}
	}
	if keys, err := st.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Errorf("something was stored: %q, %v", keys, err)
	}
}

// A canceled context fails every operation, and a Put on one stores nothing: a
// drained background job or a gone request does not keep writing.
func testCanceledContext(t *testing.T, st blob.Store, _ Caps) {
	key := "files/ab/canceled"
	put(t, st, "files/ab/kept", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Put: %v, want context.Canceled", err)
	}
	if rc, _, err := st.Open(ctx, "files/ab/kept", 0); !errors.Is(err, context.Canceled) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Open: %v, want context.Canceled", err)
	}
	if _, err := st.Stat(ctx, "files/ab/kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat: %v, want context.Canceled", err)
	}
	if _, err := st.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v, want context.Canceled", err)
	}
	if err := st.Delete(ctx, "files/ab/kept"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete: %v, want context.Canceled", err)
	}
	absent(t, st, key)
	if _, err := st.Stat(context.Background(), "files/ab/kept"); err != nil {
		t.Errorf("kept object after a canceled Delete: %v", err)
	}
}

// With no content type given, it is derived from the key. A type given to Put is
// kept only where Caps.KeepsContentType says so.
func testContentType(t *testing.T, st blob.Store, caps Caps) {
	ctx := context.Background()
	for key, want := range map[string]string{
		"bundles/a/1.zip":    "application/zip",
		"manifests/a/1.json": "application/json",
		"files/ab/abcd":      "application/octet-stream",
		"patches/tree/x.br":  "application/octet-stream", // never a Content-Encoding
	} {
		put(t, st, key, []byte("x"))
		if si, err := st.Stat(ctx, key); err != nil || si.ContentType != want {
			t.Errorf("Stat(%s) type %q, %v; want %q", key, si.ContentType, err, want)
		}
		if _, info := read(t, st, key, 0); info.ContentType != want {
			t.Errorf("Open(%s) type %q, want %q", key, info.ContentType, want)
		}
	}
	key := "files/ab/typed"
	if err := st.Put(ctx, key, strings.NewReader("x"), 1, "text/plain"); err != nil {
		t.Fatal(err)
	}
	want := blob.ContentType(key)
	if caps.KeepsContentType {
		want = "text/plain"
	}
	if si, err := st.Stat(ctx, key); err != nil || si.ContentType != want {
		t.Errorf("Stat after Put as text/plain: %q, %v; want %q (KeepsContentType %v)", si.ContentType, err, want, caps.KeepsContentType)
	}
}

type upload struct {
	body []byte
	sum  string
}

func newUpload(n int) upload {
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	b[n/2] = 'X'
	s := sha256.Sum256(b)
	return upload{body: b, sum: hex.EncodeToString(s[:])}
}

// send sends body to a presigned upload with the headers it asks for, and returns the
// status (Go sets Content-Length itself, from the body).
func send(t *testing.T, up blob.Upload, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(up.Method, up.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.Headers {
		if !strings.EqualFold(k, "Content-Length") {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

func presign(t *testing.T, st blob.Store, key string, u upload, ttl time.Duration) blob.Upload {
	t.Helper()
	up, err := st.PresignPut(context.Background(), key, u.sum, int64(len(u.body)), ttl)
	if err != nil {
		t.Fatalf("PresignPut(%s): %v", key, err)
	}
	return up
}

// refused fails unless the upload got a 4xx and left nothing under key.
func refused(t *testing.T, st blob.Store, key string, status int, msg string) {
	t.Helper()
	if status < 400 || status >= 500 {
		t.Fatalf("status %d, want a 4xx refusal: %s", status, msg)
	}
	absent(t, st, key)
}

// The right bytes sent to a presigned upload are stored under its key, as a bundle,
// replacing what was there.
func testPresignedUpload(t *testing.T, st blob.Store, _ Caps) {
	u := newUpload(4096)
	key := blob.NewBundleKey("app", "1.0.0", "0123456789abcdef")
	put(t, st, key, []byte("an earlier upload"))
	up := presign(t, st, key, u, 5*time.Minute)
	if up.Method != http.MethodPut || !strings.HasPrefix(up.URL, "http") {
		t.Fatalf("upload = %+v", up)
	}
	if d := time.Until(up.Expires); d < 4*time.Minute || d > 6*time.Minute {
		t.Fatalf("Expires in %v, want about 5m", d)
	}
	if status, msg := send(t, up, u.body); status/100 != 2 {
		t.Fatalf("status %d: %s", status, msg)
	}
	got, info := read(t, st, key, 0)
	if !bytes.Equal(got, u.body) || info.ContentType != "application/zip" {
		t.Fatalf("uploaded object differs (%d bytes, %+v)", len(got), info)
	}
}

// An upload URL binds its key, size and SHA-256: other bytes, a shorter or longer
// body, or another key are refused and store nothing.
func testPresignedRefusals(t *testing.T, st blob.Store, _ Caps) {
	u := newUpload(4096)
	other := bytes.Clone(u.body)
	other[100] ^= 0xff
	for i, tc := range []struct {
		name string
		body []byte
	}{
		{"different bytes same length", other},
		{"shorter body", u.body[:len(u.body)-1]},
		{"longer body", append(bytes.Clone(u.body), 'x')},
		{"empty body", nil},
	} {
		key := blob.BundleKey("app", "1.0."+string(rune('0'+i)), "")
		status, msg := send(t, presign(t, st, key, u, 5*time.Minute), tc.body)
		t.Run(tc.name, func(t *testing.T) { refused(t, st, key, status, msg) })
	}
	t.Run("other key", func(t *testing.T) {
		up := presign(t, st, blob.BundleKey("app", "2.0.5", ""), u, 5*time.Minute)
		up.URL = strings.Replace(up.URL, "2.0.5.zip", "2.0.6.zip", 1)
		status, msg := send(t, up, u.body)
		refused(t, st, blob.BundleKey("app", "2.0.6", ""), status, msg)
		absent(t, st, blob.BundleKey("app", "2.0.5", ""))
	})
}

// An upload URL sent after its Expires is refused.
func testPresignedExpired(t *testing.T, st blob.Store, _ Caps) {
	u := newUpload(100)
	key := blob.BundleKey("app", "1.0.7", "")
	up := presign(t, st, key, u, time.Second)
	// Both backends sign whole seconds: wait past the next one.
	time.Sleep(time.Until(up.Expires) + 1100*time.Millisecond)
	status, msg := send(t, up, u.body)
	refused(t, st, key, status, msg)
}

// PresignPut refuses what no upload could satisfy: a malformed SHA-256 or a
// negative size.
func testPresignBadInput(t *testing.T, st blob.Store, _ Caps) {
	ctx := context.Background()
	key := "bundles/app/x.zip"
	for _, sum := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("0", 63), strings.Repeat("0", 66)} {
		if _, err := st.PresignPut(ctx, key, sum, 1, time.Minute); err == nil {
			t.Errorf("PresignPut accepted sha256 %q", sum)
		}
	}
	if _, err := st.PresignPut(ctx, key, strings.Repeat("0", 64), -1, time.Minute); err == nil {
		t.Error("PresignPut accepted a negative size")
	}
}
