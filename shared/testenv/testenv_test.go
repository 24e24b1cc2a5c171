package testenv

import (
	"regexp"
	"strings"
	"testing"
)

var validTable = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

func TestTableName(t *testing.T) {
	for _, name := range []string{"simple", "with space/and#hash", strings.Repeat("long/", 80)} {
		t.Run(name, func(t *testing.T) {
			a, b := TableName(t), TableName(t)
			if !validTable.MatchString(a) {
				t.Fatalf("invalid DynamoDB table name %q", a)
			}
			if a == b {
				t.Fatalf("two calls gave the same name %q", a)
			}
		})
	}
}

func TestEndpointFromEnv(t *testing.T) {
	t.Setenv(DynamoEndpointEnv, " http://127.0.0.1:1234 ")
	if got := DynamoEndpoint(t); got != "http://127.0.0.1:1234" {
		t.Fatalf("DynamoEndpoint = %q", got)
	}
	t.Setenv(S3EndpointEnv, "http://127.0.0.1:7070")
	if got := S3Endpoint(t); got != "http://127.0.0.1:7070" {
		t.Fatalf("S3Endpoint = %q", got)
	}
	if c := DynamoClient(t, "http://127.0.0.1:1234"); c.Options().Region != Region || !c.Options().DisableValidateResponseChecksum {
		t.Fatalf("client options %+v", c.Options())
	}
}
