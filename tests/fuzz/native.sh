#!/usr/bin/env bash
# Fuzz with coverage of the compiled kernels too: build them with clang's
# -fsanitize=address,fuzzer-no-link in a COPY of the tree, preload atheris's
# ASan + libFuzzer runtime, and run tests/fuzz/fuzz.py there. libFuzzer then sees the
# branches of the C code generated from the .pyx modules (fastingest/_kernels.py lists them)
# (plain `fuzz.py` sees only Python-level coverage), and ASan checks every access.
#
#   bash tests/fuzz/native.sh --smoke 60            # any fuzz.py arguments
#   bash tests/fuzz/native.sh --long 600 --jobs 2
#
# Needs clang (Debian: apt-get install clang) and atheris (the [fuzz] extra).
# Environment: PYTHON (default python3), NATIVE_DIR (default /tmp/fastingest-native),
# FUZZ_WORKDIR (default $NATIVE_DIR/fuzz).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${NATIVE_DIR:-/tmp/fastingest-native}
PY=${PYTHON:-python3}

rm -rf "$DEST"
mkdir -p "$DEST"
(cd "$SRC" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$DEST")
cd "$DEST"
"$PY" -c "import Cython" 2>/dev/null || "$PY" -m pip install -q "Cython>=3.0"
echo "== building the kernels with clang -fsanitize=address,fuzzer-no-link in $DEST"
CC=clang LDSHARED="clang -shared" FASTINGEST_SANITIZE=address,fuzzer-no-link \
    "$PY" setup.py -q build_ext --inplace >"$DEST/build.log" 2>&1 || { tail -40 "$DEST/build.log"; exit 1; }

ATHERIS=$("$PY" -c "import atheris; print(atheris.path())")
export LD_PRELOAD="$ATHERIS/asan_with_fuzzer.so"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1
export PYTHONPATH="$DEST"
export FUZZ_WORKDIR=${FUZZ_WORKDIR:-$DEST/fuzz}
"$PY" -c 'import sys, fastingest; from fastingest import _kernels
assert fastingest.__file__.startswith(sys.argv[1]) and _kernels.cython is not None
print("instrumented kernels:", _kernels.cython.framing.__file__)' "$DEST"
"$PY" tests/fuzz/fuzz.py "${@:---smoke 60}"
