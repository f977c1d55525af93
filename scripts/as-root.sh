# Sourced by the scripts that install from Debian's packages: runs a command as
# root, through sudo when not root already. The sourcing script defines `die`.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    else
        command -v sudo >/dev/null || die "installing needs root or sudo (for apt-get)"
        sudo "$@"
    fi
}
