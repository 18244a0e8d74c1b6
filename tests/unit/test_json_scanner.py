"""JsonScanner (both twins): its lifecycle state by state, every error its states can
raise with the exact reason and offset, the event scan's edges (strings, escapes, brackets,
nesting, size, the 64-byte blocks of the compiled scan), and any chunking giving the
same answer."""
from __future__ import annotations

import pytest

from fastingest.constants import (BAD_BOM, DATA_AFTER_BODY, EMPTY_BODY, EXPECTED_BODY_JSON,
                                  EXPECTED_COMMA_OR_BRACKET, EXPECTED_OBJECT, JSON_STATES,
                                  UNEXPECTED_END, event_too_large, too_deep)

from helpers import every_cut, lifecycle, scan


@pytest.fixture
def new(impl):
    """Make a JsonScanner of the kernel set under test."""
    def make(max_event=1 << 20, max_depth=64):
        return impl.framing.JsonScanner(max_event, max_depth)
    return make


def parse_error(detail, offset):
    return ("ParseError", 406, detail, offset, None)


# -- lifecycle ------------------------------------------------------------------------------

def test_states_are_the_shared_lifecycle(new):
    scanner = new()
    assert type(scanner).STATES == JSON_STATES
    assert scanner.state == "START" and scanner.is_array is None and scanner.position == 0


@pytest.mark.parametrize("body,states", [
    (b'{"a":1}', ["START", "EVENT", "END"]),
    (b' {"a":1} ', ["START", "EVENT", "END"]),
    (b"[]", ["START", "FIRST", "END"]),
    (b'[{"a":1}]', ["START", "FIRST", "EVENT", "AFTER", "END"]),
    (b'[{"a":1} , {"b":[2]}]',
     ["START", "FIRST", "EVENT", "AFTER", "NEXT", "EVENT", "AFTER", "END"]),
    (b"\xef\xbb\xbf{}", ["START", "BOM1", "BOM2", "START", "EVENT", "END"]),
    (b"[{}", ["START", "FIRST", "EVENT", "AFTER", "FAILED"]),
    (b"[1]", ["START", "FIRST", "FAILED"]),
])
def test_lifecycle(new, body, states):
    assert lifecycle(new(), body) == states


def test_is_array_once_the_first_byte_says(new):
    scanner = new()
    scanner.feed(b"  \n")
    assert scanner.is_array is None
    scanner.feed(b"[")
    assert scanner.is_array is True
    other = new()
    other.feed(b'{"a"')
    assert other.is_array is False and other.state == "EVENT" and other.position == 4


def test_a_fatal_fault_is_reported_again_and_again(new):
    scanner = new()
    first = scanner.feed(b"[1").error
    assert scanner.state == "FAILED" and first.detail == EXPECTED_OBJECT
    assert scanner.feed(b"{}").error is first
    assert len(scanner.feed(b"{}")) == 0
    assert scanner.finish().error is first


def test_no_feeding_after_the_body_ended(new):
    scanner = new()
    scanner.feed(b"{}")
    assert scanner.finish().error is None and scanner.state == "END"
    with pytest.raises(ValueError):
        scanner.feed(b" ")
    with pytest.raises(ValueError):
        scanner.finish()


@pytest.mark.parametrize("max_event,max_depth", [(0, 1), (1, 0), (-1, 5)])
def test_limits_must_be_positive(impl, max_event, max_depth):
    with pytest.raises(ValueError):
        impl.framing.JsonScanner(max_event, max_depth)


# -- the body's shape: each state's errors ----------------------------------------------------

@pytest.mark.parametrize("body,events,error", [
    (b"", [], parse_error(EMPTY_BODY, 0)),                          # START at the end
    (b" \r\n\t", [], parse_error(EMPTY_BODY, 4)),
    (b"1", [], parse_error(EXPECTED_BODY_JSON, 0)),                 # START
    (b'"{}"', [], parse_error(EXPECTED_BODY_JSON, 0)),
    (b"[", [], parse_error(UNEXPECTED_END, 1)),                     # FIRST at the end
    (b"[1]", [], parse_error(EXPECTED_OBJECT, 1)),                  # FIRST
    (b"[,]", [], parse_error(EXPECTED_OBJECT, 1)),
    (b"[{},]", [(1, b"{}")], parse_error(EXPECTED_OBJECT, 4)),      # NEXT
    (b"[{}, ", [(1, b"{}")], parse_error(UNEXPECTED_END, 5)),       # NEXT at the end
    (b"[{}{}]", [(1, b"{}")], parse_error(EXPECTED_COMMA_OR_BRACKET, 3)),   # AFTER
    (b"[{}", [(1, b"{}")], parse_error(UNEXPECTED_END, 3)),         # AFTER at the end
    (b"{}x", [(0, b"{}")], parse_error(DATA_AFTER_BODY, 2)),        # END
    (b"[]{}", [], parse_error(DATA_AFTER_BODY, 2)),
    (b"[{}] ,", [(1, b"{}")], parse_error(DATA_AFTER_BODY, 5)),
    (b'{"a":1', [], parse_error(UNEXPECTED_END, 6)),                # EVENT at the end
    (b'[{"a":1}', [(1, b'{"a":1}')], parse_error(UNEXPECTED_END, 8)),
    (b"\xef\xbb\x00{}", [], parse_error(BAD_BOM, 0)),                # BOM2
    (b"\xef\x00", [], parse_error(BAD_BOM, 0)),                      # BOM1
    (b"\xef", [], parse_error(BAD_BOM, 0)),                          # BOM1 at the end
    (b"\xef\xbb", [], parse_error(BAD_BOM, 0)),                      # BOM2 at the end
    (b"\xef\xbb\xbf", [], parse_error(EMPTY_BODY, 3)),               # only a BOM
    (b"{}\xef\xbb\xbf", [(0, b"{}")], parse_error(DATA_AFTER_BODY, 2)),   # not at offset 0
    (b"[\xef\xbb\xbf{}]", [], parse_error(EXPECTED_OBJECT, 1)),
    (b" \xef\xbb\xbf{}", [], parse_error(EXPECTED_BODY_JSON, 1)),
])
def test_shape_errors(new, body, events, error):
    for cuts in [()] + list(every_cut(body)):
        got, _, err = scan(new(), body, cuts)
        assert ([(o, b) for o, b, _ in got], err) == (events, error), cuts


def test_whitespace_around_every_token(new):
    body = b' \t\r\n[ \n{"a":1}\r\n,\t{"b":2} ]\n '
    got, _, err = scan(new(), body)
    assert err is None and [(o, b) for o, b, _ in got] == [(7, b'{"a":1}'), (18, b'{"b":2}')]


# -- inside an event ------------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    b'{"a":"}]"}',                     # brackets inside a string do not count
    b'{"a":"{["}',
    b'{"a":"\\""}',                     # an escaped quote does not end the string
    b'{"a":"x\\\\"}',                   # an escaped backslash does not escape the quote
    b'{"a":"\\\\\\""}',
    b'{"a":[{"b":[]},{}],"c":{}}',
    b'{"a":"\xc3\xa9\\u00e9"}',
])
def test_event_scan_finds_the_end(new, event):
    body = b"[" + event + b"," + event + b"]"
    got, _, err = scan(new(), body)
    assert err is None and [b for _, b, _ in got] == [event, event]


def test_the_scan_leaves_the_grammar_to_the_builder(new):
    # Only where an event ends is decided here: orjson and the validator judge the rest.
    got, _, err = scan(new(), b'[{"a" 1},{"b":tru}]')
    assert err is None and [b for _, b, _ in got] == [b'{"a" 1}', b'{"b":tru}']


def test_mismatched_bracket_is_located_by_the_validator(new):
    assert scan(new(), b'{"a":[}')[2] == parse_error("expected a value", 6)
    # where the validator finds nothing before it, the scan's own reason
    assert scan(new(), b'{"a":[1}')[2] == parse_error("expected ',' or ']'", 7)


def test_depth_limit(new):
    assert scan(new(max_depth=3), b'{"a":{"b":{}}}')[2] is None
    assert scan(new(max_depth=2), b'{"a":{"b":{}}}')[2] == parse_error(too_deep(2), 10)
    # brackets inside strings never count toward the nesting
    assert scan(new(max_depth=1), b'{"a":"[[[{{{"}')[2] is None


def test_event_size_limit(new):
    assert scan(new(max_event=16), b'{"a":"xxxxxxxx"}')[2] is None
    assert scan(new(max_event=16), b'{"a":"xxxxxxxxx"}')[2] == (
        "PayloadTooLarge", 413, event_too_large(16), 16, None)
    # a fault earlier in the event wins over its size
    assert scan(new(max_event=16), b'{"a":tru,"b":"xxxxxxxxxxxxxxx"}')[2] == (
        parse_error("invalid literal", 8))
    # the limit is the event's, not the body's
    assert scan(new(max_event=16), b'[{"a":"xxxxxxxx"},{"a":"xxxxxxxx"}]')[2] is None


def test_size_fault_found_before_the_event_arrives_whole(new):
    scanner = new(max_event=8)
    frames = scanner.feed(b'[{"a":"x')
    assert frames.error is None and scanner.state == "EVENT"
    frames = scanner.feed(b'xxxxxxxxxxxxxxx')
    assert (frames.error.status, frames.error.offset) == (413, 9)


@pytest.mark.parametrize("at", [62, 63, 64, 65, 126, 127, 128])
@pytest.mark.parametrize("piece", [b'\\"', b"\\\\", b'"', b"}", b"\\\\\\", b'\\\\"'])
def test_block_boundaries(impl, at, piece):
    """Escapes, quotes and brackets straddling the compiled scan's 64-byte blocks: the
    kernel set under test answers as the reference for every alignment."""
    from fastingest import framing as reference
    event = b'{"s":"' + b"x" * max(0, at - 6) + piece + b'","t":"' + b"y" * 70 + b'"}'
    for body in (b"[" + event + b"]", event + b" " + event):
        assert scan(impl.framing.JsonScanner(1 << 20, 64), body) == \
            scan(reference.JsonScanner(1 << 20, 64), body)


# -- chunking -------------------------------------------------------------------------------

def test_spans_and_offsets_survive_any_chunking(new):
    body = b' [ {"a":"}{"} , {"b":[1,{"c":"\\""}]},{}]  '
    whole = scan(new(), body)
    assert whole[2] is None and [o for o, _, _ in whole[0]] == [3, 16, 37]
    for cuts in every_cut(body):
        assert scan(new(), body, cuts) == whole, cuts


def test_events_completed_by_each_chunk(new):
    scanner = new()
    first = scanner.feed(b'[{"a":1},{"b"')
    assert first.raw() == [b'{"a":1}'] and list(first.offsets()) == [1]
    second = scanner.feed(b':2}]')
    assert second.raw() == [b'{"b":2}'] and list(second.offsets()) == [9]
    assert second.line_numbers() is None
    assert len(scanner.finish()) == 0 and scanner.state == "END"
