#!/usr/bin/env bash
# Sanitizer run: build the extension with AddressSanitizer + UndefinedBehaviorSanitizer (the CMake
# option WNSENSE_SANITIZE=ON: -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g) into a
# separate virtual environment and run the test suite against that build.
#
# The editable install of the calling Python is not touched: the sanitized build has its own
# build directory ($WNSAN_VENV/build, not ./build) and is installed into the venv only; the venv
# does not see the calling Python's site-packages, so `import wnsense_native` resolves to the
# sanitized copy (the script checks this before running pytest).
#
# Build type Debug: no -DNDEBUG, so Eigen's own bounds and size assertions are live as well.
# Runtime: libasan is preloaded into the (uninstrumented) interpreter; leak detection is off
# (CPython keeps objects alive until exit by design); the first UBSan report aborts the run with
# a stack trace. WNSENSE_SANITIZER=1 tells tests/test_reliability.py that the resident-set bounds
# do not apply (ASan's quarantine holds freed memory); its allocation-count and tracemalloc checks
# still run.
#
# Usage:   tests/sanitize.sh [pytest arguments]      (default: the whole suite, as in CI)
#          e.g. tests/sanitize.sh -x tests/test_stiefel.py
# Env:     WNSAN_VENV   venv location (default /tmp/wnsan)
#          WNSAN_REBUILD=0  reuse the venv's existing sanitized build
#          PYTHON       interpreter that creates the venv (default: python3)
#          WNSAN_OPTIONAL=1  exit 0 (run skipped) when the compiler has no libasan (CI)
# Exit status: pytest's (non-zero on any failure or sanitizer report).
# Measured (2 cores): build ~2.5 min, test suite ~3 min under the sanitizers.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${WNSAN_VENV:-/tmp/wnsan}
PY=${PYTHON:-python3}

# libasan first; libstdc++ right after it, so that ASan finds the real __cxa_throw when it
# initializes (python itself does not load libstdc++: without it the first C++ exception thrown
# by the extension dies in "CHECK failed: ... real___cxa_throw != 0").
LIBASAN=$(gcc -print-file-name=libasan.so)
LIBSTDCXX=$(gcc -print-file-name=libstdc++.so)
for lib in "$LIBASAN" "$LIBSTDCXX"; do
  if [[ "$lib" != /* || ! -e "$lib" ]]; then
    echo "sanitize.sh: $lib not found (gcc -print-file-name)" >&2
    if [[ "${WNSAN_OPTIONAL:-0}" == 1 ]]; then
      echo "sanitize.sh: sanitizer run skipped" >&2
      exit 0
    fi
    exit 2
  fi
done

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "== creating $VENV"
  "$PY" -m venv "$VENV"
fi

if [[ "${WNSAN_REBUILD:-1}" != 0 || ! -d "$VENV/build" ]]; then
  echo "== building the sanitized extension (build dir $VENV/build)"
  start=$(date +%s)
  # the project with its test extras (numpy, pytest, hypothesis, ...), as CI installs it; the
  # -C settings apply to the project's own build only (a local directory is always rebuilt)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -C cmake.define.WNSENSE_SANITIZE=ON \
    -C cmake.build-type=Debug \
    -C build-dir="$VENV/build" \
    "$ROOT[test]"
  echo "== build: $(( $(date +%s) - start )) s"
fi

export LD_PRELOAD="$LIBASAN:$LIBSTDCXX${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export WNSENSE_SANITIZER=1

# From the repository root (relative test paths work): the package lives under python/, not
# ./wnsense_native, and the venv does not see the calling Python's editable install, so the
# import resolves to the sanitized copy in the venv (checked here).
cd "$ROOT"
"$VENV/bin/python" - "$VENV" <<'EOF'
import sys
import wnsense_native as wn
where = wn._core.__file__
print("== testing", where)
if not where.startswith(sys.argv[1]):
    sys.exit(f"sanitize.sh: imported {where}, not the sanitized build in {sys.argv[1]}")
EOF

echo "== pytest (ASan + UBSan)"
start=$(date +%s)
status=0
# --capture=sys: pytest must not redirect file descriptor 2, or a sanitizer report written by
# a dying process would vanish with pytest's capture file
"$VENV/bin/python" -m pytest -p no:cacheprovider --capture=sys "$@" || status=$?
echo "== tests: $(( $(date +%s) - start )) s, exit status $status"
exit $status
