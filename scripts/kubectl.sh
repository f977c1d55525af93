#!/usr/bin/env bash
# kubectl, for the tests that drive meshbroker's resource API as a Kubernetes
# client does: the one on the PATH, else Debian's (`kubernetes-client`, kubectl
# 1.20 on Debian 12; the tests use what both 1.20 and current ones take).
#
#   scripts/kubectl.sh install
#       Installs it when no kubectl is on the PATH (apt-get; needs root or
#       sudo); does nothing otherwise. Prints its path.
set -euo pipefail

log() { printf 'kubectl.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/as-root.sh
source "$(dirname "${BASH_SOURCE[0]}")/as-root.sh"

install() {
    if command -v kubectl >/dev/null; then
        command -v kubectl
        return
    fi
    log "installing kubectl from Debian's packages (kubernetes-client)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends kubernetes-client >&2
    command -v kubectl || die "no kubectl on the PATH after installing kubernetes-client"
}

case "${1:-}" in
    install) install ;;
    *) echo "usage: $0 install" >&2; exit 2 ;;
esac
