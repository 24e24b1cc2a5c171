#!/usr/bin/env bash
# versitygw: a strict (SigV4-verifying) S3 emulator for tests, without Docker.
#
#   infra/emulators/versitygw.sh install              # go install into .tools/bin (cached)
#   infra/emulators/versitygw.sh start PORT [WEBHOOK]  # posix backend, background, waits for the port
#   infra/emulators/versitygw.sh stop
#
# Credentials: access key "test", secret "testsecret", region us-east-1. Tests read the
# endpoint from OTA_TEST_S3_ENDPOINT, e.g. http://127.0.0.1:PORT.
# WEBHOOK, if given, receives S3 event notifications (--event-webhook-url).
set -euo pipefail

VERSION=v1.8.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin/versitygw"
STAMP="$TOOLS/bin/.versitygw-$VERSION"
STATE="$TOOLS/versitygw"
PIDFILE="$STATE/versitygw.pid"
LOG="$STATE/versitygw.log"
ACCESS="${OTA_VERSITYGW_ACCESS:-test}"
SECRET="${OTA_VERSITYGW_SECRET:-testsecret}"

install() {
  if [[ -x "$BIN" && -f "$STAMP" ]]; then
    return 0
  fi
  mkdir -p "$TOOLS/bin"
  echo "installing versitygw $VERSION into $TOOLS/bin" >&2
  GOBIN="$TOOLS/bin" go install "github.com/versity/versitygw/cmd/versitygw@$VERSION"
  touch "$STAMP"
}

running() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local port="${1:?usage: $0 start PORT [WEBHOOK_URL]}" webhook="${2:-}"
  install
  if running; then
    echo "versitygw already running (pid $(cat "$PIDFILE")); stop it first" >&2
    return 1
  fi
  if port_open "$port"; then
    echo "port $port is already in use" >&2
    return 1
  fi
  mkdir -p "$STATE"
  local data="$STATE/data-$port"
  rm -rf "$data"
  mkdir -p "$data"
  local args=(--access "$ACCESS" --secret "$SECRET" --region us-east-1 --port "127.0.0.1:$port")
  if [[ -n "$webhook" ]]; then
    args+=(--event-webhook-url "$webhook")
  fi
  env -u WEBHOOK -u LOGFILE nohup "$BIN" "${args[@]}" posix "$data" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 300); do
    if port_open "$port"; then
      echo "versitygw listening on http://127.0.0.1:$port (pid $(cat "$PIDFILE"))" >&2
      return 0
    fi
    if ! running; then
      break
    fi
    sleep 0.1
  done
  echo "versitygw did not come up on port $port; log:" >&2
  cat "$LOG" >&2 || true
  stop || true
  return 1
}

stop() {
  if [[ -f "$PIDFILE" ]]; then
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    fi
    rm -f "$PIDFILE"
  fi
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 install | start PORT [WEBHOOK_URL] | stop" >&2; exit 2 ;;
esac
