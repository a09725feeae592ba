# shellcheck shell=bash
# Shared by the peer scripts (sourced, not run). Each script is called as
#   SCRIPT start DIR   start a cluster in the empty scratch directory DIR, wait until ready
#   SCRIPT stop DIR    stop every process that `start` recorded (and their children)
# `start` writes DIR/pids (the PIDs it started, one a line, written as each starts, so a
# failed start can still be stopped) and DIR/endpoints (client URLs, one a line). Only
# loopback addresses; every wait is bounded.

set -euo pipefail

# Longest wait for a cluster to become ready.
READY_TIMEOUT_S=${READY_TIMEOUT_S:-90}
# Longest wait for processes to exit after the stop signal before SIGKILL.
STOP_TIMEOUT_S=20

# The three nodes of a cluster share this machine's cores: each gets an even share, at
# least one, through its own knob (GOMAXPROCS for NATS and etcd, Erlang schedulers for
# RabbitMQ), as `taskswarm dev` gives its nodes `--worker-threads`. One node per core
# each would wake threads that then wait for a core (bench/README.md, "Where
# taskswarm's time goes"; the same held for NATS).
threads_per_node() {
  local share=$(($(nproc) / 3))
  echo $((share < 1 ? 1 : share))
}

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

log() {
  echo "$(basename "$0"): $*" >&2
}

record_pid() {
  echo "$1" >>"$DIR/pids"
}

# True when nothing accepts connections on 127.0.0.1:PORT.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A system service or a leftover run on our ports would be benchmarked by accident: refuse.
require_ports_free() {
  local port
  for port in "$@"; do
    port_free "$port" || die "127.0.0.1:$port is already in use (a system service or a leftover run?)"
  done
}

# wait_until DESCRIPTION COMMAND...: retries COMMAND every 0.2 s for READY_TIMEOUT_S.
wait_until() {
  local what=$1
  shift
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${READY_TIMEOUT_S}s waiting for $what"
    fi
    check_alive
    sleep 0.2
  done
}

# Fails fast when a recorded process already died (its log says why).
check_alive() {
  local pid
  [ -f "$DIR/pids" ] || return 0
  while read -r pid; do
    [ -d "/proc/$pid" ] || die "process $pid exited during start; see the logs in $DIR"
  done <"$DIR/pids"
}

# The given PIDs and all their descendants, one a line.
process_tree() {
  local table
  table="$(ps -e -o pid=,ppid=)"
  local frontier="$*" all="$*" next pid
  while [ -n "$frontier" ]; do
    next=""
    for pid in $frontier; do
      next="$next $(awk -v p="$pid" '$2 == p { print $1 }' <<<"$table" | tr '\n' ' ')"
    done
    frontier="$(echo $next)"
    all="$all $frontier"
  done
  echo $all | tr ' ' '\n' | grep . | sort -nu || true
}

# stop_recorded SIGNAL: the signal to every recorded process and its descendants, then
# SIGKILL to whatever is still alive after STOP_TIMEOUT_S. Touches nothing else.
stop_recorded() {
  local signal=$1
  [ -f "$DIR/pids" ] || return 0
  local tree pid alive deadline
  # shellcheck disable=SC2046 # one PID per word
  tree="$(process_tree $(cat "$DIR/pids"))"
  [ -n "$tree" ] || return 0
  for pid in $tree; do
    kill "-$signal" "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while :; do
    alive=""
    for pid in $tree; do
      [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && alive="$alive $pid"
    done
    [ -z "$alive" ] && break
    if ((SECONDS >= deadline)); then
      log "still running after ${STOP_TIMEOUT_S}s, killing:$alive"
      for pid in $alive; do kill -KILL "$pid" 2>/dev/null || true; done
      break
    fi
    sleep 0.2
  done
  rm -f "$DIR/pids"
}

# Parses `start|stop DIR` and makes DIR absolute.
parse_args() {
  [ $# -eq 2 ] || die "usage: $(basename "$0") start|stop DIR"
  # shellcheck disable=SC2034 # read by the script that sourced this
  ACTION=$1
  mkdir -p "$2"
  DIR="$(cd "$2" && pwd)"
}
