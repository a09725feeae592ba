#!/usr/bin/env bash
# No faults, full load: counts elections. A default 3-node `taskswarm dev` cluster on
# loopback runs `taskswarm bench` (16 producers, 16 workers) for DURATION_S seconds (600
# by default); the terms every node reports are printed each minute, and at the end the
# elections started (pre-vote rounds won) and the snapshot encodings that held applies
# back. Any election here is spurious: nothing failed.
#
# Usage: jepsen-style-tests/no_fault_load.sh [DURATION_S]   (CARGO_TARGET_DIR as for the build)
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/taskswarm"
duration_s="${1:-600}"
port="${NO_FAULT_BASE_PORT:-7201}"
dir="$(mktemp -d /var/tmp/taskswarm-no-fault-XXXX)"
"$bin" dev --nodes 3 --base-port "$port" --dir "$dir" >"$dir/dev.log" 2>&1 &
dev=$!
trap 'kill -TERM $dev 2>/dev/null; wait $dev 2>/dev/null' EXIT
urls=("http://127.0.0.1:$port" "http://127.0.0.1:$((port + 1))" "http://127.0.0.1:$((port + 2))")
for _ in $(seq 1 150); do
  curl -sf "${urls[0]}/v1/cluster" | grep -q '"leader_id":[0-9]' && break
  sleep 0.2
done
terms() {
  for u in "${urls[@]}"; do
    curl -s --max-time 2 "$u/v1/cluster" | python3 -c 'import sys,json; d=json.load(sys.stdin); print("term", d["term"], "leader", d["leader_id"], end="  ")' 2>/dev/null || printf 'unreachable  '
  done
  echo
}
echo "start      $(terms)"
"$bin" --servers "${urls[0]}" bench --duration-s "$duration_s" --fsync-dir "$dir" >"$dir/bench.txt" 2>&1 &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
  sleep 60
  echo "$(date -u +%T)   $(terms)"
done
echo "end        $(terms)"
cat "$dir/bench.txt"
plain() { sed 's/\x1b\[[0-9;]*m//g' "$dir/dev.log"; }
echo "elections started (pre-vote rounds won): $(plain | grep -c 'pre-vote won')"
echo "snapshot encodings that held applies back >= 100 ms: $(plain | grep -c 'snapshot encoded')"
plain | grep 'snapshot encoded' | tail -3
echo "logs: $dir"
