"""Collect the pytest-benchmark modules (``bench_*.py``) when pytest is pointed at this folder:

    python -m pytest benchmarks --benchmark-only

They are named ``bench_*`` so no default pattern (``test_*.py``) ever picks them up by
accident, and ``python -m pytest`` from the repository root never looks here
(``testpaths = ["tests"]``).
"""
from __future__ import annotations

import pytest


def pytest_collect_file(file_path, parent):
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):  # named explicitly: pytest does it
        return pytest.Module.from_parent(parent, path=file_path)
    return None
