#!/usr/bin/env bash
# Runs the dataplane benchmark: installs nginx and wrk from Debian's packages when
# missing (and nats-server, through scripts/nats-server.sh), builds in release
# mode, and prints the table the README quotes.
# Usage: bench/run.sh [--only throughput|scaling|isolation|readiness|rounds]
#   (rounds: [--rounds N] [--modes durable,memory,jetstream] [--paced RATE]
#   [--against BINARY] [--against-args "FLAGS"], see bench/dataplane/rounds.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}"
fi
scripts/nats-server.sh install >/dev/null
cargo bench --bench dataplane -- --nginx /usr/sbin/nginx "$@"
