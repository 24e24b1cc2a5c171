#!/bin/bash
# Runs inside LocalStack once it is ready: creates what template.yaml would create
# (table, bucket, the bucket's notifications to the patch function) plus a CloudFront
# key pair in SSM, like docs/aws.md describes for AWS.
# Idempotent: safe on every start, and to run again once the patch function exists:
#   docker exec otakit-localstack /etc/localstack/init/ready.d/otakit.sh
set -euo pipefail

TABLE="${OTA_TABLE:-otakit}"
BUCKET="${OTA_BUCKET:-otakit-local}"
PATCH_FUNCTION="${OTA_PATCH_FUNCTION:-otakit-patch}"

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

# The key pair as docs/aws.md stores it: the public key as a String, the signing key
# as one SecureString holding the key pair id and the private key together. Without
# CloudFront (a LocalStack Pro service) there is no real key pair id; the functions
# only read this parameter when OTA_CDN_DOMAIN is set.
if ! awslocal ssm get-parameter --name /otakit/cloudfront-key >/dev/null 2>&1 && command -v openssl >/dev/null; then
	dir=$(mktemp -d)
	openssl genrsa -out "$dir/private_key.pem" 2048 2>/dev/null
	openssl rsa -pubout -in "$dir/private_key.pem" -out "$dir/public_key.pem" 2>/dev/null
	# A PEM holds only base64, dashes, spaces and newlines: escaping the newlines
	# makes it a JSON string.
	pem=$(awk '{printf "%s\\n", $0}' "$dir/private_key.pem")
	printf '{"key_pair_id": "%s", "private_key_pem": "%s"}' "${OTA_CDN_KEY_PAIR_ID:-KLOCALSTACK0000}" "$pem" >"$dir/key.json"
	awslocal ssm put-parameter --name /otakit/cloudfront-key --type SecureString \
		--value "file://$dir/key.json" --overwrite >/dev/null
	awslocal ssm put-parameter --name /otakit/cloudfront-public-key --type String \
		--value "file://$dir/public_key.pem" --overwrite >/dev/null
	rm -rf "$dir"
fi

# Uploaded bundles and patch request markers invoke the patch function, as the S3
# events of PatchFunction in template.yaml do on AWS (same filters). The function
# only exists once created in LocalStack (docs/aws.md, "S3 events on LocalStack").
if arn=$(awslocal lambda get-function --function-name "$PATCH_FUNCTION" \
	--query Configuration.FunctionArn --output text 2>/dev/null); then
	awslocal s3api put-bucket-notification-configuration --bucket "$BUCKET" \
		--notification-configuration "$(
			cat <<EOF
{
  "LambdaFunctionConfigurations": [
    {
      "Id": "BundleUploaded",
      "LambdaFunctionArn": "$arn",
      "Events": ["s3:ObjectCreated:*"],
      "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "bundles/"}, {"Name": "suffix", "Value": ".zip"}]}}
    },
    {
      "Id": "PatchRequested",
      "LambdaFunctionArn": "$arn",
      "Events": ["s3:ObjectCreated:*"],
      "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "patch-requests/"}]}}
    }
  ]
}
EOF
		)"
	echo "otakit: bucket $BUCKET notifies $PATCH_FUNCTION"
else
	echo "otakit: no Lambda function $PATCH_FUNCTION yet: S3 events are off (docs/aws.md, \"S3 events on LocalStack\")"
fi

echo "otakit: table $TABLE, bucket $BUCKET ready"
