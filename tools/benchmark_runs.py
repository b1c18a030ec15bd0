"""Runs //bench:pool_benchmark and //bench:peak_memory and reads their results (for tools/bench and
tools/compare_python).

Google Benchmark reports every repetition; runs() keys them by benchmark name without the
suffixes the library adds (iterations:1, real_time, manual_time), so slow_series/fork_pipe/ncores:2
names one benchmark, and median() takes the median over its repetitions.
"""

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SUFFIX = re.compile(r"/(iterations:\d+|repeats:\d+|real_time|manual_time|process_time)")
SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


class Failure(Exception):
    """A build or a run failed; the message says which command and why."""


def positive_int(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got '{text}'")
    return value


def rate(value):
    """A per-second figure with k, M or G: '32.3 M/s'."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.1f} {unit}/s"
    return f"{value:.0f} /s"


def power_of_ten(n):
    """10^7 for 10000000; other numbers as they are."""
    text = f"{n:.0e}".replace("e+0", "e").replace("e+", "e")
    return text.replace("1e", "10^") if text.startswith("1e") else str(n)


def exit_with(program, main, argv):
    """Runs main(argv) and exits with its status: 1 on a Failure, 130 on Ctrl-C."""
    try:
        sys.exit(main(argv))
    except Failure as failure:
        say(program, f"error: {failure}")
        sys.exit(1)
    except KeyboardInterrupt:
        say(program, "interrupted")
        sys.exit(130)


def say(program, line):
    print(f"{program}: {line}", file=sys.stderr, flush=True)


def run(command, program):
    """Runs command, stderr passed through (Google Benchmark's progress); returns its stdout.
    Ctrl-C gives the child time to reap its workers, then propagates."""
    process = subprocess.Popen([str(part) for part in command], stdout=subprocess.PIPE, text=True)
    try:
        stdout, _ = process.communicate()
    except KeyboardInterrupt:
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        raise
    if process.returncode in (130, -signal.SIGINT):
        raise KeyboardInterrupt
    if process.returncode != 0:
        raise Failure(f"{' '.join(map(str, command))} exited with status {process.returncode}")
    return stdout


def build(program, targets):
    """Builds the //bench targets optimized; returns the folder holding them."""
    say(program, "building " + " ".join(targets))
    status = subprocess.call([str(REPOSITORY / "tools" / "bazel"), "build", "-c", "opt", *targets],
                             stdout=sys.stderr)
    if status != 0:
        raise Failure(f"tools/bazel build -c opt {' '.join(targets)} exited with status {status}")
    return REPOSITORY / "bazel-bin" / "bench"


def runs(binary, arguments, program):
    """Runs pool_benchmark with JSON output; returns {name: [run, ...]}, each run a dict with
    seconds (per iteration), items_per_second and bytes_per_second where set."""
    stdout = run([binary, "--benchmark_format=json", *arguments], program)
    try:
        report = json.loads(stdout)
    except ValueError:
        raise Failure(f"{binary} printed no JSON report") from None
    found = {}
    for entry in report.get("benchmarks", []):
        if entry.get("run_type", "iteration") != "iteration":
            continue
        if entry.get("error_occurred"):
            raise Failure(f"{entry['name']}: {entry.get('error_message', 'failed')}")
        name = SUFFIX.sub("", entry["run_name"] if "run_name" in entry else entry["name"])
        found.setdefault(name, []).append({
            "seconds": entry["real_time"] * SECONDS_PER_UNIT[entry.get("time_unit", "ns")],
            "items_per_second": entry.get("items_per_second"),
            "bytes_per_second": entry.get("bytes_per_second"),
        })
    return found


def median(found, name, field="seconds"):
    """The median of one field over a benchmark's repetitions."""
    if name not in found:
        raise Failure(f"the benchmark report has no {name}")
    values = [run[field] for run in found[name] if run[field] is not None]
    if not values:
        raise Failure(f"{name} reported no {field}")
    return statistics.median(values)


def peak_memory(binary, workload, n, program):
    """One run of peak_memory in a fresh process; returns its JSON record."""
    stdout = run([binary, workload, str(n)], program)
    for line in reversed(stdout.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise Failure(f"{binary} {workload} {n} printed no JSON line")
