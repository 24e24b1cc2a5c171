package awsenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/otakit/ota/shared/awsconf"
)

// The CloudFront private key is an SSM Parameter Store SecureString, read once per
// cold start. It is the cheapest clean place for it: standard parameters cost
// nothing (Secrets Manager is $0.40 per secret-month), CloudFormation never sees the
// value, and the default aws/ssm KMS key needs no extra IAM grant (its key policy
// allows decryption through SSM to principals of the account; a customer managed
// key would need kms:Decrypt).
//
// GetParameter is one signed JSON call, made here with the SDK's SigV4 signer rather
// than through service/ssm, which would add a module and ~1 MiB to every binary.

// ssmGetParameter reads and decrypts one parameter. The endpoint follows the SDK's
// standard variables: AWS_ENDPOINT_URL_SSM, else AWS_ENDPOINT_URL (LocalStack), else
// the regional AWS endpoint (awsconf.Config.SSMEndpoint).
func ssmGetParameter(ctx context.Context, c awsconf.Config, name string) (string, error) {
	cfg := c.AWS
	endpoint := c.SSMEndpoint()
	if endpoint == "" {
		return "", fmt.Errorf("ssm: no region configured (set AWS_REGION)")
	}
	body, err := json.Marshal(map[string]any{"Name": name, "WithDecryption": true})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("ssm: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	if cfg.Credentials == nil {
		return "", fmt.Errorf("ssm: no AWS credentials configured")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("ssm: credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", cfg.Region, time.Now()); err != nil {
		return "", fmt.Errorf("ssm: sign: %w", err)
	}
	var client interface {
		Do(*http.Request) (*http.Response, error)
	} = http.DefaultClient
	if cfg.HTTPClient != nil {
		client = cfg.HTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ssm: get parameter %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("ssm: get parameter %s: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
			Msg     string `json:"Message"`
		}
		_ = json.Unmarshal(b, &e)
		code := e.Type
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if code == "" {
			code = resp.Status
		}
		return "", fmt.Errorf("ssm: get parameter %s: %s: %s", name, code, e.Message+e.Msg)
	}
	var out struct {
		Parameter struct {
			Value string `json:"Value"`
		} `json:"Parameter"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("ssm: get parameter %s: decode: %w", name, err)
	}
	return out.Parameter.Value, nil
}
