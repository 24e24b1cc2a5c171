// Package awsclient builds DynamoDB and S3 clients from the SDK's full default
// configuration chain (environment, shared config and credentials files, profiles,
// SSO, web identity, IMDS): what a person running the CLI or otad against AWS
// expects. It imports github.com/aws/aws-sdk-go-v2/config, so the Lambda functions
// must not import it; they use shared/awsconf, which reads the Lambda environment
// only.
//
// Endpoints come only from the SDK's standard variables (AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or the shared config file); with an S3
// endpoint set in the environment the S3 client uses path-style addressing, which is
// what local emulators (versitygw, LocalStack) expect.
package awsclient

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/otakit/ota/shared/blob/s3blob"
)

// DynamoDBFromEnv builds a DynamoDB client from the SDK's default configuration
// chain.
func DynamoDBFromEnv(ctx context.Context, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("dynamo: load AWS config: %w", err)
	}
	return dynamodb.NewFromConfig(cfg, optFns...), nil
}

// S3FromEnv builds an S3 client from the SDK's default configuration chain,
// path-style when AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL is set; optFns run last.
func S3FromEnv(ctx context.Context, optFns ...func(*s3.Options)) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	local := s3blob.EndpointFromEnv() != ""
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if local {
			o.UsePathStyle = true
		}
		for _, fn := range optFns {
			fn(o)
		}
	}), nil
}
