#!/usr/bin/env bash
# The example binaries as a user runs them: their output lines, and a one-line error with exit
# status 2 for bad flags.
set -u
bin=examples/slow_series
SUITE=ExamplesCli
source tests/junit.sh

out=$($bin --n 1000000 --ncores 2)
check PrintsTheIntervalsLikeTheCourse grep -qx 'running with 2 processes over \[(1, 500000), (500001, 1000000)\]' <<<"$out"
check PrintsTheTime grep -qE '^Time in seconds: [0-9]+\.[0-9]{3}$' <<<"$out"
check PrintsTheSum grep -qE '^sum = 11\.01565184987' <<<"$out"

serial=$($bin --n 1000000 --backend serial)
check SerialBackendGivesTheSameSum grep -qE '^sum = 11\.01565184987' <<<"$serial"

for backend in gil free; do
  threads=$($bin --n 1000000 --ncores 2 --backend $backend)
  check "${backend}BackendRunsOnThreads" grep -qx 'running with 2 threads over \[(1, 500000), (500001, 1000000)\]' <<<"$threads"
  check "${backend}BackendGivesTheSameSum" grep -qE '^sum = 11\.01565184987' <<<"$threads"
done

for bad in "--ncores 0" "--ncores -3" "--ncores abc" "--n 0" "--method roman" "--backend gpu" "--nonsense"; do
  err=$($bin $bad 2>&1 >/dev/null)
  status=$?
  check "RejectsBadFlag($bad)WithStatus2" test "$status" -eq 2
  check "RejectsBadFlag($bad)WithOneLine" test "$(wc -l <<<"$err")" -eq 1
done

help=$($bin --help)
check HelpListsEveryFlag bash -c 'for f in --ncores --n --method --backend; do grep -q -- "$f" <<<"$0" || exit 1; done' "$help"

table=$(examples/threads_vs_processes --ncores 1,2 --n 200000 --repeat 1)
check ThreadsVsProcessesPrintsAColumnPerCoreCount grep -qF '| backend \ ncores | 1 | 2 |' <<<"$table"
for backend in process gil free; do
  check "ThreadsVsProcessesHasA${backend}Row" test "$(grep -cE "^\| $backend \| [0-9.]+ \| [0-9.]+ \|$" <<<"$table")" -eq 3
done
examples/threads_vs_processes --ncores 1,0 >/dev/null 2>&1
check ThreadsVsProcessesRejectsAZeroCoreCount test $? -eq 2

# Ctrl-C mid-map: status 130, no result line, no worker and no shared memory left behind.
# Job control gives the background job SIGINT's default action, as in an interactive shell.
set -m
tmp=${TEST_TMPDIR:-/tmp}
for backend in process gil; do
  $bin --n 100000000000 --ncores 2 --backend $backend >"$tmp/int.out" 2>"$tmp/int.$backend.err" &
  pid=$!
  sleep 0.5
  kill -INT $pid
  wait $pid
  status=$?
  check "CtrlCExitsWith130On${backend}" test "$status" -eq 130
  check "CtrlCPrintsNoResultOn${backend}" bash -c '! grep -q "sum =" "$0"' "$tmp/int.out"
  sleep 0.1
  check "CtrlCLeavesNoWorkerOn${backend}" bash -c '! pgrep -f "slow_series --n 10000000000[0]" >/dev/null'
  check "CtrlCLeavesNoSharedMemoryOn${backend}" bash -c '! ls /dev/shm | grep -q "^cpp-pool-$0-"' "$pid"
done
check CtrlCSaysInterruptedOnprocess grep -qx "slow_series: interrupted" "$tmp/int.process.err"

# SIGTERM mid-map, as scancel and a job's time limit send it: the pool stops its workers and the
# example says what was lost, then exits as a process SIGTERM killed (128 + 15).
$bin --n 100000000000 --ncores 2 >"$tmp/term.out" 2>"$tmp/term.err" &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
status=$?
check SigtermExitsWith143 test "$status" -eq 143
check SigtermSaysWhatWasLost grep -qx "slow_series: interrupted by Terminated; the workers were stopped and the call's work was lost" "$tmp/term.err"
check SigtermPrintsNoResult bash -c '! grep -q "sum =" "$0"' "$tmp/term.out"
sleep 0.1
check SigtermLeavesNoWorker bash -c '! pgrep -f "slow_series --n 10000000000[0]" >/dev/null'

# --start: the same sum by every start method; SIGTERM mid-map leaves no process (spawned workers
# and the forkserver carry only the program's name: a link of its own tells them apart).
processes_named() {  # how many processes run the program at path $1 (this script is not one)
  pgrep -fc "^$1( |\$)"
}
for start in spawn forkserver; do
  started=$($bin --n 1000000 --ncores 2 --start $start)
  check "StartBy${start}GivesTheSameSum" grep -qE '^sum = 11\.01565184987' <<<"$started"
  ln -sf "$(realpath $bin)" "$tmp/series_by_$start"
  "$tmp/series_by_$start" --n 100000000000 --ncores 2 --start $start >/dev/null 2>"$tmp/term.$start.err" &
  pid=$!
  sleep 1
  check "${start}WorkersRun" test "$(processes_named "$tmp/series_by_$start")" -ge 3
  kill -TERM $pid
  wait $pid
  status=$?
  check "SigtermExitsWith143By${start}" test "$status" -eq 143
  sleep 0.2
  check "SigtermLeavesNoProcessBy${start}" test "$(processes_named "$tmp/series_by_$start")" -eq 0
  # Ctrl-C reaches the whole process group (the workers and the forkserver, which ignore it).
  "$tmp/series_by_$start" --n 100000000000 --ncores 2 --start $start >/dev/null 2>&1 &
  pid=$!
  sleep 1
  kill -INT -- -$pid
  wait $pid
  status=$?
  check "CtrlCExitsWith130By${start}" test "$status" -eq 130
  sleep 0.2
  check "CtrlCLeavesNoProcessBy${start}" test "$(processes_named "$tmp/series_by_$start")" -eq 0
done
$bin --start vfork >/dev/null 2>"$tmp/start.err"
check BadStartMethodIsAUsageError test $? -eq 2
check BadStartMethodSaysWhy grep -q "^slow_series: error: --start must be fork, spawn or forkserver" "$tmp/start.err"
set +m

finish
