#!/usr/bin/env bash
# A large backlog on a 3-node loopback cluster: memory per queued task, snapshots while it
# loads and drains, and the restart (restore) time of that state.
#   bench/backlog.sh [TASKS]      default 1,000,000 tasks of 256 B payload
# Steps: start `taskswarm dev` in a scratch dir (snapshots at least SNAPSHOT_EVERY entries
# apart, default 200, once the log since the last one reaches its size: the node's
# default `--snapshot-log-percent 100`, so snapshots of the growing state happen while it
# loads, and few while it drains); load TASKS with
# `taskswarm bench --backlog TASKS --backlog-keep` (RSS per queued task on every node);
# stop the cluster (SIGTERM) and start it again on the same data, timing until a leader
# is ready and every node has restored (restore_ms from each node's metrics); then drain
# it with `taskswarm bench --backlog-drain` (8 workers claiming up to 16, batched
# completes). Uses the root workspace's release binary (TASKSWARM_BIN); builds nothing.
set -euo pipefail
cd "$(dirname "$0")"
TASKS=${1:-1000000}
export TASKSWARM_BIN="${TASKSWARM_BIN:-${CARGO_TARGET_DIR:-/var/tmp/taskswarm-target}/release/taskswarm}"
export TASKSWARM_SNAPSHOT_EVERY="${SNAPSHOT_EVERY:-200}"
SCRATCH="$(mktemp -d /var/tmp/taskswarm-backlog.XXXXXX)"
SERVER=http://127.0.0.1:27101

cleanup() {
  peers/taskswarm.sh stop "$SCRATCH" || true
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

peers/taskswarm.sh start "$SCRATCH"
"$TASKSWARM_BIN" --servers "$SERVER" bench --backlog "$TASKS" --backlog-keep \
  --payload-bytes 256 --queue backlog

echo "restart: stopping the cluster (SIGTERM) and starting it on the same data"
peers/taskswarm.sh stop "$SCRATCH"
mv "$SCRATCH/dev.log" "$SCRATCH/dev.first.log"
started=$(date +%s%N)
peers/taskswarm.sh start "$SCRATCH"
ready=$(date +%s%N)
echo "  a leader was ready $(( (ready - started) / 1000000 )) ms after the start"
for port in 27101 27102 27103; do
  ms=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "taskswarm_snapshot_restore_ms" { print $2 }')
  rss=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "process_resident_memory_bytes" { printf "%.0f", $2 / 1048576 }')
  mt=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "taskswarm_log_memtable_bytes" { printf "%.0f", $2 / 1048576 }')
  echo "  node on $port: restored its snapshot in ${ms:-?} ms, RSS ${rss:-?} MiB (RocksDB memtables ${mt:-?} MiB)"
done

"$TASKSWARM_BIN" --servers "$SERVER" bench --backlog-drain --workers 8 --claim-max 16 --queue backlog
