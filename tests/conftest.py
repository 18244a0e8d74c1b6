"""Fixtures for every test folder (unit, e2e, fuzz, typing): the hypothesis profiles, and
the kernel sets every codec test runs against (aiohttp's pattern). Shared helpers are in
``tests/helpers.py`` (this folder is on ``sys.path`` for all of them)."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from fastingest import _kernels, codings

# CI never depends on luck: a fixed-seed, derandomized profile when CI is set.
settings.register_profile(
    "ci", derandomize=True, max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
# The other Pythons' compatibility runs (.ci/other-pythons): the same derandomized
# examples, fewer of them — the default python3's "ci" run is the exploration.
settings.register_profile(
    "compat", derandomize=True, max_examples=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long", max_examples=20000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def _cython_or_skip() -> _kernels.Kernels:
    if _kernels.cython is None:
        if _kernels.PUREPYTHON:
            pytest.skip("FASTINGEST_PUREPYTHON is set: compiled kernels not loaded")
        pytest.fail("the compiled kernels did not import; rebuild with `pip install -e .`")
    return _kernels.cython


@pytest.fixture(params=["cython", "python"])
def impl(request, monkeypatch):
    """The kernel set under test, also made the active one for the public API."""
    kernels = _cython_or_skip() if request.param == "cython" else _kernels.python
    monkeypatch.setattr(_kernels, "active", kernels)
    return kernels


@pytest.fixture
def both_impls():
    """(cython, python) for differential tests."""
    return _cython_or_skip(), _kernels.python


@pytest.fixture(params=sorted(codings.INFLATERS))
def inflater(request, monkeypatch):
    """The gzip/deflate inflater under test (zlib; isal, the [isal] extra, which the test
    extras install), made the one every decoder uses."""
    monkeypatch.setattr(codings, "INFLATER", codings.INFLATERS[request.param])
    return request.param
