#!/usr/bin/env bash
# NATS JetStream (Debian's nats-server 2.9): three servers in one cluster on loopback,
# JetStream file storage in DIR. Note: 2.9 does not fsync each write; the stream is
# replicated to 3 but an acknowledged publish is on disk only when the OS writes it back.
source "$(dirname "$0")/lib.sh"
parse_args "$@"

NODES=3
CLIENT_PORT_BASE=24221  # client port of node N is BASE + N - 1
ROUTE_PORT_BASE=24231   # cluster (route) ports
MONITOR_PORT_BASE=24241 # HTTP monitoring, for /healthz

start() {
  command -v nats-server >/dev/null || die "nats-server is missing (run peers/install.sh)"
  local n routes="" client route monitor
  for n in $(seq 1 $NODES); do
    require_ports_free $((CLIENT_PORT_BASE + n - 1)) $((ROUTE_PORT_BASE + n - 1)) $((MONITOR_PORT_BASE + n - 1))
    routes="$routes nats-route://127.0.0.1:$((ROUTE_PORT_BASE + n - 1))"
  done
  nats-server --version >"$DIR/version" 2>&1 || true
  : >"$DIR/endpoints"
  for n in $(seq 1 $NODES); do
    client=$((CLIENT_PORT_BASE + n - 1))
    route=$((ROUTE_PORT_BASE + n - 1))
    monitor=$((MONITOR_PORT_BASE + n - 1))
    mkdir -p "$DIR/n$n"
    cat >"$DIR/n$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:$client
http: 127.0.0.1:$monitor
jetstream {
  store_dir: "$DIR/n$n"
}
cluster {
  name: bench
  listen: 127.0.0.1:$route
  routes: [$(echo $routes | sed 's/ /, /g')]
}
CONF
    GOMAXPROCS=$(threads_per_node) nats-server -c "$DIR/n$n.conf" </dev/null >"$DIR/n$n.log" 2>&1 &
    record_pid $!
    echo "nats://127.0.0.1:$client" >>"$DIR/endpoints"
  done
  # /healthz answers 200 once JetStream is up and the meta group has a leader.
  for n in $(seq 1 $NODES); do
    wait_until "nats node $n" curl -sf "http://127.0.0.1:$((MONITOR_PORT_BASE + n - 1))/healthz"
  done
}

case "$ACTION" in
  start) start ;;
  stop) stop_recorded TERM ;;
  *) die "unknown action $ACTION" ;;
esac
