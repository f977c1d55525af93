# Sourced by the test-server scripts: picking free loopback ports.

port_in_use() { [[ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]]; }

# A port below the kernel's ephemeral range (so no outgoing connection or
# port-0 listener takes it meanwhile) that no socket uses and that is none of
# the ports already in PICKED (the caller's array).
PICKED=()

# Taken before picking and kept until the servers listen, so parallel starts
# (of either test server) never pick the same port. On fd 8: the servers must
# be started with `8>&-` so they never hold it.
lock_ports() {
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/meshbroker"
    mkdir -p "$dir"
    exec 8>"$dir/ports.lock"
    flock 8
}

pick_port() {
    local lo hi p i
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    hi=$((lo - 1))
    lo=$((hi > 20000 ? 15000 : 10000))
    for ((i = 0; i < 200; i++)); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        [[ " ${PICKED[*]} " == *" $p "* ]] && continue
        port_in_use "$p" && continue
        echo "$p"
        return 0
    done
    die "found no free loopback port"
}
