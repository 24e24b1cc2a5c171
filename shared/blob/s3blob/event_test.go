package s3blob

import (
	"net/url"
	"testing"
)

// A record as S3 delivers it to Lambda (trimmed).
const awsEvent = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
"eventTime":"2026-11-22T14:04:20.123Z","eventName":"ObjectCreated:Put",
"s3":{"s3SchemaVersion":"1.0","configurationId":"patch","bucket":{"name":"ota-bundles","arn":"arn:aws:s3:::ota-bundles"},
"object":{"key":"bundles/app/2.0.0%2Bbuild.7.zip","size":18,"eTag":"abc","sequencer":"0A1B"}}}]}`

// A record as versitygw v1.8.0 posts it to --event-webhook-url (captured).
const versitygwEvent = `{"Records":[{"eventVersion":"2.2","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-22T14:04:20Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"PrincipalId":"test"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"","x-amz-id-2":""},"s3":{"s3SchemaVersion":"1.0","configurationId":"webhook-global","bucket":{"name":"ota-test-c12de40b","ownerIdentity":{"PrincipalId":"test"},"arn":"arn:aws:s3:::/ota-test-c12de40b/bundles/app/2.0.0+build.7.zip"},"object":{"key":"bundles/app/2.0.0+build.7.zip","size":18,"eTag":"\"eb2c5cfc4fe810f29541fea70877caba\"","versionId":null,"sequencer":"1"}},"glacierEventData":{"restoreEventData":{"lifecycleRestorationExpiryTime":"","lifecycleRestoreStorageClass":""}}}]}`

func TestDecodeEvent(t *testing.T) {
	for name, body := range map[string]string{"aws": awsEvent, "versitygw": versitygwEvent} {
		ev, err := DecodeEvent([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ev.Records) != 1 {
			t.Fatalf("%s: %d records", name, len(ev.Records))
		}
		r := ev.Records[0]
		if r.EventName != "ObjectCreated:Put" || r.S3.Object.Size != 18 || r.EventTime.IsZero() {
			t.Errorf("%s: record %+v", name, r)
		}
		if r.S3.Object.Key != "bundles/app/2.0.0%2Bbuild.7.zip" || r.S3.Object.URLDecodedKey != "bundles/app/2.0.0+build.7.zip" {
			t.Errorf("%s: key %q decoded %q", name, r.S3.Object.Key, r.S3.Object.URLDecodedKey)
		}
	}
	test, err := DecodeEvent([]byte(`{"Service":"S3","Event":"s3:TestEvent","Time":"2026-11-22T14:04:20Z","Bucket":"Test-Bucket"}`))
	if err != nil || len(test.Records) != 0 {
		t.Fatalf("test event: %+v, %v", test, err)
	}
	if _, err := DecodeEvent([]byte(`{"Records":[{"eventTime":"yesterday"}]}`)); err == nil {
		t.Fatal("accepted a bad eventTime")
	}
}

func TestEventKey(t *testing.T) {
	for _, k := range []string{"bundles/a/1.0.zip", "files/sp/a b+c=d&e.bin", "x/ü/~._-"} {
		enc := EventKey(k)
		if dec, err := url.QueryUnescape(enc); err != nil || dec != k {
			t.Errorf("EventKey(%q) = %q, unescapes to %q, %v", k, enc, dec, err)
		}
	}
	if got := EventKey("files/sp/a b+c.bin"); got != "files/sp/a+b%2Bc.bin" {
		t.Errorf("EventKey = %q", got)
	}
}
