"""Release hygiene: one version, no generated C in git, sdist/wheel rules in place.

The full check (build the sdist and wheel, install the wheel in a fresh venv without
Cython, run the suite) is ``bash tests/check_wheel.sh``.
"""
from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

import fastingest

ROOT = Path(__file__).resolve().parent.parent.parent
source_tree = pytest.mark.skipif(not (ROOT / "fastingest").is_dir() or not (ROOT / ".git").exists(),
                                 reason="checks the source tree")


def test_version_in_one_place():
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", fastingest.__version__)
    assert metadata.version("fastingest") == fastingest.__version__


@source_tree
def test_version_is_only_in_version_py():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'version = { attr = "fastingest._version.__version__" }' in text
    assert not re.search(r'^version\s*=\s*"', text, re.M)
    assert (ROOT / "CHANGELOG.md").exists()


@source_tree
def test_no_generated_c_committed():
    tracked = subprocess.run(["git", "ls-files", "*.c", "*.so", "*.html"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked == []
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "global-exclude *.c" in manifest
    for ext in ("*.pyx", "*.pxd", "*.pyi", "py.typed"):
        assert ext in manifest
