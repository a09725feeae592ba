#!/usr/bin/env bash
# The comparison harness in one command (method: README.md beside this file).
#   bench/run.sh --smoke     CI: taskswarm and NATS, both workloads, 1 s warm-up + 3 s
#                            measured, one run; exits non-zero if a system completed nothing
#   bench/run.sh             all five systems, both workloads, 5 s + 20 s, median of 3 runs
#   bench/run.sh --systems nats,postgres --workloads unbatched --runs 1   (any `loadgen compare` flag)
# It installs the peers from Debian's packages if they are missing, builds the load
# generator in its own target dir (BENCH_TARGET_DIR, default /var/tmp/taskswarm-bench-target;
# BENCH_JOBS limits cargo's jobs), and runs the taskswarm binary of the root workspace's
# release build: TASKSWARM_BIN, default $CARGO_TARGET_DIR/release/taskswarm with the root's
# CARGO_TARGET_DIR (or /var/tmp/taskswarm-target). It does not build the root workspace.
# Results: the table on stdout, and bench/out/{table.md,results.json,chart.svg}.
set -euo pipefail
cd "$(dirname "$0")"
export TASKSWARM_BIN="${TASKSWARM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/taskswarm-target}/release/taskswarm}"
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-/var/tmp/taskswarm-bench-target}"
# Install only the peers this run needs (smoke: NATS), so CI does not fetch Erlang.
systems=""
smoke=""
out_given=""
prev=""
for arg in "$@"; do
  case "$arg" in
    --systems=*) systems="${arg#--systems=}" ;;
    --smoke) smoke=1 ;;
    --out|--out=*) out_given=1 ;;
  esac
  [ "$prev" = "--systems" ] && systems="$arg"
  prev="$arg"
done
if [ -z "$systems" ] && [ -n "$smoke" ]; then systems="taskswarm,nats"; fi
# shellcheck disable=SC2086 # one system per word
peers/install.sh ${systems//,/ }
cargo build --release ${BENCH_JOBS:+-j "$BENCH_JOBS"}
# bench/out unless the caller names another directory (loadgen takes --out once).
out=(--out out)
if [ -n "$out_given" ]; then out=(); fi
exec "$CARGO_TARGET_DIR/release/loadgen" compare --peers-dir peers "${out[@]}" "$@"
