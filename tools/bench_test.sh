#!/usr/bin/env bash
# tools/bench and tools/compare_python with --quick against the real //bench binaries: every row
# is there, ratios and verdicts follow from the figures beside them, bad flags exit 2. Speed itself
# is never asserted (tests share the machine).
set -u
tmp=${TEST_TMPDIR:-}
if [ -z "$tmp" ]; then  # run by hand, outside Bazel, after tools/bazel build //bench:all
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
fi
bin=bench
[ -x "$bin/pool_benchmark" ] || bin=bazel-bin/bench
SUITE=Bench
source tests/junit.sh
# The table's rows whose first cell starts with $2, as "cell|cell|..." without the outer bars.
rows() {  # table, workload prefix
  awk -F ' [|] ' -v prefix="$2" '
    /^\| / { sub(/^\| /, ""); sub(/ \|$/, ""); if (index($1, prefix) == 1) { gsub(/ [|] /, "|"); print } }' <<<"$1"
}
# A row's ratio is its first two figures' quotient (to the printed digits), its verdict the target's.
ratio_follows() {  # row, limit: ours / reference <= limit is met
  awk -F '|' -v limit="$2" '{
    ours = $2 + 0; reference = $3 + 0; ratio = $4 + 0
    if (reference == 0) exit 1
    if (ratio < ours / reference * 0.9 - 0.002 || ratio > ours / reference * 1.1 + 0.002) exit 1
    verdict = ratio <= limit ? "yes" : "**no**"
    exit $6 == verdict ? 0 : 1
  }' <<<"$1"
}

out=$(tools/bench --quick --bin "$bin" --ncores 1,2 --dispatch-workers 1,3 --out "$tmp/out" 2>"$tmp/err")
check BenchExitsWith0 test $? -eq 0
check HeaderSaysQuickAndMachine grep -qE '^pool benchmarks, medians of 2 interleaved repetitions .*machine: [0-9]+ CPUs; --quick' <<<"$out"
check TableHasItsHeader grep -qx '| workload | ours | reference | ratio | target | met |' <<<"$out"
check OneSlowSeriesRowPerWorkerCount test "$(rows "$out" 'slow series, ' | grep -cE 'workers?: ProcessPool / fork\(\)\+pipe\|')" -eq 2
check EfficiencyRowPerWorkerCount test "$(rows "$out" 'slow series, ' | grep -c 'efficiency, ProcessPool')" -eq 2
check OpenMPRowPerWorkerCount test "$(rows "$out" 'slow series, ' | grep -c 'FreeThreadPool / OpenMP')" -eq 2
check DispatchRowPerSizeAndChunksize test "$(rows "$out" 'dispatch x*x, ' | grep -vcE ' workers?: |max_memory_per_child')" -eq 4
check DispatchScalingRowPerPoolSizeAndChunksize test "$(rows "$out" 'dispatch x*x, ' | grep -cE ', [13] workers?: items/s / shared counter\|')" -eq 4
check RecyclingByMemoryRow test "$(rows "$out" 'dispatch x*x, chunksize 1, N=10^4: max_memory_per_child / maxtasksperchild' | wc -l)" -eq 1
check FunctionRowsPerSize test "$(rows "$out" 'dispatch x*x as a plain function' | wc -l)" -eq 4
check LinearityRowPerChunksize test "$(rows "$out" 'dispatch, ' | grep -c 'slowest / fastest')" -eq 2
check StartupRowsPerStartMethodFor2And4Workers test "$(rows "$out" 'start-up + map of 10 + shutdown, ' | wc -l)" -eq 6
check ResultRowsForDoublesAndStrings test "$(rows "$out" 'map returning 10^' | grep -c 'time / memcpy')" -eq 2
check ColdRowsPerSizeTwiceAndOneForStrings test "$(rows "$out" 'first map of' | wc -l)" -eq 3
check FreshProcessStartupRowsFor2And4Workers test "$(rows "$out" 'start-up + map of 10 + shutdown in a fresh' | wc -l)" -eq 2
check SleepRowPerPool test "$(rows "$out" 'sleep map' | wc -l)" -eq 3
check MemoryRowsForParentAndWorker test "$(rows "$out" 'map' | grep -c 'peak RSS')" -eq 4
check EveryVerdictIsYesNoOrNone bash -c '! grep "^| " <<<"$0" | tail -n +3 | grep -vqE "\| (yes|\*\*no\*\*|—) \|$"' "$out"
slow=$(rows "$out" 'slow series, 2 workers: ProcessPool / fork()+pipe')
check SlowSeriesRatioIsOursOverForkPipe ratio_follows "$slow" 1.05
results=$(rows "$out" 'map returning 10^5 doubles: time / memcpy')
check ResultVerdictFollowsTimeRatio test "$(cut -d'|' -f6 <<<"$results")" = \
  "$(awk -F'|' '{ print ($4 + 0 <= 2.0) ? "yes" : "**no**" }' <<<"$results")"
check TableAndReportAreWritten test -s "$tmp/out/bench.md" -a -s "$tmp/out/bench.json"
check SavedTableIsThePrintedOne bash -c 'diff -q "$0" <(printf "%s\n" "$1")' "$tmp/out/bench.md" "$out"
check ReportHoldsEveryRepetition python3 -c '
import json, sys
report = json.load(open(sys.argv[1]))
runs = report["benchmarks"]["slow_series/fork_pipe/ncores:2"]
assert len(runs) == 2 and all(run["seconds"] > 0 for run in runs), runs
assert report["peak_memory"][1]["result_bytes"] == 800000, report["peak_memory"]
' "$tmp/out/bench.json"

tools/bench --repetitions 0 >"$tmp/out2" 2>"$tmp/err2"
check BadRepetitionsExitWith2 test $? -eq 2
check BadRepetitionsSayWhy grep -q 'must be a whole number >= 1' "$tmp/err2"

compared=$(tools/compare_python --quick --bin "$bin" --workers 2 --repetitions 1 2>"$tmp/err3")
check ComparePythonExitsWith0 test $? -eq 0
check ComparePythonHasEightWorkloads test "$(grep -cE '^\| (slow series|map x\*x|start-up|first map|sleep map)' <<<"$compared")" -eq 8
check ComparePythonNamesDebiansPython grep -qE '^\| workload \| Python 3\.[0-9]+\.[0-9]+ \| ours \| ratio \| target \|$' <<<"$compared"
check ComparePythonRatiosArePositive bash -c '! grep -E "^\| (slow|map|start|sleep)" <<<"$0" | awk -F " [|] " "{ if (\$4 + 0 <= 0) bad = 1 } END { exit !bad }"' "$compared"
tools/compare_python --python /nonexistent/python3 --bin "$bin" >/dev/null 2>"$tmp/err4"
check MissingPythonExitsWith1 test $? -eq 1
check MissingPythonIsNamed grep -q 'compare_python: error: /nonexistent/python3 is missing' "$tmp/err4"
finish
