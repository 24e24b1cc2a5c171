package awsenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/otakit/ota/shared/awsconf"
)

// The CloudFront signing key is an SSM Parameter Store SecureString, read once per
// cold start (and again every few minutes, see cdnkey.go). It is the cheapest clean
// place for it: standard parameters cost nothing (Secrets Manager is $0.40 per
// secret-month), CloudFormation never sees the value, and the default aws/ssm KMS
// key needs no extra IAM grant (its key policy allows decryption through SSM to
// principals of the account; a customer managed key would need kms:Decrypt).
//
// GetParameter is one signed JSON call, made here with the SDK's SigV4 signer rather
// than through service/ssm, which would add a module and ~1 MiB to every binary.
// Without the SDK's retryer, retries are done here (retryPolicy).

// retryPolicy bounds GetParameter: a cold start must neither hang on one stuck
// connection nor fail on one throttled or dropped request.
type retryPolicy struct {
	Attempts int           // calls in all
	Timeout  time.Duration // per call
	Backoff  time.Duration // before the second call; doubles, with jitter
}

// ssmRetry: 3 calls of at most 2 s, 100-200 ms then 200-400 ms apart.
var ssmRetry = retryPolicy{Attempts: 3, Timeout: 2 * time.Second, Backoff: 100 * time.Millisecond}

// ssmError is an error answer of SSM.
type ssmError struct {
	Status  int
	Code    string // e.g. ParameterNotFound, AccessDeniedException, ThrottlingException
	Message string
}

func (e *ssmError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// retryable: throttling and server errors are; other client errors
// (ParameterNotFound, AccessDeniedException, ...) will not change by retrying.
func (e *ssmError) retryable() bool {
	switch e.Code {
	case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
		"InternalServerError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException":
		return true
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// isParameterNotFound tells whether err is SSM's answer for a missing parameter.
func isParameterNotFound(err error) bool {
	var e *ssmError
	return errors.As(err, &e) && (e.Code == "ParameterNotFound" || e.Code == "ParameterVersionNotFound")
}

// ssmGetParameter reads and decrypts one parameter with ssmRetry. The endpoint
// follows the SDK's standard variables: AWS_ENDPOINT_URL_SSM, else AWS_ENDPOINT_URL
// (LocalStack), else the regional AWS endpoint (awsconf.Config.SSMEndpoint).
func ssmGetParameter(ctx context.Context, c awsconf.Config, name string) (string, error) {
	return ssmRetry.getParameter(ctx, c, name)
}

func (p retryPolicy) getParameter(ctx context.Context, c awsconf.Config, name string) (string, error) {
	if c.SSMEndpoint() == "" {
		return "", fmt.Errorf("ssm: no region configured (set AWS_REGION)")
	}
	if c.AWS.Credentials == nil {
		return "", fmt.Errorf("ssm: no AWS credentials configured")
	}
	attempts := max(p.Attempts, 1)
	var err error
	for i := range attempts {
		if i > 0 {
			// Jittered exponential backoff: [d, 2d) with d = Backoff << (i-1).
			d := p.Backoff << (i - 1)
			if d > 0 {
				d += rand.N(d)
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", fmt.Errorf("ssm: get parameter %s: %w (after %w)", name, ctx.Err(), err)
			case <-t.C:
			}
		}
		var v string
		v, err = p.call(ctx, c, name)
		if err == nil {
			return v, nil
		}
		var se *ssmError
		switch {
		case ctx.Err() != nil:
			// The caller gave up: its deadline, not SSM, ended the call.
			return "", fmt.Errorf("ssm: get parameter %s: %w", name, err)
		case errors.As(err, &se) && !se.retryable():
			return "", fmt.Errorf("ssm: get parameter %s: %w", name, err)
		}
		// Network error, per-call timeout, throttling or 5xx: try again.
	}
	return "", fmt.Errorf("ssm: get parameter %s: %d attempts: %w", name, attempts, err)
}

// call makes one signed GetParameter request, bounded by p.Timeout.
func (p retryPolicy) call(ctx context.Context, c awsconf.Config, name string) (string, error) {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	cfg := c.AWS
	body, err := json.Marshal(map[string]any{"Name": name, "WithDecryption": true})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.SSMEndpoint(), "/")+"/", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", &ssmError{Code: "CredentialsError", Message: err.Error()}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", cfg.Region, time.Now()); err != nil {
		return "", &ssmError{Code: "SigningError", Message: err.Error()}
	}
	var client interface {
		Do(*http.Request) (*http.Response, error)
	} = http.DefaultClient
	if cfg.HTTPClient != nil {
		client = cfg.HTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
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
		return "", &ssmError{Status: resp.StatusCode, Code: code, Message: e.Message + e.Msg}
	}
	var out struct {
		Parameter struct {
			Value string `json:"Value"`
		} `json:"Parameter"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		// A cut-off body is a transport failure, like a dropped connection.
		return "", fmt.Errorf("decode: %w", err)
	}
	return out.Parameter.Value, nil
}
