#!/usr/bin/env bash
# The MPI backend as a user meets it: examples under mpirun print the same values as on worker
# processes, bad requests fail with a message, and a rank that dies ends the job with a report of
# the lost chunks and a non-zero status, never a hang, leaving no process behind.
set -u
SUITE=MpiExamples
source tests/junit.sh
run="tests/mpi_run.sh"
export MPI_RUN_TIMEOUT=120

value() {  # the "value" field of a --json line
  python3 -c 'import json, sys; print(repr(json.loads(sys.stdin.read())["value"]))'
}
field() {  # field name
  python3 -c 'import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"
}

# Same partition, same order of additions: the same double, to the last bit.
process=$(examples/slow_series --n 1000000 --ncores 2 --json | value)
mpi_json=$($run 3 examples/slow_series --n 1000000 --backend mpi --json)
check SlowSeriesOnThreeRanksEqualsTwoProcesses test "$(value <<<"$mpi_json")" = "$process"
check SlowSeriesReportsTheMpiBackend test "$(field backend <<<"$mpi_json")" = mpi
check SlowSeriesCountsTwoWorkerRanks test "$(field ncores <<<"$mpi_json")" = 2
check SlowSeriesPrintsOneLineFromRankZeroOnly test "$(wc -l <<<"$mpi_json")" -eq 1
one_process=$(examples/slow_series --n 1000000 --ncores 1 --json | value)
check SlowSeriesOnOneRankEqualsOneProcess \
  test "$($run 1 examples/slow_series --n 1000000 --backend mpi --json | value)" = "$one_process"
for strategy in map map_reduce; do
  check "SlowSeries${strategy}OnThreeRanksEqualsTwoProcesses" test \
    "$($run 3 examples/slow_series --n 200000 --strategy $strategy --backend mpi --json | value)" = \
    "$(examples/slow_series --n 200000 --strategy $strategy --ncores 2 --json | value)"
done
text=$($run 3 examples/slow_series --n 1000000 --backend mpi)
check SlowSeriesSaysItRunsOnRanks grep -qx 'running with 2 MPI worker ranks over \[(1, 500000), (500001, 1000000)\]' <<<"$text"
check SlowSeriesPrintsTheSum grep -qE '^sum = 11\.01565184987' <<<"$text"

# --trace and --stats on the ranks: rank 0 writes one Chrome trace with a row per worker rank.
tmp=${TEST_TMPDIR:-/tmp}
rm -f "$tmp/mpi.json"
line=$($run 3 examples/slow_series --n 1000000 --strategy map_reduce --backend mpi --json --stats \
  --trace "$tmp/mpi.json" 2>/dev/null)
check TraceOnRanksWritesOneFile python3 - "$tmp/mpi.json" <<'EOF_PY'
import json, sys
document = json.load(open(sys.argv[1]))
spans = [e for e in document["traceEvents"] if e["ph"] == "X"]
meta = document["metadata"]
assert (meta["backend"], meta["workers"], meta["example"]) == ("mpi", 2, "slow_series"), meta
assert {e["tid"] for e in spans} == {0, 1, 2}
assert sum(e["args"]["items"] for e in spans if e["cat"] == "run") == 1000000
EOF_PY
check StatsOnRanksAddUp python3 -c '
import json, sys
s = json.loads(sys.argv[1])["stats"]
parts = s["run"] + s["startup"] + s["overhead"] + s["gil_wait"] + s["idle"] + s["shutdown"]
assert abs(parts - 2 * s["wall"]) <= 0.01 * 2 * s["wall"], (parts, s["wall"])' "$line"

bar=$($run 3 examples/slow_series --n 100000 --strategy map_reduce --backend mpi --progress 2>&1 >/dev/null)
check ProgressBarEndsAtEveryItemOnRankZero grep -qE '^map_reduce: 100%\|#+\| 100000/100000 ' <<<"$bar"
check ProgressBarIsDrawnOnce test "$(grep -c '100000/100000' <<<"$bar")" -eq 1

check TrigSeriesOnThreeRanksEqualsTwoProcesses test \
  "$($run 3 examples/trig_series --n 1000000 --backend mpi --json | value)" = \
  "$(examples/trig_series --n 1000000 --ncores 2 --json | value)"
check SleepMapOnThreeRanksEqualsTwoProcesses test \
  "$($run 3 examples/sleep_map --tasks 4 --seconds 0.05 --backend mpi --json | value)" = \
  "$(examples/sleep_map --tasks 4 --seconds 0.05 --ncores 2 --json | value)"

err=$($run 3 examples/velocity --backend mpi 2>&1 >/dev/null)
status=$?
check SharedArrayExampleRefusesMpi test "$status" -ne 0
check SharedArrayExampleSaysWhy grep -q 'shared arrays' <<<"$err"

err=$($run 3 examples/slow_series --n 1000 --backend mpi --ncores 5 2>&1 >/dev/null)
status=$?
check MoreWorkersThanRanksIsAUsageError test "$status" -eq 2
check MoreWorkersThanRanksSaysHowMany grep -q -- "--ncores 5 is more than the MPI job's 2 worker ranks" <<<"$err"
check MoreWorkersThanRanksSaysItOnceFromRankZero test "$(grep -c "^slow_series:" <<<"$err")" -eq 1

leftovers() { pgrep -f mpi_rank_death >/dev/null && return 1 || return 0; }

out=$($run 3 tests/mpi_rank_death none 2>&1)
status=$?
check CleanRunExitsZero test "$status" -eq 0
check CleanRunReturnsEveryResult grep -qx 'done 100' <<<"$out"
sleep 0.5
check CleanRunLeavesNoProcess leftovers

for how in segv kill exit silent; do
  err=$($run 3 tests/mpi_rank_death $how 2>&1)
  status=$?
  check "RankDeath($how)ExitsNonZero" test "$status" -ne 0
  check "RankDeath($how)IsNoHang" test "$status" -ne 124
  check "RankDeath($how)ListsTheLostChunks" grep -qE 'pool::MpiPool: lost: .*map items 35-39 on rank [12]' <<<"$err"
  check "RankDeath($how)SaysHowFarTheMapGot" grep -qE 'pool::MpiPool: map: [0-9]+ items done of 100' <<<"$err"
  check "RankDeath($how)PrintsNoResult" test "$(grep -c '^done' <<<"$err")" -eq 0
  sleep 1
  check "RankDeath($how)LeavesNoProcess" leftovers
done
check SegfaultNamesTheRankAndChunk grep -qE 'rank [12] died of signal 11 \(Segmentation fault\) while running map items 35-39' \
  <<<"$($run 3 tests/mpi_rank_death segv 2>&1)"
check ExitNamesTheRankAndChunk grep -qE 'rank [12] called exit\(\) while running map items 35-39' \
  <<<"$($run 3 tests/mpi_rank_death exit 2>&1)"
# A rank that never answers (a hung task, a node lost with its link cut): task_timeout bounds it.
check SilentRankNamesTheRankTheChunkAndTheTimeout grep -qE 'rank [12] answered nothing for 2 s \(task_timeout\) while running map items 35-39' \
  <<<"$($run 3 tests/mpi_rank_death silent 2>&1)"

finish
