#!/usr/bin/env bash
# The README's cluster commands on a real Slurm (tools/vcluster: 3 nodes of network namespaces):
# srun sizes the pool to the CPUs Slurm gives and binds tasks; sbatch with srun --mpi=pmix and
# mpirun inside salloc run MpiPool across two nodes with the one-node sums to the last bit; scancel
# and a time limit end a pool's job leaving no process on any node and nothing in /dev/shm; a
# trace across two nodes whose CLOCK_MONOTONICs differ by 1000 s shows every rank's chunks where
# they ran on rank 0's clock.
# Skipped, with the reason, where the machine cannot make namespaces or lacks Slurm.
set -u
SUITE=VirtualCluster
source tests/junit.sh
vcluster=$PWD/tools/vcluster
bin=$PWD/examples

cases=(SrunOneCpuSizesThePoolToOne SrunTwoCpusSizesThePoolToTwo SrunBindsEachTaskToItsOwnCpu
  SbatchPmixRunsTwoNodesTimesTwoRanks SbatchPmixSumEqualsOneNode SallocMpirunRunsOnTwoNodes
  SallocMpirunSumEqualsOneNode NodeTwoClockIsThousandSecondsBehind TraceAcrossSkewedNodesWritesEveryRank
  TraceKeepsSkewedRanksSpansWhole TraceOrdersSkewedRanksAfterRankZeroStarted
  TraceAlignsSkewedRanksWithRankZeroNode ScancelEndsTheJob ScancelPrintsWhatWasLost ScancelLeavesNoProcessOnAnyNode
  ScancelLeavesNothingInDevShm LinkCutReallyCutsNodeTwo LinkCutForSecondsIsSurvived LostNodeEndsTheJobWithAFailure
  LostNodeEndsTheJobWithinTwoMinutes LostNodeReportNamesTheSilentRank LostNodeReportListsTheLostChunks
  TimeLimitEndsTheJob TimeLimitLeavesNoProcessOnAnyNode
  DownLeavesNothing)
skip_all() {
  for name in "${cases[@]}"; do skip "$name" "$1"; done
  finish
  exit
}
[ "$(id -u)" -eq 0 ] || skip_all "needs root to make network namespaces and start Slurm"
for command in slurmctld slurmd munged srun ip unshare nsenter; do
  command -v "$command" >/dev/null || [ -x "/usr/sbin/$command" ] ||
    skip_all "$command is missing (tools/bazel installs slurm-wlm, munge, iproute2)"
done
unshare --net --uts true 2>/dev/null || skip_all "this machine cannot make network namespaces"
unshare --time --monotonic 1 true 2>/dev/null || skip_all "this machine cannot make time namespaces (Linux >= 5.6)"
[ ! -e /run/netns/node1 ] || skip_all "a cluster (node1) is already up; tools/vcluster down first"

# Each node has its own /tmp: job scripts and outputs go where every node sees them.
tmp=${TEST_TMPDIR:-$PWD}
trap '"$vcluster" down >/dev/null' EXIT
started=$(date +%s.%N)
"$vcluster" up 3 --cpus 2 --monotonic node1=1000 || skip_all "tools/vcluster up failed (see above)"
echo "cluster up in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
on() { "$vcluster" run node1 "$@"; }
value() { python3 -c 'import json, sys; print(repr(json.loads(sys.stdin.read())["value"]))'; }
field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }
# Nothing of job $1 on any node (its slurmstepd, its script and what they started) and no zombie
# at all. Only that job's: another case's job may still run on another node.
job_processes() {
  local pid stat comm
  while read -r pid stat comm; do
    if [ "$stat" = Z ] || grep -q "\[$1\." "/proc/$pid/cmdline" 2>/dev/null ||
      tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$1"; then
      echo "$pid $stat $comm"
    fi
  done < <("$vcluster" ps)
}
no_process_left() {
  local left i
  for i in $(seq 50); do
    left=$(job_processes "$1")
    [ -z "$left" ] && return 0
    sleep 0.2
  done
  echo "left of job $1 on the nodes: $left"
  return 1
}
job_state() { on scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
wait_state() {  # job, state, seconds
  local i
  for i in $(seq $(($3 * 5))); do
    [ "$(job_state "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  echo "job $1 is $(job_state "$1"), not $2"
  return 1
}

# A time limit of one minute fires within the controller's 30 s check after it: started first,
# it runs on node3 while the other cases run.
limit_job=$(on sbatch --parsable -w node3 --time=1 -c 2 -o "$tmp/limit.out" \
  --wrap "$bin/sleep_map --tasks 1000 --seconds 1 --ncores 2")
limit_started=$(date +%s)

one=$(on srun -c 1 "$bin/slow_series" --n 1000000 --json)
check SrunOneCpuSizesThePoolToOne test "$(field ncores <<<"$one")" = 1
two=$(on srun -c 2 "$bin/slow_series" --n 1000000 --json)
check SrunTwoCpusSizesThePoolToTwo test "$(field ncores <<<"$two")" = 2
# Two tasks of one CPU on one node: Slurm binds each to a different CPU, and the pool in each
# sizes itself to that one CPU.
bound=$(on srun -w node2 -n 2 -c 1 --cpu-bind=cores sh -c \
  'echo $(grep Cpus_allowed_list /proc/self/status | cut -f2) $('"$bin"'/slow_series --n 100000 --json)')
echo "$bound"
check SrunBindsEachTaskToItsOwnCpu python3 -c '
import json, sys
lines = sys.argv[1].splitlines()
cpus = [l.split(" ", 1)[0] for l in lines]
assert len(lines) == 2 and sorted(cpus) == ["0", "1"], lines
assert all(json.loads(l.split(" ", 1)[1])["ncores"] == 1 for l in lines), lines' "$bound"

# Three worker ranks over two nodes: the same partition as three worker processes on one.
local_sum=$("$bin/slow_series" --n 1000000 --ncores 3 --json | value)
cat >"$tmp/pmix.sh" <<EOF
#!/bin/sh
#SBATCH -N 2 --ntasks-per-node=2
srun hostname | sort | uniq -c | tr -s ' ' >&2
srun --mpi=pmix --kill-on-bad-exit=1 $bin/slow_series --n 1000000 --backend mpi --json
EOF
on sbatch --wait -o "$tmp/pmix.out" -e "$tmp/pmix.err" "$tmp/pmix.sh" >/dev/null
cat "$tmp/pmix.out" "$tmp/pmix.err"
check SbatchPmixRunsTwoNodesTimesTwoRanks test "$(cat "$tmp/pmix.err")" = "$(printf ' 2 node1\n 2 node2')"
check SbatchPmixSumEqualsOneNode test "$(value <"$tmp/pmix.out")" = "$local_sum"

mpirun=(mpirun --allow-run-as-root --mca btl tcp,self,vader)
hosts=$(on salloc -N 2 --ntasks-per-node=2 "${mpirun[@]}" hostname 2>/dev/null | sort | uniq -c | tr -s ' ')
check SallocMpirunRunsOnTwoNodes test "$hosts" = "$(printf ' 2 node1\n 2 node2')"
sum=$(on salloc -N 2 --ntasks-per-node=2 "${mpirun[@]}" "$bin/slow_series" --n 1000000 --backend mpi \
  --json 2>/dev/null)
echo "$sum"
check SallocMpirunSumEqualsOneNode test "$(value <<<"$sum")" = "$local_sum"

# Tracing across nodes: node1 booted "1000 s earlier" (its own time namespace), so the ranks on
# node2 (2 and 3; rows 2 and 3) time their chunks 1000 s behind rank 0. Rank 0 measures each rank's
# offset when the pool starts and shifts its spans; uncorrected, they would fall before the pool
# started and be clamped to zero length at its start. Rank 1 (row 1) shares rank 0's node and clock:
# the tasks all sleep 0.3 s and are handed out as workers free up, so the ranks run in waves, and
# each of node2's chunks must overlap one of rank 1's by at least half a task.
skew=$("$vcluster" run node2 python3 -c 'import time; print(time.monotonic())')
skew=$(awk -v a="$skew" -v b="$(on python3 -c 'import time; print(time.monotonic())')" 'BEGIN { print a - b }')
echo "node2's CLOCK_MONOTONIC - node1's: $skew s"
check NodeTwoClockIsThousandSecondsBehind awk -v d="$skew" 'BEGIN { exit !(d > -1005 && d < -995) }'
on salloc -w node1,node2 -N 2 --ntasks-per-node=2 "${mpirun[@]}" "$bin/sleep_map" --tasks 9 \
  --seconds 0.3 --backend mpi --trace "$tmp/skew.json" >/dev/null 2>&1
check TraceAcrossSkewedNodesWritesEveryRank python3 -c '
import json, sys
spans = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
assert {e["tid"] for e in spans if e["cat"] == "run"} == {1, 2, 3}, spans' "$tmp/skew.json"
skewed_runs() {  # the check in $1, given rank 1's and node2's run spans (ts, dur in us)
  python3 -c '
import json, sys
document = json.load(open(sys.argv[1]))
spans = [e for e in document["traceEvents"] if e["ph"] == "X"]
ready = max(e["ts"] + e["dur"] for e in spans if e["tid"] == 0 and e["cat"] == "startup")
task = 0.3e6
near = [e for e in spans if e["tid"] == 1 and e["cat"] == "run"]
far = [e for e in spans if e["tid"] in (2, 3) and e["cat"] == "run"]
def overlap(a, b):
    return min(a["ts"] + a["dur"], b["ts"] + b["dur"]) - max(a["ts"], b["ts"])
assert far
exec(sys.argv[2])' "$tmp/skew.json" "$1"
}
skewed_runs 'for e in far: print("row %d chunk %d at %.1f ms for %.1f ms; rank 1 at %.1f ms" % (e["tid"],
  e["args"]["chunk"], e["ts"] / 1e3, e["dur"] / 1e3, max(near, key=lambda n: overlap(n, e))["ts"] / 1e3))'
check TraceKeepsSkewedRanksSpansWhole skewed_runs 'assert all(e["dur"] >= 0.9 * task for e in far)'
check TraceOrdersSkewedRanksAfterRankZeroStarted skewed_runs 'assert all(e["ts"] >= ready for e in far)'
check TraceAlignsSkewedRanksWithRankZeroNode skewed_runs \
  'assert all(max(overlap(n, e) for n in near) >= task / 2 for e in far)'

# scancel: Slurm sends SIGTERM, then SIGKILL after KillWait (5 s) to every process of the job; the
# pool, waited on, stops its workers and the example says the call's work was lost.
job=$(on sbatch --parsable -w node2 -c 2 -o "$tmp/cancel.out" \
  --wrap "$bin/sleep_map --tasks 1000 --seconds 1 --ncores 2")
wait_state "$job" RUNNING 20 && sleep 1
on scancel "$job"
check ScancelEndsTheJob wait_state "$job" CANCELLED 20
check ScancelPrintsWhatWasLost grep -q "sleep_map: interrupted by Terminated; the workers were stopped and the call's work was lost" "$tmp/cancel.out"
check ScancelLeavesNoProcessOnAnyNode no_process_left "$job"
check ScancelLeavesNothingInDevShm test -z "$(ls -A /run/vcluster/shm/node2)"

# node2's link down for 3 s mid-job, then up: TCP retransmits, and the job ends with the sum it
# would have had.
expected=$("$bin/sleep_map" --tasks 24 --seconds 0.5 --ncores 3 --json | value)
on salloc -N 2 --ntasks-per-node=2 "${mpirun[@]}" "$bin/sleep_map" --tasks 24 --seconds 0.5 \
  --backend mpi --json >"$tmp/cut.out" 2>"$tmp/cut.err" &
salloc_pid=$!
for i in $(seq 100); do  # until the four ranks run
  [ "$("$vcluster" ps | grep -c sleep_map)" -ge 4 ] && break
  sleep 0.2
done
ip -n vcluster-switch link set v2 down
node2_reachable() { "$vcluster" run node1 timeout 1 bash -c '</dev/tcp/10.77.0.2/6818' 2>/dev/null; }
check LinkCutReallyCutsNodeTwo eval '! node2_reachable'
sleep 3
ip -n vcluster-switch link set v2 up
wait "$salloc_pid"
cut_status=$?
cat "$tmp/cut.out"
check LinkCutForSecondsIsSurvived test "$cut_status:$(value <"$tmp/cut.out")" = "0:$expected"

# node2 lost for good: its link cut, then its processes killed (no reset reaches node1). Rank 0's
# task_timeout (5 s) reports the lost chunks and aborts; mpirun then waits for node2's daemon
# until Slurm declares the node failed (SlurmdTimeout), not until TCP gives up (minutes).
lost_started=$(date +%s)
on salloc -N 2 --ntasks-per-node=2 "${mpirun[@]}" "$bin/sleep_map" --tasks 200 --seconds 0.5 \
  --backend mpi --task-timeout 5 >"$tmp/lost.out" 2>"$tmp/lost.err" &
salloc_pid=$!
for i in $(seq 100); do
  [ "$("$vcluster" ps | grep -c sleep_map)" -ge 4 ] && break
  sleep 0.2
done
sleep 1
ip -n vcluster-switch link set v2 down
for pid in $(ip netns pids node2); do
  case $(cat "/proc/$pid/comm" 2>/dev/null) in sleep_map | orted) kill -9 "$pid" ;; esac
done
wait "$salloc_pid"
lost_status=$?
lost_seconds=$(($(date +%s) - lost_started))
ip -n vcluster-switch link set v2 up
grep '^pool::MpiPool' "$tmp/lost.err"
echo "the job ended after $lost_seconds s"
check LostNodeEndsTheJobWithAFailure test "$lost_status" -ne 0
check LostNodeEndsTheJobWithinTwoMinutes test "$lost_seconds" -lt 120
check LostNodeReportNamesTheSilentRank grep -qE 'pool::MpiPool: rank [23] answered nothing for 5 s \(task_timeout\) while running map items' "$tmp/lost.err"
check LostNodeReportListsTheLostChunks grep -qE 'pool::MpiPool: lost: .* on rank [23]' "$tmp/lost.err"

check TimeLimitEndsTheJob wait_state "$limit_job" TIMEOUT $((limit_started + 150 - $(date +%s)))
cat "$tmp/limit.out"
check TimeLimitLeavesNoProcessOnAnyNode no_process_left "$limit_job"

started=$(date +%s.%N)
"$vcluster" down
echo "cluster down in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
trap - EXIT
check DownLeavesNothing test -z "$(ip netns list; ls -d /run/vcluster 2>/dev/null;
  for daemon in slurmctld slurmd slurmstepd munged; do pgrep -x "$daemon"; done)"
finish
