#!/usr/bin/env bash
# Runs a program on NP ranks of a local MPI job, as the MPI tests need on any machine:
# mpi_run.sh NP PROGRAM [ARGS...]. More ranks than cores (--oversubscribe) and, as root,
# --allow-run-as-root; a hung job is killed after MPI_RUN_TIMEOUT seconds (default 240).
set -euo pipefail
np=$1
shift
flags=(-np "$np" --oversubscribe)
if [[ $(id -u) -eq 0 ]]; then flags+=(--allow-run-as-root); fi
# When a rank dies, mpirun sends SIGTERM to the others and SIGKILL after this many seconds (Open
# MPI's default: 1). On a loaded 2-core machine rank 0 sometimes got no CPU within that second to
# report the lost chunks; the tests check that report, so they give it 5.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-5}
# Session directories go to the test's own temporary directory.
export TMPDIR=${TEST_TMPDIR:-${TMPDIR:-/tmp}}
exec timeout -k 5 "${MPI_RUN_TIMEOUT:-240}" mpirun "${flags[@]}" "$@"
