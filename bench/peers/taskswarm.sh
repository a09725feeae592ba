#!/usr/bin/env bash
# taskswarm: a 3-node cluster started with the repo's own `taskswarm dev` (one child
# process per node, Raft log in RocksDB, fsync before every acknowledged append), data
# in DIR. The binary comes from TASKSWARM_BIN (default: the root workspace's release build).
source "$(dirname "$0")/lib.sh"
parse_args "$@"

NODES=3
# Node N listens on BASE + N - 1 (HTTP API and Raft RPCs share it). Away from the dev
# cluster's default 7001.. and the tests' ports.
BASE_PORT=27101
TASKSWARM_BIN=${TASKSWARM_BIN:-/var/tmp/taskswarm-target/release/taskswarm}
# The benchmark cluster takes no API token even if the caller's shell sets one.
unset TASKSWARM_API_TOKEN

start() {
  [ -x "$TASKSWARM_BIN" ] || die "no taskswarm binary at $TASKSWARM_BIN (build the root workspace with cargo build --release, or set TASKSWARM_BIN)"
  local n
  for n in $(seq 1 $NODES); do
    require_ports_free $((BASE_PORT + n - 1))
  done
  "$TASKSWARM_BIN" dev --nodes $NODES --base-port $BASE_PORT --dir "$DIR/data" \
    </dev/null >"$DIR/dev.log" 2>&1 &
  record_pid $!
  # The binary's build time and the checkout's HEAD (read-only git: no index refresh); the
  # binary may include uncommitted changes.
  echo "binary of $(date -u -r "$TASKSWARM_BIN" +%Y-%m-%dT%H:%MZ), HEAD $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$DIR/version"
  : >"$DIR/endpoints"
  for n in $(seq 1 $NODES); do
    echo "http://127.0.0.1:$((BASE_PORT + n - 1))" >>"$DIR/endpoints"
  done
  # `dev` prints "ready" once a leader exists.
  wait_until "a taskswarm leader" grep -q '^ready' "$DIR/dev.log"
}

case "$ACTION" in
  start) start ;;
  # `dev` forwards SIGTERM to its nodes, which shut down cleanly.
  stop) stop_recorded TERM ;;
  *) die "unknown action $ACTION" ;;
esac
