#!/usr/bin/env bash
# etcd v3 (Debian's etcd-server 3.4): three members on loopback, data in DIR. etcd fsyncs
# its WAL before a write is acknowledged by a majority.
source "$(dirname "$0")/lib.sh"
parse_args "$@"

NODES=3
CLIENT_PORT_BASE=24271 # client port of member N is BASE + N - 1
PEER_PORT_BASE=24281

start() {
  command -v etcd >/dev/null || die "etcd is missing (run peers/install.sh)"
  local n cluster=""
  for n in $(seq 1 $NODES); do
    require_ports_free $((CLIENT_PORT_BASE + n - 1)) $((PEER_PORT_BASE + n - 1))
    cluster="$cluster,e$n=http://127.0.0.1:$((PEER_PORT_BASE + n - 1))"
  done
  cluster="${cluster#,}"
  etcd --version 2>&1 | head -1 >"$DIR/version" || true
  : >"$DIR/endpoints"
  for n in $(seq 1 $NODES); do
    local client="http://127.0.0.1:$((CLIENT_PORT_BASE + n - 1))"
    local peer="http://127.0.0.1:$((PEER_PORT_BASE + n - 1))"
    GOMAXPROCS=$(threads_per_node) etcd --name "e$n" --data-dir "$DIR/e$n" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "bench-$$" \
      </dev/null >"$DIR/e$n.log" 2>&1 &
    record_pid $!
    echo "$client" >>"$DIR/endpoints"
  done
  # /health is true once the member has a leader and can serve a quorum read.
  for n in $(seq 1 $NODES); do
    wait_until "etcd member $n" bash -c "curl -sf http://127.0.0.1:$((CLIENT_PORT_BASE + n - 1))/health | grep -q '\"health\":\"true\"'"
  done
}

case "$ACTION" in
  start) start ;;
  stop) stop_recorded TERM ;;
  *) die "unknown action $ACTION" ;;
esac
