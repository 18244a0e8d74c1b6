"""NdjsonScanner (both twins): lines and their numbers, blank and CRLF lines, every error
with its line, the errors="collect" mode (SKIP), and any chunking giving the same answer."""
from __future__ import annotations

import pytest

from fastingest.constants import (BAD_BOM, DATA_AFTER_EVENT, EXPECTED_OBJECT, JSON_STATES,
                                  LINE_ENDED, NDJSON_STATES, event_too_large, too_deep)
from fastingest.errors import LineError

from helpers import every_cut, lifecycle, scan


@pytest.fixture
def new(impl):
    """Make an NdjsonScanner of the kernel set under test."""
    def make(max_event=1 << 20, max_depth=64, collect=False):
        return impl.framing.NdjsonScanner(max_event, max_depth, collect)
    return make


def line_error(detail, offset, line):
    return ("ParseError", 406, detail, offset, line)


# -- lifecycle ------------------------------------------------------------------------------

def test_states_are_the_shared_lifecycle(new):
    scanner = new()
    assert type(scanner).STATES == NDJSON_STATES and scanner.state == "START"
    # the byte order mark's states come first in both JSON lifecycles (one BOM scan)
    assert NDJSON_STATES[:3] == JSON_STATES[:3] == ("START", "BOM1", "BOM2")
    assert scanner.is_array is None and not new().collect and new(collect=True).collect


@pytest.mark.parametrize("body,collect,states", [
    (b'{"a":1}\n', False, ["START", "EVENT", "AFTER", "START", "END"]),
    (b'{"a":1}', False, ["START", "EVENT", "AFTER", "END"]),
    (b'\n \n{}  \r\n', False, ["START", "EVENT", "AFTER", "START", "END"]),
    (b"", False, ["START", "END"]),
    (b"\xef\xbb\xbf{}\n", False, ["START", "BOM1", "BOM2", "START", "EVENT", "AFTER", "START", "END"]),
    (b'[1]\n{}\n', True, ["START", "SKIP", "START", "EVENT", "AFTER", "START", "END"]),
    (b'{} x\n{}', True, ["START", "EVENT", "AFTER", "SKIP", "START", "EVENT", "AFTER", "END"]),
    (b'[1]\n', False, ["START", "FAILED"]),
])
def test_lifecycle(new, body, collect, states):
    assert lifecycle(new(collect=collect), body) == states


def test_no_feeding_after_the_body_ended(new):
    scanner = new()
    assert scanner.finish().error is None and scanner.state == "END"
    with pytest.raises(ValueError):
        scanner.feed(b"{}\n")


# -- lines ----------------------------------------------------------------------------------

def test_lines_blank_lines_and_crlf(new):
    body = b'{"a":1}\n\n  \t\r\n  {"b":2}\r\n{"c":"\\n"}'
    events, errors, err = scan(new(), body)
    assert err is None and errors == []
    assert events == [(0, b'{"a":1}', 1), (16, b'{"b":2}', 4), (25, b'{"c":"\\n"}', 5)]


@pytest.mark.parametrize("body", [b"", b"\n", b" \r\n\t\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n"])
def test_no_events_is_no_error(new, body):
    assert scan(new(), body) == ([], [], None)


@pytest.mark.parametrize("body,error", [
    (b'[1]\n', line_error(EXPECTED_OBJECT, 0, 1)),                   # START
    (b'{}\n  "x"\n', line_error(EXPECTED_OBJECT, 5, 2)),
    (b'{"a":1} x\n', line_error(DATA_AFTER_EVENT, 8, 1)),            # AFTER
    (b'{"a":1}{"b":2}\n', line_error(DATA_AFTER_EVENT, 7, 1)),
    (b'{"a":"x\ny"}\n', line_error(LINE_ENDED, 7, 1)),               # EVENT: in a string
    (b'{"a":"x\\\ny"}\n', line_error(LINE_ENDED, 8, 1)),             # after a backslash
    (b'\n{"a":\n1}\n', line_error(LINE_ENDED, 6, 2)),                # outside a string
    (b'{"a":tru}\n{"b":\n', line_error(LINE_ENDED, 15, 2)),          # the scan trusts line 1
    (b'{"a":1', line_error("unexpected end of data", 6, 1)),         # EVENT at the end
    (b'{}\n{"a":[}\n', line_error("expected a value", 9, 2)),        # the validator locates
    (b"\xef\xbb{}\n", line_error(BAD_BOM, 0, None)),                  # BOM2
])
def test_line_errors(new, body, error):
    for cuts in [()] + list(every_cut(body)):
        assert scan(new(), body, cuts)[2] == error, cuts


def test_depth_and_size_limits_carry_the_line(new):
    assert scan(new(max_depth=1), b'{}\n{"a":{}}\n')[2] == line_error(too_deep(1), 8, 2)
    assert scan(new(max_event=8), b'{}\n{"a":"xxxxx"}\n')[2] == (
        "PayloadTooLarge", 413, event_too_large(8), 11, 2)


# -- errors="collect" -------------------------------------------------------------------------

def test_collect_skips_bad_lines_and_keeps_good_ones(new):
    body = b'{"a":1}\n[2]\n{"b":2} junk\n{"c":\n3}\n{"d":4}'
    events, errors, err = scan(new(collect=True), body)
    assert err is None
    assert [(line, raw) for _, raw, line in events] == [(1, b'{"a":1}'), (3, b'{"b":2}'), (6, b'{"d":4}')]
    assert errors == [
        LineError(2, 8, EXPECTED_OBJECT, 406),
        LineError(3, 20, DATA_AFTER_EVENT, 406),
        LineError(4, 30, LINE_ENDED, 406),
        LineError(5, 31, EXPECTED_OBJECT, 406),   # "3}" is a line of its own
    ]


def test_collect_keeps_size_limits_fatal(new):
    events, errors, err = scan(new(max_event=8, collect=True), b'[1]\n{"a":"xxxxxxx"}\n{}\n')
    assert errors == [LineError(1, 0, EXPECTED_OBJECT, 406)]
    assert err == ("PayloadTooLarge", 413, event_too_large(8), 12, 2)


def test_collect_bad_last_line_without_newline(new):
    events, errors, err = scan(new(collect=True), b'{}\n{"a":')
    assert err is None and [raw for _, raw, _ in events] == [b"{}"]
    assert errors == [LineError(2, 8, "unexpected end of data", 406)]


def test_collect_any_chunking(new):
    body = b'{"a":1}\n[2]\n{"b":"\n"}\n\n{"c":3} x\n{"d":4}\n'
    whole = scan(new(collect=True), body)
    assert len(whole[1]) == 4 and len(whole[0]) == 3
    for cuts in every_cut(body):
        assert scan(new(collect=True), body, cuts) == whole, cuts


# -- chunking -------------------------------------------------------------------------------

def test_events_and_lines_survive_any_chunking(new):
    body = b'\r\n{"a":"}\\"{"}\r\n\n {"b":[1,{"c":2}]}\n{}'
    whole = scan(new(), body)
    assert whole[2] is None and [line for _, _, line in whole[0]] == [2, 4, 5]
    for cuts in every_cut(body):
        assert scan(new(), body, cuts) == whole, cuts


def test_frames_carry_line_numbers(new):
    scanner = new()
    frames = scanner.feed(b'\n{"a":1}\n{"b"')
    assert list(frames.line_numbers()) == [2] and list(frames.offsets()) == [1]
    frames = scanner.feed(b':2}\n')
    assert list(frames.line_numbers()) == [3] and frames.raw() == [b'{"b":2}']
    assert list(scanner.finish().line_numbers()) == []
