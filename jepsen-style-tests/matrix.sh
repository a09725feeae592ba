#!/usr/bin/env bash
# The short fault matrix CI runs (`./x test`, as root): each line is one recorded run of
# `jepsen-run`, checked; any anomaly, inconclusive run or harness error fails the matrix.
# rolling-upgrade restarts each node from `taskswarm-next` (one behaviour version ahead;
# `./x test` builds it). replace-node replaces a dead follower with an empty disk, as the
# runbook does (remove-node --force, new disk, add-node). The last line is the canary: a
# build that accepts stale tokens, which the fencing checker must catch. Seeds are fixed so a failure can be replayed with the same fault
# schedule (timing still differs); TASKSWARM_JEPSEN_SEED overrides them all.
#
# Usage: jepsen-style-tests/matrix.sh   (CARGO_TARGET_DIR as for the build)
set -uo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
run="$target/release/jepsen-run"
out_root="${TASKSWARM_JEPSEN_OUT:-/var/tmp/taskswarm-jepsen/matrix-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out_root"

# name | nodes | workload | nemesis | fault phase (s) | seed | extra flags
matrix=(
  "isolate-leader|3|Q|isolate-leader|20|101|"
  "halves|3|Q|halves-leader-majority,halves-leader-minority|25|102|"
  "kill|3|Q|kill-minority,kill-all|25|103|"
  "pause-leader|3|R|pause-leader|20|104|"
  "pause-worker|3|L|pause-worker|25|105|"
  "majorities-ring|5|Q|majorities-ring|20|106|"
  "rolling-restart|3|Q|rolling-restart|25|108|"
  "rolling-upgrade|3|Q|rolling-upgrade|25|109|--upgrade-bin $target/release/taskswarm-next"
  "replace-node|3|Q|replace-node|25|110|"
  "canary|3|L|pause-worker|25|107|--canary --expect-anomaly fencing"
)

failed=0
summary=()
for row in "${matrix[@]}"; do
  IFS='|' read -r name nodes workload nemesis time seed extra <<<"$row"
  seed="${TASKSWARM_JEPSEN_SEED:-$seed}"
  dir="$out_root/$name"
  echo "=== matrix: $name ($nodes nodes, workload $workload, nemesis $nemesis, ${time}s, seed $seed) ==="
  start=$(date +%s)
  # shellcheck disable=SC2086 # extra holds several flags on purpose
  "$run" --nodes "$nodes" --workload "$workload" --nemesis "$nemesis" --time "$time" \
    --seed "$seed" --run-dir "$dir" $extra </dev/null
  code=$?
  took=$(( $(date +%s) - start ))
  if [ "$code" -eq 0 ]; then verdict="passed"; else verdict="FAILED (exit $code)"; failed=1; fi
  summary+=("$(printf '%-16s %-20s %5ss  %s' "$name" "$verdict" "$took" "$dir")")
done

echo
echo "=== fault matrix summary ==="
printf '%s\n' "${summary[@]}"
exit "$failed"
