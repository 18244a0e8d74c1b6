#!/usr/bin/env bash
# Build the sdist and the wheel (python -m build), check what they contain, install the
# wheel in a fresh venv WITHOUT Cython and run the test suite against the installed copy.
#
#   bash tests/check_wheel.sh                 # whole suite
#   bash tests/check_wheel.sh -k "decode"     # extra arguments go to pytest
#
# Environment: PYTHON (default python3), WHEEL_DIR (default /tmp/fastingest-wheel).
# Works on a copy of the tree (tracked + new files), so the working tree is not touched.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
WORK=${WHEEL_DIR:-/tmp/fastingest-wheel}

rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/run"
(cd "$SRC" && git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$WORK/src")

echo "== python -m build"
"$PY" -m venv "$WORK/buildenv"
"$WORK/buildenv/bin/pip" install -q --upgrade pip build
(cd "$WORK/src" && "$WORK/buildenv/bin/python" -m build --outdir "$WORK/dist" >"$WORK/build.log" 2>&1) \
    || { tail -40 "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)
echo "built: $(basename "$SDIST") $(basename "$WHEEL")"

echo "== contents"
sdist_files=$(tar tzf "$SDIST")
wheel_files=$("$PY" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$WHEEL")
# the compiled modules (paths under fastingest/), each a .pyx with its .pyi stub
compiled="framing/_framing _build _whole _oneobject _validate _timestamps _protobuf _transcode _members"
for m in $compiled; do
    for f in "$m.pyx" "$m.pyi"; do
        grep -q "/fastingest/$f\$" <<<"$sdist_files" || { echo "sdist lacks fastingest/$f"; exit 1; }
    done
    grep -q "^fastingest/$m\.pyi\$" <<<"$wheel_files" || { echo "wheel lacks fastingest/$m.pyi"; exit 1; }
    grep -q "^fastingest/$m\.cpython-.*\.so\$" <<<"$wheel_files" || { echo "wheel lacks the compiled $m"; exit 1; }
done
for f in framing/_framing.pxd framing/json_scanner.pxi framing/simd.h _validate.pxd \
         _timestamps.pxd mpheader.pxd msgpack_header.h py.typed _version.py; do
    grep -q "/fastingest/$f\$" <<<"$sdist_files" || { echo "sdist lacks fastingest/$f"; exit 1; }
done
grep -q "^fastingest/py.typed\$" <<<"$wheel_files" || { echo "wheel lacks fastingest/py.typed"; exit 1; }
if grep -qE '\.c$' <<<"$sdist_files"; then echo "sdist ships generated C files"; exit 1; fi
if grep -q "tests/fuzz/corpus" <<<"$wheel_files"; then echo "wheel ships tests"; exit 1; fi
echo "sdist: $(wc -l <<<"$sdist_files") files, no generated C; wheel: compiled kernels + stubs + py.typed"

echo "== fresh venv, wheel only (no Cython, no compiler needed)"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q "$WHEEL[test]"
if "$WORK/venv/bin/python" -c "import Cython" 2>/dev/null; then
    echo "Cython is installed in the test venv: the check would prove nothing"; exit 1
fi
cp -r "$WORK/src/tests" "$WORK/src/README.md" "$WORK/src/.ci" "$WORK/run/"
cd "$WORK/run"     # no fastingest/ here: the tests import the installed wheel
"$WORK/venv/bin/python" -c 'import fastingest, sys
assert "site-packages" in fastingest.__file__, fastingest.__file__
assert fastingest.IMPLEMENTATION == "cython", fastingest.IMPLEMENTATION
print("installed:", fastingest.__version__, fastingest.__file__, fastingest.IMPLEMENTATION)'
CI=${CI:-1} "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
