#!/usr/bin/env bash
# A real, throwaway Kubernetes API server (kube-apiserver + etcd, no controllers,
# no nodes) on free loopback ports, for tests that need the Kubernetes API.
#
#   scripts/kube-apiserver.sh build
#       Builds once and caches, outside the work tree, a kube-apiserver and an etcd
#       binary taken from Debian's package registry only (the only network there is):
#       kube-apiserver from the source of Debian bookworm's `kubernetes` package
#       (1.20.2, its vendored reflect2 swapped for Debian's 1.0.2, which Go >= 1.18
#       needs), built with bookworm's Go; etcd from the `etcd-server` package.
#       Does nothing when the cache is complete. Prints the cache directory.
#
#   scripts/kube-apiserver.sh start DIR [AlwaysAllow|RBAC] [TOKEN,USER,UID[,"GROUP1,GROUP2"]]...
#       Builds if needed, then starts etcd and kube-apiserver in the background on
#       free 127.0.0.1 ports, with a fresh cluster state, certificates, logs and pid
#       files under DIR, and waits until the server is ready. Writes
#         DIR/kubeconfig  server https://127.0.0.1:PORT, CA embedded, admin token
#         DIR/env         SERVER=, CA_FILE=, ADMIN_TOKEN=, KUBECONFIG=, ... (KEY=VALUE lines)
#       and prints the path of DIR/kubeconfig. Authorization is RBAC unless
#       AlwaysAllow is given. The admin user (token in DIR/env) is in system:masters.
#       More users for the token file: further arguments, or lines of the environment
#       variable KUBE_APISERVER_EXTRA_TOKENS, each a token-file line such as
#       `s3cret,meshbroker-sa,meshbroker-sa` (RBAC then decides what that user may do).
#       Starting a DIR whose server is running and ready just prints its kubeconfig.
#
#   scripts/kube-apiserver.sh restart-apiserver DIR
#       Stops only the kube-apiserver of DIR and starts it again with the same flags
#       and port on the same etcd (the cluster state is kept), as a control-plane
#       upgrade or crash would; waits until it is ready.
#
#   scripts/kube-apiserver.sh stop DIR
#       Stops that server and its etcd and waits for both to exit. Idempotent.
#
# Binaries of one's own (any version, e.g. a current Kubernetes release): set
# KUBE_APISERVER_BIN and ETCD_BIN (both) to their paths; `build` then only checks
# that they run, and `start` passes each only the flags its version accepts (read
# from its version and --help: --insecure-port, removed in 1.24, only before it).
#
# The cache is ${XDG_CACHE_HOME:-$HOME/.cache}/meshbroker/kube. Building needs root
# (or sudo) for apt-get, takes about 5 minutes on 2 cores, and is serialized by a lock.
# There is no controller-manager: namespaces are not finalized on delete, and no
# service accounts or their tokens are created.
set -euo pipefail

SUITE=bookworm
# Bump when the build recipe changes: a cache with another recipe is rebuilt.
RECIPE=1
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/meshbroker/kube"
BIN_DIR="$CACHE_DIR/bin"
STAMP="$BIN_DIR/STAMP"
DEB_SRC_FILE=/etc/apt/sources.list.d/meshbroker-deb-src.sources
BUILD_LOG="$CACHE_DIR/build.log"
KUBE_APISERVER="${KUBE_APISERVER_BIN:-$BIN_DIR/kube-apiserver}"
ETCD="${ETCD_BIN:-$BIN_DIR/etcd}"

log() { printf 'kube-apiserver.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<EOF
usage: $0 build
       $0 start DIR [AlwaysAllow|RBAC] [TOKEN,USER,UID[,GROUPS]]...
       $0 restart-apiserver DIR
       $0 stop DIR
EOF
    exit 2
}

# Cleanup of whatever a failed or interrupted command left half done.
BUILD_WORK=""
STARTED_PIDS=()
START_DONE=0
on_exit() {
    local rc=$?
    if [[ -n "$BUILD_WORK" && -d "$BUILD_WORK" ]]; then
        log "removing the unfinished build in $BUILD_WORK"
        rm -rf "$BUILD_WORK"
    fi
    if ((${#STARTED_PIDS[@]} > 0)) && ((START_DONE == 0)); then
        log "start failed: stopping what it started"
        local pid
        for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
        for pid in "${STARTED_PIDS[@]}"; do wait_gone "$pid" 15 || kill -9 "$pid" 2>/dev/null || true; done
    fi
    return "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# build

is_built() {
    [[ -x "$BIN_DIR/kube-apiserver" && -x "$BIN_DIR/etcd" && -f "$STAMP" ]] &&
        [[ "$(head -n1 "$STAMP")" == "recipe=$RECIPE" ]]
}

SUDO=()
need_root() {
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null || die "building needs root or sudo (for apt-get)"
        SUDO=(sudo)
    fi
}

apt_get() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3 "$@"
}

APT_UPDATED=0
apt_update() {
    ((APT_UPDATED)) && return 0
    log "apt-get update"
    apt_get update -qq >>"$BUILD_LOG" 2>&1 || { tail -n 20 "$BUILD_LOG" >&2; die "apt-get update failed"; }
    APT_UPDATED=1
}

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    if ! apt_get install -y -qq --no-install-recommends "${missing[@]}" >>"$BUILD_LOG" 2>&1; then
        apt_update
        apt_get install -y -qq --no-install-recommends "${missing[@]}" >>"$BUILD_LOG" 2>&1 ||
            { tail -n 20 "$BUILD_LOG" >&2; die "apt-get install ${missing[*]} failed"; }
    fi
}

# Is a deb-src entry for $SUITE configured anywhere? (one-line and deb822 formats)
deb_src_configured() {
    local f
    [[ -f "$DEB_SRC_FILE" ]] && return 0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        grep -qE "^[[:space:]]*deb-src[[:space:]].*[[:space:]]$SUITE([[:space:]]|$)" "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk -v suite="$SUITE" '
            function flush() { if (t ~ /(^| )deb-src( |$)/ && (" " s " ") ~ (" " suite " ") && e !~ /^no/) ok = 1; t = s = e = "" }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:"   { sub(/^[^:]*:[[:space:]]*/, ""); t = $0 }
            tolower($1) == "suites:"  { sub(/^[^:]*:[[:space:]]*/, ""); s = $0 }
            tolower($1) == "enabled:" { sub(/^[^:]*:[[:space:]]*/, ""); e = tolower($0) }
            END { flush(); exit !ok }' "$f" && return 0
    done
    return 1
}

# Adds a deb-src entry for $SUITE using the mirror (and key) of the existing deb entry.
add_deb_src() {
    local uri="" signed="" f line
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        line=$(awk -v suite="$SUITE" '
            function flush() {
                if (!done && t ~ /(^| )deb( |$)/ && (" " s " ") ~ (" " suite " ") && u != "" && e !~ /^no/) {
                    split(u, a, /[[:space:]]+/); print a[1] "\t" k; done = 1 }
                t = s = u = k = e = "" }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:"     { sub(/^[^:]*:[[:space:]]*/, ""); t = $0 }
            tolower($1) == "suites:"    { sub(/^[^:]*:[[:space:]]*/, ""); s = $0 }
            tolower($1) == "uris:"      { sub(/^[^:]*:[[:space:]]*/, ""); u = $0 }
            tolower($1) == "signed-by:" { sub(/^[^:]*:[[:space:]]*/, ""); k = $0 }
            tolower($1) == "enabled:"   { sub(/^[^:]*:[[:space:]]*/, ""); e = tolower($0) }
            END { flush() }' "$f")
        if [[ -n "$line" ]]; then
            uri=${line%%$'\t'*}
            signed=${line#*$'\t'}
            break
        fi
    done
    if [[ -z "$uri" ]]; then
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -f "$f" ]] || continue
            uri=$(sed -E 's/\[[^]]*\]//' "$f" |
                awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')
            [[ -n "$uri" ]] && break
        done
    fi
    if [[ -z "$uri" ]]; then
        uri=http://deb.debian.org/debian
        log "no apt entry for $SUITE found; using $uri"
    fi
    log "adding a deb-src entry for $SUITE ($uri) in $DEB_SRC_FILE"
    {
        echo "# Added by meshbroker's scripts/kube-apiserver.sh (apt-get source kubernetes)."
        echo "Types: deb-src"
        echo "URIs: $uri"
        echo "Suites: $SUITE"
        echo "Components: main"
        [[ -n "$signed" ]] && echo "Signed-By: $signed"
    } | "${SUDO[@]}" tee "$DEB_SRC_FILE.tmp" >/dev/null
    "${SUDO[@]}" mv "$DEB_SRC_FILE.tmp" "$DEB_SRC_FILE"
}

kubernetes_src_version() {
    { apt-cache showsrc --only-source kubernetes 2>/dev/null || true; } |
        awk '/^Version:/ { print $2 }' | sort -V | tail -n1
}

# Whether a binary's --help lists a flag: servers drop flags between versions.
# (Read whole: `| grep -q` would stop the binary early, and pipefail call that a miss.)
takes_flag() {
    local help
    help=$("$1" --help 2>&1 || true)
    [[ "$help" == *"$2"* ]]
}

# The minor version of the kube-apiserver ("Kubernetes v1.20.2" → 20).
server_minor() {
    local version
    version=$("$KUBE_APISERVER" --version 2>/dev/null) || die "$KUBE_APISERVER --version fails"
    [[ "$version" =~ v1\.([0-9]+)\. ]] || die "cannot read the version in '$version'"
    echo "${BASH_REMATCH[1]}"
}

build() {
    mkdir -p "$CACHE_DIR"
    if [[ -n "${KUBE_APISERVER_BIN:-}${ETCD_BIN:-}" ]]; then
        [[ -n "${KUBE_APISERVER_BIN:-}" && -n "${ETCD_BIN:-}" ]] ||
            die "set both KUBE_APISERVER_BIN and ETCD_BIN, or neither"
        local bin
        for bin in "$KUBE_APISERVER" "$ETCD"; do
            [[ -x "$bin" ]] || die "$bin is not an executable"
            "$bin" --version >/dev/null 2>&1 || die "$bin --version fails"
        done
        log "using $("$KUBE_APISERVER" --version) and $("$ETCD" --version | head -n1)"
        echo "$CACHE_DIR"
        return 0
    fi
    if is_built; then
        echo "$CACHE_DIR"
        return 0
    fi
    exec 9>"$CACHE_DIR/build.lock"
    if ! flock -n 9; then
        log "another build is running; waiting for it (lock $CACHE_DIR/build.lock)"
        flock 9
    fi
    if is_built; then
        exec 9>&-
        echo "$CACHE_DIR"
        return 0
    fi
    need_root
    local t0=$SECONDS
    # We hold the lock: whatever is in tmp/ is a build that died halfway.
    rm -rf "$CACHE_DIR/tmp"
    mkdir -p "$CACHE_DIR/tmp" "$CACHE_DIR/downloads" "$BIN_DIR"
    BUILD_WORK=$(mktemp -d "$CACHE_DIR/tmp/build.XXXXXX")
    local blog="$BUILD_LOG"
    : >"$blog"
    log "building into $CACHE_DIR (log: $blog)"

    ensure_packages golang-go rsync dpkg-dev xz-utils curl openssl ca-certificates

    # Source of Debian's kubernetes package.
    local ver
    ver=$(kubernetes_src_version)
    if [[ -z "$ver" ]]; then
        deb_src_configured || add_deb_src
        apt_update
        ver=$(kubernetes_src_version)
        [[ -n "$ver" ]] || die "apt knows no source package 'kubernetes' even with a deb-src entry for $SUITE"
    fi
    ver=${KUBE_SRC_VERSION:-$ver}
    local dl="$CACHE_DIR/downloads"
    log "downloading the source of kubernetes $ver"
    (cd "$dl" && apt_get source --download-only -qq "kubernetes=$ver") >>"$blog" 2>&1 ||
        { tail -n 20 "$blog" >&2; die "apt-get source kubernetes=$ver failed"; }
    local dsc="$dl/kubernetes_${ver#*:}.dsc" src="$BUILD_WORK/kubernetes"
    [[ -f "$dsc" ]] || die "missing $dsc after apt-get source"
    log "unpacking (dpkg-source applies Debian's patches)"
    dpkg-source --no-check -x "$dsc" "$src" >>"$blog" 2>&1 ||
        { tail -n 20 "$blog" >&2; die "dpkg-source -x $dsc failed"; }

    # kube 1.20 vendors reflect2 1.0.1, which crashes (on the first custom resource
    # create) when built with Go >= 1.18; Debian's reflect2 1.0.2 is API-compatible.
    log "replacing the vendored reflect2 with Debian's golang-github-modern-go-reflect2-dev"
    (cd "$dl" && rm -f golang-github-modern-go-reflect2-dev_*.deb &&
        apt_get download -qq golang-github-modern-go-reflect2-dev) >>"$blog" 2>&1 ||
        { tail -n 20 "$blog" >&2; die "apt-get download golang-github-modern-go-reflect2-dev failed"; }
    dpkg -x "$dl"/golang-github-modern-go-reflect2-dev_*.deb "$BUILD_WORK/reflect2"
    local r2new="$BUILD_WORK/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2"
    local r2old="$src/vendor/github.com/modern-go/reflect2"
    [[ -d "$r2new" && -d "$r2old" ]] || die "reflect2 not where expected ($r2new, $r2old)"
    [[ -f "$r2new/go_above_118.go" ]] || die "Debian's reflect2 lacks go_above_118.go: not the 1.0.2 fix?"
    find "$r2old" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    find "$r2new" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp {} "$r2old"/ \;

    # The make target (not plain `go build`) generates the OpenAPI definitions.
    local kver="v${ver#*:}"
    kver=${kver#v*really}
    kver="v${kver#v}"
    kver=${kver%%-*}
    log "building kube-apiserver $kver with $(/usr/lib/go/bin/go version | awk '{print $3}') (several minutes)"
    (
        cd "$src"
        unset GOFLAGS GOPATH GOROOT GOBIN GO111MODULE GOOS GOARCH GOENV
        # The version (v1.20.2, commit, tree state "archive") is baked into the
        # upstream tarball's hack/lib/version.sh; no git needed.
        export PATH="/usr/lib/go/bin:$PATH" GOCACHE="$BUILD_WORK/gocache" GOPROXY=off GOTOOLCHAIN=local
        make WHAT=cmd/kube-apiserver KUBE_BUILD_PLATFORMS=linux/amd64 CGO_ENABLED=0
    ) >>"$blog" 2>&1 || { tail -n 40 "$blog" >&2; die "building kube-apiserver failed (full log: $blog)"; }
    local kbin="$src/_output/local/bin/linux/amd64/kube-apiserver"
    [[ -x "$kbin" ]] || die "the build made no $kbin"

    log "fetching etcd from Debian's etcd-server"
    (cd "$dl" && rm -f etcd-server_*.deb && apt_get download -qq etcd-server) >>"$blog" 2>&1 ||
        { tail -n 20 "$blog" >&2; die "apt-get download etcd-server failed"; }
    dpkg -x "$dl"/etcd-server_*.deb "$BUILD_WORK/etcd"
    local ebin="$BUILD_WORK/etcd/usr/bin/etcd"
    [[ -x "$ebin" ]] || die "no usr/bin/etcd in etcd-server's package"

    # Both binaries must run before they enter the cache.
    local kv ev
    kv=$("$kbin" --version) || die "the built kube-apiserver does not run"
    ev=$("$ebin" --version | head -n1) || die "etcd does not run"

    # Atomic installs; the stamp last, so a complete stamp means complete binaries.
    rm -f "$STAMP"
    cp "$kbin" "$BIN_DIR/.kube-apiserver.tmp" && mv -f "$BIN_DIR/.kube-apiserver.tmp" "$BIN_DIR/kube-apiserver"
    cp "$ebin" "$BIN_DIR/.etcd.tmp" && mv -f "$BIN_DIR/.etcd.tmp" "$BIN_DIR/etcd"
    {
        echo "recipe=$RECIPE"
        echo "kubernetes-source=$ver"
        echo "kube-apiserver=$kv"
        echo "reflect2=$(dpkg-deb -f "$dl"/golang-github-modern-go-reflect2-dev_*.deb Version)"
        echo "etcd-server=$(dpkg-deb -f "$dl"/etcd-server_*.deb Version) ($ev)"
        echo "go=$(/usr/lib/go/bin/go version)"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - t0))s"
    } >"$STAMP.tmp"
    mv -f "$STAMP.tmp" "$STAMP"

    rm -rf "$CACHE_DIR/tmp" "$CACHE_DIR/downloads"
    BUILD_WORK=""
    exec 9>&-
    log "built in $((SECONDS - t0))s: $kv, $ev"
    echo "$CACHE_DIR"
}

# ---------------------------------------------------------------------------
# start / stop

# Is PID running? (A zombie is not: an exited child of ours, or an orphan that a
# container's init does not reap, still answers kill -0.)
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# wait_gone PID SECONDS: waits until PID has exited.
wait_gone() {
    local pid=$1 i
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    ! alive "$pid"
}

# The pid in DIR/NAME.pid, if that process is alive and is ours (its command
# line names DIR, so a recycled pid is never taken for it).
live_pid() {
    local dir=$1 name=$2 pid
    [[ -f "$dir/$name.pid" ]] || return 1
    pid=$(<"$dir/$name.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
    echo "$pid"
}

# shellcheck source=scripts/free-port.sh
source "$(dirname "${BASH_SOURCE[0]}")/free-port.sh"

# launch NAME BIN ARGS...: starts BIN detached, logs and pid file in $DIR.
LAUNCHED_PID=""
launch() {
    local name=$1 bin=$2
    shift 2
    # setsid: own session, so the caller's terminal or process group signals do not
    # reach it; fds 8/9 (the lock files) closed so the server never holds a lock.
    setsid "$bin" "$@" </dev/null >"$DIR/$name.log" 2>&1 8>&- 9>&- &
    LAUNCHED_PID=$!
    STARTED_PIDS+=("$LAUNCHED_PID")
    echo "$LAUNCHED_PID" >"$DIR/$name.pid"
}

gen_pki() {
    local pki=$1
    rm -rf "$pki"
    mkdir -p "$pki"
    (
        set -e
        cd "$pki"
        umask 077
        openssl req -x509 -new -nodes -days 3650 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout ca.key -out ca.crt -subj "/CN=meshbroker-test-ca" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash"
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout server.key -out server.csr -subj "/CN=kube-apiserver"
        cat >server.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
EOF
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile server.ext -out server.crt
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key
        openssl pkey -in sa.key -pubout -out sa.pub
        chmod 644 ca.crt server.crt sa.pub
    ) >"$pki/openssl.log" 2>&1 || { cat "$pki/openssl.log" >&2; die "making certificates failed"; }
}

ready() {
    curl -fsS --max-time 3 --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $1" \
        "https://127.0.0.1:$2/readyz" >/dev/null 2>&1
}

# await_apiserver PID PORT TOKEN: waits until the server holds its port (then
# releases the port lock, fd 8) and until it is ready; dies with its log if not.
await_apiserver() {
    local pid=$1 port=$2 token=$3 i
    for ((i = 0;; i++)); do
        [[ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]] && break
        if ! alive "$pid" || ((i >= 600)); then
            tail -n 30 "$DIR/kube-apiserver.log" >&2
            die "kube-apiserver did not listen on 127.0.0.1:$port (log: $DIR/kube-apiserver.log)"
        fi
        sleep 0.1
    done
    exec 8>&-
    for ((i = 0;; i++)); do
        ready "$token" "$port" && break
        if ! alive "$pid" || ((i >= 600)); then
            tail -n 30 "$DIR/kube-apiserver.log" >&2
            die "kube-apiserver did not become ready (log: $DIR/kube-apiserver.log)"
        fi
        sleep 0.1
    done
}

start() {
    (($# >= 1)) || usage
    local dir=$1 mode=RBAC arg
    shift
    local extra=()
    for arg in "$@"; do
        case "$arg" in
        AlwaysAllow | RBAC) mode=$arg ;;
        *,*) extra+=("$arg") ;;
        *) die "unknown argument '$arg' (expected AlwaysAllow, RBAC, or a token line TOKEN,USER,UID[,GROUPS])" ;;
        esac
    done
    if [[ -n "${KUBE_APISERVER_EXTRA_TOKENS:-}" ]]; then
        while IFS= read -r arg; do
            [[ -n "$arg" ]] && extra+=("$arg")
        done <<<"$KUBE_APISERVER_EXTRA_TOKENS"
    fi
    for arg in "${extra[@]}"; do
        [[ "$arg" =~ ^[^,]+,[^,]+,[^,]+ ]] || die "bad token line '$arg' (want TOKEN,USER,UID[,GROUPS])"
    done

    build >/dev/null
    command -v curl >/dev/null || die "curl is needed"
    command -v openssl >/dev/null || die "openssl is needed"
    command -v ss >/dev/null || die "ss (iproute2) is needed"

    mkdir -p "$dir"
    DIR=$(cd "$dir" && pwd -P)
    [[ "$DIR" =~ ^[A-Za-z0-9._/@+=:-]+$ ]] || die "DIR '$DIR' has characters this script does not quote; use a plain path"

    local old_api old_etcd
    old_api=$(live_pid "$DIR" kube-apiserver || true)
    old_etcd=$(live_pid "$DIR" etcd || true)
    if [[ -n "$old_api" || -n "$old_etcd" ]]; then
        if [[ -n "$old_api" && -n "$old_etcd" && -f "$DIR/env" ]] &&
            (. "$DIR/env" && ready "$ADMIN_TOKEN" "${SERVER##*:}"); then
            log "already running in $DIR"
            echo "$DIR/kubeconfig"
            return 0
        fi
        die "a server in $DIR is running but not ready; run: $0 stop $DIR"
    fi

    local t0=$SECONDS
    rm -rf "$DIR/etcd-data" "$DIR/kubeconfig" "$DIR/env" "$DIR/tokens.csv" \
        "$DIR"/{etcd,kube-apiserver}.{pid,log}
    gen_pki "$DIR/pki"
    local token
    token=$(openssl rand -hex 24)
    (
        umask 077
        echo "$token,admin,admin,system:masters"
        for arg in "${extra[@]}"; do echo "$arg"; done
    ) >"$DIR/tokens.csv"

    # Ports: chosen and bound under one lock, so parallel starts never pick the same.
    lock_ports
    local etcd_port peer_port api_port
    etcd_port=$(pick_port)
    PICKED+=("$etcd_port")
    peer_port=$(pick_port)
    PICKED+=("$peer_port")
    api_port=$(pick_port)

    local etcd_args=(
        --name=default
        --data-dir="$DIR/etcd-data"
        --listen-client-urls="http://127.0.0.1:$etcd_port"
        --advertise-client-urls="http://127.0.0.1:$etcd_port"
        --listen-peer-urls="http://127.0.0.1:$peer_port"
        --initial-advertise-peer-urls="http://127.0.0.1:$peer_port"
        --initial-cluster="default=http://127.0.0.1:$peer_port"
        --initial-cluster-state=new
        --logger=zap
        --log-outputs=stderr
    )
    # A test cluster need not survive a power cut.
    if takes_flag "$ETCD" --unsafe-no-fsync; then
        etcd_args+=(--unsafe-no-fsync)
    fi
    launch etcd "$ETCD" "${etcd_args[@]}"
    local etcd_pid=$LAUNCHED_PID i
    for ((i = 0;; i++)); do
        curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"' && break
        if ! alive "$etcd_pid" || ((i >= 300)); then
            tail -n 30 "$DIR/etcd.log" >&2
            die "etcd did not become healthy (log: $DIR/etcd.log)"
        fi
        sleep 0.1
    done

    local api_args=(
        --bind-address=127.0.0.1
        --advertise-address=127.0.0.1
        --secure-port="$api_port"
        --etcd-servers="http://127.0.0.1:$etcd_port"
        --cert-dir="$DIR/pki"
        --tls-cert-file="$DIR/pki/server.crt"
        --tls-private-key-file="$DIR/pki/server.key"
        --client-ca-file="$DIR/pki/ca.crt"
        --token-auth-file="$DIR/tokens.csv"
        --authorization-mode="$mode"
        --service-account-key-file="$DIR/pki/sa.pub"
        --service-account-signing-key-file="$DIR/pki/sa.key"
        --service-account-issuer=https://kubernetes.default.svc.cluster.local
        --service-cluster-ip-range=10.0.0.0/24
        --endpoint-reconciler-type=none
        --profiling=false
    )
    # Before 1.24 the server also listens on plain HTTP (8080) unless told not
    # to; 1.24 removed the flag. Deprecated flags are hidden from --help, so the
    # version decides.
    if (($(server_minor) < 24)); then
        api_args+=(--insecure-port=0)
    fi
    printf '%s\n' "${api_args[@]}" >"$DIR/kube-apiserver.args"
    launch kube-apiserver "$KUBE_APISERVER" "${api_args[@]}"
    local api_pid=$LAUNCHED_PID
    await_apiserver "$api_pid" "$api_port" "$token"

    local server="https://127.0.0.1:$api_port"
    (
        umask 077
        cat >"$DIR/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: meshbroker-test
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$DIR/pki/ca.crt")
users:
- name: admin
  user:
    token: $token
contexts:
- name: meshbroker-test
  context:
    cluster: meshbroker-test
    user: admin
    namespace: default
current-context: meshbroker-test
EOF
        cat >"$DIR/env.tmp" <<EOF
SERVER=$server
CA_FILE=$DIR/pki/ca.crt
ADMIN_TOKEN=$token
KUBECONFIG=$DIR/kubeconfig
AUTHORIZATION_MODE=$mode
ETCD_SERVER=http://127.0.0.1:$etcd_port
KUBE_APISERVER_PID=$api_pid
ETCD_PID=$etcd_pid
EOF
    )
    mv -f "$DIR/kubeconfig.tmp" "$DIR/kubeconfig"
    mv -f "$DIR/env.tmp" "$DIR/env"
    START_DONE=1
    log "ready at $server ($mode) in $((SECONDS - t0))s; stop with: $0 stop $DIR"
    echo "$DIR/kubeconfig"
}

restart_apiserver() {
    (($# == 1)) || usage
    [[ -f "$1/env" && -f "$1/kube-apiserver.args" ]] || die "no server was started in $1"
    DIR=$(cd "$1" && pwd -P)
    local pid api_args
    # Hold the port lock while the port is free, so no parallel start takes it.
    lock_ports
    if pid=$(live_pid "$DIR" kube-apiserver); then
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid" 20 || { kill -9 "$pid" 2>/dev/null || true; wait_gone "$pid" 10; }
    fi
    mapfile -t api_args <"$DIR/kube-apiserver.args"
    local token port
    token=$(. "$DIR/env" && echo "$ADMIN_TOKEN")
    port=$(. "$DIR/env" && echo "${SERVER##*:}")
    launch kube-apiserver "$KUBE_APISERVER" "${api_args[@]}"
    pid=$LAUNCHED_PID
    await_apiserver "$pid" "$port" "$token"
    sed -i "s/^KUBE_APISERVER_PID=.*/KUBE_APISERVER_PID=$pid/" "$DIR/env"
    START_DONE=1
    log "restarted kube-apiserver ($pid) at https://127.0.0.1:$port"
}

stop() {
    (($# == 1)) || usage
    [[ -d "$1" ]] || { log "no directory $1: nothing to stop"; return 0; }
    DIR=$(cd "$1" && pwd -P)
    local name pid
    # The API server first, so it does not spin on a vanished etcd.
    for name in kube-apiserver etcd; do
        if pid=$(live_pid "$DIR" "$name"); then
            kill "$pid" 2>/dev/null || true
            if ! wait_gone "$pid" 20; then
                log "$name ($pid) ignored SIGTERM for 20s; killing it"
                kill -9 "$pid" 2>/dev/null || true
                wait_gone "$pid" 10 || die "$name ($pid) would not die"
            fi
            log "stopped $name ($pid)"
        fi
        rm -f "$DIR/$name.pid"
    done
}

case "${1:-}" in
build) (($# == 1)) || usage; build ;;
start) shift; start "$@" ;;
restart-apiserver) shift; restart_apiserver "$@" ;;
stop) shift; stop "$@" ;;
*) usage ;;
esac
