package templatetest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestLocalStackPath keeps the local path consistent with itself and with the
// template: the bucket the LocalStack init script creates is the one the sam local
// environment and the sample S3 events name, the script's bucket notifications
// mirror PatchFunction's S3 events, and the sam local environment only sets
// variables the functions read.
func TestLocalStackPath(t *testing.T) {
	root := repoRoot(t)
	tpl := setup(t)
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	script := read("infra/localstack/init/ready.d/otakit.sh")
	compose := read("infra/localstack/docker-compose.yml")

	defaultOf := func(text, name string) string {
		m := regexp.MustCompile(`\$\{` + name + `:-([^}]*)\}`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no default for %s", name)
		}
		return m[1]
	}
	bucket, table := defaultOf(script, "OTA_BUCKET"), defaultOf(script, "OTA_TABLE")
	if b, tb := defaultOf(compose, "OTA_BUCKET"), defaultOf(compose, "OTA_TABLE"); b != bucket || tb != table {
		t.Errorf("docker-compose.yml defaults (table %s, bucket %s) differ from the init script's (%s, %s)", tb, b, table, bucket)
	}
	if fn := defaultOf(compose, "OTA_PATCH_FUNCTION"); fn != defaultOf(script, "OTA_PATCH_FUNCTION") {
		t.Errorf("docker-compose.yml names the patch function %s, the init script %s", fn, defaultOf(script, "OTA_PATCH_FUNCTION"))
	}
	if !strings.Contains(compose, "LAMBDA_DOCKER_NETWORK=otakit-local") || !regexp.MustCompile(`SERVICES=\$\{LOCALSTACK_SERVICES:-[a-z0-9,]*lambda`).MatchString(compose) {
		t.Error("docker-compose.yml: LocalStack must run Lambda (the patch function) on the otakit-local network")
	}

	var env struct{ Parameters map[string]string }
	if err := json.Unmarshal([]byte(read("infra/localstack/sam-local-env.json")), &env); err != nil {
		t.Fatal(err)
	}
	if env.Parameters["OTA_BUCKET"] != bucket || env.Parameters["OTA_TABLE"] != table {
		t.Errorf("sam-local-env.json: table %s, bucket %s; the init script creates %s, %s", env.Parameters["OTA_TABLE"], env.Parameters["OTA_BUCKET"], table, bucket)
	}
	for k := range env.Parameters {
		if why, ok := unwantedEnv[k]; ok {
			t.Errorf("sam-local-env.json sets %s: %s", k, why)
		} else if !knownEnv[k] {
			t.Errorf("sam-local-env.json sets %s, which the functions do not read (sam local only overrides declared variables)", k)
		}
	}

	// Every sample S3 event names the local bucket, so `sam local invoke
	// PatchFunction` with it reads what the LocalStack path wrote.
	files, _ := filepath.Glob(filepath.Join(root, "events", "s3-*.json"))
	for _, f := range files {
		var ev events.S3Event
		if err := json.Unmarshal([]byte(read(filepath.Join("events", filepath.Base(f)))), &ev); err != nil {
			t.Fatal(err)
		}
		for _, r := range ev.Records {
			if r.S3.Bucket.Name != bucket || r.S3.Bucket.Arn != "arn:aws:s3:::"+bucket {
				t.Errorf("%s: bucket %s (%s), want the local bucket %s", filepath.Base(f), r.S3.Bucket.Name, r.S3.Bucket.Arn, bucket)
			}
		}
	}

	// The notification configuration in the script, with the same filters as
	// PatchFunction's S3 events.
	m := regexp.MustCompile(`(?s)cat <<EOF\n(.*?)\nEOF`).FindStringSubmatch(script)
	if m == nil {
		t.Fatal("init script: no notification configuration (cat <<EOF ... EOF)")
	}
	var nc struct {
		LambdaFunctionConfigurations []struct {
			LambdaFunctionArn string
			Events            []string
			Filter            struct {
				Key struct {
					FilterRules []struct{ Name, Value string }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(m[1], "$arn", "arn:aws:lambda:us-east-1:000000000000:function:x")), &nc); err != nil {
		t.Fatalf("init script: notification configuration: %v", err)
	}
	var got, want []string
	for _, c := range nc.LambdaFunctionConfigurations {
		rules := map[string]string{}
		for _, r := range c.Filter.Key.FilterRules {
			rules[r.Name] = r.Value
		}
		got = append(got, fmt.Sprint(c.Events, rules))
	}
	evs, _ := props(t, tpl, "PatchFunction")["Events"].(map[string]any)
	for _, name := range sortedKeys(evs) {
		p := get(evs[name], "Properties")
		rules := map[string]string{}
		rl, _ := get(p, "Filter", "S3Key", "Rules").([]any)
		for _, r := range rl {
			rules[fmt.Sprint(get(r, "Name"))] = fmt.Sprint(get(r, "Value"))
		}
		want = append(want, fmt.Sprint([]string{fmt.Sprint(get(p, "Events"))}, rules))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("init script notifies on %v, template.yaml's PatchFunction on %v", got, want)
	}
}
