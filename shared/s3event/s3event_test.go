package s3event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/fault"
	"github.com/otakit/ota/shared/publish"
)

type fakeIngester struct {
	keys []string
	errs map[string]error
}

func (f *fakeIngester) Ingest(_ context.Context, key string) error {
	f.keys = append(f.keys, key)
	return f.errs[key]
}

func rec(event, bucket, key string) events.S3EventRecord {
	var r events.S3EventRecord
	r.EventSource, r.EventName = "aws:s3", event
	r.S3.Bucket.Name, r.S3.Object.Key = bucket, key
	return r
}

func TestKey(t *testing.T) {
	for raw, want := range map[string]string{
		"bundles/com.example.app/1.0.0.zip":      "bundles/com.example.app/1.0.0.zip",
		"bundles/my+app/1.0.0%2Bbuild.5.zip":     "bundles/my app/1.0.0+build.5.zip",
		"bundles/com.example.app/1.0.0-rc.1.zip": "bundles/com.example.app/1.0.0-rc.1.zip",
		"bundles/%C3%A9t%C3%A9/2.zip":            "bundles/été/2.zip",
	} {
		got, err := Key(raw)
		if err != nil || got != want {
			t.Errorf("Key(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	if _, err := Key("bundles/bad%zz.zip"); err == nil {
		t.Error("Key accepted a malformed escape")
	}
}

func TestHandle(t *testing.T) {
	retry := errors.New("dynamodb throttled")
	ing := &fakeIngester{errs: map[string]error{
		"bundles/app/2.0.0.zip":                  fmt.Errorf("ingest: %w", publish.ErrNoRelease),
		"bundles/app/3.0.0.zip":                  &publish.Error{Kind: fault.Unprocessable, Code: "checksum_mismatch", Msg: "bad bytes"},
		"bundles/app/4.0.0.zip":                  fmt.Errorf("ingest: %w", retry),
		"bundles/app/1.0.0+b.zip":                nil,
		"bundles/app/8.0.0/00112233445566ff.zip": fmt.Errorf("ingest: %w", publish.ErrStaleUpload),
	}}
	h := Handler{Ingester: ing, Bucket: "bkt"}
	err := h.Handle(context.Background(), events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "bundles/app/1.0.0.zip"),
		rec("ObjectCreated:CompleteMultipartUpload", "bkt", "bundles/app/1.0.0%2Bb.zip"),
		rec("ObjectCreated:Put", "bkt", "bundles/app/2.0.0.zip"),                  // no release: dropped
		rec("ObjectCreated:Put", "bkt", "bundles/app/3.0.0.zip"),                  // refused: dropped
		rec("ObjectCreated:Put", "bkt", "bundles/app/4.0.0.zip"),                  // retryable
		rec("ObjectRemoved:Delete", "bkt", "bundles/app/5.0.0.zip"),               // not a creation
		rec("ObjectCreated:Put", "other", "bundles/app/6.0.0.zip"),                // other bucket
		rec("ObjectCreated:Put", "bkt", "files/ab/abcdef"),                        // not a bundle
		rec("ObjectCreated:Put", "bkt", "bundles/app/x/7.0.0.zip"),                // not a bundle
		rec("ObjectCreated:Put", "bkt", "bundles/app/8.0.0/00112233445566ff.zip"), // earlier creation: dropped
		rec("ObjectCreated:Put", "bkt", "bundles/app/9.0.0/0011.zip"),             // not a nonce
		rec("ObjectCreated:Put", "bkt", "bundles/app/%zz.zip"),                    // undecodable
	}})
	if !errors.Is(err, retry) {
		t.Fatalf("Handle error = %v, want the retryable one", err)
	}
	if Permanent(err) {
		t.Error("joined retryable error reported as permanent")
	}
	want := []string{"bundles/app/1.0.0.zip", "bundles/app/1.0.0+b.zip", "bundles/app/2.0.0.zip",
		"bundles/app/3.0.0.zip", "bundles/app/4.0.0.zip", "bundles/app/8.0.0/00112233445566ff.zip"}
	if !reflect.DeepEqual(ing.keys, want) {
		t.Errorf("ingested %q, want %q", ing.keys, want)
	}
}

func TestHandleAllPermanentIsNil(t *testing.T) {
	ing := &fakeIngester{errs: map[string]error{"bundles/a/1.zip": publish.ErrNoRelease}}
	if err := (Handler{Ingester: ing}).Handle(context.Background(), events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "any-bucket", "bundles/a/1.zip"),
	}}); err != nil {
		t.Fatalf("Handle = %v, want nil for a permanent failure", err)
	}
	if err := (Handler{Ingester: ing}).Handle(context.Background(), events.S3Event{}); err != nil {
		t.Fatalf("empty event: %v", err)
	}
}

// The sample event shipped for `sam local invoke` must decode and reach Ingest.
func TestSampleEvent(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "events", "s3-put.json"))
	if err != nil {
		t.Skip("no events/s3-put.json:", err)
	}
	var ev events.S3Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	ing := &fakeIngester{}
	if err := (Handler{Ingester: ing}).Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if want := []string{"bundles/com.example.app/1.0.0.zip"}; !reflect.DeepEqual(ing.keys, want) {
		t.Errorf("sample event ingested %q, want %q", ing.keys, want)
	}
}

// fakePipeline ingests bundles and handles patch requests, like *publish.Pipeline.
type fakePipeline struct {
	fakeIngester
	requests []string
	reqErrs  map[string]error
}

func (f *fakePipeline) HandlePatchRequest(_ context.Context, key string) error {
	f.requests = append(f.requests, key)
	return f.reqErrs[key]
}

func TestHandlePatchRequests(t *testing.T) {
	retry := errors.New("s3 slow down")
	p := &fakePipeline{reqErrs: map[string]error{
		"patch-requests/flux/app/1.0.0/3.0.0": &publish.Error{Kind: fault.NotFound, Code: "patch_request_obsolete", Msg: "gone"},
		"patch-requests/ota/app/1.0.0/4.0.0":  fmt.Errorf("patch: %w", retry),
	}}
	err := (Handler{Ingester: p, Bucket: "bkt"}).Handle(context.Background(), events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/2.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/ota/app/1.0.0%2Bb/2.0.0"), // '+' in a version
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/3.0.0"),    // refused: dropped
		rec("ObjectCreated:Put", "bkt", "patch-requests/ota/app/1.0.0/4.0.0"),     // retryable
		rec("ObjectCreated:Put", "bkt", "bundles/app/5.0.0.zip"),                  // still ingested
		// Invalid markers never reach the pipeline.
		rec("ObjectCreated:Put", "bkt", "patch-requests/xor/app/1.0.0/2.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/2.0.0/x"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/1.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/latest/1.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/.app/1.0.0/2.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/../2.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/a%2Fb/1.0.0/2.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app//2.0.0"),
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/2.0.0%3F"),
		rec("ObjectCreated:Put", "other", "patch-requests/flux/app/1.0.0/2.0.0"),  // other bucket
		rec("ObjectRemoved:Delete", "bkt", "patch-requests/flux/app/1.0.0/2.0.0"), // the marker's own deletion
	}})
	if !errors.Is(err, retry) || Permanent(err) {
		t.Fatalf("Handle error = %v, want the retryable one", err)
	}
	want := []string{"patch-requests/flux/app/1.0.0/2.0.0", "patch-requests/ota/app/1.0.0+b/2.0.0",
		"patch-requests/flux/app/1.0.0/3.0.0", "patch-requests/ota/app/1.0.0/4.0.0"}
	if !reflect.DeepEqual(p.requests, want) {
		t.Errorf("patch requests handled %q, want %q", p.requests, want)
	}
	if !reflect.DeepEqual(p.keys, []string{"bundles/app/5.0.0.zip"}) {
		t.Errorf("ingested %q", p.keys)
	}

	// An explicit PatchRequests wins; an Ingester without the method drops requests.
	other := &fakePipeline{}
	ing := &fakeIngester{}
	if err := (Handler{Ingester: ing, PatchRequests: other}).Handle(context.Background(), events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/2.0.0"),
	}}); err != nil || len(other.requests) != 1 || len(ing.keys) != 0 {
		t.Errorf("explicit PatchRequests: %v, %q, %q", err, other.requests, ing.keys)
	}
	if err := (Handler{Ingester: ing}).Handle(context.Background(), events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "patch-requests/flux/app/1.0.0/2.0.0"),
	}}); err != nil || len(ing.keys) != 0 {
		t.Errorf("no patch request handler: %v, %q", err, ing.keys)
	}
}

// precomputingIngester also precomputes, like *publish.Pipeline.
type precomputingIngester struct {
	fakeIngester
	calls     []string
	deadlines []time.Time
	err       error
}

func (p *precomputingIngester) Precompute(ctx context.Context, app, version string) error {
	p.calls = append(p.calls, app+"@"+version)
	d, _ := ctx.Deadline()
	p.deadlines = append(p.deadlines, d)
	return p.err
}

// Patches are precomputed after a successful Ingest, in the same invocation, with a
// deadline a margin before the invocation's; not after a failed one, not without
// time left, and a failure to precompute is not retried.
func TestHandlePrecomputesAfterIngest(t *testing.T) {
	ing := &precomputingIngester{fakeIngester: fakeIngester{errs: map[string]error{
		"bundles/app/2.0.0.zip": &publish.Error{Kind: fault.Unprocessable, Code: "checksum_mismatch", Msg: "bad bytes"},
		"bundles/app/3.0.0.zip": errors.New("throttled"),
	}}, err: errors.New("patch failed")}
	deadline := time.Now().Add(5 * time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err := (Handler{Ingester: ing}).Handle(ctx, events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "bundles/app/1.0.0.zip"),
		rec("ObjectCreated:Put", "bkt", "bundles/app/2.0.0.zip"),
		rec("ObjectCreated:Put", "bkt", "bundles/app/3.0.0.zip"),
	}})
	if err == nil || Permanent(err) || strings.Contains(err.Error(), "patch failed") {
		t.Fatalf("Handle = %v, want only the retryable ingest failure", err)
	}
	if !reflect.DeepEqual(ing.calls, []string{"app@1.0.0"}) {
		t.Fatalf("precomputed %q, want app@1.0.0 only", ing.calls)
	}
	if want := deadline.Add(-DefaultPrecomputeMargin); !ing.deadlines[0].Equal(want) {
		t.Errorf("precompute deadline %v, want %v (the margin before the invocation's)", ing.deadlines[0], want)
	}

	// Less than the margin left: nothing is started.
	ing.calls = nil
	short, cancel2 := context.WithTimeout(context.Background(), DefaultPrecomputeMargin/2)
	defer cancel2()
	if err := (Handler{Ingester: ing}).Handle(short, events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "bundles/app/1.0.0.zip"),
	}}); err != nil || len(ing.calls) != 0 {
		t.Errorf("with no time left: %v, precomputed %q", err, ing.calls)
	}
	// An explicit Precompute wins; an Ingester without the method precomputes nothing.
	other := &precomputingIngester{}
	plain := &fakeIngester{}
	if err := (Handler{Ingester: plain, Precompute: other, PrecomputeMargin: time.Second}).Handle(ctx, events.S3Event{Records: []events.S3EventRecord{
		rec("ObjectCreated:Put", "bkt", "bundles/app/4.0.0.zip"),
	}}); err != nil || !reflect.DeepEqual(other.calls, []string{"app@4.0.0"}) || !other.deadlines[0].Equal(deadline.Add(-time.Second)) {
		t.Errorf("explicit Precompute: %v, %q, %v", err, other.calls, other.deadlines)
	}
}

type deadlineRequests struct{ deadlines []time.Time }

func (d *deadlineRequests) HandlePatchRequest(ctx context.Context, _ string) error {
	dl, _ := ctx.Deadline()
	d.deadlines = append(d.deadlines, dl)
	return nil
}

// Requested patches get the same margin before the invocation's deadline; without
// time left the event is retried.
func TestPatchRequestWithinDeadline(t *testing.T) {
	reqs := &deadlineRequests{}
	h := Handler{Ingester: &fakeIngester{}, PatchRequests: reqs}
	ev := events.S3Event{Records: []events.S3EventRecord{rec("ObjectCreated:Put", "bkt", "patch-requests/ota/app/1.0.0/2.0.0")}}
	deadline := time.Now().Add(5 * time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := h.Handle(ctx, ev); err != nil || len(reqs.deadlines) != 1 || !reqs.deadlines[0].Equal(deadline.Add(-DefaultPrecomputeMargin)) {
		t.Fatalf("Handle = %v, deadlines %v", err, reqs.deadlines)
	}
	short, cancel2 := context.WithTimeout(context.Background(), DefaultPrecomputeMargin/2)
	defer cancel2()
	if err := h.Handle(short, ev); err == nil || Permanent(err) || len(reqs.deadlines) != 1 {
		t.Errorf("no time left: %v (want a retryable error), %d calls", err, len(reqs.deadlines))
	}
}

// busyIngester is held by another worker for its first busy calls.
type busyIngester struct {
	busy, calls int
	precomputes int
}

func (b *busyIngester) Ingest(context.Context, string) error {
	b.calls++
	if b.calls <= b.busy {
		return fmt.Errorf("ingest: %w", publish.ErrBusy)
	}
	return nil
}

func (b *busyIngester) Precompute(context.Context, string, string) error {
	b.precomputes++
	return nil
}

// A duplicate event that finds another invocation validating the bundle waits for
// it (and precomputes nothing itself twice: Precompute runs once per release); if
// the other stays busy past this invocation's deadline, the event is retried.
func TestHandleWaitsForBusyIngest(t *testing.T) {
	ev := events.S3Event{Records: []events.S3EventRecord{rec("ObjectCreated:Put", "bkt", "bundles/app/1.0.0/00112233445566ff.zip")}}
	ing := &busyIngester{busy: 2}
	if err := (Handler{Ingester: ing}).Handle(context.Background(), ev); err != nil || ing.calls != 3 || ing.precomputes != 1 {
		t.Fatalf("Handle = %v after %d calls, %d precomputes; want nil after 3, 1", err, ing.calls, ing.precomputes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stuck := &busyIngester{busy: 1 << 30}
	err := (Handler{Ingester: stuck, PrecomputeMargin: 800 * time.Millisecond}).Handle(ctx, ev)
	if !errors.Is(err, publish.ErrBusy) || Permanent(err) || stuck.precomputes != 0 {
		t.Fatalf("Handle = %v (permanent %v, %d precomputes), want a retryable ErrBusy", err, Permanent(err), stuck.precomputes)
	}
}
