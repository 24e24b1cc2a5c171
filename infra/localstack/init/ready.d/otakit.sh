#!/bin/bash
# Runs inside LocalStack once it is ready: creates what template.yaml would create
# (table, bucket) plus a CloudFront key pair in SSM, like docs/aws.md describes for AWS.
# Idempotent: safe on every start.
set -euo pipefail

TABLE="${OTA_TABLE:-otakit}"
BUCKET="${OTA_BUCKET:-otakit-local}"

if ! awslocal dynamodb describe-table --table-name "$TABLE" >/dev/null 2>&1; then
	awslocal dynamodb create-table --table-name "$TABLE" \
		--attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
		--key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
		--billing-mode PAY_PER_REQUEST >/dev/null
	awslocal dynamodb wait table-exists --table-name "$TABLE"
	awslocal dynamodb update-time-to-live --table-name "$TABLE" \
		--time-to-live-specification Enabled=true,AttributeName=exp >/dev/null
fi

awslocal s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1 || awslocal s3 mb "s3://$BUCKET" >/dev/null

if ! awslocal ssm get-parameter --name /otakit/cloudfront-private-key >/dev/null 2>&1 && command -v openssl >/dev/null; then
	dir=$(mktemp -d)
	openssl genrsa -out "$dir/private_key.pem" 2048 2>/dev/null
	openssl rsa -pubout -in "$dir/private_key.pem" -out "$dir/public_key.pem" 2>/dev/null
	awslocal ssm put-parameter --name /otakit/cloudfront-private-key --type SecureString \
		--value "file://$dir/private_key.pem" >/dev/null
	awslocal ssm put-parameter --name /otakit/cloudfront-public-key --type String \
		--value "file://$dir/public_key.pem" >/dev/null
	rm -rf "$dir"
fi

echo "otakit: table $TABLE, bucket $BUCKET ready"
