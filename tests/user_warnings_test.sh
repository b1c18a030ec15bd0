#!/usr/bin/env bash
# A user's strict build: tests/user_warnings.cc (pool/pool.h and the common calls) compiled with
# -Wall -Wextra -Wpedantic -Werror, optimized (GCC's flow warnings need it), by GCC and by
# Debian's clang-19, each on its own.
set -u
SUITE=UserWarnings
source tests/junit.sh

flags=(-std=c++20 -O2 -c -o /dev/null -Wall -Wextra -Wpedantic -Werror -I. tests/user_warnings.cc)
for compiler in g++ clang++-19; do
  if ! command -v "$compiler" >/dev/null; then
    check "${compiler}IsInstalled" false
    continue
  fi
  output=$("$compiler" "${flags[@]}" 2>&1)
  status=$?
  [ "$status" -eq 0 ] || printf '%s\n' "$output" | head -40
  check "PoolHeadersCompileWithoutWarningsUnder(${compiler})" test "$status" -eq 0
done
finish
