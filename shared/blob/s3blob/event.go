package s3blob

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// DecodeEvent decodes an S3 event notification body into events.S3Event exactly as
// S3 delivers it to Lambda, also when the body comes from versitygw's
// --event-webhook-url (used by local end-to-end tests). versitygw v1.8.0 differs from
// S3, and DecodeEvent turns its records into S3's shape:
//   - every record has "glacierEventData" with an empty lifecycleRestorationExpiryTime,
//     which a plain json.Unmarshal into events.S3Event rejects (time.Time from ""):
//     empty blocks are dropped;
//   - event names carry an "s3:" prefix ("s3:ObjectCreated:Put"; S3 sends
//     "ObjectCreated:Put"): the prefix is removed;
//   - the object key is sent as is, where S3 URL-encodes it (spaces as '+'): the key is
//     encoded the S3 way, so Key and URLDecodedKey mean what they mean on AWS.
//
// Not smoothed over: versitygw reports size 0 for CompleteMultipartUpload, and posts an
// s3:TestEvent at startup (decodes to zero records; S3 sends one too, to queues).
func DecodeEvent(body []byte) (events.S3Event, error) {
	var ev events.S3Event
	err := json.Unmarshal(body, &ev)
	if err != nil {
		fixed, ok := dropEmptyGlacierData(body)
		if !ok {
			return events.S3Event{}, fmt.Errorf("decode s3 event: %w", err)
		}
		ev = events.S3Event{}
		if err := json.Unmarshal(fixed, &ev); err != nil {
			return events.S3Event{}, fmt.Errorf("decode s3 event: %w", err)
		}
	}
	for i := range ev.Records {
		r := &ev.Records[i]
		if name, ok := strings.CutPrefix(r.EventName, "s3:"); ok { // versitygw
			r.EventName = name
			r.S3.Object.URLDecodedKey = r.S3.Object.Key
			r.S3.Object.Key = EventKey(r.S3.Object.Key)
		}
	}
	return ev, nil
}

// EventKey encodes an object key the way S3 writes it into event notifications
// (form encoding, spaces as '+', slashes kept); url.QueryUnescape reverses it.
func EventKey(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

func dropEmptyGlacierData(body []byte) ([]byte, bool) {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil {
		return nil, false
	}
	var records []map[string]json.RawMessage
	if json.Unmarshal(raw["Records"], &records) != nil {
		return nil, false
	}
	for _, r := range records {
		var g struct {
			RestoreEventData struct {
				LifecycleRestorationExpiryTime string `json:"lifecycleRestorationExpiryTime"`
			} `json:"restoreEventData"`
		}
		if gd, ok := r["glacierEventData"]; ok && json.Unmarshal(gd, &g) == nil &&
			g.RestoreEventData.LifecycleRestorationExpiryTime == "" {
			delete(r, "glacierEventData")
		}
	}
	rb, err := json.Marshal(records)
	if err != nil {
		return nil, false
	}
	raw["Records"] = rb
	fixed, err := json.Marshal(raw)
	return fixed, err == nil
}
