#!/usr/bin/env bash
# make test: install the pinned emulators and tools, start them on free local ports,
# run every test against them, stop them. A missing emulator fails the run in CI
# (the tests themselves fail when CI is set and an endpoint is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# free_port prints a port nothing listens on (bash's /dev/tcp connect fails).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2; return 1
}

echo "== tools"
bash infra/emulators/dynamodb-local.sh install
bash infra/emulators/versitygw.sh install
bash infra/emulators/lambda-rie.sh install
# npm ci refuses the lock: the CLI's darwin-only optional helpers are not in the registry we reach.
(cd infra/capgo-cli && npm install --ignore-scripts --no-audit --no-fund --no-save --loglevel=error)

ddb_port=$(free_port)
s3_port=$(free_port)
cleanup() {
  bash infra/emulators/dynamodb-local.sh stop || true
  bash infra/emulators/versitygw.sh stop || true
}
trap cleanup EXIT

echo "== emulators"
bash infra/emulators/dynamodb-local.sh start "$ddb_port"
bash infra/emulators/versitygw.sh start "$s3_port"
export OTA_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
export OTA_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export OTA_CAPGO_CLI_DIR="$root/infra/capgo-cli"
# Not a server: infra/lambdarie starts one RIE per function on its own loopback ports.
export OTA_TEST_LAMBDA_RIE="$root/.tools/bin/aws-lambda-rie"

echo "== format and vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
go vet ./...

echo "== tests"
go test -count=1 -timeout 30m ./...
