#!/usr/bin/env bash
# aws-lambda-rie: AWS's Lambda Runtime Interface Emulator, so tests run the real
# Lambda runtime loop (aws-lambda-go's Runtime API client) around the function
# binaries, without Docker.
#
#   infra/emulators/lambda-rie.sh install   # go install into .tools/bin (cached)
#   infra/emulators/lambda-rie.sh path      # print the binary's path (installs first)
#
# Tests start one RIE per function themselves (infra/lambdarie) and read the binary's
# path from OTA_TEST_LAMBDA_RIE.
set -euo pipefail

# A pseudo-version: the RIE has no tagged release of its Go module; the module proxy
# serves exactly this commit.
VERSION=v0.0.0-20261030222936-bef5c4ba774d
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin/aws-lambda-rie"
STAMP="$TOOLS/bin/.aws-lambda-rie-$VERSION"

install() {
  if [[ -x "$BIN" && -f "$STAMP" ]]; then
    return 0
  fi
  mkdir -p "$TOOLS/bin"
  echo "installing aws-lambda-rie $VERSION into $TOOLS/bin" >&2
  rm -f "$TOOLS"/bin/.aws-lambda-rie-*
  GOBIN="$TOOLS/bin" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$VERSION"
  touch "$STAMP"
}

case "${1:-}" in
  install) install ;;
  path) install; echo "$BIN" ;;
  *) echo "usage: $0 install | path" >&2; exit 2 ;;
esac
