#!/usr/bin/env bash
# --trace FILE and --stats on every example and pool backend: the file is a Chrome trace with one
# row per worker that tools/timeline draws, the statistics add up to workers x wall time, and the
# flags' misuse is a one-line error with status 2.
set -u
SUITE=ExamplesTrace
source tests/junit.sh
tmp=${TEST_TMPDIR:-/tmp}

# Checks a trace file: complete events only in the five categories, tids 0..workers, a run span
# for every task, metadata naming the example, backend and workers.
valid_trace() {  # file, example, backend, workers
  python3 - "$@" <<'EOF'
import json, sys
path, example, backend, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
document = json.load(open(path))
spans = [e for e in document["traceEvents"] if e["ph"] == "X"]
assert spans, "no spans"
assert all(e["cat"] in ("run", "gil_wait", "overhead", "startup", "shutdown") for e in spans)
assert all(e["ts"] >= 0 and e["dur"] >= 0 for e in spans)
assert {e["tid"] for e in spans} == set(range(workers + 1)), {e["tid"] for e in spans}
assert any(e["cat"] == "run" for e in spans)
meta = document["metadata"]
assert (meta["example"], meta["backend"], meta["workers"]) == (example, backend, workers), meta
EOF
}

# Checks a --json --stats line: the parts of workers x wall add up within 1%.
stats_add_up() {  # json line, workers
  python3 - "$@" <<'EOF'
import json, sys
line, workers = json.loads(sys.argv[1]), int(sys.argv[2])
s = line["stats"]
parts = s["run"] + s["startup"] + s["overhead"] + s["gil_wait"] + s["idle"] + s["shutdown"]
capacity = workers * s["wall"]
assert abs(parts - capacity) <= 0.01 * capacity, (parts, capacity)
assert len(s["workers"]) == workers
assert abs(s["efficiency"] - s["run"] / capacity) < 1e-9
assert 0 <= s["idle_at_end"] <= s["idle"] + 1e-12
EOF
}

runs() {  # example, flags...
  local example=$1
  shift
  for backend in process gil free; do
    local file="$tmp/$example-$backend.json"
    rm -f "$file"
    out=$(examples/$example --ncores 2 --backend "$backend" "$@" --trace "$file" --stats 2>"$tmp/err")
    status=$?
    check "${example}On${backend}WithTraceAndStatsExits0" test "$status" -eq 0
    check "${example}On${backend}WritesAValidTrace" valid_trace "$file" "$example" "$backend" 2
    check "${example}On${backend}SaysWhereTheTraceIs" grep -q "wrote the trace to $file" "$tmp/err"
    check "${example}On${backend}PrintsTheStatsAfterTheResult" \
      bash -c 'grep -q "^Time in seconds" <<<"$0" && grep -q "^Pool: '"$backend"', 2 workers" <<<"$0" && grep -q "imbalance" <<<"$0"' "$out"
    line=$(examples/$example --ncores 2 --backend "$backend" "$@" --json --stats)
    check "${example}On${backend}JsonStatsAddUp" stats_add_up "$line" 2
  done
}
runs slow_series --n 2000000
runs sleep_map --tasks 4 --seconds 0.02
runs trig_series --n 100000
runs velocity --nlat 6 --nlon 8 --nr 5
runs elementwise --n 10000 --chunk 3000

# The course's picture: on the GIL pool run spans never overlap; on processes both rows run at once.
examples/slow_series --ncores 2 --backend gil --n 20000000 --trace "$tmp/gil.json" 2>/dev/null
examples/slow_series --ncores 2 --backend process --n 20000000 --trace "$tmp/process.json" 2>/dev/null
overlap() {  # file; true when run spans of different workers overlap
  python3 - "$1" <<'EOF'
import json, sys
runs = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e.get("cat") == "run"]
sys.exit(0 if any(a["tid"] != b["tid"] and a["ts"] < b["ts"] + b["dur"] and b["ts"] < a["ts"] + a["dur"]
                  for a in runs for b in runs) else 1)
EOF
}
export -f overlap
check GilRunSpansNeverOverlap bash -c '! overlap "$0"' "$tmp/gil.json"
check ProcessRunSpansOverlap overlap "$tmp/process.json"

# tools/timeline draws what an example wrote.
out=$(tools/timeline "$tmp/gil.json" -o "$tmp/gil.png")
check TimelineDrawsAnExamplesTrace test -s "$tmp/gil.png" -a -s "$tmp/gil.svg"
check TimelineNamesTheExample grep -q "slow_series: gil pool, 2 workers" "$tmp/gil.svg"

# Misuse: one line, status 2.
rejects() {  # name, flags...
  local name=$1
  shift
  err=$(examples/slow_series --n 1000 "$@" 2>&1 >/dev/null)
  status=$?
  check "${name}ExitsWith2" test "$status" -eq 2
  check "${name}SaysItInOneLine" test "$(wc -l <<<"$err")" -eq 1
}
rejects TraceOnSerial --backend serial --trace "$tmp/serial.json"
rejects StatsOnSerial --backend serial --stats
rejects TraceToAMissingFolder --trace /nonexistent-folder/trace.json
rejects TraceWithoutAFile --trace
check TraceToAMissingFolderNamesIt bash -c \
  'examples/slow_series --n 1000 --trace /nonexistent-folder/t.json 2>&1 | grep -q "/nonexistent-folder/t.json"'

finish
