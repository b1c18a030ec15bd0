"""The benchmark workloads on Python's multiprocessing.Pool, as the course writes them; prints one
JSON object of medians. Run by tools/compare_python under Debian's /usr/bin/python3:

  python3 tools/python_pool_workloads.py --workers 2 --n 10000000 --single-items 100000
      --chunked-items 1000000 --sleep 1.0 --repetitions 3

Each workload is timed the way //bench:pool_benchmark times ours: the slow series, the start-up
and the sleep map include creating and closing the pool; dispatch maps over one pool made before.
"""

import argparse
import json
import multiprocessing
import statistics
import time


def contains_nine(k):
    while k > 0:
        if k % 10 == 9:
            return True
        k //= 10
    return False


def partial_sum(interval):
    first, last = interval
    total = 0.0
    for k in range(first, last + 1):
        if not contains_nine(k):
            total += 1.0 / k
    return total


def partition(n, parts):
    size = n // parts
    intervals = [(i * size + 1, (i + 1) * size) for i in range(parts)]
    intervals[-1] = (intervals[-1][0], n)
    return intervals


def square(x):
    return x * x


def nap(seconds):
    time.sleep(seconds)
    return 1


def timed(function, repetitions):
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def slow_series(workers, n):
    with multiprocessing.Pool(workers) as pool:
        total = sum(pool.map(partial_sum, partition(n, workers)))
        pool.close()
        pool.join()
    return total


def startup(workers, method=None):
    context = multiprocessing.get_context(method)
    with context.Pool(workers) as pool:
        pool.map(square, range(10))
        pool.close()
        pool.join()


def first_map(workers, n):
    """The first map on a fresh pool; only the map is timed."""
    with multiprocessing.Pool(workers) as pool:
        start = time.perf_counter()
        pool.map(square, range(n))
        seconds = time.perf_counter() - start
        pool.close()
        pool.join()
    return seconds


def sleep_map(seconds):
    with multiprocessing.Pool(4) as pool:
        pool.map(nap, [seconds] * 10)
        pool.close()
        pool.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--single-items", type=int, default=100_000)
    parser.add_argument("--chunked-items", type=int, default=1_000_000)
    parser.add_argument("--cold-items", type=str, default="1000000,10000000")
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    reps = args.repetitions
    result = {"python": multiprocessing.sys.version.split()[0], "workers": args.workers}
    result["slow_series_seconds"] = timed(lambda: slow_series(args.workers, args.n), reps)
    with multiprocessing.Pool(args.workers) as pool:
        pool.map(square, range(100))  # the workers are up before the clock starts
        single = timed(lambda: pool.map(square, range(args.single_items), chunksize=1), reps)
        chunked = timed(lambda: pool.map(square, range(args.chunked_items)), reps)
    result["single_items_per_second"] = args.single_items / single
    result["chunked_items_per_second"] = args.chunked_items / chunked
    result["startup_seconds"] = timed(lambda: startup(args.workers), max(reps, 10))
    # Python's other start methods; the forkserver is started by a first pool, off the clock.
    startup(args.workers, "forkserver")
    result["startup_seconds_by_method"] = {
        method: timed(lambda: startup(args.workers, method), max(reps, 5))
        for method in ("spawn", "forkserver")}
    result["first_map_seconds"] = {
        n: statistics.median(first_map(args.workers, int(n)) for _ in range(reps))
        for n in args.cold_items.split(",")}
    result["sleep_map_seconds"] = timed(lambda: sleep_map(args.sleep), 1 if args.sleep >= 0.5 else reps)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
