#!/usr/bin/env bash
# RabbitMQ (Debian's rabbitmq-server, 3.10 on bookworm): three nodes on one machine,
# clustered with join_cluster. Each node has its own name, AMQP and distribution ports,
# data and log dirs in DIR; the Erlang cookie lives in DIR (HOME=DIR) and an epmd of our
# own runs on its own port, so nothing is shared with a system RabbitMQ. The management
# plugin is off (no plugins). Quorum queues fsync their log before confirming a publish.
source "$(dirname "$0")/lib.sh"
parse_args "$@"

NODES=3
AMQP_PORT_BASE=24251 # AMQP port of node N is BASE + N - 1
DIST_PORT_BASE=24261 # Erlang distribution ports
EPMD_PORT=24269
RABBIT_BIN=/usr/lib/rabbitmq/bin

# The environment of node N (server and rabbitmqctl alike).
node_env() {
  local n=$1
  export HOME="$DIR"
  export ERL_EPMD_PORT=$EPMD_PORT
  export RABBITMQ_NODENAME="rabbit$n@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$((AMQP_PORT_BASE + n - 1))
  export RABBITMQ_DIST_PORT=$((DIST_PORT_BASE + n - 1))
  export RABBITMQ_MNESIA_BASE="$DIR/r$n/mnesia"
  export RABBITMQ_LOG_BASE="$DIR/r$n/log"
  export RABBITMQ_PID_FILE="$DIR/r$n/pid"
  local threads
  threads=$(threads_per_node)
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S $threads:$threads"
  export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
}

ctl() {
  local n=$1
  shift
  (node_env "$n" && "$RABBIT_BIN/rabbitmqctl" -n "rabbit$n@localhost" "$@")
}

start() {
  [ -x "$RABBIT_BIN/rabbitmq-server" ] || die "rabbitmq-server is missing (run peers/install.sh)"
  local n
  require_ports_free $EPMD_PORT
  for n in $(seq 1 $NODES); do
    require_ports_free $((AMQP_PORT_BASE + n - 1)) $((DIST_PORT_BASE + n - 1))
  done
  # A fresh cookie shared by the three nodes and rabbitmqctl.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/.erlang.cookie"
  chmod 400 "$DIR/.erlang.cookie"
  echo "[]." >"$DIR/enabled_plugins"
  echo "[]." >"$DIR/advanced.config"
  cat >"$DIR/rabbitmq.conf" <<CONF
loopback_users.guest = true
log.console = false
log.file.level = warning
CONF
  epmd -port $EPMD_PORT </dev/null >"$DIR/epmd.log" 2>&1 &
  record_pid $!
  wait_until "epmd" bash -c "exec 3<>/dev/tcp/127.0.0.1/$EPMD_PORT"
  echo "RabbitMQ $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null)" >"$DIR/version"
  : >"$DIR/endpoints"
  for n in $(seq 1 $NODES); do
    mkdir -p "$DIR/r$n"
    (node_env "$n" && exec "$RABBIT_BIN/rabbitmq-server") </dev/null >"$DIR/r$n.out" 2>&1 &
    record_pid $!
    echo "amqp://guest:guest@127.0.0.1:$((AMQP_PORT_BASE + n - 1))/%2f" >>"$DIR/endpoints"
  done
  for n in $(seq 1 $NODES); do
    wait_until "rabbit$n to start" ctl "$n" await_startup
  done
  for n in $(seq 2 $NODES); do
    ctl "$n" stop_app >/dev/null
    ctl "$n" join_cluster rabbit1@localhost >/dev/null || die "rabbit$n could not join the cluster"
    ctl "$n" start_app >/dev/null
  done
  wait_until "a cluster of $NODES running nodes" bash -c \
    "$(declare -f node_env ctl); DIR='$DIR'; EPMD_PORT=$EPMD_PORT; AMQP_PORT_BASE=$AMQP_PORT_BASE; DIST_PORT_BASE=$DIST_PORT_BASE; RABBIT_BIN=$RABBIT_BIN;
     [ \"\$(ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null)\" = $NODES ]"
}

case "$ACTION" in
  start) start ;;
  stop) stop_recorded TERM ;;
  *) die "unknown action $ACTION" ;;
esac
