"""The framing face (both twins): the table from body format to scanner, the lifecycle every
scanner shares (a fatal fault kept, nothing fed after the end, positive limits), and the Frames a
feed answers (offsets, lines, bytes, the one-call build documents, events that straddle
chunks)."""
from __future__ import annotations

import msgpack
import orjson
import pytest

from fastingest.constants import KIND_JSON, KIND_JSON_CONCAT, KIND_MSGPACK, KIND_NDJSON


def test_one_scanner_per_format(impl):
    framing = impl.framing
    assert framing.SCANNERS == {KIND_JSON: framing.JsonScanner, KIND_NDJSON: framing.NdjsonScanner,
                                KIND_MSGPACK: framing.MsgpackScanner,
                                KIND_JSON_CONCAT: framing.JsonConcatScanner}
    for kind, scanner in framing.SCANNERS.items():
        made = framing.Scanner(kind, 100, 5, True)
        assert type(made) is scanner and (made.max_event, made.max_depth) == (100, 5)
        assert made.collect == (kind == KIND_NDJSON)     # errors="collect" is NDJSON's
        assert issubclass(scanner, framing.ScannerBase)


# A whole body and one with a fatal fault, per format: the lifecycle every scanner shares.
BODIES = {KIND_JSON: (b"[{}]", b"[1"), KIND_NDJSON: (b"{}\n", b"[1]\n"),
          KIND_MSGPACK: (b"\x91\x80", b"\x91\x01"), KIND_JSON_CONCAT: (b"{}{}", b"{}[")}


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_a_fatal_fault_is_reported_again_and_again(impl, kind):
    scanner = impl.framing.SCANNERS[kind](100, 5)
    first = scanner.feed(BODIES[kind][1]).error
    assert first is not None and scanner.state == "FAILED"
    assert scanner.feed(BODIES[kind][0]).error is first
    assert len(scanner.feed(BODIES[kind][0])) == 0
    assert scanner.finish().error is first


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_no_feeding_after_the_body_ended(impl, kind):
    scanner = impl.framing.SCANNERS[kind](100, 5)
    assert len(scanner.feed(BODIES[kind][0])) >= 1
    assert scanner.finish().error is None and scanner.state == "END"
    with pytest.raises(ValueError):
        scanner.feed(BODIES[kind][0])
    with pytest.raises(ValueError):
        scanner.finish()


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("max_event,max_depth", [(0, 1), (1, 0), (-1, 5)])
def test_limits_must_be_positive(impl, kind, max_event, max_depth):
    with pytest.raises(ValueError):
        impl.framing.SCANNERS[kind](max_event, max_depth)


@pytest.mark.parametrize("kind", [0, 5, -1])
def test_unknown_format(impl, kind):
    with pytest.raises(ValueError):
        impl.framing.Scanner(kind, 100, 5)


def test_frames_of_one_chunk(impl):
    scanner = impl.framing.NdjsonScanner(1 << 20, 64)
    frames = scanner.feed(b'{"a":1}\n\n{"b":[2]}\n{"c":"x')
    assert len(frames) == 2 and frames.error is None and frames.line_errors == []
    assert list(frames.offsets()) == [0, 9] and list(frames.line_numbers()) == [1, 3]
    assert frames.raw() == [b'{"a":1}', b'{"b":[2]}']
    assert [frames.event_bytes(i) for i in range(2)] == frames.raw()
    with pytest.raises(IndexError):
        frames.event_bytes(2)
    assert orjson.loads(frames.json_document()) == [{"a": 1}, {"b": [2]}]
    assert orjson.loads(frames.json_document(1)) == [{"b": [2]}]
    assert orjson.loads(frames.json_document(0, 1)) == [{"a": 1}]
    assert frames.json_document(1, 1) == b"[]"


def test_straddling_event_is_copied_out(impl):
    """An event that began in an earlier chunk comes whole in the frames of the chunk
    that completes it; the scanner kept only that event's bytes between the feeds."""
    scanner = impl.framing.JsonScanner(1 << 20, 64)
    first = scanner.feed(b'[{"a":1},{"b":"xy')
    assert first.raw() == [b'{"a":1}']
    second = scanner.feed(bytearray(b'z"},{"c":3}'))      # any buffer type
    assert second.raw() == [b'{"b":"xyz"}', b'{"c":3}'] and list(second.offsets()) == [9, 21]
    assert orjson.loads(second.json_document()) == [{"b": "xyz"}, {"c": 3}]
    third = scanner.feed(memoryview(b"]"))
    assert len(third) == 0 and scanner.state == "END"


@pytest.mark.parametrize("n", [1, 15, 16, 65535, 65536])
def test_msgpack_document_array_headers(impl, n):
    """One MessagePack array for a run of events: fixarray, array 16 or array 32."""
    body = msgpack.packb([{}] * n)
    frames = impl.framing.MsgpackScanner(1 << 20, 64).feed(body)
    assert len(frames) == n
    doc = frames.msgpack_document()
    assert doc[:1] == (bytes([0x90 | n]) if n < 16 else (b"\xdc" if n < 65536 else b"\xdd"))
    assert msgpack.unpackb(doc) == [{}] * n
    assert msgpack.unpackb(frames.msgpack_document(n - 1)) == [{}]


def test_memory_kept_between_feeds_is_the_unfinished_event(impl):
    """A long body streamed in small chunks: every chunk's frames hold only its own
    events, and the scanner's position advances (msgpack-python's Unpacker pattern)."""
    event = b'{"k":"' + b"v" * 100 + b'"}\n'
    body = event * 500
    scanner = impl.framing.NdjsonScanner(1 << 20, 64)
    total = 0
    for i in range(0, len(body), 37):
        frames = scanner.feed(body[i:i + 37])
        total += len(frames)
        assert all(len(raw) == len(event) - 1 for raw in frames.raw())
    assert total == 500 and scanner.position == len(body)
