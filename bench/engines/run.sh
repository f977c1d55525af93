#!/usr/bin/env bash
# The event log's storage engine candidates on the writer's own pattern (see
# src/main.rs): SQLite (the one meshbroker uses), redb and fjall, each fsyncing
# every commit, on the file system of target/ (not /tmp, which may be memory).
# Usage: bench/engines/run.sh [SECONDS_PER_CASE]   (default 4)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="$PWD/target/bench-engines"
scratch="$PWD/target/engines-scratch"
mkdir -p "$scratch"
cargo build --release --manifest-path bench/engines/Cargo.toml
ENGINES_DIR="$scratch" "$CARGO_TARGET_DIR/release/meshbroker-engines-bench" "$@"
