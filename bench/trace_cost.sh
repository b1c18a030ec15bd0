#!/usr/bin/env bash
# Dispatch rate with tracing off, this tree against BASE (default: the commit before pool::Trace),
# both built the same way from bench/trace_benchmark.cc and run alternately, ROUNDS times each.
#   bench/trace_cost.sh [BASE] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-9cbdf02}
rounds=${2:-3}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

build() {  # tree, output
  local sources
  sources=$(ls "$1"/pool/*.cc "$1"/pool/detail/*.cc | grep -v mpi_)
  # shellcheck disable=SC2086
  g++ -std=c++20 -O2 -DNDEBUG -I"$1" "$PWD/bench/trace_benchmark.cc" $sources -o "$2" \
    -lbenchmark -lpthread -lrt
}

git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
echo "building this tree and $base ..." >&2
build "$PWD" "$work/now" &
build "$work/base" "$work/before"
wait

filter='BM_.*Dispatch/traced:0'
for ((round = 1; round <= rounds; round++)); do
  for side in before now; do
    "$work/$side" --benchmark_filter="$filter" --benchmark_min_time=0.5 --benchmark_format=csv 2>/dev/null |
      awk -F, -v side="$side" '/^"BM_/ { gsub(/"/, "", $1); print side, $1, $7 }'
  done
done | awk '
  function median(list,    values, n, i, j, t) {
    n = split(list, values, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (values[j] < values[i]) {
      t = values[i]; values[i] = values[j]; values[j] = t
    }
    return n % 2 ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
  }
  { sub(/\/real_time$/, "", $2); rate[$1 " " $2] = rate[$1 " " $2] " " $3; names[$2] = 1 }
  END {
    printf "%-36s %14s %14s %8s\n", "median items/s, untraced", "before", "now", "now/before"
    for (name in names) {
      before = median(rate["before " name]); now = median(rate["now " name])
      printf "%-36s %14.0f %14.0f %8.3f\n", name, before, now, now / before
    }
  }'
