#!/usr/bin/env bash
# tools/timeline against tools/testdata/timeline_trace.json: a gil pool of 2 workers running
# slow_series in 4 chunks, 13 spans (startup, 4 run, 3 gil_wait, 4 overhead, shutdown).
set -u
tool=tools/timeline
trace=tools/testdata/timeline_trace.json
tmp=${TEST_TMPDIR:-}
if [ -z "$tmp" ]; then  # run by hand, outside Bazel
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
fi
SUITE=Timeline
source tests/junit.sh
one_error_line() {  # stderr file, what the line must say after "timeline: error: "
  [ "$(wc -l <"$1")" -eq 1 ] && grep -q "^timeline: error: $2" "$1"
}
is_png() {
  [ -s "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = PNG ]
}
# A trace of one process worker: no example, an unknown category, a "B" event to ignore.
small_trace() {
  cat <<EOF
{"traceEvents": [
  {"ph":"X","name":"startup","cat":"startup","pid":1,"tid":0,"ts":0.0,"dur":500.0,"args":{}},
  {"ph":"X","name":"run","cat":"run","pid":1,"tid":1,"ts":600.0,"dur":9000.0,"args":{}},
  {"ph":"X","name":"flush","cat":"custom","pid":1,"tid":1,"ts":9700.0,"dur":100.0,"args":{}},
  {"ph":"B","name":"begin","pid":1,"tid":1,"ts":9800.0},
  {"ph":"X","name":"shutdown","cat":"shutdown","pid":1,"tid":0,"ts":10000.0,"dur":200.0,"args":{}}
 ],
 "metadata": {"backend": "process", "workers": 1}
}
EOF
}

out=$($tool $trace -o "$tmp/chart.png" 2>"$tmp/err")
check ExitsWith0 test $? -eq 0
check WritesAPng is_png "$tmp/chart.png"
check WritesAnSvgBesideIt grep -q '<svg' "$tmp/chart.svg"
check SaysWhatItWroteOnOneLine test "$out" = \
  "timeline: wrote $tmp/chart.png and $tmp/chart.svg (13 spans, 2 workers)"
check SaysNothingOnStderr test ! -s "$tmp/err"
check TitleNamesExampleBackendAndWorkers grep -q '>slow_series: gil pool, 2 workers<' "$tmp/chart.svg"
for row in pool 'worker 0' 'worker 1'; do
  check "LabelsTheRow($row)" grep -q ">$row<" "$tmp/chart.svg"
done
for category in run gil_wait overhead 'startup / shutdown'; do
  check "LegendNames($category)" grep -q ">$category<" "$tmp/chart.svg"
done
check XAxisIsInSeconds grep -q '>time since the pool started (s)<' "$tmp/chart.svg"
check LeavesNoDraftBehind test "$(ls -A "$tmp" | grep -c '^\.chart')" -eq 0

# Without -o: FILE's extension replaced by .png, the SVG beside it.
mkdir -p "$tmp/default"
cp $trace "$tmp/default/trace.json"
out=$($tool "$tmp/default/trace.json" 2>/dev/null)
check DefaultOutputIsTheTraceAsPng is_png "$tmp/default/trace.png"
check DefaultSvgIsTheTraceAsSvg grep -q '<svg' "$tmp/default/trace.svg"
check DefaultOutputIsSaid grep -q "wrote $tmp/default/trace.png and $tmp/default/trace.svg " <<<"$out"

# -o in a folder that does not exist yet; --title replaces the whole title.
$tool $trace -o "$tmp/new/folder/gantt.png" --title "Chunks 'n' GIL" >/dev/null 2>&1
check OutputGoesWhereAsked is_png "$tmp/new/folder/gantt.png"
check OutputSvgGoesBesideIt grep -q '<svg' "$tmp/new/folder/gantt.svg"
check TitleFlagReplacesTheTitle grep -q ">Chunks 'n' GIL<" "$tmp/new/folder/gantt.svg"
check TitleFlagDropsTheDefault bash -c '! grep -q "gil pool" "$0"' "$tmp/new/folder/gantt.svg"

# Dropped events are said in the title.
sed 's/"dropped_events": 0/"dropped_events": 7/' $trace >"$tmp/dropped.json"
$tool "$tmp/dropped.json" >/dev/null 2>&1
check TitleSaysDroppedEvents grep -q '>slow_series: gil pool, 2 workers (7 events dropped)<' \
  "$tmp/dropped.svg"

# No example in the metadata, a category the tool does not know, an event that is not "X".
small_trace >"$tmp/small.json"
out=$($tool "$tmp/small.json" 2>"$tmp/err")
check UnknownCategoryExitsWith0 test $? -eq 0
check UnknownCategoryIsDrawnAsOther grep -q '>other (custom)<' "$tmp/small.svg"
check TitleWithoutExampleIsBackendAndWorkers grep -q '>process pool, 1 worker<' "$tmp/small.svg"
check CountsOnlyCompleteEvents grep -q '(4 spans, 1 worker)$' <<<"$out"

# Errors: status 1, one line on stderr, no traceback.
$tool "$tmp/missing.json" >/dev/null 2>"$tmp/err"
check MissingFileExitsWith1 test $? -eq 1
check MissingFileIsOneLine one_error_line "$tmp/err" "cannot read .*missing.json: No such file"
echo '{"traceEvents": [' >"$tmp/broken.json"
$tool "$tmp/broken.json" >/dev/null 2>"$tmp/err"
check InvalidJsonExitsWith1 test $? -eq 1
check InvalidJsonIsOneLine one_error_line "$tmp/err" ".*broken.json is not JSON"
echo '{"metadata": {}}' >"$tmp/notrace.json"
$tool "$tmp/notrace.json" >/dev/null 2>"$tmp/err"
check NoTraceEventsExitsWith1 test $? -eq 1
check NoTraceEventsIsOneLine one_error_line "$tmp/err" '.*notrace.json has no "traceEvents" list'
echo '{"traceEvents": [{"ph":"M","name":"thread_name","tid":0,"args":{"name":"pool"}}]}' \
  >"$tmp/empty.json"
$tool "$tmp/empty.json" >/dev/null 2>"$tmp/err"
check NoSpansExitsWith1 test $? -eq 1
check NoSpansIsOneLine one_error_line "$tmp/err" ".*empty.json has no spans to draw"
touch "$tmp/a-file"
$tool $trace -o "$tmp/a-file/chart.png" >/dev/null 2>"$tmp/err"
check UnwritableOutputExitsWith1 test $? -eq 1
check UnwritableOutputIsOneLine one_error_line "$tmp/err" "cannot write .*a-file/chart.png"

# Without gnuplot on PATH.
mkdir -p "$tmp/bin"
ln -sf "$(python3 -c 'import sys; print(sys.executable)')" "$tmp/bin/python3"
PATH="$tmp/bin" $tool $trace -o "$tmp/nognuplot.png" >/dev/null 2>"$tmp/err"
check WithoutGnuplotExitsWith1 test $? -eq 1
check WithoutGnuplotIsOneLine one_error_line "$tmp/err" "gnuplot is not installed"

# Bad flags after FILE, and no FILE at all.
for bad in "" "--bogus" "-o" "--title" "-o chart.svg" "-o $trace" "extra"; do
  $tool ${bad:+$trace $bad} >/dev/null 2>&1
  check "RejectsBadFlags(${bad/$trace/FILE})WithStatus2" test $? -eq 2
done

# Ctrl-C while gnuplot draws (a stand-in that waits): status 130, a one-line note, no draft left.
mkdir -p "$tmp/slow"
cat >"$tmp/slow/gnuplot" <<EOF
#!/bin/sh
[ "\$1" = -e ] && exit 0
echo \$\$ >"$tmp/ready.pid"
mv "$tmp/ready.pid" "$tmp/ready"
exec sleep 30
EOF
chmod +x "$tmp/slow/gnuplot"
set -m
for target in group tool; do
  rm -f "$tmp/ready"
  mkdir -p "$tmp/int-$target"
  PATH="$tmp/slow:$PATH" $tool $trace -o "$tmp/int-$target/chart.png" >/dev/null 2>"$tmp/int.err" &
  pid=$!
  for _ in $(seq 200); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
  if [ $target = group ]; then kill -INT -- -$pid; else kill -INT $pid; fi
  wait $pid
  status=$?
  check "CtrlCOn${target}ExitsWith130" test $status -eq 130
  check "CtrlCOn${target}SaysInterrupted" test "$(cat "$tmp/int.err")" = "timeline: interrupted"
  check "CtrlCOn${target}LeavesNoFile" test -z "$(ls -A "$tmp/int-$target")"
  check "CtrlCOn${target}LeavesNoGnuplot" bash -c '! kill -0 "$(cat "$0")" 2>/dev/null' "$tmp/ready"
done
set +m

finish
