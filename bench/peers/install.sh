#!/usr/bin/env bash
# Installs the comparison peers from Debian's packages when they are missing:
#   nats-server rabbitmq-server etcd-server postgresql protobuf-compiler
# (protoc builds the etcd client's gRPC code). The benchmark starts its own clusters in
# scratch directories on its own ports, so no system service is wanted. On Debian images
# with /usr/sbin/policy-rc.d (exit 101) apt starts none; where the install did start one,
# this script stops exactly the server processes that appeared during the install, by
# PID, and leaves alone those that ran before. An Erlang `epmd -daemon` is one such:
# rabbitmq-server's post-install leaves it running. It never asks `service X status`:
# for RabbitMQ that runs rabbitmqctl, which starts an epmd of its own.
set -euo pipefail

# Usage: install.sh [SYSTEM...]   (default: every peer). protoc is always needed: the
# load generator does not build without it.
declare -A PACKAGE_OF=([nats]=nats-server [rabbitmq]=rabbitmq-server [etcd]=etcd-server [postgres]=postgresql [taskswarm]="")
PACKAGES=(protobuf-compiler)
for system in "${@:-nats rabbitmq etcd postgres}"; do
  for s in $system; do
    [ -v "PACKAGE_OF[$s]" ] || { echo "install.sh: unknown system $s" >&2; exit 2; }
    if [ -n "${PACKAGE_OF[$s]}" ]; then PACKAGES+=("${PACKAGE_OF[$s]}"); fi
  done
done
# Process names a system service of those packages would run under.
DAEMONS=(nats-server beam.smp epmd etcd postgres)

daemon_pids() {
  local name
  for name in "${DAEMONS[@]}"; do
    pgrep -x "$name" || true
  done | sort # lexical: comm needs it
}

# Installed, not merely known to dpkg (a removed package keeps its config files).
installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
before="$(daemon_pids)"
echo "bench: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null

new_pids="$(comm -13 <(echo "$before") <(daemon_pids) | grep . || true)"
if [ -n "$new_pids" ]; then
  echo "bench: the install left these processes running; stopping them:" >&2
  ps -o pid,args -p "$(echo "$new_pids" | paste -sd,)" >&2 || true
  for pid in $new_pids; do
    $sudo kill -TERM "$pid" 2>/dev/null || true
  done
fi
