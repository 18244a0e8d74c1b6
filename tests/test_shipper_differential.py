"""Twin agreement for the shipper readers, by hypothesis: random OTLP requests give the
protobuf package's own parse (mapped as PROTOCOLS.md says) on both kernel sets, and the
same events in OTLP JSON; random and mutated bodies give both twins the same answer
(the fuzz harnesses' checks; ``HYPOTHESIS_PROFILE=long`` for a long run)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from fastingest import _kernels
from fastingest.otlpjson import OtlpJson

from shippers import RECEIVED, loki_entry, loki_push, otlp_json, reference_events
from strategies import mutate

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))
import harnesses  # noqa: E402,F401  (first: it registers the shipper harnesses)
from shipper_harnesses import SHIPPER_HARNESSES  # noqa: E402

pytest.importorskip("opentelemetry.proto")
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import (AnyValue, ArrayValue,  # noqa: E402
                                                      InstrumentationScope, KeyValue, KeyValueList)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402

texts = st.text(max_size=12)
u64 = st.integers(0, (1 << 64) - 1)


def _any_values():
    scalars = (st.builds(lambda v: AnyValue(string_value=v), texts)
               | st.builds(lambda v: AnyValue(bool_value=v), st.booleans())
               | st.builds(lambda v: AnyValue(int_value=v), st.integers(-(1 << 63), (1 << 63) - 1))
               | st.builds(lambda v: AnyValue(double_value=v), st.floats(allow_nan=False))
               | st.builds(lambda v: AnyValue(bytes_value=v), st.binary(max_size=8))
               | st.just(AnyValue()))
    return st.recursive(scalars, lambda inner: (
        st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(inner, max_size=3))
        | st.builds(lambda kvs: AnyValue(kvlist_value=KeyValueList(
            values=[KeyValue(key=k, value=v) for k, v in kvs])),
            st.lists(st.tuples(texts, inner), max_size=3))), max_leaves=8)


any_values = _any_values()
attributes = st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), texts, any_values), max_size=3)
records = st.builds(
    lambda t, o, sev, stext, body, attrs, trace, span, flags, name: LogRecord(
        time_unix_nano=t, observed_time_unix_nano=o, severity_number=sev, severity_text=stext,
        attributes=attrs, trace_id=trace, span_id=span, flags=flags, event_name=name,
        **({"body": body} if body is not None else {})),
    u64, u64, st.integers(0, 24), texts, st.none() | any_values, attributes,
    st.binary(max_size=17), st.binary(max_size=9), st.integers(0, (1 << 32) - 1), texts)
requests = st.builds(
    lambda rls: ExportLogsServiceRequest(resource_logs=rls),
    st.lists(st.builds(
        lambda attrs, sls: ResourceLogs(resource=Resource(attributes=attrs), scope_logs=sls),
        attributes,
        st.lists(st.builds(lambda name, version, attrs, recs: ScopeLogs(
            scope=InstrumentationScope(name=name, version=version, attributes=attrs),
            log_records=recs), texts, texts, attributes, st.lists(records, max_size=4)),
            max_size=2)), max_size=2))


def _drain(reader, batch):
    events, times = [], []
    while not reader.done:
        got, when = reader.read(batch)
        events.extend(got)
        times.extend(when)
    return events, times


def _same(a, b):
    return a == b or repr(a) == repr(b)   # NaN-safe


@given(requests, st.integers(1, 2000))
def test_otlp_walker_twins_equal_the_protobuf_package(both_impls, request, batch):
    body = request.SerializeToString()
    expected = reference_events(request, RECEIVED)
    for kernels in both_impls:
        got = _drain(kernels.protobuf.OtlpLogs(body, RECEIVED, 1 << 20, 128), batch)
        assert _same(got, expected), kernels.name


@given(requests)
def test_otlp_json_equals_protobuf(request):
    expected = reference_events(request, RECEIVED)
    # proto3 JSON writes ids of any length; the mapping drops the invalid ones either way
    got = _drain(OtlpJson(otlp_json(request), RECEIVED, 1 << 20, 128), 1 << 20)
    assert _same(got, expected)


@given(st.lists(st.tuples(
    st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True),
                    st.text(max_size=6), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(-(1 << 40), 1 << 40), st.integers(0, 999_999_999),
                       st.text(max_size=10), st.lists(st.tuples(texts, texts), max_size=2)),
             max_size=4)), max_size=3), st.integers(1, 500))
def test_loki_walker_twins_agree(both_impls, streams, batch):
    from fastingest.lokiformat import labels_too_long, line_too_long, parse_labels, render_labels
    body = loki_push([(render_labels(labels), [loki_entry(s, n, line, md) for s, n, line, md in entries])
                      for labels, entries in streams])
    answers = []
    for kernels in both_impls:
        reader = kernels.protobuf.LokiPush(body, RECEIVED, 1 << 20, parse_labels,
                                           lambda s, n: line_too_long(s, n, 1 << 20),
                                           lambda n: labels_too_long(n, 1 << 20))
        answers.append(_drain(reader, batch) + (reader.streams,))
    assert answers[0] == answers[1]
    events, times, nstreams = answers[0]
    assert nstreams == len(streams)
    assert [e["labels"] for e in events] == [labels for labels, entries in streams for _ in entries]


@given(requests, st.integers(0, 2**32 - 1), st.integers(0, 255))
def test_mutated_otlp_bodies_twins_agree(request, seed, head):
    body = mutate(request.SerializeToString(), random.Random(seed))
    SHIPPER_HARNESSES["otlp_protobuf"](bytes([head, 0]) + body)


@given(st.binary(max_size=300), st.integers(0, 255), st.integers(0, 255),
       st.sampled_from(sorted(SHIPPER_HARNESSES)))
def test_random_bodies_through_every_shipper_harness(body, head, cut, name):
    SHIPPER_HARNESSES[name](bytes([head, cut]) + body)


def test_kernel_sets_have_protobuf():
    assert _kernels.python.protobuf.__name__ == "fastingest.protobuf"
