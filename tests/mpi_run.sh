#!/usr/bin/env bash
# Runs a program on NP ranks of a local MPI job, as the MPI tests need on any machine:
# mpi_run.sh NP PROGRAM [ARGS...]. More ranks than cores (--oversubscribe) and, as root,
# --allow-run-as-root; a hung job is killed after MPI_RUN_TIMEOUT seconds (default 240).
set -euo pipefail
np=$1
shift
flags=(-np "$np" --oversubscribe)
if [[ $(id -u) -eq 0 ]]; then flags+=(--allow-run-as-root); fi
# Session directories go to the test's own temporary directory.
export TMPDIR=${TEST_TMPDIR:-${TMPDIR:-/tmp}}
exec timeout -k 5 "${MPI_RUN_TIMEOUT:-240}" mpirun "${flags[@]}" "$@"
