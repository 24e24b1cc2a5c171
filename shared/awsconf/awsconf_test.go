package awsconf

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// env is a settable environment for getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestRegion(t *testing.T) {
	for _, tc := range []struct {
		env  env
		want string
	}{
		{env{EnvRegion: "eu-west-1", EnvDefaultRegion: "us-east-2"}, "eu-west-1"},
		{env{EnvDefaultRegion: "us-east-2"}, "us-east-2"},
		{env{EnvRegion: " ", EnvDefaultRegion: "us-east-2"}, "us-east-2"},
		{env{}, ""},
	} {
		c, err := FromEnv(tc.env.get)
		if err != nil {
			t.Fatal(err)
		}
		if c.AWS.Region != tc.want {
			t.Errorf("%v: region %q, want %q", tc.env, c.AWS.Region, tc.want)
		}
		if got := c.DynamoDB().Options().Region; got != tc.want {
			t.Errorf("%v: DynamoDB client region %q", tc.env, got)
		}
		if got := c.S3().Options().Region; got != tc.want {
			t.Errorf("%v: S3 client region %q", tc.env, got)
		}
	}
}

func TestCredentialsReadAtRetrieve(t *testing.T) {
	e := env{}
	c, err := FromEnv(e.get)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.AWS.Credentials.Retrieve(ctx); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("no credentials: err = %v", err)
	}
	e[EnvAccessKeyID] = "AKIDEXAMPLE"
	if _, err := c.AWS.Credentials.Retrieve(ctx); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("key id without secret: err = %v", err)
	}
	// Set after FromEnv: the provider reads the environment when asked.
	e[EnvSecretAccessKey] = "secret"
	e[EnvSessionToken] = "token"
	e[EnvAccountID] = "123456789012"
	got, err := c.AWS.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "token",
		AccountID: "123456789012", Source: CredentialsSource}
	if got != want {
		t.Errorf("credentials %+v, want %+v", got, want)
	}
	if got.Expired() || got.CanExpire {
		t.Error("environment credentials must not expire")
	}
	// The older aliases the SDK also accepts.
	got, err = EnvCredentials{Getenv: env{EnvAccessKey: "AKIDOLD", EnvSecretKey: "oldsecret"}.get}.Retrieve(ctx)
	if err != nil || got.AccessKeyID != "AKIDOLD" || got.SecretAccessKey != "oldsecret" || got.SessionToken != "" {
		t.Errorf("aliases: %+v, %v", got, err)
	}
	// Zero value: the process environment.
	t.Setenv(EnvAccessKeyID, "AKIDPROCESS")
	t.Setenv(EnvSecretAccessKey, "processsecret")
	t.Setenv(EnvSessionToken, "")
	if got, err := (EnvCredentials{}).Retrieve(ctx); err != nil || got.AccessKeyID != "AKIDPROCESS" {
		t.Errorf("process environment: %+v, %v", got, err)
	}
}

func TestEndpoints(t *testing.T) {
	for name, tc := range map[string]struct {
		env  env
		want Endpoints
	}{
		"none":    {env{}, Endpoints{}},
		"general": {env{EnvEndpointURL: "http://localhost:4566"}, Endpoints{"http://localhost:4566", "http://localhost:4566", "http://localhost:4566"}},
		"per service over general": {env{EnvEndpointURL: "http://localhost:4566", EnvEndpointURLDynamoDB: "http://127.0.0.1:8000",
			EnvEndpointURLS3: "http://127.0.0.1:7070", EnvEndpointURLSSM: "http://127.0.0.1:9999"},
			Endpoints{"http://127.0.0.1:8000", "http://127.0.0.1:7070", "http://127.0.0.1:9999"}},
		"only s3":  {env{EnvEndpointURLS3: "http://127.0.0.1:7070"}, Endpoints{S3: "http://127.0.0.1:7070"}},
		"only ddb": {env{EnvEndpointURLDynamoDB: "http://127.0.0.1:8000"}, Endpoints{DynamoDB: "http://127.0.0.1:8000"}},
		"ignored": {env{EnvEndpointURL: "http://localhost:4566", EnvEndpointURLS3: "http://127.0.0.1:7070", EnvIgnoreEndpointURLs: "true"},
			Endpoints{}},
		"not ignored": {env{EnvEndpointURLS3: "http://127.0.0.1:7070", EnvIgnoreEndpointURLs: "false"}, Endpoints{S3: "http://127.0.0.1:7070"}},
	} {
		c, err := FromEnv(tc.env.get)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Endpoints != tc.want {
			t.Errorf("%s: endpoints %+v, want %+v", name, c.Endpoints, tc.want)
		}
		if c.AWS.BaseEndpoint != nil {
			t.Errorf("%s: aws.Config.BaseEndpoint set; endpoints are per service", name)
		}
		ddb := c.DynamoDB().Options()
		if aws.ToString(ddb.BaseEndpoint) != tc.want.DynamoDB {
			t.Errorf("%s: DynamoDB BaseEndpoint %q, want %q", name, aws.ToString(ddb.BaseEndpoint), tc.want.DynamoDB)
		}
		s3o := c.S3().Options()
		if aws.ToString(s3o.BaseEndpoint) != tc.want.S3 {
			t.Errorf("%s: S3 BaseEndpoint %q, want %q", name, aws.ToString(s3o.BaseEndpoint), tc.want.S3)
		}
		if s3o.UsePathStyle != (tc.want.S3 != "") {
			t.Errorf("%s: S3 UsePathStyle = %v with endpoint %q", name, s3o.UsePathStyle, tc.want.S3)
		}
	}
}

func TestSSMEndpoint(t *testing.T) {
	for _, tc := range []struct {
		env  env
		want string
	}{
		{env{EnvRegion: "us-east-1"}, "https://ssm.us-east-1.amazonaws.com"},
		{env{EnvRegion: "cn-north-1"}, "https://ssm.cn-north-1.amazonaws.com.cn"},
		{env{}, ""},
		{env{EnvRegion: "us-east-1", EnvEndpointURL: "http://localhost:4566"}, "http://localhost:4566"},
		{env{EnvRegion: "us-east-1", EnvEndpointURL: "http://localhost:4566", EnvEndpointURLSSM: "http://localhost:9999"}, "http://localhost:9999"},
	} {
		c, err := FromEnv(tc.env.get)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.SSMEndpoint(); got != tc.want {
			t.Errorf("%v: SSMEndpoint %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestSettings(t *testing.T) {
	c, err := FromEnv(env{EnvMaxAttempts: "5", EnvRetryMode: "adaptive", EnvAppID: "otakit",
		EnvRequestChecksumCalc: "WHEN_REQUIRED", EnvResponseChecksumValid: "when_required"}.get)
	if err != nil {
		t.Fatal(err)
	}
	if c.AWS.RetryMaxAttempts != 5 || c.AWS.RetryMode != aws.RetryModeAdaptive || c.AWS.AppID != "otakit" ||
		c.AWS.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired ||
		c.AWS.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired {
		t.Errorf("config %+v", c.AWS)
	}
	o := c.S3().Options()
	if o.RetryMaxAttempts != 5 || o.RetryMode != aws.RetryModeAdaptive || o.AppID != "otakit" ||
		o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired {
		t.Errorf("S3 options: attempts %d, mode %q, app %q", o.RetryMaxAttempts, o.RetryMode, o.AppID)
	}
	// Option functions run last.
	if !c.S3(func(o *s3.Options) { o.UsePathStyle = true }).Options().UsePathStyle {
		t.Error("S3 option function not applied")
	}
	if c.DynamoDB(func(o *dynamodb.Options) { o.Region = "ap-south-1" }).Options().Region != "ap-south-1" {
		t.Error("DynamoDB option function not applied")
	}

	c, err = FromEnv(env{}.get)
	if err != nil {
		t.Fatal(err)
	}
	if c.AWS.RetryMaxAttempts != 0 || c.AWS.RetryMode != "" || c.AWS.HTTPClient != nil || c.AWS.Retryer != nil {
		t.Errorf("defaults must be left to the service clients: %+v", c.AWS)
	}
}

func TestFromEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env  env
		want string
	}{
		{env{EnvMaxAttempts: "many"}, EnvMaxAttempts},
		{env{EnvMaxAttempts: "0"}, EnvMaxAttempts},
		{env{EnvRetryMode: "eager"}, EnvRetryMode},
		{env{EnvRequestChecksumCalc: "always"}, EnvRequestChecksumCalc},
		{env{EnvResponseChecksumValid: "never"}, EnvResponseChecksumValid},
		{env{EnvIgnoreEndpointURLs: "perhaps"}, EnvIgnoreEndpointURLs},
	} {
		if _, err := FromEnv(tc.env.get); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want one naming %s", tc.env, err, tc.want)
		}
	}
}

// A client built here signs its requests with the environment's credentials for the
// region and sends them to the configured endpoint.
func TestSignedRequests(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			_, _ = w.Write([]byte(`{"TableNames":[]}`))
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated></ListBucketResult>`))
	}))
	defer srv.Close()
	e := env{EnvRegion: "eu-central-1", EnvEndpointURL: srv.URL, EnvAccessKeyID: "AKIDEXAMPLE",
		EnvSecretAccessKey: "secret", EnvSessionToken: "session-token"}
	c, err := FromEnv(e.get)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.DynamoDB().ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("DynamoDB ListTables: %v", err)
	}
	if _, err := c.S3().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("b")}); err != nil {
		t.Fatalf("S3 ListObjectsV2: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	for i, svc := range []string{"dynamodb", "s3"} {
		r := got[i]
		a := r.Header.Get("Authorization")
		if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(a, "/eu-central-1/"+svc+"/aws4_request") {
			t.Errorf("%s: Authorization %q", svc, a)
		}
		if r.Header.Get("X-Amz-Security-Token") != "session-token" {
			t.Errorf("%s: session token not sent", svc)
		}
	}
	if p := got[1].URL.Path; p != "/b" && p != "/b/" {
		t.Errorf("S3 path %q: want path-style addressing on a custom endpoint", p)
	}
}
