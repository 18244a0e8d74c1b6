"""MsgpackScanner (both twins): its lifecycle, the body's shape errors, the walk inside an
event (declared lengths failing at their header, nesting, the reserved byte), headers cut
by a chunk boundary at every byte, and the one header table it shares."""
from __future__ import annotations

import msgpack
import pytest

from fastingest import constants
from fastingest.constants import (DATA_AFTER_BODY, EMPTY_BODY, EXPECTED_BODY_MSGPACK,
                                  EXPECTED_MAP, LENGTH_PAST_END, MSGPACK_STATES, RESERVED_BYTE,
                                  UNEXPECTED_END, event_too_large, too_deep)
from fastingest.framing.msgpack_scanner import msgpack_header

from helpers import every_cut, lifecycle, scan


@pytest.fixture
def new(impl):
    """Make a MsgpackScanner of the kernel set under test."""
    def make(max_event=1 << 20, max_depth=64):
        return impl.framing.MsgpackScanner(max_event, max_depth)
    return make


def parse_error(detail, offset):
    return ("ParseError", 406, detail, offset, None)


def too_large(max_event, offset):
    return ("PayloadTooLarge", 413, event_too_large(max_event), offset, None)


# -- lifecycle ------------------------------------------------------------------------------

def test_states_are_the_shared_lifecycle(new):
    scanner = new()
    assert type(scanner).STATES == MSGPACK_STATES and scanner.state == "START"
    assert not scanner.collect


@pytest.mark.parametrize("body,states", [
    (b"\x81\xa1a\x01", ["START", "EVENT", "END"]),
    (b"\x80", ["START", "END"]),                  # an event of one byte: done at once
    (b"\x90", ["START", "END"]),
    (b"\x92\x81\xa1a\x01\x80", ["START", "ELEMS", "EVENT", "ELEMS", "END"]),
    (b"\xdc\x00\x01\x81\xa1a\x01", ["START", "ELEMS", "EVENT", "END"]),
    (b"\x92\x80", ["START", "ELEMS", "FAILED"]),
])
def test_lifecycle(new, body, states):
    assert lifecycle(new(), body) == states


def test_is_array(new):
    one, many = new(), new()
    one.feed(b"\x81")
    many.feed(b"\xdc\x00")          # an array 16 header cut short: not known yet
    assert one.is_array is False and many.is_array is None
    many.feed(b"\x02")
    assert many.is_array is True and many.state == "ELEMS"


# -- the body's shape -----------------------------------------------------------------------

@pytest.mark.parametrize("body,events,error", [
    (b"", [], parse_error(EMPTY_BODY, 0)),
    (b"\xa1a", [], parse_error(EXPECTED_BODY_MSGPACK, 0)),
    (b"\xc1", [], parse_error(EXPECTED_BODY_MSGPACK, 0)),
    (b"\xdc\x00", [], parse_error(UNEXPECTED_END, 0)),                  # header cut at the end
    (b"\xdc\x00\x02\x80", [(3, b"\x80")], parse_error(LENGTH_PAST_END, 0)),   # ELEMS at the end
    (b"\x91\x01", [], parse_error(EXPECTED_MAP, 1)),
    (b"\x92\x80\x90", [(1, b"\x80")], parse_error(EXPECTED_MAP, 2)),
    (b"\x80\x00", [(0, b"\x80")], parse_error(DATA_AFTER_BODY, 1)),
    (b"\x91\x80\x00", [(1, b"\x80")], parse_error(DATA_AFTER_BODY, 2)),
    (b"\x90\x80", [], parse_error(DATA_AFTER_BODY, 1)),
    (b"\x81\xa1a", [], parse_error(UNEXPECTED_END, 3)),                 # EVENT at the end
])
def test_shape_errors(new, body, events, error):
    for cuts in [()] + list(every_cut(body)):
        got, _, err = scan(new(), body, cuts)
        assert ([(o, b) for o, b, _ in got], err) == (events, error), cuts


# -- inside an event ------------------------------------------------------------------------

EVENTS = [
    {"a": 1, "b": -1, "c": 1.5, "d": None, "e": True, "f": "x" * 40, "g": b"\x00" * 300},
    {"s": "y" * 70000, "l": list(range(20)), "m": {"k": [{}] * 3}},
    {"t": msgpack.Timestamp(1, 2), "u": msgpack.Timestamp(2**35, 5), "x": msgpack.ExtType(5, b"abc")},
]


def test_every_header_kind_is_walked(new):
    body = msgpack.packb(EVENTS, use_bin_type=True, datetime=False)
    events, _, err = scan(new(), body)
    assert err is None
    assert [msgpack.unpackb(raw, timestamp=0) for _, raw, _ in events] == EVENTS


def test_headers_cut_at_every_byte(new):
    """Every header width (fix, 8, 16, 32 bits; ext types; the top array) cut by a chunk
    boundary at every byte resumes exactly where it stopped."""
    small = [{"a": "x" * 40, "b": b"\x00" * 300, "c": [1] * 20, "d": {"k": 2**40},
              "e": msgpack.ExtType(1, b"\x01\x02"), "f": msgpack.Timestamp(1, 2)}] * 18
    body = msgpack.packb(small, use_bin_type=True, datetime=False)
    assert body[0] == 0xDC    # array 16
    whole = scan(new(), body)
    assert whole[2] is None and len(whole[0]) == 18
    for a in range(1, 600):
        assert scan(new(), body, (a,)) == whole, a
    for cuts in [(1, 2), (3, 5, 6, 7), tuple(range(1, len(body), 7))]:
        assert scan(new(), body, cuts) == whole, cuts


def test_reserved_byte_is_refused_where_it_stands(new):
    assert scan(new(), b"\x81\xa1a\xc1")[2] == parse_error(RESERVED_BYTE, 3)
    assert scan(new(), b"\x91\x82\xa1a\x01\xa1b\xc1")[2] == parse_error(RESERVED_BYTE, 7)


def test_declared_length_fails_at_its_header_before_the_payload(new):
    """A length that cannot fit in max_event is a 413 as soon as its header is read,
    whatever follows (none of its bytes need to arrive)."""
    for header in (b"\xdb\xff\xff\xff\xff", b"\xc6\x00\x01\x00\x00", b"\xc9\x00\x01\x00\x00\x05",
                   b"\xdd\xff\xff\xff\xff", b"\xdf\x00\x00\x80\x00"):
        scanner = new(max_event=64)
        frames = scanner.feed(b"\x81\xa1a" + header)
        assert frames.error is not None, header
        assert (frames.error.status, frames.error.detail, frames.error.offset) == (
            413, event_too_large(64), 3), header


def test_size_limit_counts_a_byte_per_declared_item(new):
    # a map of 40 entries needs at least 80 bytes: over 64 at its header
    assert scan(new(max_event=64), b"\xde\x00\x28")[2] == too_large(64, 0)
    body = msgpack.packb({"a": "x" * 59})
    assert len(body) == 64 and scan(new(max_event=64), body)[2] is None
    assert scan(new(max_event=63), body)[2] == too_large(63, 3)


def test_an_earlier_fault_wins_over_the_size(new):
    body = b"\x82\xa2\xff\xfe\x01\xa1b\xdb\xff\xff\xff\xff"   # invalid UTF-8 key, then 4 GiB
    assert scan(new(max_event=64), body)[2] == parse_error("invalid UTF-8", 2)


def test_depth_limit(new):
    body = b"\x81\xa1a\x91\x91\x91\x80"   # map, array, array, array, map: 5 levels
    assert scan(new(max_depth=5), body)[2] is None
    assert scan(new(max_depth=4), body)[2] == parse_error(too_deep(4), 6)
    assert scan(new(max_depth=3), body)[2] == parse_error(too_deep(3), 5)


def test_whole_events_walked_in_one_step_frame_as_step_by_step(both_impls):
    """An event that arrives whole is walked by one tight loop in the compiled scanner
    (fi_mp_skip), which hands every case with something to say to the step-by-step walk:
    nesting past its own 32-level stack or past max_depth, max_event at its edge, declared
    counts past the bytes left, a reserved byte. Fed whole and byte by byte (the step
    walk), both twins frame every body alike."""
    cython, python = both_impls

    def nested(levels):
        v = {"x": 1}
        for i in range(levels - 1):
            v = [v] if i % 2 else {"k": v}
        return v

    bodies = [msgpack.packb([nested(d), {"a": 1}]) for d in (1, 2, 5, 6, 30, 31, 32, 33, 40, 64, 65)]
    bodies += [msgpack.packb([{"a": "x" * 59}, {"b": 1}]),            # 64-byte event
               b"\x92\x81\xa1a\xc1\x80",                             # reserved byte
               b"\x92\x81\xa1a\xdc\x00\x30" + b"\x01" * 10 + b"\x80",  # count past the bytes
               b"\x92\x81\xa1a\xd9\x40abc\x80"]                       # str past the bytes
    for body in bodies:
        for max_event, max_depth in ((1 << 20, 64), (64, 64), (63, 33), (1 << 20, 32), (1 << 20, 30), (1 << 20, 5)):
            whole = scan(cython.framing.MsgpackScanner(max_event, max_depth), body)
            assert whole == scan(python.framing.MsgpackScanner(max_event, max_depth), body), body
            steps = tuple(range(1, len(body)))
            assert whole == scan(cython.framing.MsgpackScanner(max_event, max_depth), body, steps), body


# -- the header table -----------------------------------------------------------------------

def test_one_header_table(impl):
    table = constants.MSGPACK_HEADERS
    assert len(table) == 256
    if impl.name == "cython":
        # the compiled kernels load the same table (classes mapped by name)
        assert impl.framing._MSGPACK_HEADERS == table
    classes = {b: table[b][0] for b in range(256)}
    assert classes[0xC1] == constants.MP_RESERVED
    assert [b for b in range(256) if classes[b] == constants.MP_MAP] == [*range(0x80, 0x90), 0xDE, 0xDF]
    assert [b for b in range(256) if classes[b] == constants.MP_ARRAY] == [*range(0x90, 0xA0), 0xDC, 0xDD]
    assert [b for b in range(256) if classes[b] == constants.MP_EXT] == [*range(0xC7, 0xCA), *range(0xD4, 0xD9)]


@pytest.mark.parametrize("value", [0, -1, 200, -200, 70000, 2**40, -(2**40), 1.5, None, True, "ab",
                                   "x" * 40, "x" * 300, "x" * 70000, b"\x00", b"\x00" * 300,
                                   [], [1] * 20, [1] * 70000, {}, {"a": 1}])
def test_header_reading_matches_msgpack(value):
    """(class, head, n) decoded from the table says where the item's payload or elements
    start and how long the payload is, for every width msgpack writes."""
    data = msgpack.packb(value, use_bin_type=True)
    cls, head, n = msgpack_header(data, 0, len(data))
    if cls in (constants.MP_ARRAY, constants.MP_MAP):
        assert n == len(value)
    else:
        assert head + n == len(data)
    assert msgpack_header(data, 0, head - 1) is None or constants.MSGPACK_HEADERS[data[0]][2] >= 0
