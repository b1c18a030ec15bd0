#!/usr/bin/env bash
# Downstream builds against a fresh install (tools/install, packed by :install_tree, unpacked here
# into a prefix of the test's own). consumers_test.sh MODE, MODE one of:
#   cmake      the installed files, and find_package(pool) under GCC and clang-19 with -Werror
#   pkgconfig  a Makefile with pkg-config, under both compilers with -Werror
#   mpi        find_package(pool COMPONENTS mpi), pool::mpi on 3 MPI ranks
#   sources    the CMake build compiles what Bazel compiles, library by library
# Consumers are copied out of the tree first, so the install is their only source of pool headers.
set -u
mode=$1
SUITE=Consumers_$mode
source tests/junit.sh
here=tests/consumers
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/consumers.XXXXXX")
prefix=$tmp/prefix
mkdir -p "$prefix" "$tmp/src"
tar -xf "$here/pool_install.tar" -C "$prefix"
for part in squares.cc cmake pkgconfig mpi; do
  [ ! -e "$here/$part" ] || cp -rL "$here/$part" "$tmp/src/"
done
strict="-Wall -Wextra -Wpedantic -Werror"
compilers=(g++ clang++-19)
expected="map: 0 1 4 9 16 25 36 49 64 81
map_reduce: sum of squares 0..1000 = 333833500"

# Prints a failed step's output, then its status becomes the check's.
quiet() {
  local output status
  output=$("$@" 2>&1)
  status=$?
  [ "$status" -eq 0 ] || printf '%s\n' "$output" | tail -40
  return "$status"
}
prints_squares() {
  local output
  output=$("$@")
  [ "$output" = "$expected" ] || { printf 'printed:\n%s\n' "$output"; return 1; }
}
have() {  # a tool; without it the cases that need it are skipped, saying so
  command -v "$1" >/dev/null && return 0
  skip "${1}IsInstalled" "$1 is missing (tools/bazel installs it): its consumers did not run"
  return 1
}
# .cc files of a genquery's labels, as paths: //pool/detail/mpi:job.cc -> pool/detail/mpi/job.cc
bazel_sources() { grep '^//pool.*\.cc$' "$1" | sed 's|^//||; s|:|/|' | sort; }

cmake_consumer() {  # compiler, source folder, build folder
  quiet cmake -S "$2" -B "$3" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$1" \
    -DCMAKE_CXX_FLAGS="$strict" -DCMAKE_CXX_EXTENSIONS=OFF \
    -DCMAKE_NO_SYSTEM_FROM_IMPORTED=ON &&  # -I, not -isystem: the headers' warnings must show
    quiet cmake --build "$3" --parallel 2
}

case $mode in
  cmake)
    have cmake || { finish; exit; }
    lib=$prefix/lib
    version=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' \
      "$lib/cmake/pool/poolConfigVersion.cmake")
    check PackageHasAVersion test -n "$version"
    for name in pool pool_mpi; do
      check "${name}IsInstalledStaticAndShared" \
        test -f "$lib/lib$name.a" -a -f "$lib/lib$name.so.$version"
      check "${name}SharedHasTheMajorVersionAsSoname" \
        grep -qx "  SONAME *lib$name.so.${version%%.*}" <<<"$(objdump -p "$lib/lib$name.so")"
    done
    for file in poolConfig.cmake poolConfigVersion.cmake; do
      check "CMakePackageHas($file)" test -f "$lib/cmake/pool/$file"
    done
    check PkgConfigVersionIsThePackageVersion \
      test "$(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --modversion pool)" = "$version"
    check PkgConfigMpiVersionIsThePackageVersion \
      test "$(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --modversion pool-mpi)" = "$version"

    # Headers: every public one (pool/*.h in Bazel's //pool and //pool:mpi_pool), and only what
    # they include, as the compiler finds it in the install alone.
    public=$(cat "$here/bazel_pool_sources" "$here/bazel_mpi_sources" |
      sed -n 's|^//pool:\([^/]*\.h\)$|pool/\1|p' | sort -u)
    installed=$(cd "$prefix/include" && find . -type f | sed 's|^\./||' | sort)
    check EveryPublicHeaderIsInstalled test -z "$(comm -23 <(echo "$public") <(echo "$installed"))"
    probe=$tmp/public_headers.cc
    sed 's|.*|#include "&"|' <<<"$public" >"$probe"
    needed=$( (cd "$prefix/include" && g++ -std=c++20 -MM -MT x -I. "$probe") |
      tr ' \\' '\n\n' | grep '^pool/.*\.h$' | sort -u)
    check PublicHeadersFindWhatTheyIncludeInTheInstall test -n "$needed"
    extra=$(comm -13 <(echo "$needed") <(echo "$installed"))
    [ -z "$extra" ] || echo "installed but not included by a public header: $extra"
    check NothingElseIsInstalled test -z "$extra"

    for compiler in "${compilers[@]}"; do
      have "$compiler" || continue
      build=$tmp/build-cmake-$compiler
      check "FindPackageBuildsWithoutWarnings($compiler)" \
        cmake_consumer "$compiler" "$tmp/src/cmake" "$build"
      check "SharedLibraryRunsMapAndMapReduce($compiler)" prints_squares "$build/squares"
      check "StaticLibraryRunsMapAndMapReduce($compiler)" prints_squares "$build/squares_static"
    done
    ;;
  pkgconfig)
    have pkg-config && have make || { finish; exit; }
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    for compiler in "${compilers[@]}"; do
      have "$compiler" || continue
      check "MakefileBuildsWithoutWarnings($compiler)" \
        quiet make -B -C "$tmp/src/pkgconfig" CXX="$compiler" CXXFLAGS="-O2 $strict"
      check "MakefileProgramRunsMapAndMapReduce($compiler)" \
        prints_squares "$tmp/src/pkgconfig/squares"
    done
    ;;
  mpi)
    have cmake && have mpirun || { finish; exit; }
    for compiler in "${compilers[@]}"; do
      have "$compiler" || continue
      build=$tmp/build-mpi-$compiler
      check "MpiComponentBuildsWithoutWarnings($compiler)" \
        cmake_consumer "$compiler" "$tmp/src/mpi" "$build"
      check "MpiProgramRunsMapAndMapReduceOnThreeRanks($compiler)" \
        prints_squares tests/mpi_run.sh 3 "$build/squares_mpi"
    done
    check PkgConfigMpiLinksBothLibraries grep -q -- '-lpool_mpi -lpool' \
      <<<"$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --libs pool-mpi)"
    ;;
  sources)
    check PoolCompilesWhatBazelCompilesIntoPool test \
      "$(sed -n 's/^pool //p' "$here/cmake_sources.txt" | sort)" = \
      "$(bazel_sources "$here/bazel_pool_sources")"
    check PoolMpiCompilesWhatBazelAddsForMpiPool test \
      "$(sed -n 's/^pool_mpi //p' "$here/cmake_sources.txt" | sort)" = \
      "$(bazel_sources "$here/bazel_mpi_sources")"
    ;;
  *)
    echo "consumers_test.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac
rm -rf "$tmp"
finish
