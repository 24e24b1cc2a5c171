// Package awsconf builds the AWS SDK configuration of the Lambda functions from their
// environment alone, without github.com/aws/aws-sdk-go-v2/config. That package
// brings the shared config and credentials files, SSO, STS, IMDS and their service
// clients into every binary that imports it (~1.5 MiB per Lambda), none of which a
// Lambda uses: Lambda puts the region and the execution role's credentials in the
// environment. The CLI and otad keep using config (shared/awsclient) for profiles
// and SSO.
//
// What is read, with the names and meaning the SDK gives them:
//   - region: AWS_REGION, else AWS_DEFAULT_REGION;
//   - credentials: AWS_ACCESS_KEY_ID (or AWS_ACCESS_KEY), AWS_SECRET_ACCESS_KEY (or
//     AWS_SECRET_KEY), AWS_SESSION_TOKEN, AWS_ACCOUNT_ID, read when the SDK asks for
//     them, not when the configuration is built;
//   - endpoints: AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SSM,
//     else AWS_ENDPOINT_URL, unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true; with
//     an S3 endpoint set the S3 client uses path-style addressing (emulators,
//     LocalStack);
//   - AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_SDK_UA_APP_ID,
//     AWS_REQUEST_CHECKSUM_CALCULATION and AWS_RESPONSE_CHECKSUM_VALIDATION.
//
// Everything else (HTTP client, retryer, logger, defaults mode) is left to the
// service clients' own defaults, which are what LoadDefaultConfig would give too.
// Not supported: shared config files and profiles, web identity, container and
// IMDS credentials, FIPS and dual-stack endpoint variables.
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Environment variables, as the SDK names them.
const (
	EnvRegion                = "AWS_REGION"
	EnvDefaultRegion         = "AWS_DEFAULT_REGION"
	EnvAccessKeyID           = "AWS_ACCESS_KEY_ID"
	EnvAccessKey             = "AWS_ACCESS_KEY" // older alias of AWS_ACCESS_KEY_ID
	EnvSecretAccessKey       = "AWS_SECRET_ACCESS_KEY"
	EnvSecretKey             = "AWS_SECRET_KEY" // older alias of AWS_SECRET_ACCESS_KEY
	EnvSessionToken          = "AWS_SESSION_TOKEN"
	EnvAccountID             = "AWS_ACCOUNT_ID"
	EnvEndpointURL           = "AWS_ENDPOINT_URL"
	EnvEndpointURLDynamoDB   = "AWS_ENDPOINT_URL_DYNAMODB"
	EnvEndpointURLS3         = "AWS_ENDPOINT_URL_S3"
	EnvEndpointURLSSM        = "AWS_ENDPOINT_URL_SSM"
	EnvIgnoreEndpointURLs    = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
	EnvMaxAttempts           = "AWS_MAX_ATTEMPTS"
	EnvRetryMode             = "AWS_RETRY_MODE"
	EnvAppID                 = "AWS_SDK_UA_APP_ID"
	EnvRequestChecksumCalc   = "AWS_REQUEST_CHECKSUM_CALCULATION"
	EnvResponseChecksumValid = "AWS_RESPONSE_CHECKSUM_VALIDATION"
)

// CredentialsSource is the Source of the credentials the environment provider returns.
const CredentialsSource = "awsconf.Environment"

// ErrNoCredentials is returned by the credentials provider when the environment holds
// no access key.
var ErrNoCredentials = errors.New("awsconf: no AWS credentials in the environment (" + EnvAccessKeyID + ", " + EnvSecretAccessKey + ")")

// Endpoints are the endpoint overrides per service; empty means the AWS endpoint of
// the region.
type Endpoints struct {
	DynamoDB string
	S3       string
	SSM      string
}

// Config is the SDK configuration plus the per-service endpoints (aws.Config has one
// BaseEndpoint for all services; the SDK resolves the per-service variables only
// through config's sources, which this package does without).
type Config struct {
	AWS       aws.Config
	Endpoints Endpoints
}

// Load reads the process environment.
func Load() (Config, error) { return FromEnv(os.Getenv) }

// FromEnv builds the configuration from getenv (os.Getenv outside tests). Only
// malformed values are errors: a missing region or missing credentials show up on
// the first request, as with the SDK's default configuration.
func FromEnv(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := get(k); v != "" {
				return v
			}
		}
		return ""
	}
	var errs []error
	cfg := aws.Config{
		Region:      first(EnvRegion, EnvDefaultRegion),
		Credentials: EnvCredentials{Getenv: getenv},
		AppID:       get(EnvAppID),
	}
	if v := get(EnvMaxAttempts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s: want a whole number of at least 1, got %q", EnvMaxAttempts, v))
		}
		cfg.RetryMaxAttempts = n
	}
	if v := get(EnvRetryMode); v != "" {
		m, err := aws.ParseRetryMode(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvRetryMode, err))
		}
		cfg.RetryMode = m
	}
	switch v := strings.ToLower(get(EnvRequestChecksumCalc)); v {
	case "":
	case "when_supported":
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	case "when_required":
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	default:
		errs = append(errs, fmt.Errorf("%s: want when_supported or when_required, got %q", EnvRequestChecksumCalc, v))
	}
	switch v := strings.ToLower(get(EnvResponseChecksumValid)); v {
	case "":
	case "when_supported":
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
	case "when_required":
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	default:
		errs = append(errs, fmt.Errorf("%s: want when_supported or when_required, got %q", EnvResponseChecksumValid, v))
	}

	var ep Endpoints
	ignore := false
	if v := get(EnvIgnoreEndpointURLs); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false, got %q", EnvIgnoreEndpointURLs, v))
		}
		ignore = b
	}
	if !ignore {
		ep = Endpoints{
			DynamoDB: first(EnvEndpointURLDynamoDB, EnvEndpointURL),
			S3:       first(EnvEndpointURLS3, EnvEndpointURL),
			SSM:      first(EnvEndpointURLSSM, EnvEndpointURL),
		}
	}
	return Config{AWS: cfg, Endpoints: ep}, errors.Join(errs...)
}

// DynamoDB returns a DynamoDB client on c; optFns run last.
func (c Config) DynamoDB(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(c.AWS, func(o *dynamodb.Options) {
		if c.Endpoints.DynamoDB != "" {
			o.BaseEndpoint = aws.String(c.Endpoints.DynamoDB)
		}
		for _, fn := range optFns {
			fn(o)
		}
	})
}

// S3 returns an S3 client on c, path-style when an S3 endpoint is set; optFns run
// last.
func (c Config) S3(optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(c.AWS, func(o *s3.Options) {
		if c.Endpoints.S3 != "" {
			o.BaseEndpoint = aws.String(c.Endpoints.S3)
			o.UsePathStyle = true
		}
		for _, fn := range optFns {
			fn(o)
		}
	})
}

// SSMEndpoint is the SSM endpoint to call: the override, else the regional AWS
// endpoint, else "" without a region.
func (c Config) SSMEndpoint() string {
	if c.Endpoints.SSM != "" {
		return c.Endpoints.SSM
	}
	r := c.AWS.Region
	if r == "" {
		return ""
	}
	suffix := "amazonaws.com"
	if strings.HasPrefix(r, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	return "https://ssm." + r + "." + suffix
}

// EnvCredentials is an aws.CredentialsProvider that reads the static credentials
// Lambda puts in the environment on every Retrieve (os.Getenv when Getenv is nil).
type EnvCredentials struct {
	Getenv func(string) string
}

// Retrieve returns the environment's credentials, or ErrNoCredentials.
func (p EnvCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	getenv := p.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := strings.TrimSpace(getenv(k)); v != "" {
				return v
			}
		}
		return ""
	}
	id := first(EnvAccessKeyID, EnvAccessKey)
	secret := first(EnvSecretAccessKey, EnvSecretKey)
	if id == "" || secret == "" {
		return aws.Credentials{}, ErrNoCredentials
	}
	return aws.Credentials{
		AccessKeyID:     id,
		SecretAccessKey: secret,
		SessionToken:    first(EnvSessionToken),
		AccountID:       first(EnvAccountID),
		Source:          CredentialsSource,
	}, nil
}
