"""The package is typed: mypy --strict passes and the .pyi stubs match the compiled modules.

Needs mypy (in the [test] extra); skipped without it. The configuration lives in
pyproject.toml ([tool.mypy]); Cython artifacts are allow-listed in
tests/stubtest-allowlist.txt.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastingest import _kernels

ROOT = Path(__file__).resolve().parent.parent.parent
pytest.importorskip("mypy")
if not (ROOT / "fastingest").is_dir() or not (ROOT / "pyproject.toml").exists():
    pytest.skip("checks the source tree (not an installed wheel)", allow_module_level=True)


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MYPY_CACHE_DIR=str(ROOT / ".mypy_cache"))
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


#: The compiled modules (each a twin of a pure-Python module, see fastingest/_kernels.py).
COMPILED = ("fastingest.framing._framing", "fastingest._build", "fastingest._unpack",
            "fastingest._whole",
            "fastingest._oneobject", "fastingest._validate", "fastingest._timestamps",
            "fastingest._protobuf", "fastingest._transcode", "fastingest._members",
            "fastingest._rows")


def test_package_has_py_typed_and_stubs():
    pkg = ROOT / "fastingest"
    assert (pkg / "py.typed").exists()
    pyx_files = sorted(pkg.glob("**/_*.pyx"))
    assert {str(p.relative_to(ROOT).with_suffix("")).replace("/", ".") for p in pyx_files} == set(COMPILED)
    for pyx in pyx_files:
        assert pyx.with_suffix(".pyi").exists(), f"no stub for {pyx.name}"


def test_mypy_strict():
    proc = _run("mypy", "--config-file", "pyproject.toml")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]


@pytest.mark.skipif(_kernels.cython is None, reason="the compiled kernels are not built")
def test_stubs_match_compiled_modules():
    proc = _run("mypy.stubtest", *COMPILED, "--mypy-config-file", "pyproject.toml",
                "--ignore-disjoint-bases", "--allowlist", "tests/typing/stubtest-allowlist.txt",
                "--ignore-unused-allowlist")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
