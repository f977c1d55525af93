#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the console's browser tests, from
# Debian's packages (`chromium`, `chromium-driver`).
#
#   scripts/chromium.sh install
#       Installs both when /usr/bin/chromium or /usr/bin/chromedriver is
#       missing (apt-get; needs root or sudo); does nothing when both are
#       there. Prints the chromedriver path.
#
# The browser tests start chromedriver themselves on a free port, one per test
# run, and drive Chromium headless through it.
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=scripts/as-root.sh
source "$(dirname "${BASH_SOURCE[0]}")/as-root.sh"

install() {
    if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
        echo /usr/bin/chromedriver
        return
    fi
    log "installing chromium and chromium-driver from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
    [[ -x /usr/bin/chromedriver ]] || die "chromedriver is not at /usr/bin/chromedriver after installing"
    echo /usr/bin/chromedriver
}

case "${1:-}" in
    install) install ;;
    *) echo "usage: $0 install" >&2; exit 2 ;;
esac
