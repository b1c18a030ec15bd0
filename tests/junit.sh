# Sourced by shell tests: check NAME COMMAND... runs one test case, skip NAME WHY records one
# skipped, and finish writes the JUnit XML
# that Bazel reads from $XML_OUTPUT_FILE and returns the test's exit status.
# Set SUITE before sourcing; it names the suite and the cases' class.
failures=0
cases=""

check() {  # name, command...
  local name=$1
  shift
  if "$@"; then
    echo "[       OK ] $name"
    cases+="<testcase name=\"$name\" classname=\"$SUITE\"/>"
  else
    echo "[  FAILED  ] $name"
    failures=$((failures + 1))
    cases+="<testcase name=\"$name\" classname=\"$SUITE\"><failure message=\"failed\"/></testcase>"
  fi
}

skip() {  # name, why
  echo "[ SKIPPED  ] $1: $2"
  cases+="<testcase name=\"$1\" classname=\"$SUITE\"><skipped message=\"$2\"/></testcase>"
}

finish() {
  if [ -n "${XML_OUTPUT_FILE:-}" ]; then
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="%s">%s</testsuite></testsuites>\n' \
      "$SUITE" "$cases" >"$XML_OUTPUT_FILE"
  fi
  echo "$failures failed"
  [ "$failures" -eq 0 ]
}
