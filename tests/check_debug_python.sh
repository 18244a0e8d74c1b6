#!/usr/bin/env bash
# Build the kernels for a debug CPython (Py_DEBUG: reference-count bookkeeping and
# internal assertions) in a COPY of the tree and run the memory/reference-count tests
# and the codec tests under it.
#
#   apt-get install python3.11-dbg python3.11-dev     # Debian
#   bash tests/check_debug_python.sh                  # PYTHON_DBG=python3.11-dbg by default
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYDBG=${PYTHON_DBG:-python3.11-dbg}
DEST=${DEBUG_DIR:-/tmp/fastingest-dbg}
VENV=${DEBUG_VENV:-/tmp/fastingest-dbg-venv}

"$PYDBG" -c 'import sys; assert hasattr(sys, "gettotalrefcount"), "not a debug build"'
[ -x "$VENV/bin/python" ] || "$PYDBG" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q orjson msgpack pytest hypothesis "Cython>=3.0" setuptools zstandard brotli
rm -rf "$DEST"
mkdir -p "$DEST"
(cd "$SRC" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$DEST")
cd "$DEST"
"$VENV/bin/python" setup.py -q build_ext --inplace >"$DEST/build.log" 2>&1 || { tail -40 "$DEST/build.log"; exit 1; }
export PYTHONPATH="$DEST"
"$VENV/bin/python" -c 'import sys, fastingest; assert fastingest.IMPLEMENTATION == "cython"
print("debug CPython", sys.version.split()[0], "kernels:", fastingest._kernels.cython.framing.__file__)'
CI=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider -k "not fuzz_smoke" \
    tests/unit/test_memory.py tests/unit/test_adversarial.py tests/unit/test_decode.py \
    tests/unit/test_split.py tests/unit/test_stream.py tests/unit/test_json_scanner.py \
    tests/unit/test_ndjson_scanner.py tests/unit/test_msgpack_scanner.py tests/fuzz/test_fuzz.py "$@"
