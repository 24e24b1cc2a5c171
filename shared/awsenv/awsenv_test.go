package awsenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/awsconf"
	"github.com/otakit/ota/shared/cdn/awscdn"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	o, err := FromEnv(envOf(map[string]string{
		EnvTable: "ota-table", EnvBucket: "ota-bucket", EnvPublicURL: "https://ota.example.com/",
		EnvDefaultApp: "com.example.app", EnvStateTTL: "10s", EnvURLTTL: "3600", EnvPatchBases: "3",
		EnvCDNDomain: "d111111abcdef8.cloudfront.net", EnvCDNKeySSM: "/otakit/cloudfront-key", EnvLogLevel: "debug",
		EnvAccessLogEvery: "1", EnvCapgoURLTTL: "720h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Table != "ota-table" || o.Bucket != "ota-bucket" || o.StateTTL != 10*time.Second || o.URLTTL != time.Hour ||
		o.PatchBases != 3 || o.CDNKeyParameter != "/otakit/cloudfront-key" || o.Log == nil {
		t.Errorf("FromEnv = %+v", o)
	}
	cfg := o.Config()
	if cfg.PublicURL != "https://ota.example.com" || cfg.DefaultApp != "com.example.app" || cfg.StateTTL != 10*time.Second || cfg.URLTTL != time.Hour ||
		cfg.AccessLogEvery != 1 || cfg.CapgoURLTTL != 30*24*time.Hour {
		t.Errorf("Config = %+v", cfg)
	}
	if !o.Log.Enabled(context.Background(), -4) {
		t.Error("debug level not applied")
	}
}

func TestFromEnvDefaults(t *testing.T) {
	o, err := FromEnv(envOf(map[string]string{EnvTable: "t", EnvBucket: "b", EnvCDNDomain: "", EnvPatchBases: "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.StateTTL != 0 || o.URLTTL != 0 || o.CapgoURLTTL != 0 || o.CDNDomain != "" {
		t.Errorf("defaults = %+v", o)
	}
	if o.Config().AccessLogEvery != 100 {
		t.Errorf("access lines on Lambda: 1 in %d, want 1 in 100 by default", o.Config().AccessLogEvery)
	}
	if o.PatchBases >= 0 {
		t.Errorf("OTA_PATCH_BASES=0 must turn patches off, got PatchBases %d", o.PatchBases)
	}
	if o.Log.Enabled(context.Background(), -4) {
		t.Error("default level includes debug")
	}
	// Lambda's advanced logging controls set AWS_LAMBDA_LOG_LEVEL.
	o, err = FromEnv(envOf(map[string]string{EnvTable: "t", EnvBucket: "b", "AWS_LAMBDA_LOG_LEVEL": "WARN"}))
	if err != nil || o.Log.Enabled(context.Background(), 0) {
		t.Errorf("AWS_LAMBDA_LOG_LEVEL=WARN: err %v, info enabled %v", err, o.Log.Enabled(context.Background(), 0))
	}
}

func TestFromEnvErrors(t *testing.T) {
	base := map[string]string{EnvTable: "t", EnvBucket: "b"}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no table":         {map[string]string{EnvTable: ""}, EnvTable},
		"no bucket":        {map[string]string{EnvBucket: " "}, EnvBucket},
		"bad state ttl":    {map[string]string{EnvStateTTL: "soon"}, EnvStateTTL},
		"negative url ttl": {map[string]string{EnvURLTTL: "-5s"}, EnvURLTTL},
		"url ttl too long": {map[string]string{EnvURLTTL: "200h"}, EnvURLTTL},
		"capgo ttl long":   {map[string]string{EnvCapgoURLTTL: "721h"}, EnvCapgoURLTTL},
		"bad capgo ttl":    {map[string]string{EnvCapgoURLTTL: "a week"}, EnvCapgoURLTTL},
		"bad patch bases":  {map[string]string{EnvPatchBases: "many"}, EnvPatchBases},
		"bad log level":    {map[string]string{EnvLogLevel: "loud"}, EnvLogLevel},
		"bad access every": {map[string]string{EnvAccessLogEvery: "0"}, EnvAccessLogEvery},
		"cdn without key":  {map[string]string{EnvCDNDomain: "d1.cloudfront.net", EnvCDNKeyPairID: "K1"}, EnvCDNKeySSM},
		"cdn without id":   {map[string]string{EnvCDNDomain: "d1.cloudfront.net", EnvCDNPrivateKey: "pem"}, EnvCDNKeyPairID},
		"cdn url":          {map[string]string{EnvCDNDomain: "https://d1.cloudfront.net/x", EnvCDNKeyPairID: "K1", EnvCDNPrivateKey: "pem"}, "bare domain"},
		"relative public":  {map[string]string{EnvPublicURL: "ota.example.com"}, EnvPublicURL},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		_, err := FromEnv(envOf(env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
}

// offline clients: building deps makes no AWS call.
func offlineClients() (*dynamodb.Client, *s3.Client) {
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	return dynamodb.New(dynamodb.Options{Region: "us-east-1", Credentials: creds}),
		s3.New(s3.Options{Region: "us-east-1", Credentials: creds})
}

func testKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func TestDepsS3Presign(t *testing.T) {
	ddb, s3c := offlineClients()
	d, err := Deps(context.Background(), Options{Table: "t", Bucket: "ota-bucket", PatchBases: 7, DynamoDB: ddb, S3: s3c})
	if err != nil {
		t.Fatal(err)
	}
	if d.Store == nil || d.Blobs == nil || d.Pipeline == nil || d.Log == nil {
		t.Fatalf("incomplete deps %+v", d)
	}
	if d.Pipeline.PatchBases != 7 {
		t.Errorf("PatchBases = %d", d.Pipeline.PatchBases)
	}
	if _, ok := d.URLs.(*awscdn.S3Presign); !ok {
		t.Fatalf("URLs = %T, want S3 presigned GETs without a CDN", d.URLs)
	}
	u, err := d.URLs.URL(context.Background(), "bundles/com.example.app/1.0.0.zip", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "ota-bucket") || !strings.Contains(u, "bundles/com.example.app/1.0.0.zip") || !strings.Contains(u, "X-Amz-Signature=") {
		t.Errorf("presigned URL %s", u)
	}

	d, err = Deps(context.Background(), Options{Table: "t", Bucket: "b", PatchBases: -1, DynamoDB: ddb, S3: s3c})
	if err != nil || d.Pipeline.PatchBases != 0 {
		t.Errorf("PatchBases -1: %v, %d", err, d.Pipeline.PatchBases)
	}
}

func TestDepsCloudFrontFromPEM(t *testing.T) {
	ddb, s3c := offlineClients()
	d, err := Deps(context.Background(), Options{Table: "t", Bucket: "b", DynamoDB: ddb, S3: s3c,
		CDNDomain: "d111111abcdef8.cloudfront.net", CDNKeyPairID: "K2JCJMDEHXQW5F", CDNPrivateKeyPEM: testKeyPEM(t)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.URLs.URL(context.Background(), "files/ab/abcdef", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	if pu.Host != "d111111abcdef8.cloudfront.net" || pu.Path != "/files/ab/abcdef" || q.Get("Key-Pair-Id") != "K2JCJMDEHXQW5F" ||
		q.Get("Signature") == "" || q.Get("Expires") == "" {
		t.Errorf("signed URL %s", u)
	}
	if _, err := Deps(context.Background(), Options{Table: "t", Bucket: "b", DynamoDB: ddb, S3: s3c,
		CDNDomain: "d1.cloudfront.net", CDNKeyPairID: "K1", CDNPrivateKeyPEM: "not a key"}); err == nil {
		t.Error("a bad private key was accepted")
	}
}

// fakeSSM serves GetParameter like Parameter Store and records what it got. Each
// entry of fail answers one request before the parameters are served.
type fakeSSM struct {
	mu     sync.Mutex
	params map[string]string
	fail   []http.HandlerFunc
	got    []*http.Request
	bodies []map[string]any
}

// calls is the number of requests served so far.
func (f *fakeSSM) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

// set changes a parameter and queues failures, between requests.
func (f *fakeSSM) set(name, value string, fail ...http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.params[name] = value
	f.fail = append(f.fail, fail...)
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var in map[string]any
	_ = json.Unmarshal(b, &in)
	f.mu.Lock()
	f.got = append(f.got, r)
	f.bodies = append(f.bodies, in)
	var fail http.HandlerFunc
	if len(f.fail) > 0 {
		fail, f.fail = f.fail[0], f.fail[1:]
	}
	name, _ := in["Name"].(string)
	v, ok := f.params[name]
	f.mu.Unlock()
	if fail != nil {
		fail(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"Parameter ` + name + ` not found."}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": name, "Type": "SecureString", "Value": v, "Version": 1}})
}

// isolate points the SDK's default configuration at fake credentials and nothing else.
func isolate(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL", "")
}

func TestSSMGetParameter(t *testing.T) {
	isolate(t)
	f := &fakeSSM{params: map[string]string{"/otakit/key": "-----BEGIN X-----\nabc\n-----END X-----\n"}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	cfg, err := awsconf.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, err := ssmGetParameter(context.Background(), cfg, "/otakit/key")
	if err != nil {
		t.Fatal(err)
	}
	if v != f.params["/otakit/key"] {
		t.Errorf("value %q (newlines must survive)", v)
	}
	r, body := f.got[0], f.bodies[0]
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Errorf("request %s %s %v", r.Method, r.URL.Path, r.Header)
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(a, "/eu-west-1/ssm/aws4_request") {
		t.Errorf("Authorization %q", a)
	}
	if r.Header.Get("X-Amz-Security-Token") != "session-token" {
		t.Error("session token not sent")
	}
	if body["Name"] != "/otakit/key" || body["WithDecryption"] != true {
		t.Errorf("body %v", body)
	}

	_, err = ssmGetParameter(context.Background(), cfg, "/otakit/missing")
	if err == nil || !strings.Contains(err.Error(), "ParameterNotFound") {
		t.Errorf("missing parameter: %v", err)
	}
}

// Without a region and an endpoint there is nothing to call.
func TestSSMNoRegion(t *testing.T) {
	_, err := ssmGetParameter(context.Background(), awsconf.Config{}, "/otakit/key")
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("err = %v", err)
	}
}

// Deps builds its clients from the environment (awsconf) when none are given.
func TestDepsClientsFromEnv(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7070")
	d, err := Deps(context.Background(), Options{Table: "t", Bucket: "ota-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.URLs.URL(context.Background(), "bundles/a/1.zip", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Path-style on the S3 endpoint from the environment, signed for its region.
	if !strings.HasPrefix(u, "http://127.0.0.1:7070/ota-bucket/bundles/a/1.zip?") || !strings.Contains(u, "%2Feu-west-1%2Fs3%2Faws4_request") {
		t.Errorf("presigned URL %s", u)
	}

	c := awsconf.Config{AWS: aws.Config{Region: "ap-south-1", Credentials: awsconf.EnvCredentials{}},
		Endpoints: awsconf.Endpoints{S3: "http://127.0.0.1:9000"}}
	d, err = Deps(context.Background(), Options{Table: "t", Bucket: "b", AWS: &c})
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := d.URLs.URL(context.Background(), "k", time.Minute); !strings.HasPrefix(u, "http://127.0.0.1:9000/b/k?") || !strings.Contains(u, "ap-south-1") {
		t.Errorf("with Options.AWS: %s", u)
	}

	t.Setenv("AWS_MAX_ATTEMPTS", "none")
	if _, err := Deps(context.Background(), Options{Table: "t", Bucket: "b"}); err == nil || !strings.Contains(err.Error(), "AWS_MAX_ATTEMPTS") {
		t.Errorf("bad AWS environment: %v", err)
	}
}

// keyJSON is a key parameter's value in the JSON form.
func keyJSON(t *testing.T, id, pem string) string {
	t.Helper()
	b, err := json.Marshal(CDNKey{KeyPairID: id, PrivateKeyPEM: pem})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// keyPairIDOf returns the Key-Pair-Id a signed URL names.
func keyPairIDOf(t *testing.T, signed string) string {
	t.Helper()
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("Key-Pair-Id")
}

// Load reads everything from the environment, including the key pair id and the
// private key together from one SSM parameter.
func TestLoadWithKeyFromSSM(t *testing.T) {
	isolate(t)
	f := &fakeSSM{params: map[string]string{"/otakit/cloudfront-key": keyJSON(t, "K2JCJMDEHXQW5F", testKeyPEM(t))}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SSM": srv.URL, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7070", EnvTable: "ota-table", EnvBucket: "ota-bucket",
		EnvCDNDomain: "d111111abcdef8.cloudfront.net", EnvCDNKeySSM: "/otakit/cloudfront-key", EnvCDNKeyPairID: "",
		EnvCDNPrivateKeySSM: "", EnvCDNPrivateKey: "", EnvURLTTL: "15m",
		EnvStateTTL: "", EnvPatchBases: "", EnvPublicURL: "", EnvDefaultApp: "", EnvLogLevel: "error",
	} {
		t.Setenv(k, v)
	}
	d, cfg, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URLTTL != 15*time.Minute {
		t.Errorf("URLTTL = %v", cfg.URLTTL)
	}
	if f.calls() != 1 {
		t.Errorf("%d SSM calls, want 1", f.calls())
	}
	u, err := d.URLs.URL(context.Background(), "bundles/a/1.zip", time.Minute)
	if err != nil || !strings.HasPrefix(u, "https://d111111abcdef8.cloudfront.net/bundles/a/1.zip?") || keyPairIDOf(t, u) != "K2JCJMDEHXQW5F" {
		t.Errorf("URL = %q, %v", u, err)
	}

	// Not written yet (the CDN was just turned on): S3 presigned GETs meanwhile.
	t.Setenv(EnvCDNKeySSM, "/otakit/missing")
	d, _, err = Load(context.Background())
	if err != nil {
		t.Fatalf("missing key parameter: %v", err)
	}
	if u, err := d.URLs.URL(context.Background(), "bundles/a/1.zip", time.Minute); err != nil || !strings.HasPrefix(u, "http://127.0.0.1:7070/ota-bucket/bundles/a/1.zip?") {
		t.Errorf("URL without a key = %q, %v", u, err)
	}

	// Anything else wrong with the key stops the cold start.
	f.set("/otakit/bad", `{"key_pair_id": "K1"}`)
	t.Setenv(EnvCDNKeySSM, "/otakit/bad")
	if _, _, err := Load(context.Background()); err == nil || !strings.Contains(err.Error(), "private_key_pem") {
		t.Errorf("incomplete key parameter: %v", err)
	}
	t.Setenv(EnvCDNKeySSM, "/otakit/cloudfront-key")
	f.set("/otakit/cloudfront-key", keyJSON(t, "K2JCJMDEHXQW5F", testKeyPEM(t)), ssmFault(http.StatusBadRequest, "AccessDeniedException"))
	if _, _, err := Load(context.Background()); err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Errorf("access denied: %v", err)
	}
}

// The older, separate form still works: the key pair id in the environment, a bare
// PEM in the parameter (under its older variable name).
func TestLoadWithOlderKeyForm(t *testing.T) {
	isolate(t)
	f := &fakeSSM{params: map[string]string{"/otakit/cloudfront-private-key": testKeyPEM(t)}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SSM": srv.URL, EnvTable: "t", EnvBucket: "b", EnvCDNDomain: "d1.cloudfront.net",
		EnvCDNKeySSM: "", EnvCDNPrivateKeySSM: "/otakit/cloudfront-private-key", EnvCDNKeyPairID: "KOLDFORM",
		EnvCDNPrivateKey: "", EnvLogLevel: "error",
	} {
		t.Setenv(k, v)
	}
	d, _, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.URLs.URL(context.Background(), "files/ab/abcdef", time.Minute)
	if err != nil || keyPairIDOf(t, u) != "KOLDFORM" {
		t.Errorf("URL = %q, %v", u, err)
	}
	t.Setenv(EnvCDNKeyPairID, "")
	if _, _, err := Load(context.Background()); err == nil || !strings.Contains(err.Error(), "bare PEM") {
		t.Errorf("bare PEM without a key pair id: %v", err)
	}
}

func TestParseCDNKey(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
	for name, tc := range map[string]struct {
		value, envID string
		want         CDNKey
		err          string
	}{
		"json":            {value: `{"key_pair_id": " K1 ", "private_key_pem": "` + strings.ReplaceAll(pem, "\n", `\n`) + `"}`, want: CDNKey{"K1", pem}},
		"json wins":       {value: `{"key_pair_id": "K1", "private_key_pem": "x"}`, envID: "K2", want: CDNKey{"K1", "x"}},
		"json extra keys": {value: `{"key_pair_id": "K1", "private_key_pem": "x", "created": "2026-01-01"}`, want: CDNKey{"K1", "x"}},
		"bare pem":        {value: pem, envID: "K2", want: CDNKey{"K2", pem}},
		"bare pem no id":  {value: pem, err: "bare PEM"},
		"no id":           {value: `{"private_key_pem": "x"}`, err: "key_pair_id"},
		"no key":          {value: `{"key_pair_id": "K1"}`, err: "private_key_pem"},
		"broken json":     {value: `{"key_pair_id": "K1",`, err: "not JSON"},
	} {
		got, err := ParseCDNKey(tc.value, tc.envID)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want one naming %s", name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, tc.want)
		}
	}
}

// A rotated key reaches a warm instance within the refresh period: the parameter is
// read again once per period (not per request), and a failed read keeps the key.
func TestCDNKeyRotation(t *testing.T) {
	isolate(t)
	f := &fakeSSM{params: map[string]string{"/otakit/cloudfront-key": keyJSON(t, "KOLD", testKeyPEM(t))}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	cfg, err := awsconf.Load()
	if err != nil {
		t.Fatal(err)
	}
	ddb, s3c := offlineClients()
	d, err := Deps(context.Background(), Options{Table: "t", Bucket: "b", DynamoDB: ddb, S3: s3c, AWS: &cfg,
		CDNDomain: "d1.cloudfront.net", CDNKeyParameter: "/otakit/cloudfront-key", CDNKeyRefresh: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := d.URLs.(*refreshingCloudFront)
	if !ok {
		t.Fatalf("URLs = %T", d.URLs)
	}
	now := time.Now()
	rc.now = func() time.Time { return now }
	sign := func() string {
		t.Helper()
		u, err := d.URLs.URL(context.Background(), "bundles/a/1.zip", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return keyPairIDOf(t, u)
	}
	calls := f.calls

	f.set("/otakit/cloudfront-key", keyJSON(t, "KNEW", testKeyPEM(t)))
	if id := sign(); id != "KOLD" || calls() != 1 {
		t.Errorf("within the period: signed with %s after %d SSM calls, want KOLD after 1", id, calls())
	}
	now = now.Add(time.Minute)
	if id := sign(); id != "KNEW" || calls() != 2 {
		t.Errorf("after the period: signed with %s after %d SSM calls, want KNEW after 2", id, calls())
	}
	if id := sign(); id != "KNEW" || calls() != 2 {
		t.Errorf("right after a refresh: %s, %d SSM calls", id, calls())
	}

	// SSM failing (every attempt of the refresh): the current key stays.
	now = now.Add(time.Minute)
	f.set("/otakit/cloudfront-key", keyJSON(t, "KNEW", testKeyPEM(t)),
		ssmFault(500, "InternalServerError"), ssmFault(500, "InternalServerError"), ssmFault(500, "InternalServerError"))
	if id := sign(); id != "KNEW" {
		t.Errorf("failed refresh: signed with %q, want the current key", id)
	}
}

// ssmFault answers like SSM with an error code.
func ssmFault(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"__type":"com.amazonaws.ssm#` + code + `","message":"` + code + ` (test)"}`))
	}
}

// stall answers after d (longer than the per-attempt timeout), or when the client
// gives up.
func stall(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

// GetParameter is retried with backoff on network errors, timeouts, throttling and
// 5xx, never on other client errors.
func TestSSMRetries(t *testing.T) {
	isolate(t)
	fast := retryPolicy{Attempts: 3, Timeout: 200 * time.Millisecond, Backoff: time.Millisecond}
	const name = "/otakit/cloudfront-key"
	for _, tc := range []struct {
		name  string
		fail  []http.HandlerFunc
		calls int
		err   string
	}{
		{"fails twice then answers", []http.HandlerFunc{ssmFault(500, "InternalServerError"), ssmFault(400, "ThrottlingException")}, 3, ""},
		{"503 then answers", []http.HandlerFunc{ssmFault(503, "ServiceUnavailable")}, 2, ""},
		{"429 then answers", []http.HandlerFunc{ssmFault(429, "TooManyRequestsException")}, 2, ""},
		{"stalls then answers", []http.HandlerFunc{stall(5 * time.Second)}, 2, ""},
		{"dropped connection then answers", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}}, 2, ""},
		{"always 5xx", []http.HandlerFunc{ssmFault(500, "InternalServerError"), ssmFault(502, "BadGateway"), ssmFault(503, "ServiceUnavailable")}, 3, "3 attempts"},
		{"not found", []http.HandlerFunc{ssmFault(400, "ParameterNotFound")}, 1, "ParameterNotFound"},
		{"access denied", []http.HandlerFunc{ssmFault(400, "AccessDeniedException")}, 1, "AccessDeniedException"},
		{"bad key id", []http.HandlerFunc{ssmFault(400, "InvalidKeyId")}, 1, "InvalidKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSSM{params: map[string]string{name: "value"}, fail: tc.fail}
			srv := httptest.NewServer(f)
			defer srv.Close()
			t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
			cfg, err := awsconf.Load()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			v, err := fast.getParameter(context.Background(), cfg, name)
			if tc.err == "" && (err != nil || v != "value") {
				t.Errorf("got %q, %v", v, err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want one naming %s", err, tc.err)
			}
			if f.calls() != tc.calls {
				t.Errorf("%d calls, want %d", f.calls(), tc.calls)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: the per-attempt timeout did not hold", d)
			}
		})
	}

	// The caller's deadline ends the retries.
	f := &fakeSSM{params: map[string]string{name: "value"}, fail: []http.HandlerFunc{stall(5 * time.Second), stall(5 * time.Second), stall(5 * time.Second)}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	cfg, _ := awsconf.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := fast.getParameter(ctx, cfg, name); err == nil || f.calls() != 1 {
		t.Errorf("caller's deadline: err %v after %d calls, want an error after 1", err, f.calls())
	}

	// The default policy: a few attempts, each bounded, with growing backoff.
	if ssmRetry.Attempts != 3 || ssmRetry.Timeout <= 0 || ssmRetry.Timeout > 3*time.Second || ssmRetry.Backoff <= 0 {
		t.Errorf("ssmRetry = %+v", ssmRetry)
	}
}

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want int64
		ok   bool
	}{
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1536"}, 1536 << 20 * 9 / 10, true},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}, 241591910, true},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}, 10240 << 20 * 9 / 10, true},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1536", "GOMEMLIMIT": "1024MiB"}, 0, false},
		{map[string]string{}, 0, false},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, 0, false},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}, 0, false},
	} {
		got, ok := MemoryLimit(envOf(tc.env))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v: got %d, %v; want %d, %v", tc.env, got, ok, tc.want, tc.ok)
		}
	}
}
