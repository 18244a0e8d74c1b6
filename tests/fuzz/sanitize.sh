#!/usr/bin/env bash
# Build the Cython kernels with AddressSanitizer + UndefinedBehaviorSanitizer in a COPY of
# the tree (the in-place .so files of the working tree are left alone), then run the codec
# tests, the fuzz seed corpus and (optionally) a short fuzz run against them.
#
#   bash tests/fuzz/sanitize.sh                 # build + codec tests + corpus replay
#   SANITIZE_QUICK=1 bash tests/fuzz/sanitize.sh  # build + adversarial/memory/fuzz-corpus tests (CI)
#   FUZZ_SECONDS=60 bash tests/fuzz/sanitize.sh # ... + every harness, 60 s in all, under ASan
#
# Environment: PYTHON (default: python3; needs the test dependencies installed),
# SANITIZE_DIR (default: /tmp/fastingest-sanitize), PYTEST_ARGS (extra pytest arguments).
# Needs gcc (the ASan/UBSan runtimes come with it). A Python host is not instrumented,
# so libasan must be preloaded: the exact command it runs is
#
#   LD_PRELOAD=$(gcc -print-file-name=libasan.so) PYTHONMALLOC=malloc \
#   ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
#   UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
#   python -m pytest tests/unit ...
#
# PYTHONMALLOC=malloc routes Python's own allocations through ASan too, so an overrun
# of a bytes object's buffer is caught; leak detection is off because CPython keeps
# interned objects alive at exit on purpose. Exit status 0 and no "ERROR: AddressSanitizer"
# / "runtime error:" line in the log is the pass condition.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${SANITIZE_DIR:-/tmp/fastingest-sanitize}
PY=${PYTHON:-python3}
LOG="$DEST.log"

rm -rf "$DEST"
mkdir -p "$DEST"
# tracked and new (not ignored) files: no .so/.c of the working tree
(cd "$SRC" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$DEST")
cd "$DEST"
# The build needs pyproject's build requirements in this interpreter (setup.py runs here,
# not in pip's isolated build environment): Cython, and a setuptools that reads the SPDX
# license expression (77 or newer; a fresh venv of Python 3.11 has 65).
"$PY" -c "import Cython, setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" \
    2>/dev/null || "$PY" -m pip install -q "Cython>=3.0" "setuptools>=77"
echo "== building the sanitized kernels in $DEST"
t0=$(date +%s)
FASTINGEST_SANITIZE=1 "$PY" setup.py -q build_ext --inplace >"$DEST/build.log" 2>&1 \
    || { tail -50 "$DEST/build.log"; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"

LIBASAN=$(gcc -print-file-name=libasan.so)
export LD_PRELOAD="$LIBASAN"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export PYTHONPATH="$DEST"
export CI=${CI:-1}

"$PY" -c 'import fastingest, sys; from fastingest import _kernels
assert fastingest.__file__.startswith(sys.argv[1]), fastingest.__file__
assert _kernels.cython is not None and fastingest.IMPLEMENTATION == "cython"
print("sanitized kernels:", _kernels.cython.framing.__file__)' "$DEST"

set +e
(
    set -e
    echo "== codec tests under ASan + UBSan"
    if [ -n "${SANITIZE_QUICK:-}" ]; then
        candidates="tests/unit/test_adversarial.py tests/unit/test_memory.py tests/fuzz/test_fuzz.py
                    tests/unit/test_differential.py tests/unit/test_otlp.py tests/unit/test_loki.py"
    else
        # every codec test: the unit folder (both twins, fast) and the fuzz corpus
        candidates="tests/unit tests/fuzz/test_fuzz.py"
    fi
    tests=""
    for t in $candidates; do
        [ -e "$t" ] && tests="$tests $t"
    done
    # RSS is meaningless under ASan (its quarantine keeps freed memory resident): the
    # tests that assert on RSS are left out; tracemalloc-based ones still run.
    # The fuzz smoke run is the separate FUZZ_SECONDS step below.
    # shellcheck disable=SC2086
    FASTINGEST_FUZZ_SECONDS= CI= HYPOTHESIS_PROFILE=ci "$PY" -m pytest -q -p no:cacheprovider \
        -k "not rss and not 200_mib and not fuzz_smoke" ${PYTEST_ARGS:-} $tests
    echo "== fuzz corpus replay under ASan + UBSan"
    "$PY" tests/fuzz/fuzz.py --replay
    if [ -n "${FUZZ_SECONDS:-}" ]; then
        echo "== fuzzing ${FUZZ_SECONDS}s under ASan + UBSan"
        FUZZ_WORKDIR="$DEST/fuzz" "$PY" tests/fuzz/fuzz.py --smoke "$FUZZ_SECONDS"
    fi
) 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$LOG"; then
    echo "SANITIZER REPORTS in $LOG"
    exit 1
fi
[ "$status" -eq 0 ] || { echo "FAILED (status $status), log: $LOG"; exit "$status"; }
echo "sanitizers: zero reports (log: $LOG)"
