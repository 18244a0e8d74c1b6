"""pytest-benchmark suite for event time; run explicitly, never part of the test run:

    python -m pytest benchmarks/bench_timestamps.py --benchmark-only
"""
from __future__ import annotations

import msgpack
import pytest

from fastingest import timestamps as py_timestamps

try:
    from fastingest import _timestamps as cy_timestamps
except ImportError:  # pure-Python install
    cy_timestamps = None

IMPLS = [pytest.param(cy_timestamps, id="cython",
                      marks=pytest.mark.skipif(cy_timestamps is None, reason="not compiled")),
         pytest.param(py_timestamps, id="python")]

VALUES = {
    "rfc3339-us-Z": "2022-12-31T13:45:59.123456Z",
    "rfc3339-ns-offset": "2022-12-31 13:45:59.123456789+02:00",
    "rfc3339-seconds": "2022-12-31T13:45:59Z",
    "basic": "20221231T134559Z",
    "epoch-str-ms": "1672490759123",
    "epoch-str-decimal": "1672490759.123456",
    "bytes": b"2022-12-31T13:45:59.123456Z",
    "int-s": 1672490759,
    "int-ns": 1672490759123456789,
    "float": 1672490759.123456,
    "msgpack-Timestamp": msgpack.Timestamp(1672490759, 123456789),
    "garbage": "not a time",
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", list(VALUES))
def test_parse_dt(benchmark, impl, kind):
    value = VALUES[kind]
    benchmark.group = f"parse_dt {kind}"
    benchmark(impl.parse_dt, value)


@pytest.mark.parametrize("impl", IMPLS)
def test_event_times_10k(benchmark, impl):
    values = list(VALUES.values())
    events = [{"level": "info", "message": "m", "dt": values[i % len(values)]} for i in range(10_000)]
    benchmark.group = "event_times 10k events"
    out = benchmark(impl.event_times, events, 1_700_000_000_000_000_000)
    assert len(out) == 10_000
