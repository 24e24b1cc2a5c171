package awse2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/otakit/ota/shared/testenv"
)

// TestOtadOnAWSStorage runs the otad binary on DynamoDB + S3 (the emulators) and
// publishes with the ota binary: no S3 event reaches otad, so the CLI's "complete"
// call is what validates the upload.
func TestOtadOnAWSStorage(t *testing.T) {
	e := setup(t)
	cmd := exec.Command(binary(t, "otad"), "--addr", "127.0.0.1:0", "--dynamodb-table", e.table, "--s3-bucket", e.bucket)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=testsecret", "AWS_REGION="+testenv.Region,
		"AWS_ENDPOINT_URL_DYNAMODB="+testenv.DynamoEndpoint(t), "AWS_ENDPOINT_URL_S3="+testenv.S3Endpoint(t))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "otad is serving at "); ok {
				base <- strings.TrimSpace(u)
			}
		}
	}()
	var server string
	select {
	case server = <-base:
	case <-time.After(30 * time.Second):
		t.Fatal("otad did not start")
	}
	const app = "com.example.otadaws"
	if out, err := e.otaAt(t, server, "app", "create", app); err != nil {
		t.Fatalf("app create: %v %s", err, out)
	}
	if out, err := e.otaAt(t, server, "release", "testdata/quickstart/www", "--app", app, "--version", "1.0.1", "--channel", "production", "--wait", "30s"); err != nil {
		t.Fatalf("release: %v %s", err, out)
	}
	a := capgoCheckAt(t, server, app, "00000000-0000-4000-8000-000000000001", "builtin")
	if a.Version != "1.0.1" {
		t.Fatalf("device check: %+v", a)
	}
	code, body := get(t, a.URL)
	if code != 200 || sha(body) != a.Checksum {
		t.Fatalf("download from S3: HTTP %d, sha256 %s, checksum %s", code, sha(body), a.Checksum)
	}
}
