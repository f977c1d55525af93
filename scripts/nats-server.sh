#!/usr/bin/env bash
# A real, throwaway NATS server with JetStream on free loopback ports, for tests
# of the JetStream event log.
#
#   scripts/nats-server.sh install
#       Takes nats-server from Debian trixie's `nats-server` package (2.10:
#       bookworm's 2.9 silently drops a stream's oldest messages when one
#       more fills its byte budget, nats-server#4775, fixed in 2.10.7) with
#       apt-get download through package lists of its own in the cache (the
#       system's apt sources and packages are left alone), unpacks the binary
#       into the cache, outside the work tree. Does nothing when the cache
#       holds it. Prints the binary's path.
#
#   scripts/nats-server.sh start DIR
#       Installs if needed, then starts nats-server in the background with
#       JetStream, its store under DIR/store, client and monitoring ports free
#       loopback ports, and waits until JetStream is ready. Writes
#         DIR/env   NATS_URL=nats://127.0.0.1:PORT, NATS_MONITOR=http://..., NATS_PID=
#       and prints the NATS URL. A DIR whose server runs just prints its URL.
#
#   scripts/nats-server.sh restart DIR
#       Stops DIR's server and starts it again on the same ports with the same
#       store (streams and consumers kept), as a crash and restart would.
#
#   scripts/nats-server.sh stop DIR
#       Stops DIR's server and waits for it to exit. Idempotent.
#
# A binary of one's own: set NATS_SERVER_BIN to its path (2.10.7 or later). The
# cache is ${XDG_CACHE_HOME:-$HOME/.cache}/meshbroker/nats/trixie.
set -euo pipefail

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/meshbroker/nats/trixie"
CACHED_BIN="$CACHE_DIR/bin/nats-server"
NATS_SERVER="${NATS_SERVER_BIN:-$CACHED_BIN}"

log() { printf 'nats-server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<EOF
usage: $0 install
       $0 start DIR
       $0 restart DIR
       $0 stop DIR
EOF
    exit 2
}


install() {
    if [[ -x "$NATS_SERVER" ]]; then
        echo "$NATS_SERVER"
        return
    fi
    [[ -n "${NATS_SERVER_BIN:-}" ]] && die "NATS_SERVER_BIN=$NATS_SERVER_BIN is not executable"
    mkdir -p "$CACHE_DIR"
    # One install at a time: parallel tests all ask for it at once.
    exec 9>"$CACHE_DIR/install.lock"
    flock 9
    if [[ ! -x "$CACHED_BIN" ]]; then
        local work
        work=$(mktemp -d "$CACHE_DIR/install.XXXXXX")
        local apt="$CACHE_DIR/apt"
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
            >"$apt/sources.list"
        local options=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Acquire::Languages=none
            -o Acquire::Retries=3 -o "APT::Sandbox::User=$(id -un)")
        apt-get "${options[@]}" update -qq >/dev/null ||
            { rm -rf "$work"; die "apt-get update of trixie's package lists failed"; }
        (cd "$work" && apt-get "${options[@]}" download -qq nats-server >/dev/null 2>&1) ||
            { rm -rf "$work"; die "apt-get download nats-server (trixie) failed"; }
        dpkg-deb -x "$work"/nats-server_*.deb "$work/root"
        mkdir -p "$CACHE_DIR/bin"
        mv "$work/root/usr/sbin/nats-server" "$CACHED_BIN.part"
        mv "$CACHED_BIN.part" "$CACHED_BIN"
        rm -rf "$work"
    fi
    flock -u 9
    "$CACHED_BIN" --version >/dev/null || die "$CACHED_BIN does not run"
    echo "$CACHED_BIN"
}

# shellcheck source=scripts/free-port.sh
source "$(dirname "${BASH_SOURCE[0]}")/free-port.sh"

# The pid in DIR/env when that process is still DIR's nats-server.
running_pid() {
    local dir=$1 pid
    [[ -f "$dir/env" ]] || return 1
    pid=$(sed -n 's/^NATS_PID=//p' "$dir/env")
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/store" || return 1
    echo "$pid"
}

# launch DIR PORT MONITOR_PORT: starts the server and waits until JetStream
# answers healthy on the monitoring port.
launch() {
    local dir=$1 port=$2 monitor=$3 pid i
    mkdir -p "$dir/store"
    # The largest event (1 MiB of data) with its headers, or in structured
    # mode with its data in base64, is more than NATS's default 1 MiB message.
    echo 'max_payload: 8MB' >"$dir/nats.conf"
    setsid "$NATS_SERVER" --config "$dir/nats.conf" --jetstream --store_dir "$dir/store" \
        --addr 127.0.0.1 --port "$port" --http_port "$monitor" \
        --server_name "meshbroker-test-$port" \
        </dev/null >>"$dir/nats-server.log" 2>&1 8>&- &
    pid=$!
    cat >"$dir/env" <<EOF
NATS_URL=nats://127.0.0.1:$port
NATS_MONITOR=http://127.0.0.1:$monitor
NATS_PID=$pid
EOF
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/nats-server.log" >&2; die "nats-server exited"; }
        if curl -fsS "http://127.0.0.1:$monitor/healthz?js-enabled-only=true" >/dev/null 2>&1; then
            echo "nats://127.0.0.1:$port"
            return 0
        fi
        sleep 0.05
    done
    kill "$pid" 2>/dev/null || true
    die "nats-server did not become ready in 10 s (log: $dir/nats-server.log)"
}

stop() {
    local dir=$1 pid i
    pid=$(running_pid "$dir") || return 0
    kill "$pid"
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
}

[[ $# -ge 1 ]] || usage
command=$1
shift
case "$command" in
install)
    [[ $# -eq 0 ]] || usage
    install
    ;;
start)
    [[ $# -eq 1 ]] || usage
    install >/dev/null
    DIR=$(mkdir -p "$1" && cd "$1" && pwd)
    if running_pid "$DIR" >/dev/null; then
        sed -n 's/^NATS_URL=//p' "$DIR/env"
        exit 0
    fi
    lock_ports
    port=$(pick_port)
    PICKED+=("$port")
    launch "$DIR" "$port" "$(pick_port)"
    ;;
restart)
    [[ $# -eq 1 ]] || usage
    DIR=$(cd "$1" && pwd)
    [[ -f "$DIR/env" ]] || die "$DIR has no server to restart (no env file)"
    url=$(sed -n 's/^NATS_URL=//p' "$DIR/env")
    monitor=$(sed -n 's/^NATS_MONITOR=//p' "$DIR/env")
    lock_ports # so no parallel start takes the ports while they are free
    stop "$DIR"
    launch "$DIR" "${url##*:}" "${monitor##*:}"
    ;;
stop)
    [[ $# -eq 1 ]] || usage
    stop "$(cd "$1" && pwd)"
    ;;
*) usage ;;
esac
