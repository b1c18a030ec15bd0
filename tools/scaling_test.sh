#!/usr/bin/env bash
# tools/scaling as a lecturer runs it, against tools/testdata/fake_example, whose times are known:
# process and free take 1.0 / ncores s, gil 1.0 s, serial 0.8 s.
set -u
tool=tools/scaling
fake=tools/testdata/fake_example
tmp=${TEST_TMPDIR:-}
if [ -z "$tmp" ]; then  # run by hand, outside Bazel
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
fi
SUITE=Scaling
source tests/junit.sh
# The table under a title line: its header, separator and rows.
table() {  # title, markdown
  awk -v title="$1" '$0 == title { on = 1; next } on && /^\|/ { print; next } on && /^$/ && seen++ { exit }' <<<"$2"
}
cell() {  # table, backend, ncores
  awk -F ' [|] ' -v backend="$2" -v ncores="$3" '
    { sub(/ [|]$/, "") }
    NR == 1 { for (i = 2; i <= NF; i++) if ($i == ncores) column = i }
    $1 == "| " backend { print $column }' <<<"$1"
}

# Runs 1.0, 1.1 and 1.2 times as long, in turn: every cell's median is its 1.1 times.
out=$($tool fake_example --binary $fake --ncores 1,2,4 --repeat 3 --out "$tmp/plots" \
  -- --spread "$tmp/counter" --n 777 2>"$tmp/err")
check ExitsWith0 test $? -eq 0
check HeaderNamesExampleFlagsNRepeatsAndMachine \
  grep -qE "^fake_example, flags: --spread .*/counter --n 777, n = 777, median \(min-max\) of 3 runs, machine: [0-9]+ CPUs \(nproc\)" <<<"$out"
wall=$(table 'Wall time (s)' "$out")
check WallTableHasAColumnPerCoreCount test "$(sed -n 1p <<<"$wall")" = '| backend \ ncores | 1 | 2 | 4 |'
check WallTableHasASeparator test "$(sed -n 2p <<<"$wall")" = '|---|---|---|---|'
for backend in process gil free; do
  check "WallTableHasOneRowFor${backend}WithMedianAndRange" test "$(grep -cE \
    "^\| $backend( \| [0-9]+\.[0-9]{3} \([0-9]+\.[0-9]{3}-[0-9]+\.[0-9]{3}\)){3} \|$" <<<"$wall")" -eq 1
done
check WallTableRowCountIsTheBackends test "$(wc -l <<<"$wall")" -eq 5
check WallCellIsMedianWithMinMax test "$(cell "$wall" process 2)" = '0.550 (0.500-0.600)'
check WallCellOfGilStaysAtOneCore test "$(cell "$wall" gil 4)" = '1.100 (1.000-1.200)'
speedup=$(table 'Speedup (1 core / ncores)' "$out")
check SpeedupTableHasAColumnPerCoreCount test "$(sed -n 1p <<<"$speedup")" = '| backend \ ncores | 1 | 2 | 4 |'
check SpeedupOfProcessAt2CoresIs2 test "$(cell "$speedup" process 2)" = 2.00
check SpeedupOfFreeAt4CoresIs4 test "$(cell "$speedup" free 4)" = 4.00
check SpeedupOfGilAt4CoresIs1 test "$(cell "$speedup" gil 4)" = 1.00
efficiency=$(table 'Parallel efficiency (speedup / ncores)' "$out")
check EfficiencyOfProcessAt4CoresIs1 test "$(cell "$efficiency" process 4)" = 1.00
check EfficiencyOfGilAt4CoresIsAQuarter test "$(cell "$efficiency" gil 4)" = 0.25
check ProgressIsOneLinePerRunOnStderr test "$(grep -c '^scaling: \[ *[0-9]*/27\] ' "$tmp/err")" -eq 27
check ValuesThatAgreeGiveNoWarning bash -c '! grep -q warning "$0"' "$tmp/err"
check WritesTheMeasurements python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(len(d["runs"]) != 27)' \
  "$tmp/plots/fake_example-scaling.json"
if command -v gnuplot >/dev/null; then
  check WritesAPng test "$(head -c 4 "$tmp/plots/fake_example-speedup.png" | tail -c 3)" = PNG
  check WritesAnSvg grep -q '<svg' "$tmp/plots/fake_example-speedup.svg"
  check SaysWhereThePlotWent grep -q "wrote the plot to .*fake_example-speedup.png" "$tmp/err"
else
  skip WritesAPng "gnuplot is not installed"
  skip WritesAnSvg "gnuplot is not installed"
  skip SaysWhereThePlotWent "gnuplot is not installed"
fi

# Without gnuplot on PATH: the tables still, a note, status 0.
mkdir -p "$tmp/bin"
ln -sf "$(python3 -c 'import sys; print(sys.executable)')" "$tmp/bin/python3"
out=$(PATH="$tmp/bin" $tool fake_example --binary $fake --ncores 1,2 --repeat 1 --out "$tmp/noplot" 2>"$tmp/err")
check WithoutGnuplotExitsWith0 test $? -eq 0
check WithoutGnuplotPrintsTheTables grep -qx '| process | 1.00 | 2.00 |' <<<"$out"
check WithoutGnuplotSaysThePlotWasSkipped grep -q 'plot skipped: gnuplot is not installed' "$tmp/err"

# 1 not in --ncores: run anyway as the baseline, and said.
out=$($tool fake_example --binary $fake --ncores 2,4 --repeat 1 --out "$tmp/plots" 2>/dev/null)
check BaselineAtOneCoreIsRunWhenNotListed grep -qx '| process | 2.00 | 4.00 |' <<<"$out"
check BaselineRunOnlyForItIsSaid grep -q 'run for the baseline only: 1 is not in --ncores' <<<"$out"
check ColumnsAreOnlyTheListedCoreCounts grep -qx '| backend \\ ncores | 2 | 4 |' <<<"$out"

# --baseline serial: every backend against the serial backend's 0.8 s.
out=$($tool fake_example --binary $fake --ncores 1,2 --repeat 1 --baseline serial --out "$tmp/plots" 2>/dev/null)
check SerialBaselineDividesSerialTime grep -qx '| process | 0.80 | 1.60 |' <<<"$out"
check SerialBaselineIsSaidWithItsTime grep -q "baseline: the serial backend's median, 0.800 s$" <<<"$out"
check SerialBaselineNamesTheSpeedup grep -qx 'Speedup (serial / parallel)' <<<"$out"

# Values that differ between runs: a warning, and the tables all the same.
$tool fake_example --binary $fake --ncores 1 --repeat 1 --out "$tmp/plots" -- --value-by-backend >/dev/null 2>"$tmp/err"
check DifferingValuesStillExitWith0 test $? -eq 0
check DifferingValuesGiveAWarning grep -q '^scaling: warning: "value" differs by more than 1e-09' "$tmp/err"

# A failing example: non-zero status, the command and its stderr named.
$tool fake_example --binary $fake --ncores 1,2 --repeat 1 --out "$tmp/plots" -- --fail >/dev/null 2>"$tmp/err"
check FailingExampleExitsNonZero test $? -ne 0
check FailingExampleNamesTheCommand grep -q "^scaling: error: .*fake_example --ncores 1 --backend process --json --fail exited with status 1" "$tmp/err"
check FailingExampleShowsItsStderr grep -q 'the workers exploded' "$tmp/err"
check FailingExampleGivesNoTraceback bash -c '! grep -q Traceback "$0"' "$tmp/err"
$tool fake_example --binary $fake --ncores 1 --repeat 1 --out "$tmp/plots" -- --no-json >/dev/null 2>"$tmp/err"
check ExampleWithoutJsonExitsNonZero test $? -ne 0
check ExampleWithoutJsonIsSaid grep -q 'printed no JSON line' "$tmp/err"
$tool fake_example --binary "$tmp/missing" --ncores 1 --repeat 1 --out "$tmp/plots" >/dev/null 2>"$tmp/err"
check MissingBinaryExitsNonZero test $? -ne 0
check MissingBinaryIsSaid grep -q "^scaling: error: cannot run .*missing" "$tmp/err"

for bad in "--ncores 0" "--ncores 1,x" "--backends gpu" "--repeat 0" "--baseline fast" "-- --ncores 3"; do
  $tool fake_example --binary $fake $bad >/dev/null 2>&1
  check "RejectsBadFlag($bad)WithStatus2" test $? -eq 2
done

# Ctrl-C: status 130, a one-line note, no traceback; whether the example got the SIGINT too (a
# terminal signals the whole foreground group) or only the tool did.
set -m
for target in group tool; do
  rm -f "$tmp/ready"
  $tool fake_example --binary $fake --ncores 1 --repeat 1 --out "$tmp/plots" \
    -- --sleep 30 --ready "$tmp/ready" >/dev/null 2>"$tmp/int.err" &
  pid=$!
  # Signal once the example runs (interpreter start-up can be slow on a loaded machine).
  for _ in $(seq 200); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
  if [ $target = group ]; then kill -INT -- -$pid; else kill -INT $pid; fi
  wait $pid
  status=$?
  check "CtrlCOn${target}ExitsWith130" test $status -eq 130
  check "CtrlCOn${target}SaysInterrupted" test "$(cat "$tmp/int.err")" = "scaling: interrupted"
  check "CtrlCOn${target}LeavesNoExample" bash -c '! pgrep -f "fake_example --ncores 1 .*--sleep 3[0]" >/dev/null'
done
set +m

$tool fake_example --binary $fake --ncores 1,2 --repeat 1 --pin --out "$tmp/pinned" >"$tmp/pin_out" 2>"$tmp/err"
check PinExitsWith0 test $? -eq 0
check PinReachesEveryRun python3 -c '
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
assert runs and all(run["pinned"] for run in runs), runs
' "$tmp/pinned/fake_example-scaling.json"
check PinIsNamedInTheHeader grep -qE '^fake_example, flags: --pin,' "$tmp/pin_out"

finish
