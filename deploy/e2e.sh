#!/usr/bin/env bash
# End-to-end test of the docker-compose cluster (deploy/docker-compose.yml), as root.
#   deploy/e2e.sh            uses the release binary ($CARGO_TARGET_DIR/release/taskswarm)
# Installs docker.io, docker-compose and debootstrap if missing; starts dockerd only if
# none runs (and stops only that one); builds a Debian base image offline (no Docker
# Hub: deploy/base-image.sh, kept as a cache) and the node image from the host binary;
# then, on its own project name and host ports:
#   up and healthy; writes through every published port from the host; a write from a
#   container inside the network; the compose worker completes tasks; `docker stop` of
#   the leader's container under a stream of writes: a new leader, no acknowledged write
#   lost; the old leader restarted rejoins and catches up; down + up keeps every task;
#   down -v leaves no container, network, volume or firewall rule of the project.
# Leaves the machine as it found it, also when a check fails (trap), except the base
# image cache. Prints the timings (time to healthy, failover seen by the host client,
# down time).
set -euo pipefail
cd "$(dirname "$0")"
DEPLOY_DIR="$PWD"

PROJECT=tsw-e2e-$$
IMAGE=taskswarm:e2e-$$
BASE_IMAGE=${BASE_IMAGE:-taskswarm-base:bookworm}
# Host ports away from the dev cluster's 7001.. and the benchmarks'.
PORTS=(27201 27202 27203)
BIN=${TASKSWARM_BIN:-${CARGO_TARGET_DIR:-../target}/release/taskswarm}
# Bounds on every wait.
HEALTHY_TIMEOUT_S=120
FAILOVER_TIMEOUT_S=60
WORK=$(mktemp -d /var/tmp/taskswarm-e2e.XXXXXX)
STARTED_DOCKERD=""

say() { echo "e2e: $*"; }
fail() {
  echo "e2e: FAILED: $*" >&2
  exit 1
}
ms_now() { date +%s%3N; }

[ "$(id -u)" -eq 0 ] || fail "needs root (dockerd, iptables)"
[ -x "$BIN" ] || fail "no taskswarm binary at $BIN (cargo build --release --bin taskswarm)"

# ---- tools and daemon ---------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

compose() {
  docker-compose -p "$PROJECT" -f "$DEPLOY_DIR/docker-compose.yml" --env-file "$WORK/env" "$@"
}

cleanup() {
  local rc=$?
  set +e
  if [ -f "$WORK/env" ] && docker info >/dev/null 2>&1; then
    compose down -v --remove-orphans >/dev/null 2>&1
    docker rmi -f "$IMAGE" >/dev/null 2>&1
  fi
  if [ -n "$STARTED_DOCKERD" ]; then
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 1 100); do [ -d "/proc/$STARTED_DOCKERD" ] || break; sleep 0.1; done
  fi
  [ $rc -ne 0 ] && [ -f "$WORK/dockerd.log" ] && tail -20 "$WORK/dockerd.log" >&2
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  dockerd --storage-driver overlay2 >"$WORK/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || fail "dockerd did not start"
fi

# ---- images -------------------------------------------------------------------------
t=$(ms_now)
./base-image.sh "$BASE_IMAGE"
TASKSWARM_BIN="$BIN" BASE_IMAGE="$BASE_IMAGE" ./build-image.sh "$IMAGE" 2>/dev/null
say "images ready in $(($(ms_now) - t)) ms"

cat >"$WORK/env" <<EOF
TASKSWARM_CLUSTER_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
TASKSWARM_API_TOKEN=e2e-token-$$
TASKSWARM_IMAGE=$IMAGE
TASKSWARM_PORT_1=${PORTS[0]}
TASKSWARM_PORT_2=${PORTS[1]}
TASKSWARM_PORT_3=${PORTS[2]}
EOF
TOKEN=e2e-token-$$

api() { # api METHOD PORT PATH [BODY]: prints "STATUS BODY"
  local out
  out=$(curl -s --max-time 3 -X "$1" "http://127.0.0.1:$2$3" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' ${4:+-d "$4"} -w ' %{http_code}' 2>/dev/null) || out=" 000"
  echo "${out##* } ${out% *}"
}

wait_healthy() {
  local deadline=$((SECONDS + HEALTHY_TIMEOUT_S)) n
  while :; do
    n=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --filter health=healthy -q | wc -l)
    [ "$n" -ge 3 ] && return 0
    ((SECONDS < deadline)) || fail "cluster not healthy within ${HEALTHY_TIMEOUT_S}s: $(compose ps)"
    sleep 0.2
  done
}

leader_id() {
  local port
  for port in "${PORTS[@]}"; do
    api GET "$port" /v1/cluster | awk '{ $1=""; print }' | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"] or "")' 2>/dev/null && return 0
  done
  return 1
}

# ---- up -----------------------------------------------------------------------------
t=$(ms_now)
compose up -d >/dev/null 2>&1 || fail "compose up: $(compose up -d 2>&1 | tail -5)"
wait_healthy
say "up: 3 nodes healthy $(($(ms_now) - t)) ms after \`up -d\`"

# ---- writes through every published port, and from inside the network --------------
declare -A ACKED=()
for i in 0 1 2; do
  read -r status body < <(api POST "${PORTS[$i]}" /v1/tasks "{\"queue\":\"demo\",\"kind\":\"echo\",\"payload\":{\"via\":${PORTS[$i]}},\"idempotency_key\":\"port-$i\"}")
  [ "$status" = 201 ] || fail "enqueue through port ${PORTS[$i]}: $status $body"
  ACKED[port-$i]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$body")
done
say "host: an enqueue through each of ports ${PORTS[*]} acknowledged"
inside=$(docker run --rm --network "${PROJECT}_default" --entrypoint taskswarm "$IMAGE" \
  --servers http://taskswarm-3:7001 --api-token "$TOKEN" --json \
  enqueue --queue demo --kind echo --idempotency-key inside-1 --payload '{"via":"inside"}' 2>&1) ||
  fail "enqueue from a container in the network: $inside"
ACKED[inside-1]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$inside")
say "network: an enqueue from a container through taskswarm-3 acknowledged"

deadline=$((SECONDS + 30))
for key in "${!ACKED[@]}"; do
  while :; do
    read -r status body < <(api GET "${PORTS[0]}" "/v1/tasks/${ACKED[$key]}")
    [[ "$body" == *'"state":"succeeded"'* ]] && break
    ((SECONDS < deadline)) || fail "the worker did not complete task ${ACKED[$key]}: $body"
    sleep 0.2
  done
done
say "worker: the compose worker completed all ${#ACKED[@]} tasks"

# ---- stop the leader under a stream of writes ----------------------------------------
# A writer on the host: keys w-1, w-2, ... each retried on the next port until
# acknowledged (the same key: a retry never makes a second task). Every acknowledgement
# is recorded with its time.
: >"$WORK/acks"
writer() {
  local n=0 p=0 status body
  while [ ! -f "$WORK/stop-writer" ]; do
    n=$((n + 1))
    while [ ! -f "$WORK/stop-writer" ]; do
      read -r status body < <(api POST "${PORTS[$p]}" /v1/tasks "{\"queue\":\"flow\",\"kind\":\"k\",\"idempotency_key\":\"w-$n\"}")
      if [ "$status" = 201 ] || [ "$status" = 200 ]; then
        echo "$(ms_now) w-$n $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$body")" >>"$WORK/acks"
        break
      fi
      p=$(((p + 1) % 3))
      sleep 0.05
    done
  done
}
writer &
WRITER=$!
sleep 2
leader=$(leader_id) || fail "no leader known"
container=$(compose ps -q "taskswarm-$leader")
stopped_at=$(ms_now)
docker stop "$container" >/dev/null
say "stopped the leader's container (node $leader) in $(($(ms_now) - stopped_at)) ms"
deadline=$((SECONDS + FAILOVER_TIMEOUT_S))
while :; do
  new=$(leader_id || true)
  if [ -n "$new" ] && [ "$new" != "$leader" ]; then break; fi
  ((SECONDS < deadline)) || fail "no new leader within ${FAILOVER_TIMEOUT_S}s"
  sleep 0.1
done
sleep 2
touch "$WORK/stop-writer"
wait "$WRITER"
first_after=$(awk -v t="$stopped_at" '$1 > t { print $1; exit }' "$WORK/acks")
[ -n "$first_after" ] || fail "no write acknowledged after the leader stopped"
gap=$(awk -v t="$stopped_at" 'BEGIN { prev = 0; max = 0 } { if (prev > 0 && $1 > t && $1 - prev > max) max = $1 - prev; prev = $1 } END { print max }' "$WORK/acks")
say "failover: node $new leads; the host writer's first acknowledgement came $((first_after - stopped_at)) ms after the stop (longest pause between acknowledgements: $gap ms)"
acked_total=$(wc -l <"$WORK/acks")
while read -r _ key id; do ACKED[$key]=$id; done <"$WORK/acks"

check_all_acked() { # check_all_acked PORT WHAT
  local key status body lost=0
  for key in "${!ACKED[@]}"; do
    read -r status body < <(api GET "$1" "/v1/tasks/${ACKED[$key]}${3:-}")
    if [ "$status" != 200 ]; then
      echo "e2e: $2: acknowledged task ${ACKED[$key]} ($key) missing: $status $body" >&2
      lost=$((lost + 1))
    fi
  done
  [ "$lost" -eq 0 ] || fail "$2: $lost acknowledged tasks missing"
}
check_all_acked "${PORTS[$((new - 1))]}" "after failover"
say "no acknowledged write lost: all ${#ACKED[@]} tasks ($acked_total from the writer) present"

# ---- the old leader rejoins --------------------------------------------------------
t=$(ms_now)
docker start "$container" >/dev/null
wait_healthy
old_port=${PORTS[$((leader - 1))]}
deadline=$((SECONDS + 30))
until check_all_acked "$old_port" "old leader" "?consistency=local" 2>/dev/null; do
  ((SECONDS < deadline)) || check_all_acked "$old_port" "old leader" "?consistency=local"
  sleep 0.2
done
say "rejoin: node $leader healthy and holding every acknowledged task $(($(ms_now) - t)) ms after \`docker start\`"

# ---- down + up keeps every task ------------------------------------------------------
t=$(ms_now)
compose down >/dev/null 2>&1
say "down (volumes kept) in $(($(ms_now) - t)) ms"
compose up -d >/dev/null 2>&1
wait_healthy
for port in "${PORTS[@]}"; do
  deadline=$((SECONDS + 30))
  until check_all_acked "$port" "after down/up" 2>/dev/null; do
    ((SECONDS < deadline)) || check_all_acked "$port" "after down/up"
    sleep 0.2
  done
done
say "down + up: every acknowledged task still there, through every port"

# ---- down -v leaves nothing ------------------------------------------------------
t=$(ms_now)
compose down -v >/dev/null 2>&1
say "down -v in $(($(ms_now) - t)) ms"
left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
left+="$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")"
left+="$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")"
[ -z "$left" ] || fail "down -v left: $left"
if command -v iptables-save >/dev/null; then
  for port in "${PORTS[@]}"; do
    ! iptables-save 2>/dev/null | grep -q -- "--dport $port" || fail "a firewall rule for port $port is left"
  done
fi
say "down -v: no container, network, volume or firewall rule of the project left"
say "PASSED"
