package awsclient

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/blob/s3blob"
	"github.com/otakit/ota/shared/testenv"
)

// isolateAWSEnv points the SDK's default chain at the versitygw test credentials
// (infra/emulators/versitygw.sh) and nothing else.
func isolateAWSEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testsecret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", testenv.Region)
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
}

func TestS3FromEnvPathStyle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		env, value string
		pathStyle  bool
	}{
		{"", "", false},
		{"AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1", true},
		{"AWS_ENDPOINT_URL", "http://127.0.0.1:1", true},
	} {
		isolateAWSEnv(t)
		if tc.env != "" {
			t.Setenv(tc.env, tc.value)
		}
		client, err := S3FromEnv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o := client.Options()
		if o.UsePathStyle != tc.pathStyle {
			t.Errorf("%s=%q: UsePathStyle = %v, want %v", tc.env, tc.value, o.UsePathStyle, tc.pathStyle)
		}
		if o.Region != testenv.Region {
			t.Errorf("Region = %q", o.Region)
		}
	}
	isolateAWSEnv(t)
	client, err := S3FromEnv(ctx, func(o *s3.Options) { o.UsePathStyle = true })
	if err != nil || !client.Options().UsePathStyle {
		t.Errorf("option functions not applied: %v", err)
	}
}

func TestDynamoDBFromEnv(t *testing.T) {
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
	client, err := DynamoDBFromEnv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if o := client.Options(); o.Region != testenv.Region || aws.ToString(o.BaseEndpoint) != "http://127.0.0.1:1" {
		t.Errorf("region %q, endpoint %q", o.Region, aws.ToString(o.BaseEndpoint))
	}
}

// The client from the environment talks to the emulator with SigV4 it accepts.
func TestS3FromEnvOnEmulator(t *testing.T) {
	endpoint := testenv.S3Endpoint(t)
	isolateAWSEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", endpoint)
	ctx := context.Background()
	client, err := S3FromEnv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bucket := "ota-test-" + testenv.RandSuffix()
	if err := s3blob.EnsureBucket(ctx, client, bucket); err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	st := s3blob.New(client, nil, bucket)
	t.Cleanup(func() {
		_ = st.Delete(context.Background(), "files/ab/abc")
		_, _ = client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: &bucket})
	})
	if err := st.Put(ctx, "files/ab/abc", strings.NewReader("abc"), 3, ""); err != nil {
		t.Fatalf("Put via env client: %v", err)
	}
	rc, _, err := st.Open(ctx, "files/ab/abc", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); string(got) != "bc" {
		t.Fatalf("Open via env client = %q", got)
	}
}
