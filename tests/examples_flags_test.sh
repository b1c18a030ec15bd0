#!/usr/bin/env bash
# The examples built on examples::Example as a user runs them: the common flags, a one-line error
# with exit status 2 for every bad value, --help listing every flag, the course's output lines, and
# status 130 after Ctrl-C.
set -u
SUITE=ExamplesFlags
source tests/junit.sh

common_bad=("--ncores 0" "--ncores -3" "--ncores abc" "--ncores 5000" "--backend gpu" "--nonsense")
rejects() {  # example, bad flags...
  local example=$1
  shift
  for bad in "$@"; do
    err=$(examples/$example $bad 2>&1 >/dev/null)
    status=$?
    check "${example}RejectsBadFlag($bad)WithStatus2" test "$status" -eq 2
    check "${example}RejectsBadFlag($bad)WithOneLine" test "$(wc -l <<<"$err")" -eq 1
  done
}
rejects slow_series "${common_bad[@]}" "--strategy fastest" "--chunksize -1" "--chunksize 5 --strategy intervals"
rejects sleep_map "${common_bad[@]}" "--tasks 0" "--tasks -1" "--seconds 0" "--seconds -0.5" \
  "--seconds abc" "--seconds nan"
rejects trig_series "${common_bad[@]}" "--n 0" "--n 1.5"
rejects velocity "${common_bad[@]}" "--nlat 0" "--nlon -1" "--nr abc" "--scale 0" "--scale -0.5"
rejects elementwise "${common_bad[@]}" "--n 0" "--chunk 0" "--chunk many"

help_lists() {  # example, flags...
  local example=$1
  shift
  local help
  help=$(examples/$example --help)
  for flag in "$@" --ncores --backend --json --progress --trace --stats --help; do
    check "${example}HelpLists($flag)" grep -q -- "$flag" <<<"$help"
  done
}
help_lists slow_series --n --method --strategy --chunksize
help_lists sleep_map --tasks --seconds
help_lists trig_series --n
help_lists velocity --nlat --nlon --nr --scale
help_lists elementwise --n --chunk

out=$(examples/slow_series --n 1000000 --ncores 2 --strategy map_reduce)
check SlowSeriesMapReduceSaysWhatItMaps grep -qx 'running with 2 processes, map_reduce over range(1, 1000001)' <<<"$out"
check SlowSeriesMapReduceGivesTheSum grep -qE '^sum = 11\.01565184987' <<<"$out"
out=$(examples/slow_series --n 1000000 --backend serial --strategy map)
check SlowSeriesSerialMapSaysWhatItMaps grep -qx 'running serially, map over range(1, 1000001)' <<<"$out"
check SlowSeriesSerialMapGivesTheSum grep -qE '^sum = 11\.01565184987' <<<"$out"

out=$(examples/sleep_map --tasks 3 --seconds 0.05 --ncores 3)
check SleepMapSaysWhatRuns grep -qx 'running with 3 processes: 3 tasks, each sleeping 0.05 s' <<<"$out"
check SleepMapPrintsTheTime grep -qE '^Time in seconds: [0-9]+\.[0-9]{3}$' <<<"$out"
check SleepMapCountsTheTasks grep -qx 'tasks done = 3' <<<"$out"

out=$(examples/trig_series --n 1000 --ncores 2 --backend free)
check TrigSeriesSaysWhatRuns grep -qx 'running with 2 threads: sum of cos(i)/i over range(1, 1001)' <<<"$out"
check TrigSeriesPrintsTheSum grep -qE '^sum = 0\.0430568784601' <<<"$out"
check TrigSeriesPrintsTheLimit grep -qx 'exact = 0.04201950582536895' <<<"$out"
check TrigSeriesPrintsTheRatio grep -qE '^approximate / exact = 1\.024' <<<"$out"

out=$(examples/velocity --nlat 6 --nlon 8 --nr 5 --scale 0.5 --ncores 2)
check VelocitySaysWhatRuns grep -qx 'running with 2 processes: 3 x 4 x 3 grid (36 points), split over latitudes' <<<"$out"
check VelocityPrintsTheTime grep -qE '^Time in seconds: [0-9]+\.[0-9]{3}$' <<<"$out"
check VelocityPrintsNoDifference grep -qx 'max difference from a serial computation = 0.0' <<<"$out"
check VelocityPrintsTheError grep -qE '^max error against the exact field = [0-9.e-]+$' <<<"$out"

out=$(examples/elementwise --n 10000 --chunk 3000 --ncores 2 --backend gil)
check ElementwiseSaysWhatRuns grep -qx 'running with 2 threads: sin(2 pi a)^2 + cos(2 pi a)^2 on 10000 elements, in chunks of 3000' <<<"$out"
check ElementwisePrintsTheDeviation grep -qE '^max \|r - 1\| = [0-9.e-]+$' <<<"$out"

# Ctrl-C while the tasks sleep: status 130, no result line, no worker left behind.
set -m
tmp=${TEST_TMPDIR:-/tmp}
examples/sleep_map --tasks 4 --seconds 600 --ncores 2 >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
sleep 0.5
kill -INT $pid
wait $pid
status=$?
check SleepMapCtrlCExitsWith130 test "$status" -eq 130
check SleepMapCtrlCPrintsNoResult bash -c '! grep -q "tasks done" "$0"' "$tmp/int.out"
check SleepMapCtrlCSaysInterrupted grep -qx "sleep_map: interrupted" "$tmp/int.err"
sleep 0.1
check SleepMapCtrlCLeavesNoWorker bash -c '! pgrep -f "sleep_map --tasks 4 --seconds 60[0]" >/dev/null'
set +m

finish
