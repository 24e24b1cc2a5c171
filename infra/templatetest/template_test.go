// Package templatetest checks template.yaml against the code: the HttpApi routes are
// exactly the deployed routes of api.Routes() plus a HEAD twin of each GET route,
// every reference resolves, every function has the environment awsenv reads, its JSON
// logging and a least-privilege policy, the build targets exist, the storage, CDN key
// slots, failure queue and custom domains are as docs/aws.md describes them, and the
// sample events, LocalStack files and samconfig.toml.example agree with the template.
//
// After changing the route table, regenerate the route events (and HEAD twins) with
//
//	go test ./infra/templatetest -run TestTemplate -update
package templatetest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/otakit/ota/shared/api"
	"github.com/otakit/ota/shared/awsenv"
	"github.com/otakit/ota/shared/blob"
	"github.com/otakit/ota/shared/cdn"
	"github.com/otakit/ota/shared/lambdahttp"
	"github.com/otakit/ota/shared/publish"
	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/bolt"
	"github.com/otakit/ota/shared/urlsign"
)

var update = flag.Bool("update", false, "rewrite the generated route events in template.yaml")

// fnSpec is what the test expects of one function.
type fnSpec struct {
	Logical string
	Dir     string    // functions/<Dir>
	Group   api.Group // "" for the S3-triggered patch function
	CDN     bool      // signs download URLs: needs the CDN settings
	Grants  []grant
}

// grant is one allowed (action, resource) pair; Resource uses the placeholders
// TABLE, BUCKET, OBJECTS/<prefix> and CDNKEY; Cond is the canonical condition.
type grant struct {
	Action, Resource, Cond string
}

func grants(actions []string, resource string) []grant {
	var g []grant
	for _, a := range actions {
		g = append(g, grant{Action: a, Resource: resource})
	}
	return g
}

func concat(gs ...[]grant) []grant {
	var out []grant
	for _, g := range gs {
		out = append(out, g...)
	}
	return out
}

// The least-privilege contract, derived from what each group's handlers call:
//   - store writes go through UpdateItem (puts, counters, transaction items) and
//     DeleteItem; nothing uses PutItem, Scan or ConditionCheckItem;
//   - s3:ListBucket makes a missing object read as 404 instead of 403 (Stat/Open of
//     patches, files and seed objects);
//   - presigning needs the signer to hold the presigned action (PutObject for
//     uploads, GetObject for downloads without CloudFront).
//
// The check function is read-only but for one PutObject: a Flux request for a patch
// that was not precomputed leaves a marker under patch-requests/
// (publish.Pipeline.RequestPatch), and the patch function computes the patch.
var specs = []fnSpec{
	{Logical: "CheckFunction", Dir: "check", Group: api.GroupCheck, CDN: true, Grants: concat(
		grants([]string{"dynamodb:GetItem", "dynamodb:Query"}, "TABLE"),
		grants([]string{"s3:GetObject"}, "OBJECTS/"),
		grants([]string{"s3:PutObject"}, "OBJECTS/"+publish.PatchRequestPrefix),
		grants([]string{"s3:ListBucket"}, "BUCKET"),
		grants([]string{"ssm:GetParameter"}, "CDNKEY"),
	)},
	{Logical: "ConfirmFunction", Dir: "confirm", Group: api.GroupConfirm, Grants: concat(
		grants([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}, "TABLE"),
	)},
	{Logical: "StatsFunction", Dir: "stats", Group: api.GroupStats, Grants: concat(
		grants([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}, "TABLE"),
	)},
	{Logical: "UploadFunction", Dir: "upload", Group: api.GroupUpload, Grants: concat(
		grants([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}, "TABLE"),
		grants([]string{"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}, "OBJECTS/"),
		grants([]string{"s3:ListBucket"}, "BUCKET"),
	)},
	{Logical: "AdminFunction", Dir: "admin", Group: api.GroupAdmin, CDN: true, Grants: concat(
		grants([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}, "TABLE"),
		grants([]string{"s3:GetObject"}, "OBJECTS/"),
		// deleteRelease removes bundle and manifest; cleanup (publish.Pipeline.Cleanup)
		// lists and sweeps unreferenced objects and may restore a swept file.
		grants([]string{"s3:DeleteObject"}, "OBJECTS/bundles/"),
		grants([]string{"s3:DeleteObject"}, "OBJECTS/manifests/"),
		grants([]string{"s3:DeleteObject"}, "OBJECTS/patches/"),
		grants([]string{"s3:DeleteObject"}, "OBJECTS/files/"),
		grants([]string{"s3:PutObject", "s3:AbortMultipartUpload"}, "OBJECTS/files/"),
		grants([]string{"s3:ListBucket"}, "BUCKET"),
		grants([]string{"ssm:GetParameter"}, "CDNKEY"),
	)},
	{Logical: "PatchFunction", Dir: "patch", Grants: concat(
		grants([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}, "TABLE"),
		grants([]string{"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}, "OBJECTS/"),
		grants([]string{"s3:ListBucket"}, "BUCKET"),
		// publish.Pipeline.HandlePatchRequest deletes the marker it served.
		grants([]string{"s3:DeleteObject"}, "OBJECTS/"+publish.PatchRequestPrefix),
		// Events it failed on go to the on-failure queue (granted by SAM, see samGrants).
		grants([]string{"sqs:SendMessage"}, "FAILUREQUEUE"),
	)},
}

// requiredEnv is what awsenv needs in every function; cdnEnv only where URLs are signed.
var (
	requiredEnv = []string{awsenv.EnvTable, awsenv.EnvBucket, awsenv.EnvPublicURL, awsenv.EnvStateTTL,
		awsenv.EnvURLTTL, awsenv.EnvCapgoURLTTL, awsenv.EnvPatchBases}
	cdnEnv   = []string{awsenv.EnvCDNDomain, awsenv.EnvCDNKeySSM}
	knownEnv = map[string]bool{
		awsenv.EnvTable: true, awsenv.EnvBucket: true, awsenv.EnvCDNDomain: true, awsenv.EnvCDNKeySSM: true,
		awsenv.EnvPublicURL: true, awsenv.EnvDefaultApp: true,
		awsenv.EnvStateTTL: true, awsenv.EnvURLTTL: true, awsenv.EnvCapgoURLTTL: true, awsenv.EnvPatchBases: true, awsenv.EnvLogLevel: true,
		"AWS_ENDPOINT_URL": true, // the SDK's own endpoint override (local emulation)
	}
	// unwantedEnv are variables the code reads that the template must not set.
	unwantedEnv = map[string]string{
		awsenv.EnvCDNKeyPairID:     "the key pair id is read with the private key from " + awsenv.EnvCDNKeySSM + " (one parameter, so a rotation never pairs an id with the other key)",
		awsenv.EnvCDNPrivateKeySSM: "older name of " + awsenv.EnvCDNKeySSM,
		awsenv.EnvCDNPrivateKey:    "a private key in the environment is for tests and LocalStack",
		"GOMEMLIMIT":               "awsenv derives it from the function's memory size (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) at start",
	}
)

// Fake values the evaluator gives resources.
const (
	fakeTableName  = "otakit-Table-1A2B3C4D5E6F"
	fakeCDNDomain  = "d111111abcdef8.cloudfront.net"
	fakeKeyPairID  = "K2JCJMDEHXQW5F"
	fakeKeyPairIDB = "K3BBBBBBBBBBBB"
	fakeApiID      = "a1b2c3d4e5"
	fakeQueueName  = "otakit-PatchFailureQueue-1A2B3C4D5E6F"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func templatePath(t *testing.T) string { return filepath.Join(repoRoot(t), "template.yaml") }

// setup loads the template (rewriting the generated routes first with -update).
func setup(t *testing.T) *cfnTemplate {
	t.Helper()
	path := templatePath(t)
	if *update {
		_, byGroupOrder := routesByGroup(t)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text, err := rewriteGenerated(string(b), byGroupOrder, headRoutes(t))
		if err != nil {
			t.Fatal(err)
		}
		if text != string(b) {
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Log("template.yaml: route events regenerated")
		}
	}
	tpl, err := loadTemplate(path)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return tpl
}

// headRoutes are the HEAD twins of the deployed GET routes, to the GET route's function.
func headRoutes(t *testing.T) []headRoute {
	t.Helper()
	order, group, err := deployedRoutes()
	if err != nil {
		t.Fatal(err)
	}
	fnOf := map[gatewayRoute]string{}
	for _, r := range order {
		fnOf[r] = specForGroup(group[r]).Logical
	}
	return headTwins(order, fnOf)
}

func specForGroup(g api.Group) fnSpec {
	for _, s := range specs {
		if s.Group == g {
			return s
		}
	}
	return fnSpec{}
}

func routesByGroup(t *testing.T) (map[gatewayRoute]api.Group, map[api.Group][]gatewayRoute) {
	t.Helper()
	order, group, err := deployedRoutes()
	if err != nil {
		t.Fatal(err)
	}
	by := map[api.Group][]gatewayRoute{}
	for _, s := range specs {
		if s.Group != "" {
			by[s.Group] = nil
		}
	}
	for _, r := range order {
		by[group[r]] = append(by[group[r]], r)
	}
	return group, by
}

// evaluatorFor resolves the template with EnableCdn set as given.
func evaluatorFor(t *testing.T, tpl *cfnTemplate, cdn bool) *evaluator {
	t.Helper()
	return evaluatorWith(t, tpl, map[string]string{"EnableCdn": strconv.FormatBool(cdn)})
}

// evaluatorWith resolves the template with the given parameter values.
func evaluatorWith(t *testing.T, tpl *cfnTemplate, params map[string]string) *evaluator {
	t.Helper()
	e := newEvaluator(tpl, params)
	bucket, err := e.str(tpl.Resources["Bucket"]["Properties"].(map[string]any)["BucketName"])
	if err != nil {
		t.Fatalf("Bucket.BucketName: %v", err)
	}
	e.refs["Table"] = fakeTableName
	e.atts["Table.Arn"] = "arn:aws:dynamodb:us-east-1:123456789012:table/" + fakeTableName
	e.refs["Bucket"] = bucket
	e.atts["Bucket.Arn"] = "arn:aws:s3:::" + bucket
	e.atts["Bucket.RegionalDomainName"] = bucket + ".s3.us-east-1.amazonaws.com"
	e.atts["Distribution.DomainName"] = fakeCDNDomain
	e.refs["Distribution"] = "E2QWRUHAPOMQZL"
	e.refs["CdnPublicKey"] = fakeKeyPairID
	e.refs["CdnPublicKeyB"] = fakeKeyPairIDB
	e.refs["HttpApi"] = fakeApiID
	e.refs["PatchFailureQueue"] = "https://sqs.us-east-1.amazonaws.com/123456789012/" + fakeQueueName
	e.atts["PatchFailureQueue.Arn"] = "arn:aws:sqs:us-east-1:123456789012:" + fakeQueueName
	e.atts["PatchFailureQueue.QueueName"] = fakeQueueName
	for _, s := range specs {
		e.refs[s.Logical] = "otakit-" + s.Logical + "-1A2B3C4D5E6F"
		e.atts[s.Logical+".Arn"] = "arn:aws:lambda:us-east-1:123456789012:function:otakit-" + s.Logical + "-1A2B3C4D5E6F"
	}
	return e
}

func props(t *testing.T, tpl *cfnTemplate, logical string) map[string]any {
	t.Helper()
	r, ok := tpl.Resources[logical]
	if !ok {
		t.Fatalf("template.yaml has no resource %s", logical)
	}
	p, _ := r["Properties"].(map[string]any)
	return p
}

func TestTemplate(t *testing.T) {
	tpl := setup(t)

	t.Run("header", func(t *testing.T) {
		if v := tpl.Raw["AWSTemplateFormatVersion"]; v != "2010-09-09" {
			t.Errorf("AWSTemplateFormatVersion = %v", v)
		}
		if v := tpl.Raw["Transform"]; v != "AWS::Serverless-2016-10-31" {
			t.Errorf("Transform = %v", v)
		}
	})
	t.Run("references", func(t *testing.T) { checkReferences(t, tpl) })
	t.Run("cycles", func(t *testing.T) { checkCycles(t, tpl) })
	t.Run("parameters", func(t *testing.T) { checkParameters(t, tpl) })
	t.Run("routes", func(t *testing.T) { checkRoutes(t, tpl) })
	t.Run("functions", func(t *testing.T) { checkFunctions(t, tpl) })
	t.Run("environment", func(t *testing.T) { checkEnvironment(t, tpl) })
	t.Run("policies", func(t *testing.T) { checkPolicies(t, tpl) })
	t.Run("storage", func(t *testing.T) { checkStorage(t, tpl) })
	t.Run("cdn", func(t *testing.T) { checkCDN(t, tpl) })
	t.Run("logging", func(t *testing.T) { checkLogging(t, tpl) })
	t.Run("patch failures", func(t *testing.T) { checkPatchFailures(t, tpl) })
	t.Run("custom domains", func(t *testing.T) { checkCustomDomains(t, tpl) })
	t.Run("outputs", func(t *testing.T) {
		for _, o := range []string{"ApiUrl", "CdnDomain", "CdnPublicKeyIdA", "CdnPublicKeyIdB", "ApiDomainTarget",
			"PatchFailureQueue", "TableName", "BucketName"} {
			if _, ok := tpl.Outputs[o]; !ok {
				t.Errorf("no output %s", o)
			}
		}
	})
}

// ---- references

// getAttAttributes are the attributes the template may read, per resource type.
var getAttAttributes = map[string][]string{
	"AWS::DynamoDB::Table":                 {"Arn", "StreamArn"},
	"AWS::S3::Bucket":                      {"Arn", "DomainName", "RegionalDomainName", "DualStackDomainName", "WebsiteURL"},
	"AWS::CloudFront::Distribution":        {"DomainName", "Id"},
	"AWS::CloudFront::OriginAccessControl": {"Id"},
	"AWS::CloudFront::PublicKey":           {"Id", "CreatedTime"},
	"AWS::CloudFront::KeyGroup":            {"Id", "LastModifiedTime"},
	"AWS::Serverless::Function":            {"Arn"},
	"AWS::Logs::LogGroup":                  {"Arn"},
	"AWS::SQS::Queue":                      {"Arn", "QueueName", "QueueUrl"},
	"AWS::ApiGatewayV2::DomainName":        {"RegionalDomainName", "RegionalHostedZoneId", "DomainName"},
}

func checkReferences(t *testing.T, tpl *cfnTemplate) {
	type scope struct {
		where string
		v     any
		conds []string
	}
	var scopes []scope
	for _, name := range sortedKeys(tpl.Resources) {
		r := tpl.Resources[name]
		var conds []string
		if c, ok := r["Condition"].(string); ok {
			conds = []string{c}
			if _, ok := tpl.Conditions[c]; !ok {
				t.Errorf("Resources.%s: unknown condition %q", name, c)
			}
		}
		scopes = append(scopes, scope{"Resources." + name, r["Properties"], conds})
		if d, ok := r["DependsOn"]; ok {
			var deps []string
			switch x := d.(type) {
			case string:
				deps = []string{x}
			case []any:
				for _, v := range x {
					s, _ := v.(string)
					deps = append(deps, s)
				}
			}
			for _, dep := range deps {
				if _, ok := tpl.Resources[dep]; !ok {
					t.Errorf("Resources.%s.DependsOn: unknown resource %q", name, dep)
				}
			}
		}
	}
	for _, name := range sortedKeys(tpl.Outputs) {
		o := tpl.Outputs[name]
		var conds []string
		if c, ok := o["Condition"].(string); ok {
			conds = []string{c}
		}
		scopes = append(scopes, scope{"Outputs." + name, o, conds})
	}
	scopes = append(scopes, scope{"Globals", tpl.Globals, nil}, scope{"Conditions", tpl.Conditions, nil},
		scope{"Rules", tpl.Rules, nil})

	for _, s := range scopes {
		for _, ref := range references(s.v, s.where, s.conds) {
			if ref.Kind == "Condition" {
				if _, ok := tpl.Conditions[ref.Target]; !ok {
					t.Errorf("%s: unknown condition %q", ref.Where, ref.Target)
				}
				continue
			}
			if pseudoParameters[ref.Target] {
				if ref.Attr != "" {
					t.Errorf("%s: pseudo parameter %s has no attributes", ref.Where, ref.Target)
				}
				continue
			}
			if _, ok := tpl.Parameters[ref.Target]; ok {
				if ref.Kind == "GetAtt" || ref.Attr != "" {
					t.Errorf("%s: GetAtt on parameter %s", ref.Where, ref.Target)
				}
				continue
			}
			if strings.HasPrefix(ref.Where, "Rules.") {
				t.Errorf("%s: rules may only use parameters, not %q", ref.Where, ref.Target)
				continue
			}
			if res, prop, ok := strings.Cut(ref.Target, "."); ok && ref.Kind == "Ref" && samReferenceable(tpl, res, prop) {
				continue
			}
			res, ok := tpl.Resources[ref.Target]
			if !ok {
				t.Errorf("%s: %s to %q, which is neither a parameter, a resource nor a pseudo parameter", ref.Where, ref.Kind, ref.Target)
				continue
			}
			if ref.Kind == "GetAtt" || ref.Attr != "" {
				typ, _ := res["Type"].(string)
				attrs, known := getAttAttributes[typ]
				if !known {
					t.Errorf("%s: GetAtt on %s (%s): add its attributes to getAttAttributes", ref.Where, ref.Target, typ)
				} else if !slices.Contains(attrs, ref.Attr) {
					t.Errorf("%s: %s (%s) has no attribute %q", ref.Where, ref.Target, typ, ref.Attr)
				}
			}
			// A conditional resource may only be used where its condition holds.
			if c, ok := res["Condition"].(string); ok && !slices.Contains(ref.Conds, c) {
				t.Errorf("%s: uses %s, which exists only when %s, outside Fn::If %s", ref.Where, ref.Target, c, c)
			}
		}
	}
}

// ---- dependency cycles (including those SAM adds for events)

func checkCycles(t *testing.T, tpl *cfnTemplate) {
	edges := map[string]map[string]bool{}
	add := func(from, to string) {
		if res, prop, ok := strings.Cut(to, "."); ok && samReferenceable(tpl, res, prop) {
			to = res // HttpApi.Stage depends on HttpApi
		}
		if _, ok := tpl.Resources[to]; !ok || from == to {
			return
		}
		if edges[from] == nil {
			edges[from] = map[string]bool{}
		}
		edges[from][to] = true
	}
	// Globals are copied into every function.
	globalRefs := references(tpl.Globals["Function"], "Globals.Function", nil)
	for name, r := range tpl.Resources {
		p, _ := r["Properties"].(map[string]any)
		for k, v := range p {
			if k == "Events" && r["Type"] == "AWS::Serverless::Function" {
				continue // SAM turns event sources around (below)
			}
			for _, ref := range references(v, name, nil) {
				add(name, ref.Target)
			}
		}
		if r["Type"] == "AWS::Serverless::Function" {
			for _, ref := range globalRefs {
				add(name, ref.Target)
			}
			// SAM: an S3 event adds the function to the bucket's notification
			// configuration; an HttpApi event adds the function to the API.
			evs, _ := props(t, tpl, name)["Events"].(map[string]any)
			for _, ev := range evs {
				m, _ := ev.(map[string]any)
				p, _ := m["Properties"].(map[string]any)
				switch m["Type"] {
				case "S3":
					if fn, arg, ok := intrinsic(p["Bucket"]); ok && fn == "Ref" {
						add(arg.(string), name)
					}
				case "HttpApi":
					if fn, arg, ok := intrinsic(p["ApiId"]); ok && fn == "Ref" {
						add(arg.(string), name)
					}
				}
			}
		}
	}
	state := map[string]int{} // 1 visiting, 2 done
	var stack []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = 1
		stack = append(stack, n)
		for _, m := range sortedKeys(edges[n]) {
			if state[m] == 1 {
				i := slices.Index(stack, m)
				t.Errorf("circular dependency: %s -> %s", strings.Join(stack[i:], " -> "), m)
				return true
			}
			if state[m] == 0 && visit(m) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		return false
	}
	for _, n := range sortedKeys(tpl.Resources) {
		if state[n] == 0 && visit(n) {
			return
		}
	}
}

// ---- parameters

func checkParameters(t *testing.T, tpl *cfnTemplate) {
	for _, name := range sortedKeys(tpl.Parameters) {
		p := tpl.Parameters[name]
		def, hasDef := p["Default"].(string)
		if !hasDef {
			t.Errorf("parameter %s has no default (a plain `sam deploy` must work)", name)
			continue
		}
		if pat, ok := p["AllowedPattern"].(string); ok {
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				t.Errorf("parameter %s: AllowedPattern: %v", name, err)
			} else if !re.MatchString(def) {
				t.Errorf("parameter %s: default %q does not match %s", name, def, pat)
			}
		}
		if av, ok := p["AllowedValues"].([]any); ok && !slices.Contains(av, any(def)) {
			t.Errorf("parameter %s: default %q is not among %v", name, def, av)
		}
		if p["Type"] == "Number" {
			n, err := strconv.ParseFloat(def, 64)
			if err != nil {
				t.Errorf("parameter %s: default %q is not a number", name, def)
			}
			if s, ok := p["MinValue"].(string); ok {
				if m, _ := strconv.ParseFloat(s, 64); n < m {
					t.Errorf("parameter %s: default %v < MinValue %v", name, n, m)
				}
			}
			if s, ok := p["MaxValue"].(string); ok {
				if m, _ := strconv.ParseFloat(s, 64); n > m {
					t.Errorf("parameter %s: default %v > MaxValue %v", name, n, m)
				}
			}
		}
	}
}

// ---- routes

// templateRoutes lists the routes of the HttpApi: every function's HttpApi events
// and the operations of the API's OpenAPI body (HEAD twins), with their function.
func templateRoutes(t *testing.T, tpl *cfnTemplate) map[gatewayRoute][]string {
	out := map[gatewayRoute][]string{}
	for r, fn := range bodyRoutes(t, tpl) {
		out[r] = append(out[r], fn)
	}
	for _, name := range sortedKeys(tpl.Resources) {
		r := tpl.Resources[name]
		if r["Type"] != "AWS::Serverless::Function" {
			continue
		}
		evs, _ := props(t, tpl, name)["Events"].(map[string]any)
		for _, evName := range sortedKeys(evs) {
			ev, _ := evs[evName].(map[string]any)
			if ev["Type"] != "HttpApi" {
				continue
			}
			p, _ := ev["Properties"].(map[string]any)
			if fn, arg, ok := intrinsic(p["ApiId"]); !ok || fn != "Ref" || arg != "HttpApi" {
				t.Errorf("%s.Events.%s: ApiId must be !Ref HttpApi (else SAM creates an implicit API), got %v", name, evName, p["ApiId"])
			}
			m, _ := p["Method"].(string)
			path, _ := p["Path"].(string)
			if m == "" || path == "" {
				t.Errorf("%s.Events.%s: no Method or Path", name, evName)
				continue
			}
			gr := gatewayRoute{Method: strings.ToUpper(m), Path: path}
			out[gr] = append(out[gr], name)
		}
	}
	return out
}

// bodyRoutes lists the operations of the HttpApi's OpenAPI body (DefinitionBody)
// with the function each integrates, checking each is a Lambda proxy integration as
// SAM writes them for events.
func bodyRoutes(t *testing.T, tpl *cfnTemplate) map[gatewayRoute]string {
	out := map[gatewayRoute]string{}
	paths, _ := get(props(t, tpl, "HttpApi"), "DefinitionBody", "paths").(map[string]any)
	uriFn := regexp.MustCompile(`^arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}:lambda:path/2015-03-31/functions/\$\{([A-Za-z0-9]+)\.Arn\}/invocations$`)
	for _, path := range sortedKeys(paths) {
		ops, _ := paths[path].(map[string]any)
		for _, method := range sortedKeys(ops) {
			op := ops[method]
			where := "HttpApi.DefinitionBody.paths." + path + "." + method
			integ, _ := get(op, "x-amazon-apigateway-integration").(map[string]any)
			uri, _ := integ["uri"].(map[string]any)
			sub, _ := uri["Fn::Sub"].(string)
			m := uriFn.FindStringSubmatch(sub)
			if m == nil || integ["type"] != "aws_proxy" || integ["httpMethod"] != "POST" || integ["payloadFormatVersion"] != "2.0" {
				t.Errorf("%s: want a Lambda proxy integration (aws_proxy, POST, payload 2.0, uri of a function), got %v", where, integ)
				continue
			}
			// Every path parameter declared: HTTP API import warns otherwise, and the
			// API fails on warnings.
			declared := map[string]bool{}
			params, _ := get(op, "parameters").([]any)
			for _, p := range params {
				if get(p, "in") == "path" && get(p, "required") == "true" {
					declared[fmt.Sprint(get(p, "name"))] = true
				}
			}
			for _, pm := range pathParams.FindAllStringSubmatch(path, -1) {
				if !declared[pm[1]] {
					t.Errorf("%s: path parameter %s is not declared", where, pm[1])
				}
			}
			out[gatewayRoute{Method: strings.ToUpper(method), Path: path}] = m[1]
		}
	}
	return out
}

func checkRoutes(t *testing.T, tpl *cfnTemplate) {
	deployed, byGroup := routesByGroup(t)
	fnOf := map[api.Group]string{}
	for _, s := range specs {
		if s.Group != "" {
			fnOf[s.Group] = s.Logical
		}
	}
	// What API Gateway must route: the route table, plus a HEAD twin of every GET
	// route to the same function (HTTP APIs match methods exactly; Go's ServeMux
	// answers HEAD for GET patterns, API Gateway does not).
	want := map[gatewayRoute]string{}
	for r, g := range deployed {
		want[r] = fnOf[g]
	}
	for _, h := range headRoutes(t) {
		want[h.gatewayRoute] = h.Function
	}
	got := templateRoutes(t, tpl)
	for r, fn := range want {
		fns := got[r]
		switch {
		case len(fns) == 0 && r.Method == http.MethodHead:
			t.Errorf("GET %s has no HEAD twin in template.yaml: API Gateway would answer HEAD with 404 (run: go test ./infra/templatetest -run TestTemplate -update)", r.Path)
		case len(fns) == 0:
			t.Errorf("route %s (group %s) is not in template.yaml (run: go test ./infra/templatetest -run TestTemplate -update)", r, deployed[r])
		case len(fns) > 1:
			t.Errorf("route %s is declared by %v", r, fns)
		case fns[0] != fn:
			t.Errorf("route %s goes to %s, want %s", r, fns[0], fn)
		}
	}
	for r, fns := range got {
		if _, ok := want[r]; !ok {
			t.Errorf("template.yaml routes %s to %v, but api.Routes() has no such deployed route (local routes are otad-only) nor a GET route it would be the HEAD twin of", r, fns)
		}
	}
	// HEAD twins live in the API's body, sharing one Lambda permission per function;
	// the body holds nothing else (SAM writes the events' routes into it).
	body := bodyRoutes(t, tpl)
	headFns := map[string]bool{}
	for r, fn := range body {
		if r.Method != http.MethodHead {
			t.Errorf("HttpApi.DefinitionBody declares %s: declare routes as function events; the body holds only the HEAD twins", r)
		}
		headFns[fn] = true
	}
	for _, h := range headRoutes(t) {
		if fn, ok := body[h.gatewayRoute]; !ok || fn != h.Function {
			if fns := got[h.gatewayRoute]; len(fns) > 0 {
				t.Errorf("%s is declared outside the HttpApi body (as an event, SAM adds a Lambda permission per route): keep HEAD twins in the body", h.gatewayRoute)
			}
		}
	}
	checkHeadPermissions(t, tpl, headFns)
	for g, rs := range byGroup {
		if len(rs) == 0 {
			t.Errorf("group %s has no routes: its function would have no events", g)
		}
		// SAM adds one invoke permission per route event to the function's resource
		// policy, which Lambda caps at 20 KB (about 45 such statements with a long
		// stack name); the HEAD twins share one more.
		if len(rs) > 40 {
			t.Errorf("group %s has %d routes: its function's resource policy nears Lambda's 20 KB limit", g, len(rs))
		}
	}
	var all []gatewayRoute
	for r := range want {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].String() < all[j].String() })
	for _, c := range siblingConflicts(all) {
		t.Errorf("API Gateway route conflict: %s", c)
	}
}

// checkHeadPermissions: API Gateway may invoke exactly the functions with HEAD routes
// in the body, for HEAD requests of this API.
func checkHeadPermissions(t *testing.T, tpl *cfnTemplate, headFns map[string]bool) {
	e := evaluatorFor(t, tpl, false)
	perms := map[string]int{}
	for _, name := range sortedKeys(tpl.Resources) {
		r := tpl.Resources[name]
		if r["Type"] != "AWS::Lambda::Permission" {
			continue
		}
		p, err := e.eval(props(t, tpl, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var fn string
		if f, arg, ok := intrinsic(props(t, tpl, name)["FunctionName"]); ok && f == "Ref" {
			fn, _ = arg.(string)
		}
		want := "arn:aws:execute-api:us-east-1:123456789012:" + fakeApiID + "/*/HEAD/*"
		if get(p, "Action") != "lambda:InvokeFunction" || get(p, "Principal") != "apigateway.amazonaws.com" || get(p, "SourceArn") != want {
			t.Errorf("%s: want lambda:InvokeFunction for apigateway.amazonaws.com from %s, got %v", name, want, p)
		}
		if !headFns[fn] {
			t.Errorf("%s lets API Gateway invoke %s, which has no HEAD routes", name, fn)
		}
		perms[fn]++
	}
	for fn := range headFns {
		if perms[fn] != 1 {
			t.Errorf("%s has HEAD routes in the HttpApi body and %d invoke permissions for them, want 1", fn, perms[fn])
		}
	}
}

// ---- functions: build layout and settings

var samTarget = regexp.MustCompile(`(?m)^(build-[A-Za-z0-9]+):\s*\n\t\$\(call sam_build,([a-z0-9_-]+)\)`)

func checkFunctions(t *testing.T, tpl *cfnTemplate) {
	root := repoRoot(t)
	g, _ := tpl.Globals["Function"].(map[string]any)
	for k, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []any{"arm64"}} {
		if got := fmt.Sprint(g[k]); got != fmt.Sprint(want) {
			t.Errorf("Globals.Function.%s = %v, want %v", k, g[k], want)
		}
	}
	mk, err := os.ReadFile(filepath.Join(root, "sam.mk"))
	if err != nil {
		t.Fatalf("sam.mk: %v", err)
	}
	targets := map[string]string{}
	for _, m := range samTarget.FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = m[2]
	}
	declared := map[string]bool{}
	for name, r := range tpl.Resources {
		if r["Type"] == "AWS::Serverless::Function" {
			declared[name] = true
		}
	}
	dirs := map[string]bool{}
	for _, s := range specs {
		dirs[s.Dir] = true
		if !declared[s.Logical] {
			t.Errorf("template.yaml has no function %s", s.Logical)
			continue
		}
		delete(declared, s.Logical)
		r := tpl.Resources[s.Logical]
		p := props(t, tpl, s.Logical)
		if md, _ := r["Metadata"].(map[string]any); md["BuildMethod"] != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", s.Logical, md["BuildMethod"])
		}
		if p["CodeUri"] != "." {
			t.Errorf("%s: CodeUri = %v, want . (one go.mod for all functions; sam.mk builds ./functions/%s)", s.Logical, p["CodeUri"], s.Dir)
		}
		if dir := targets["build-"+s.Logical]; dir != s.Dir {
			t.Errorf("sam.mk: target build-%s must build functions/%s, got %q", s.Logical, s.Dir, dir)
		}
		if _, err := os.Stat(filepath.Join(root, "functions", s.Dir, "main.go")); err != nil {
			t.Errorf("%s: %v", s.Logical, err)
		}
		timeout := g["Timeout"]
		if v, ok := p["Timeout"]; ok {
			timeout = v
		}
		if n, _ := strconv.Atoi(fmt.Sprint(timeout)); s.Group != "" && (n < 1 || n > 29) {
			t.Errorf("%s: Timeout %v: HTTP API integrations give up after 30 s, use 1..29", s.Logical, timeout)
		}
		if lc, _ := p["LoggingConfig"].(map[string]any); lc["LogGroup"] == nil {
			t.Errorf("%s: no LoggingConfig.LogGroup (logs would never expire)", s.Logical)
		}
	}
	for name := range declared {
		t.Errorf("function %s is not known to the test: add it to specs", name)
	}
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !dirs[e.Name()] {
			t.Errorf("functions/%s has no function in template.yaml", e.Name())
		}
	}
	// The patch function is the only one with S3 events, on the bundle bucket:
	// uploaded bundles (publish.Pipeline.Ingest) and patch request markers
	// (publish.Pipeline.HandlePatchRequest), as shared/s3event routes them.
	wantS3Filters := map[string]bool{
		fmt.Sprint(map[string]string{"prefix": "bundles/", "suffix": ".zip"}): true,
		fmt.Sprint(map[string]string{"prefix": publish.PatchRequestPrefix}):   true,
	}
	seenS3Filters := map[string]bool{}
	for name, r := range tpl.Resources {
		if r["Type"] != "AWS::Serverless::Function" {
			continue
		}
		evs, _ := props(t, tpl, name)["Events"].(map[string]any)
		for evName, ev := range evs {
			m, _ := ev.(map[string]any)
			if m["Type"] == "HttpApi" {
				continue
			}
			if name != "PatchFunction" || m["Type"] != "S3" {
				t.Errorf("%s.Events.%s: unexpected event type %v", name, evName, m["Type"])
				continue
			}
			p, _ := m["Properties"].(map[string]any)
			if fn, arg, ok := intrinsic(p["Bucket"]); !ok || fn != "Ref" || arg != "Bucket" {
				t.Errorf("PatchFunction S3 event: Bucket must be !Ref Bucket, got %v", p["Bucket"])
			}
			if fmt.Sprint(p["Events"]) != "s3:ObjectCreated:*" {
				t.Errorf("PatchFunction S3 event: Events = %v, want s3:ObjectCreated:*", p["Events"])
			}
			rules := map[string]string{}
			f, _ := p["Filter"].(map[string]any)
			k, _ := f["S3Key"].(map[string]any)
			rl, _ := k["Rules"].([]any)
			for _, r := range rl {
				rm, _ := r.(map[string]any)
				rules[fmt.Sprint(rm["Name"])] = fmt.Sprint(rm["Value"])
			}
			filter := fmt.Sprint(rules)
			if !wantS3Filters[filter] {
				t.Errorf("PatchFunction S3 event %s: filter %v, want one of %v", evName, rules, sortedKeys(wantS3Filters))
			}
			if seenS3Filters[filter] {
				t.Errorf("PatchFunction S3 event %s: filter %v twice", evName, rules)
			}
			seenS3Filters[filter] = true
		}
		if name == "PatchFunction" && len(evs) != len(wantS3Filters) {
			t.Errorf("PatchFunction has %d events, want exactly its %d S3 events", len(evs), len(wantS3Filters))
		}
	}
}

// ---- environment

func checkEnvironment(t *testing.T, tpl *cfnTemplate) {
	g, _ := tpl.Globals["Function"].(map[string]any)
	genv, _ := g["Environment"].(map[string]any)
	gvars, _ := genv["Variables"].(map[string]any)
	for _, cdn := range []bool{false, true} {
		e := evaluatorFor(t, tpl, cdn)
		for _, s := range specs {
			p := props(t, tpl, s.Logical)
			env, _ := p["Environment"].(map[string]any)
			vars, _ := env["Variables"].(map[string]any)
			merged := map[string]any{}
			for k, v := range gvars {
				merged[k] = v
			}
			for k, v := range vars {
				merged[k] = v
			}
			values := map[string]string{}
			for _, k := range sortedKeys(merged) {
				if why, ok := unwantedEnv[k]; ok {
					t.Errorf("%s: sets %s: %s", s.Logical, k, why)
				} else if !knownEnv[k] {
					t.Errorf("%s: environment variable %s is not read by awsenv", s.Logical, k)
				}
				r, err := e.eval(merged[k])
				if _, absent := r.(noValue); absent && err == nil {
					continue
				}
				v, ok := r.(string)
				if err != nil || !ok {
					t.Errorf("%s: %s: %v does not evaluate to a string: %v", s.Logical, k, r, err)
				}
				values[k] = v
			}
			need := requiredEnv
			if s.CDN {
				need = append(slices.Clone(need), cdnEnv...)
			}
			for _, k := range need {
				if _, ok := merged[k]; !ok {
					t.Errorf("%s: no environment variable %s", s.Logical, k)
				}
			}
			if !s.CDN {
				for _, k := range cdnEnv {
					if _, ok := merged[k]; ok {
						t.Errorf("%s: has %s but signs no download URLs (keep the private key where it is needed)", s.Logical, k)
					}
				}
			}
			if values[awsenv.EnvTable] != fakeTableName {
				t.Errorf("%s: %s = %q, want !Ref Table", s.Logical, awsenv.EnvTable, values[awsenv.EnvTable])
			}
			if values[awsenv.EnvBucket] != e.refs["Bucket"] {
				t.Errorf("%s: %s = %q, want the bucket's name %q", s.Logical, awsenv.EnvBucket, values[awsenv.EnvBucket], e.refs["Bucket"])
			}
			if s.CDN && cdn && (values[awsenv.EnvCDNDomain] != fakeCDNDomain || values[awsenv.EnvCDNKeySSM] != e.params["CdnKeyParameter"]) {
				t.Errorf("%s: CDN settings %q %q, want the distribution's domain and the key parameter", s.Logical,
					values[awsenv.EnvCDNDomain], values[awsenv.EnvCDNKeySSM])
			}
			// What the template sets must be accepted by the code that reads it.
			if _, err := awsenv.FromEnv(func(k string) string { return values[k] }); err != nil {
				t.Errorf("%s (EnableCdn=%v): awsenv rejects the environment: %v", s.Logical, cdn, err)
			}
		}
	}
}

// ---- policies

// knownActions are the IAM actions the functions may be granted (a typo, or a
// non-existent action such as dynamodb:TransactWriteItems, fails here).
var knownActions = map[string]bool{
	"dynamodb:GetItem": true, "dynamodb:Query": true, "dynamodb:UpdateItem": true, "dynamodb:DeleteItem": true,
	"dynamodb:PutItem": true, "dynamodb:ConditionCheckItem": true,
	"s3:GetObject": true, "s3:PutObject": true, "s3:DeleteObject": true, "s3:ListBucket": true,
	"s3:AbortMultipartUpload": true, "ssm:GetParameter": true, "sqs:SendMessage": true,
}

// samGrants are the statements SAM adds to a function's role besides its Policies:
// for an EventInvokeConfig destination of Type SQS, sqs:SendMessage on that queue
// (samtranslator IAMRolePolicies.sqs_send_message_role_policy).
func samGrants(t *testing.T, e *evaluator, p map[string]any) []grant {
	var out []grant
	for _, when := range []string{"OnSuccess", "OnFailure"} {
		d := get(p, "EventInvokeConfig", "DestinationConfig", when)
		if d == nil {
			continue
		}
		dest, err := e.str(get(d, "Destination"))
		if err != nil {
			t.Errorf("EventInvokeConfig %s destination: %v", when, err)
			continue
		}
		switch get(d, "Type") {
		case "SQS":
			out = append(out, grant{Action: "sqs:SendMessage", Resource: dest})
		default:
			t.Errorf("EventInvokeConfig %s: destination type %v: model what SAM grants for it in samGrants", when, get(d, "Type"))
		}
	}
	return out
}

func canonicalCondition(c any) string {
	m, _ := c.(map[string]any)
	var parts []string
	for _, op := range sortedKeys(m) {
		keys, _ := m[op].(map[string]any)
		for _, k := range sortedKeys(keys) {
			var vals []string
			switch v := keys[k].(type) {
			case []any:
				for _, x := range v {
					vals = append(vals, fmt.Sprint(x))
				}
			default:
				vals = []string{fmt.Sprint(v)}
			}
			sort.Strings(vals)
			parts = append(parts, op+" "+k+"="+strings.Join(vals, ","))
		}
	}
	return strings.Join(parts, ";")
}

func checkPolicies(t *testing.T, tpl *cfnTemplate) {
	e := evaluatorFor(t, tpl, true) // the CDN on: every conditional statement present
	bucket := e.refs["Bucket"]
	placeholders := map[string]string{
		"TABLE":        e.atts["Table.Arn"],
		"BUCKET":       "arn:aws:s3:::" + bucket,
		"CDNKEY":       "arn:aws:ssm:us-east-1:123456789012:parameter" + e.params["CdnKeyParameter"],
		"FAILUREQUEUE": e.atts["PatchFailureQueue.Arn"],
	}
	resolve := func(r string) string {
		if p, ok := strings.CutPrefix(r, "OBJECTS/"); ok {
			return "arn:aws:s3:::" + bucket + "/" + p + "*"
		}
		return placeholders[r]
	}
	for _, s := range specs {
		p := props(t, tpl, s.Logical)
		if _, ok := p["Role"]; ok {
			t.Errorf("%s: uses a Role; the test checks inline Policies only", s.Logical)
			continue
		}
		pols, _ := p["Policies"].([]any)
		got := map[grant]bool{}
		for i, pol := range pols {
			doc, ok := pol.(map[string]any)
			if !ok || doc["Statement"] == nil {
				t.Errorf("%s.Policies[%d]: only inline policy documents are allowed (managed policies and SAM policy templates grant more than needed), got %v", s.Logical, i, pol)
				continue
			}
			stmts, _ := doc["Statement"].([]any)
			var expanded []any
			for _, st := range stmts {
				if fn, arg, ok := intrinsic(st); ok && fn == "Fn::If" {
					l, _ := arg.([]any)
					if len(l) == 3 {
						expanded = append(expanded, l[1], l[2])
						continue
					}
				}
				expanded = append(expanded, st)
			}
			for j, st := range expanded {
				if fn, arg, ok := intrinsic(st); ok && fn == "Ref" && arg == "AWS::NoValue" {
					continue
				}
				v, err := e.eval(st)
				if err != nil {
					t.Errorf("%s.Policies[%d].Statement[%d]: %v", s.Logical, i, j, err)
					continue
				}
				m, _ := v.(map[string]any)
				if m["Effect"] != "Allow" {
					t.Errorf("%s: statement %v: only Allow statements are expected", s.Logical, m["Sid"])
				}
				for _, k := range []string{"NotAction", "NotResource", "Principal"} {
					if _, ok := m[k]; ok {
						t.Errorf("%s: statement %v uses %s", s.Logical, m["Sid"], k)
					}
				}
				actions, err := e.strs(m["Action"])
				if err != nil {
					t.Errorf("%s: statement %v: Action: %v", s.Logical, m["Sid"], err)
				}
				resources, err := e.strs(m["Resource"])
				if err != nil || len(resources) == 0 {
					t.Errorf("%s: statement %v: Resource: %v", s.Logical, m["Sid"], err)
				}
				cond := canonicalCondition(m["Condition"])
				for _, a := range actions {
					if strings.Contains(a, "*") || !knownActions[a] {
						t.Errorf("%s: statement %v: action %q is a wildcard or not a known needed action", s.Logical, m["Sid"], a)
					}
					for _, r := range resources {
						if r == "*" || strings.HasSuffix(r, ":*") {
							t.Errorf("%s: statement %v: Resource %q is unrestricted", s.Logical, m["Sid"], r)
						}
						got[grant{Action: a, Resource: r, Cond: cond}] = true
					}
				}
			}
		}
		for _, g := range samGrants(t, e, p) {
			got[g] = true
		}
		want := map[grant]bool{}
		for _, g := range s.Grants {
			want[grant{Action: g.Action, Resource: resolve(g.Resource), Cond: g.Cond}] = true
		}
		for g := range got {
			if !want[g] {
				t.Errorf("%s grants %s on %s%s, which its handlers do not need (update specs if they now do)", s.Logical, g.Action, g.Resource, condSuffix(g.Cond))
			}
		}
		for g := range want {
			if !got[g] {
				t.Errorf("%s lacks %s on %s%s", s.Logical, g.Action, g.Resource, condSuffix(g.Cond))
			}
		}
	}
}

func condSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " if " + c
}

// ---- storage, CDN

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func checkStorage(t *testing.T, tpl *cfnTemplate) {
	tb := props(t, tpl, "Table")
	if tb["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("Table.BillingMode = %v", tb["BillingMode"])
	}
	if got := fmt.Sprint(tb["KeySchema"]); got != "[map[AttributeName:pk KeyType:HASH] map[AttributeName:sk KeyType:RANGE]]" {
		t.Errorf("Table.KeySchema = %s, want pk HASH, sk RANGE", got)
	}
	if got := fmt.Sprint(tb["AttributeDefinitions"]); got != "[map[AttributeName:pk AttributeType:S] map[AttributeName:sk AttributeType:S]]" {
		t.Errorf("Table.AttributeDefinitions = %s, want pk and sk strings", got)
	}
	if get(tb, "TimeToLiveSpecification", "AttributeName") != "exp" || get(tb, "TimeToLiveSpecification", "Enabled") != "true" {
		t.Errorf("Table TTL must be on attribute exp: %v", tb["TimeToLiveSpecification"])
	}
	if get(tb, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != "true" {
		t.Error("Table: point-in-time recovery is off")
	}
	// Encrypted with the AWS owned key, free: no SSESpecification, or SSEEnabled
	// false. SSEEnabled true is KMS (the AWS managed key or one's own), billed per
	// request.
	if sse := tb["SSESpecification"]; sse != nil && (get(sse, "SSEEnabled") != "false" || get(sse, "KMSMasterKeyId") != nil || get(sse, "SSEType") != nil) {
		t.Errorf("Table: SSESpecification %v: want the AWS owned key (no SSESpecification, or SSEEnabled false)", sse)
	}

	b := props(t, tpl, "Bucket")
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if get(b, "PublicAccessBlockConfiguration", k) != "true" {
			t.Errorf("Bucket: PublicAccessBlockConfiguration.%s must be true", k)
		}
	}
	if got := fmt.Sprint(get(b, "OwnershipControls", "Rules")); got != "[map[ObjectOwnership:BucketOwnerEnforced]]" {
		t.Errorf("Bucket.OwnershipControls = %s", got)
	}
	if !strings.Contains(fmt.Sprint(b["BucketEncryption"]), "SSEAlgorithm:AES256") {
		t.Errorf("Bucket: want SSE-S3 default encryption, got %v", b["BucketEncryption"])
	}
	if !strings.Contains(fmt.Sprint(b["LifecycleConfiguration"]), "AbortIncompleteMultipartUpload:map[DaysAfterInitiation:1]") {
		t.Errorf("Bucket: want incomplete multipart uploads aborted after 1 day, got %v", b["LifecycleConfiguration"])
	}
	e := evaluatorFor(t, tpl, false)
	if name := e.refs["Bucket"]; !regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`).MatchString(name) {
		t.Errorf("bucket name %q is not a valid S3 bucket name", name)
	}
}

func checkCDN(t *testing.T, tpl *cfnTemplate) {
	e := evaluatorFor(t, tpl, true)
	d, err := e.eval(props(t, tpl, "Distribution"))
	if err != nil {
		t.Fatalf("Distribution: %v", err)
	}
	dcb := get(d, "DistributionConfig", "DefaultCacheBehavior")
	if got := fmt.Sprint(get(dcb, "AllowedMethods")); got != "[GET HEAD]" {
		t.Errorf("Distribution: AllowedMethods = %s, want [GET HEAD]", got)
	}
	if get(dcb, "CachePolicyId") != "658327ea-f89d-4fab-a63d-7e88639e58f6" {
		t.Errorf("Distribution: CachePolicyId = %v, want CachingOptimized", get(dcb, "CachePolicyId"))
	}
	if get(dcb, "TrustedKeyGroups") == nil {
		t.Error("Distribution: no TrustedKeyGroups: downloads would not need a signature")
	}
	if get(dcb, "ViewerProtocolPolicy") == "allow-all" {
		t.Error("Distribution: plain HTTP allowed")
	}
	origins, _ := get(d, "DistributionConfig", "Origins").([]any)
	if len(origins) != 1 || get(origins[0], "OriginAccessControlId") == nil {
		t.Errorf("Distribution: want one origin with an Origin Access Control, got %v", origins)
	}
	// The bucket policy lets exactly this distribution read objects.
	bp, err := e.eval(props(t, tpl, "BucketPolicy"))
	if err != nil {
		t.Fatalf("BucketPolicy: %v", err)
	}
	found := false
	stmts, _ := get(bp, "PolicyDocument", "Statement").([]any)
	for _, st := range stmts {
		if get(st, "Effect") == "Allow" && get(st, "Principal", "Service") == "cloudfront.amazonaws.com" {
			found = true
			if get(st, "Action") != "s3:GetObject" {
				t.Errorf("BucketPolicy: CloudFront may only s3:GetObject, got %v", get(st, "Action"))
			}
			arn := get(st, "Condition", "StringEquals", "AWS:SourceArn")
			if arn != "arn:aws:cloudfront::123456789012:distribution/"+e.refs["Distribution"] {
				t.Errorf("BucketPolicy: CloudFront statement must be limited to this distribution, got %v", arn)
			}
		}
	}
	if !found {
		t.Error("BucketPolicy: no statement for cloudfront.amazonaws.com")
	}
	checkKeySlots(t, tpl)
	api := props(t, tpl, "HttpApi")
	if get(api, "DefaultRouteSettings", "ThrottlingRateLimit") == nil || get(api, "DefaultRouteSettings", "ThrottlingBurstLimit") == nil {
		t.Error("HttpApi: no DefaultRouteSettings throttling")
	}
}

// checkKeySlots: the key group trusts every filled key slot, so a rotation can hold
// the old and the new public key; the functions get one parameter for id and key.
func checkKeySlots(t *testing.T, tpl *cfnTemplate) {
	for _, tc := range []struct {
		a, b string
		want string
	}{
		{"/otakit/cloudfront-public-key", "", "[" + fakeKeyPairID + "]"},
		{"/otakit/cloudfront-public-key", "/otakit/cloudfront-public-key-2", "[" + fakeKeyPairID + " " + fakeKeyPairIDB + "]"},
		{"", "/otakit/cloudfront-public-key-2", "[" + fakeKeyPairIDB + "]"},
	} {
		e := evaluatorWith(t, tpl, map[string]string{"EnableCdn": "true", "CdnPublicKeyParameter": tc.a, "CdnPublicKeyBParameter": tc.b})
		kg, err := e.eval(props(t, tpl, "CdnKeyGroup"))
		if err != nil {
			t.Fatalf("CdnKeyGroup: %v", err)
		}
		if got := fmt.Sprint(get(kg, "KeyGroupConfig", "Items")); got != tc.want {
			t.Errorf("slots A=%q B=%q: CdnKeyGroup holds %s, want %s", tc.a, tc.b, got, tc.want)
		}
		for slot, logical := range map[string]string{tc.a: "CdnPublicKey", tc.b: "CdnPublicKeyB"} {
			c, _ := tpl.Resources[logical]["Condition"].(string)
			on, err := e.condition(c)
			if err != nil || on != (slot != "") {
				t.Errorf("slots A=%q B=%q: %s exists: %v (%v)", tc.a, tc.b, logical, on, err)
			}
			if slot == "" {
				continue
			}
			pk, err := e.eval(props(t, tpl, logical))
			if err != nil {
				t.Fatalf("%s: %v", logical, err)
			}
			if got := get(pk, "PublicKeyConfig", "EncodedKey"); got != "{{resolve:ssm:"+slot+"}}" {
				t.Errorf("%s: EncodedKey %v, want the SSM parameter %s", logical, got, slot)
			}
		}
	}
	// Slot names differ: both can exist at once (CloudFront key names are unique).
	e := evaluatorWith(t, tpl, map[string]string{"EnableCdn": "true", "CdnPublicKeyBParameter": "/k"})
	a, _ := e.eval(props(t, tpl, "CdnPublicKey"))
	b, _ := e.eval(props(t, tpl, "CdnPublicKeyB"))
	if get(a, "PublicKeyConfig", "Name") == get(b, "PublicKeyConfig", "Name") {
		t.Errorf("key slots share the name %v", get(a, "PublicKeyConfig", "Name"))
	}
	// With an alternate domain name the functions sign URLs for it.
	e = evaluatorWith(t, tpl, map[string]string{"EnableCdn": "true", "CdnDomainName": "dl.example.com",
		"CdnCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"})
	d, err := e.eval(props(t, tpl, "Distribution"))
	if err != nil {
		t.Fatalf("Distribution: %v", err)
	}
	if got := fmt.Sprint(get(d, "DistributionConfig", "Aliases")); got != "[dl.example.com]" {
		t.Errorf("Distribution.Aliases = %s, want [dl.example.com]", got)
	}
	vc := get(d, "DistributionConfig", "ViewerCertificate")
	if get(vc, "AcmCertificateArn") != e.params["CdnCertificateArn"] || get(vc, "SslSupportMethod") != "sni-only" {
		t.Errorf("Distribution.ViewerCertificate = %v, want the ACM certificate, SNI", vc)
	}
	for _, s := range specs {
		if !s.CDN {
			continue
		}
		v, err := e.eval(get(props(t, tpl, s.Logical), "Environment", "Variables", awsenv.EnvCDNDomain))
		if err != nil || v != "dl.example.com" {
			t.Errorf("%s: %s = %v (%v), want the alternate domain name", s.Logical, awsenv.EnvCDNDomain, v, err)
		}
	}
	e = evaluatorFor(t, tpl, true)
	d, _ = e.eval(props(t, tpl, "Distribution"))
	if get(d, "DistributionConfig", "Aliases") != nil || get(d, "DistributionConfig", "ViewerCertificate", "CloudFrontDefaultCertificate") != "true" {
		t.Errorf("Distribution without CdnDomainName: %v", get(d, "DistributionConfig"))
	}
}

// checkLogging: every function logs JSON that Lambda filters: platform lines from
// WARN, application lines from the LogLevel parameter, into its own log group.
func checkLogging(t *testing.T, tpl *cfnTemplate) {
	g, _ := tpl.Globals["Function"].(map[string]any)
	levels, _ := tpl.Parameters["LogLevel"]["AllowedValues"].([]any)
	if len(levels) == 0 {
		t.Fatal("parameter LogLevel has no AllowedValues")
	}
	for _, lv := range levels {
		e := evaluatorWith(t, tpl, map[string]string{"LogLevel": fmt.Sprint(lv)})
		for _, s := range specs {
			lc := map[string]any{}
			for k, v := range get(g, "LoggingConfig").(map[string]any) {
				lc[k] = v
			}
			if own, ok := props(t, tpl, s.Logical)["LoggingConfig"].(map[string]any); ok {
				for k, v := range own {
					lc[k] = v
				}
			}
			v, err := e.eval(lc)
			if err != nil {
				t.Errorf("%s: LoggingConfig: %v", s.Logical, err)
				continue
			}
			want := map[string]string{"LogFormat": "JSON", "SystemLogLevel": "WARN",
				"ApplicationLogLevel": strings.ToUpper(fmt.Sprint(lv))}
			for k, w := range want {
				if got := get(v, k); got != w {
					t.Errorf("%s (LogLevel %v): LoggingConfig.%s = %v, want %s", s.Logical, lv, k, got, w)
				}
			}
			if get(v, "LogGroup") == nil {
				t.Errorf("%s: no LoggingConfig.LogGroup (logs would never expire)", s.Logical)
			}
		}
	}
}

// checkPatchFailures: S3 events the patch function fails on for good land in an SQS
// queue with an alarm on it, instead of vanishing.
func checkPatchFailures(t *testing.T, tpl *cfnTemplate) {
	p := props(t, tpl, "PatchFunction")
	eic := get(p, "EventInvokeConfig")
	if get(eic, "MaximumRetryAttempts") != "2" {
		t.Errorf("PatchFunction: EventInvokeConfig.MaximumRetryAttempts = %v, want 2", get(eic, "MaximumRetryAttempts"))
	}
	onFailure := get(eic, "DestinationConfig", "OnFailure")
	if get(onFailure, "Type") != "SQS" {
		t.Errorf("PatchFunction: on-failure destination type %v, want SQS (SAM then grants sqs:SendMessage on it)", get(onFailure, "Type"))
	}
	if fn, arg, ok := intrinsic(get(onFailure, "Destination")); !ok || fn != "Fn::GetAtt" || fmt.Sprint(arg) != "[PatchFailureQueue Arn]" {
		t.Errorf("PatchFunction: on-failure destination %v, want !GetAtt PatchFailureQueue.Arn", get(onFailure, "Destination"))
	}
	if tpl.Resources["PatchFailureQueue"]["Type"] != "AWS::SQS::Queue" {
		t.Fatalf("PatchFailureQueue is not an SQS queue")
	}
	if q := props(t, tpl, "PatchFailureQueue"); q["FifoQueue"] == "true" {
		t.Error("PatchFailureQueue: Lambda destinations cannot be FIFO queues")
	}
	e := evaluatorWith(t, tpl, map[string]string{"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"})
	var alarms int
	for _, name := range sortedKeys(tpl.Resources) {
		if tpl.Resources[name]["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		a, err := e.eval(props(t, tpl, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dims, _ := get(a, "Dimensions").([]any)
		if get(a, "Namespace") != "AWS/SQS" || len(dims) != 1 || get(dims[0], "Name") != "QueueName" || get(dims[0], "Value") != fakeQueueName {
			continue
		}
		alarms++
		th, _ := strconv.ParseFloat(fmt.Sprint(get(a, "Threshold")), 64)
		if get(a, "MetricName") != "ApproximateNumberOfMessagesVisible" ||
			!(get(a, "ComparisonOperator") == "GreaterThanThreshold" && th == 0 || get(a, "ComparisonOperator") == "GreaterThanOrEqualToThreshold" && th == 1) {
			t.Errorf("%s: want ApproximateNumberOfMessagesVisible > 0, got %v %v %v", name, get(a, "MetricName"), get(a, "ComparisonOperator"), get(a, "Threshold"))
		}
		if fmt.Sprint(get(a, "AlarmActions")) != "[arn:aws:sns:us-east-1:123456789012:ops]" {
			t.Errorf("%s: AlarmActions %v, want the AlarmTopicArn topic", name, get(a, "AlarmActions"))
		}
	}
	if alarms != 1 {
		t.Errorf("%d alarms on PatchFailureQueue, want 1", alarms)
	}
}

// checkCustomDomains: an optional domain at the root of the HTTP API (no mapping
// key), only when asked for; the API's public URL follows it.
func checkCustomDomains(t *testing.T, tpl *cfnTemplate) {
	for _, name := range []string{"ApiDomain", "ApiMapping"} {
		if c, _ := tpl.Resources[name]["Condition"].(string); c != "HasApiDomain" {
			t.Errorf("%s: Condition %q, want HasApiDomain (optional)", name, c)
		}
	}
	off := evaluatorFor(t, tpl, false)
	if on, _ := off.condition("HasApiDomain"); on {
		t.Error("HasApiDomain holds with the default parameters")
	}
	e := evaluatorWith(t, tpl, map[string]string{"ApiDomainName": "ota.example.com",
		"ApiCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"})
	if on, err := e.condition("HasApiDomain"); !on || err != nil {
		t.Fatalf("HasApiDomain with a domain and a certificate: %v %v", on, err)
	}
	d, err := e.eval(props(t, tpl, "ApiDomain"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := get(d, "DomainNameConfigurations").([]any)
	if get(d, "DomainName") != "ota.example.com" || len(cfg) != 1 || get(cfg[0], "CertificateArn") != e.params["ApiCertificateArn"] ||
		get(cfg[0], "EndpointType") != "REGIONAL" {
		t.Errorf("ApiDomain = %v", d)
	}
	m := props(t, tpl, "ApiMapping")
	if k, ok := m["ApiMappingKey"]; ok && k != "" {
		t.Errorf("ApiMapping.ApiMappingKey = %v: the API must answer at the domain's root", k)
	}
	for k, want := range map[string]string{"ApiId": "HttpApi", "DomainName": "ApiDomain", "Stage": "HttpApi.Stage"} {
		if fn, arg, ok := intrinsic(m[k]); !ok || fn != "Ref" || arg != want {
			t.Errorf("ApiMapping.%s = %v, want !Ref %s", k, m[k], want)
		}
	}
	g, _ := tpl.Globals["Function"].(map[string]any)
	for params, want := range map[[2]string]string{
		{"ota.example.com", ""}:                   "https://ota.example.com",
		{"ota.example.com", "https://other.test"}: "https://other.test",
		{"", ""}: "",
	} {
		e := evaluatorWith(t, tpl, map[string]string{"ApiDomainName": params[0], "PublicUrl": params[1],
			"ApiCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"})
		if params[0] == "" {
			e.params["ApiCertificateArn"] = ""
		}
		v, err := e.eval(get(g, "Environment", "Variables", awsenv.EnvPublicURL))
		if err != nil || v != want {
			t.Errorf("ApiDomainName %q, PublicUrl %q: %s = %v (%v), want %q", params[0], params[1], awsenv.EnvPublicURL, v, err, want)
		}
	}
}

// ---- sample events

func TestSampleEvents(t *testing.T) {
	root := repoRoot(t)
	tpl := setup(t)
	routes := templateRoutes(t, tpl)
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no sample events in events/")
	}
	// A mux with every deployed route tells which pattern a sample request reaches.
	mux := http.NewServeMux()
	for _, r := range api.Routes() {
		if r.Group != api.GroupLocal {
			mux.Handle(r.Pattern(), http.NotFoundHandler())
		}
	}
	fnOf := map[string]api.Group{}
	for _, s := range specs {
		if s.Group != "" {
			fnOf[s.Dir] = s.Group
		}
	}
	seen := map[string]bool{}
	for _, f := range files {
		base := filepath.Base(f)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(base, "s3-") {
			var ev events.S3Event
			if err := json.Unmarshal(b, &ev); err != nil || len(ev.Records) == 0 {
				t.Errorf("%s: not an S3 event: %v", base, err)
			}
			seen["patch"] = true
			continue
		}
		dir, _, _ := strings.Cut(base, "-")
		group, ok := fnOf[dir]
		if !ok {
			t.Errorf("%s: name must start with a function folder (check-, confirm-, ...) or s3-", base)
			continue
		}
		seen[dir] = true
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		if ev.Version != "2.0" {
			t.Errorf("%s: version %q, want 2.0 (HTTP API payload format)", base, ev.Version)
		}
		method, path, _ := strings.Cut(ev.RouteKey, " ")
		fns := routes[gatewayRoute{Method: method, Path: path}]
		if len(fns) != 1 || fns[0] != specFor(dir).Logical {
			t.Errorf("%s: routeKey %q is not a route of %s in template.yaml", base, ev.RouteKey, specFor(dir).Logical)
		}
		if ev.RequestContext.HTTP.Method != method || ev.RequestContext.HTTP.Path != ev.RawPath {
			t.Errorf("%s: requestContext.http (%s %s) disagrees with routeKey/rawPath", base, ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path)
		}
		u := ev.RawPath
		if ev.RawQueryString != "" {
			u += "?" + ev.RawQueryString
		}
		req := httptest.NewRequest(method, u, nil)
		_, pattern := mux.Handler(req)
		var hit *api.Route
		for _, r := range api.Routes() {
			if r.Pattern() == pattern && r.Group != api.GroupLocal {
				hit = &r
				break
			}
		}
		if hit == nil {
			t.Errorf("%s: %s %s matches no deployed route", base, method, ev.RawPath)
			continue
		}
		if gr, _ := gatewayRouteOf(*hit); gr.String() != ev.RouteKey || hit.Group != group {
			t.Errorf("%s: %s %s reaches %s (group %s), but routeKey says %q", base, method, ev.RawPath, hit.Pattern(), hit.Group, ev.RouteKey)
		}
		for k, v := range ev.PathParameters {
			if !strings.Contains(ev.RouteKey, "{"+k+"}") && !strings.Contains(ev.RouteKey, "{"+k+"+}") {
				t.Errorf("%s: pathParameters has %s=%s, which the route does not declare", base, k, v)
			}
		}
	}
	for _, s := range specs {
		if !seen[s.Dir] {
			t.Errorf("events/: no sample event for %s", s.Logical)
		}
	}
}

// sampleKey is the API key in the sample events (a made-up one).
const sampleKey = "ota_live_0123456789abcdefghijklmnopqrstuv"

// TestSampleEventsReachHandlers replays every API sample event the way the Lambda
// does (lambdahttp into the function's route group), on embedded storage: each must
// reach a handler of its group, not the not-found fallback or the adapter's 400.
func TestSampleEventsReachHandlers(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	signer, err := urlsign.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := bolt.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(tbl)
	defer st.Close()
	blobs, err := blob.NewLocal(filepath.Join(dir, "objects"), signer, "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	// The samples use this app and key.
	ctx := context.Background()
	if _, err := st.CreateKey(ctx, sampleKey, "sample events", []string{"*"}, true, "test"); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApp(ctx, release.App{ID: "com.example.app", DefaultChannel: "production", FluxSecret: "flux-secret",
		CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Deps{Store: st, Blobs: blobs, URLs: cdn.Local{Signer: signer, BaseURL: "http://127.0.0.1:8080"},
		Pipeline: publish.NewPipeline(st, blobs, nil)}, api.Config{})
	files, _ := filepath.Glob(filepath.Join(root, "events", "*.json"))
	for _, f := range files {
		base := filepath.Base(f)
		d, _, _ := strings.Cut(base, "-")
		spec := specFor(d)
		if spec.Group == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		resp, err := lambdahttp.Handler(srv.Handler(spec.Group))(context.Background(), ev)
		if err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		body := resp.Body
		if resp.IsBase64Encoded {
			raw, _ := base64.StdEncoding.DecodeString(body)
			body = string(raw)
		}
		if strings.Contains(body, "route_not_found") || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("%s: did not reach a %s handler: %d %s", base, spec.Group, resp.StatusCode, body)
		}
		if resp.StatusCode >= 500 {
			t.Errorf("%s: %d %s", base, resp.StatusCode, body)
		}
		authed := strings.Contains(ev.Headers["authorization"], sampleKey) || ev.PathParameters["key"] == sampleKey
		if authed && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			t.Errorf("%s: the sample's API key was refused: %d %s", base, resp.StatusCode, body)
		}
		t.Logf("%s -> %d %.120s", base, resp.StatusCode, body)
	}
}

func specFor(dir string) fnSpec {
	for _, s := range specs {
		if s.Dir == dir {
			return s
		}
	}
	return fnSpec{}
}

// ---- function entry points: wiring only, and they build for Lambda

var allowedImports = map[string]bool{
	"context": true, "fmt": true, "os": true, "log": true, "log/slog": true,
	"github.com/aws/aws-lambda-go/lambda":     true,
	"github.com/otakit/ota/shared/api":        true,
	"github.com/otakit/ota/shared/awsenv":     true,
	"github.com/otakit/ota/shared/lambdahttp": true,
	"github.com/otakit/ota/shared/s3event":    true,
}

func TestFunctionsAreWiringOnly(t *testing.T) {
	root := repoRoot(t)
	for _, s := range specs {
		dir := filepath.Join(root, "functions", s.Dir)
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(files) == 0 {
			t.Errorf("functions/%s has no Go files", s.Dir)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			for _, im := range af.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				if !allowedImports[p] {
					t.Errorf("functions/%s/%s imports %s: entry points only wire awsenv, api/s3event and the Lambda runtime", s.Dir, filepath.Base(f), p)
				}
			}
		}
	}
}

func TestFunctionsBuildForLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function for linux/arm64")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags", "-s -w", "-tags", "lambda.norpc", "-o", os.DevNull, "./functions/...")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/... (linux/arm64, lambda.norpc): %v\n%s", err, out)
	}
}

// TestFunctionsDoNotImportSDKConfig keeps github.com/aws/aws-sdk-go-v2/config (shared
// config files, SSO, STS, IMDS: ~1.5 MiB per binary) out of the Lambda binaries:
// they configure the SDK from the Lambda environment with shared/awsconf.
func TestFunctionsDoNotImportSDKConfig(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	for _, s := range specs {
		cmd := exec.Command(goTool, "list", "-tags", "lambda.norpc", "-deps", "./functions/"+s.Dir)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps ./functions/%s: %v", s.Dir, err)
		}
		for _, p := range strings.Fields(string(out)) {
			if p == "github.com/aws/aws-sdk-go-v2/config" || strings.HasPrefix(p, "github.com/aws/aws-sdk-go-v2/config/") {
				t.Errorf("functions/%s links %s (use shared/awsconf, not config or shared/awsclient)", s.Dir, p)
			}
		}
	}
}

// TestCfnLint validates the template against the CloudFormation and SAM schemas when
// cfn-lint is installed (pip install cfn-lint); it runs the SAM transform first.
func TestCfnLint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cfn-lint")
	}
	lint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint not installed")
	}
	cmd := exec.Command(lint, "--", "template.yaml")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

// TestSamconfigExample: the parameter overrides of samconfig.toml.example name
// template parameters with allowed values (a stale name fails `sam deploy`).
func TestSamconfigExample(t *testing.T) {
	tpl := setup(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "samconfig.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	overrides := regexp.MustCompile(`(?m)^\s*"([A-Za-z0-9]+)=([^"]*)",?\s*$`).FindAllStringSubmatch(string(b), -1)
	if len(overrides) == 0 {
		t.Fatal("samconfig.toml.example: no parameter overrides found")
	}
	for _, m := range overrides {
		p, ok := tpl.Parameters[m[1]]
		if !ok {
			t.Errorf("samconfig.toml.example overrides %s, which template.yaml does not declare", m[1])
			continue
		}
		if av, ok := p["AllowedValues"].([]any); ok && !slices.Contains(av, any(m[2])) {
			t.Errorf("samconfig.toml.example: %s=%s is not among %v", m[1], m[2], av)
		}
		if pat, ok := p["AllowedPattern"].(string); ok && !regexp.MustCompile("^(?:"+pat+")$").MatchString(m[2]) {
			t.Errorf("samconfig.toml.example: %s=%s does not match %s", m[1], m[2], pat)
		}
	}
}

// TestDocsParameters: docs/aws.md documents every template parameter and names no
// parameter the template lacks.
func TestDocsParameters(t *testing.T) {
	tpl := setup(t)
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "aws.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Parameters\n")
	if start < 0 {
		t.Fatal("docs/aws.md: no Parameters section")
	}
	section := doc[start:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	for name := range tpl.Parameters {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("docs/aws.md: parameter %s is not in the Parameters table", name)
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9]+)`(?:(?:, | / )`([A-Za-z0-9]+)`)?").FindAllStringSubmatch(section, -1) {
		for _, name := range m[1:] {
			if _, ok := tpl.Parameters[name]; name != "" && !ok {
				t.Errorf("docs/aws.md documents parameter %s, which template.yaml does not declare", name)
			}
		}
	}
}
