#!/usr/bin/env bash
# Soak test of otad on loopback: builds ota, otad and the driver (infra/soak), then
# runs the driver. Flags pass through, e.g.
#   infra/soak/soak.sh -duration 10m -concurrency 64
# Exit status: 0 when every check passed, 1 when one failed, 2 when the run broke.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/ota" ./cmd/ota
go build -o "$bin/otad" ./cmd/otad
go build -o "$bin/soak" ./infra/soak
"$bin/soak" -ota "$bin/ota" -otad "$bin/otad" "$@"
