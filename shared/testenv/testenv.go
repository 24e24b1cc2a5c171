// Package testenv holds small helpers for tests that talk to local emulators
// (DynamoDB Local, versitygw). Without the emulator a test skips on a developer's
// machine and fails under CI, so a missing emulator is never mistaken for a pass.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Environment variables naming the emulator endpoints.
const (
	DynamoEndpointEnv = "OTA_TEST_DYNAMODB_ENDPOINT"
	S3EndpointEnv     = "OTA_TEST_S3_ENDPOINT"
)

// Region is what every emulator client uses.
const Region = "us-east-1"

// DynamoEndpoint returns the DynamoDB Local endpoint from OTA_TEST_DYNAMODB_ENDPOINT.
// Unset: fails under CI (env CI non-empty), skips otherwise.
func DynamoEndpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, DynamoEndpointEnv, "DynamoDB Local",
		"start it with `make emulators` (or infra/emulators/dynamodb-local.sh start 8000) and set "+
			DynamoEndpointEnv+"=http://127.0.0.1:8000")
}

// S3Endpoint returns the S3 emulator (versitygw) endpoint from OTA_TEST_S3_ENDPOINT.
// Unset: fails under CI (env CI non-empty), skips otherwise.
func S3Endpoint(t testing.TB) string {
	t.Helper()
	return endpoint(t, S3EndpointEnv, "S3 emulator (versitygw)",
		"start it with `make emulators` and set "+S3EndpointEnv+" to its URL")
}

func endpoint(t testing.TB, env, what, how string) string {
	t.Helper()
	if v := strings.TrimSpace(os.Getenv(env)); v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s unset under CI: %s emulator missing; run make test", env, what)
	}
	t.Skipf("%s unset: skipping tests that need %s; %s", env, what, how)
	return ""
}

// DynamoClient returns a DynamoDB client for endpoint with static test credentials,
// region us-east-1 and response checksum validation off (DynamoDB Local's CRC32
// header otherwise logs a harmless warning).
func DynamoClient(t testing.TB, endpoint string) *dynamodb.Client {
	t.Helper()
	return dynamodb.New(dynamodb.Options{
		Region:                          Region,
		BaseEndpoint:                    aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider("test", "test", ""),
		DisableValidateResponseChecksum: true,
	})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// TableName returns a table name unique to this test run: the sanitized t.Name()
// (shortened) plus a random suffix, valid for DynamoDB (3-255 of [A-Za-z0-9_.-]).
func TableName(t testing.TB) string {
	t.Helper()
	name := strings.Trim(unsafeName.ReplaceAllString(t.Name(), "_"), "_.-")
	if len(name) > 180 {
		name = name[len(name)-180:]
	}
	return "ota-test-" + name + "-" + RandSuffix()
}

// RandSuffix returns 8 random hex characters (for bucket and table names).
func RandSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
