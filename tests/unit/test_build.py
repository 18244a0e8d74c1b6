"""Building (both twins): framed events to objects in runs, the one-by-one fallback that
locates a bad event, raw events with their time, and the order of what is raised."""
from __future__ import annotations

import gc

import msgpack
import orjson
import pytest

from fastingest import IngestError
from fastingest.constants import BUILD_RUN_BYTES, KIND_JSON, KIND_MSGPACK, KIND_NDJSON
from fastingest.errors import LineError

from helpers import RECEIVED


def frames_of(impl, kind, body, collect=False, max_event=1 << 20):
    return impl.framing.SCANNERS[kind](max_event, 64, collect).feed(body)


def test_events_built_in_runs_across_the_run_size(impl):
    """Events of a body several runs long come back whole and in order, whatever run
    they fell into."""
    events = [{"i": i, "pad": "x" * (i % 300)} for i in range(1500)]
    body = b"\n".join(orjson.dumps(e) for e in events)
    assert len(body) > 3 * BUILD_RUN_BYTES
    frames = frames_of(impl, KIND_NDJSON, body + b"\n")
    assert impl.build.build_events(frames, KIND_NDJSON) == events
    items, times, offsets, lines, errors = impl.build.take(frames, KIND_NDJSON, 64, RECEIVED, False, False)
    assert items == events and list(times) == [RECEIVED] * 1500 and list(lines) == list(range(1, 1501))
    assert offsets[0] == 0 and errors == []
    packed = msgpack.packb(events)
    mp = frames_of(impl, KIND_MSGPACK, packed)
    assert impl.build.build_events(mp, KIND_MSGPACK) == events


def test_gc_is_paused_only_while_building(impl):
    frames = frames_of(impl, KIND_JSON, b'[{"a":1},{"b":2}]')
    assert gc.isenabled()
    impl.build.take(frames, KIND_JSON, 64, RECEIVED, False, False)
    assert gc.isenabled()
    bad = frames_of(impl, KIND_JSON, b'[{"a":1},{"b":tru}]')
    with pytest.raises(IngestError):
        impl.build.take(bad, KIND_JSON, 64, RECEIVED, False, False)
    assert gc.isenabled()
    gc.disable()
    try:   # a caller's disabled GC stays disabled
        impl.build.take(frames, KIND_JSON, 64, RECEIVED, False, False)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_bad_event_is_located_one_by_one(impl):
    frames = frames_of(impl, KIND_JSON, b'[{"a":1},{"b":tru},{"c":3}]')
    with pytest.raises(IngestError) as info:
        impl.build.take(frames, KIND_JSON, 64, RECEIVED, False, False)
    assert (info.value.status, info.value.detail, info.value.offset) == (406, "invalid literal", 17)


def test_collect_keeps_good_lines_and_sorts_line_errors(impl):
    body = b'[1]\n{"a":1}\n{"b":tru}\n{"c":3} x\n{"d":4}\n'
    frames = frames_of(impl, KIND_NDJSON, body, collect=True)
    items, times, offsets, lines, errors = impl.build.take(frames, KIND_NDJSON, 64, RECEIVED, True, False)
    assert items == [{"a": 1}, {"c": 3}, {"d": 4}]
    assert list(lines) == [2, 4, 5] and list(offsets) == [4, 22, 32]
    assert errors == [LineError(1, 0, "expected an object", 406),
                      LineError(3, 20, "invalid literal", 406),
                      LineError(4, 30, "unexpected data after the event", 406)]


def test_raw_events_with_their_time(impl):
    body = b'{"dt":"2022-12-31T13:45:59Z","a":1}\n{"a":2}\n{"dt":1672494359}\n'
    frames = frames_of(impl, KIND_NDJSON, body)
    raw, times, offsets, lines, errors = impl.build.take(frames, KIND_NDJSON, 64, RECEIVED, False, True)
    assert raw == body.split(b"\n")[:3]
    assert list(times) == [1672494359000000000, RECEIVED, 1672494359000000000]
    assert list(lines) == [1, 2, 3] and errors == []


def test_the_frames_fault_comes_after_their_events(impl):
    scanner = impl.framing.JsonScanner(1 << 20, 64)
    frames = scanner.feed(b'[{"a":1},{"b":2} x')
    assert len(frames) == 2 and frames.error is not None
    with pytest.raises(IngestError) as info:
        impl.build.take(frames, KIND_JSON, 64, RECEIVED, False, False)
    assert info.value.detail == "expected ',' or ']'"


def test_no_events(impl):
    frames = frames_of(impl, KIND_NDJSON, b"\n\n")
    assert impl.build.build_events(frames, KIND_NDJSON) == []
    items, times, offsets, lines, errors = impl.build.take(frames, KIND_NDJSON, 64, RECEIVED, False, False)
    assert (items, list(times), list(offsets), list(lines), errors) == ([], [], [], [], [])
