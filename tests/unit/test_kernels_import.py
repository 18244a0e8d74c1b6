"""A compiled core that was built but does not import (another Python's build, an older
C API, a damaged file) is said out loud, never a silent switch to the 10-20x slower
pure-Python twins; a package without compiled files (a pure install) stays quiet."""
from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fastingest"
# An editable install adds a finder that would map fastingest's modules back to the
# working tree: the probe drops it so that only the copied package is seen.
PROBE = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
         "repr(f)]; import fastingest; print(fastingest.IMPLEMENTATION, fastingest.__file__)")


def copy_without_builds(dest: Path) -> Path:
    """The package's Python sources alone, in ``dest``."""
    target = dest / "fastingest"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns(
        "*.so", "*.pyd", "*.c", "*.html", "__pycache__"))
    return target


def probe(root: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, cwd=root,
                          env={**{k: v for k, v in os.environ.items()
                                  if k != "FASTINGEST_PUREPYTHON"}, "PYTHONPATH": str(root),
                               **env})


@pytest.mark.parametrize("damage", ["garbage", "other-python"])
def test_built_kernels_that_fail_to_import_warn(tmp_path, damage):
    package = copy_without_builds(tmp_path)
    if damage == "garbage":   # this Python's file name, unloadable contents
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        (package / "framing" / f"_framing{suffix}").write_bytes(b"not an ELF file")
    else:                     # built for another version only
        (package / "framing" / "_framing.cpython-39-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    r = probe(tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["python", str(package / "__init__.py")]
    assert "RuntimeWarning: fastingest: the compiled kernels do not import" in r.stderr
    assert "_framing" in r.stderr and "pip install -e ." in r.stderr


def test_no_warning_without_builds_or_when_the_twins_are_chosen(tmp_path):
    package = copy_without_builds(tmp_path)
    r = probe(tmp_path)
    assert (r.stdout.split()[0], r.stderr) == ("python", "")
    (package / "framing" / "_framing.cpython-39-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    r = probe(tmp_path, FASTINGEST_PUREPYTHON="1")
    assert (r.stdout.split()[0], r.stderr) == ("python", "")
