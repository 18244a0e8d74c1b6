"""JsonConcatScanner (both twins): concatenated JSON objects, as Splunk HEC takes them.
Its lifecycle state by state, every error its states can raise with the exact reason and
offset, the object scan's edges (strings, escapes, brackets, nesting, size, the 64-byte
blocks of the compiled scan), any chunking giving the same answer, and by hypothesis:
the spans of valid bodies are the objects they were made of, a body streamed in any
chunks answers what it answers whole, and the twins agree."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from fastingest.constants import (BAD_BOM, EXPECTED_OBJECT, JSON_CONCAT_STATES, JSON_STATES,
                                  KIND_JSON_CONCAT, UNEXPECTED_END, event_too_large, too_deep)

from helpers import dump_json, event_lists, every_cut, lifecycle, mutate, scan


@pytest.fixture
def new(impl):
    """Make a JsonConcatScanner of the kernel set under test."""
    def make(max_event=1 << 20, max_depth=64):
        return impl.framing.JsonConcatScanner(max_event, max_depth)
    return make


def parse_error(detail, offset):
    return ("ParseError", 406, detail, offset, None)


def spans(got):
    """``scan``'s events as (offset, bytes)."""
    return [(o, b) for o, b, _ in got]


# -- lifecycle ------------------------------------------------------------------------------

def test_states_are_the_shared_lifecycle(new, impl):
    scanner = new()
    assert type(scanner).STATES == JSON_CONCAT_STATES and scanner.state == "START"
    # the byte order mark's states come first in every JSON lifecycle (one BOM scan)
    assert JSON_CONCAT_STATES[:3] == JSON_STATES[:3] == ("START", "BOM1", "BOM2")
    assert impl.framing.SCANNERS[KIND_JSON_CONCAT] is type(scanner)
    assert scanner.is_array is None and scanner.position == 0 and not scanner.collect


@pytest.mark.parametrize("body,states", [
    (b'{"a":1}', ["START", "EVENT", "AFTER", "END"]),
    (b' {"a":1}\r\n', ["START", "EVENT", "AFTER", "END"]),
    (b'{"a":1}{"b":2}', ["START", "EVENT", "AFTER", "EVENT", "AFTER", "END"]),
    (b'{} \n\t{}', ["START", "EVENT", "AFTER", "EVENT", "AFTER", "END"]),
    (b"", ["START", "END"]),
    (b" \n", ["START", "END"]),
    (b"\xef\xbb\xbf{}", ["START", "BOM1", "BOM2", "START", "EVENT", "AFTER", "END"]),
    (b"[{}]", ["START", "FAILED"]),
    (b"{}x", ["START", "EVENT", "AFTER", "FAILED"]),
    (b'{}{"a":', ["START", "EVENT", "AFTER", "EVENT", "FAILED"]),
    (b"\xef\xbb", ["START", "BOM1", "BOM2", "FAILED"]),
])
def test_lifecycle(new, body, states):
    assert lifecycle(new(), body) == states


def test_objects_are_not_an_array(new):
    scanner = new()
    frames = scanner.feed(b'{"a":1}{"b"')
    assert len(frames) == 1 and scanner.is_array is None
    assert scanner.state == "EVENT" and scanner.position == 11


# -- between the objects: each state's errors -------------------------------------------------

@pytest.mark.parametrize("body", [b"", b" \r\n\t", b"\xef\xbb\xbf", b"\xef\xbb\xbf \n\n"])
def test_no_objects_is_no_error(new, body):
    """Zero objects is a body the protocol judges (HEC answers "No data")."""
    for cuts in [()] + list(every_cut(body)):
        assert scan(new(), body, cuts) == ([], [], None)


@pytest.mark.parametrize("body,events,error", [
    (b"1", [], parse_error(EXPECTED_OBJECT, 0)),                      # START
    (b"[{}]", [], parse_error(EXPECTED_OBJECT, 0)),                   # not an array
    (b'"{}"', [], parse_error(EXPECTED_OBJECT, 0)),
    (b" \r\n\t}", [], parse_error(EXPECTED_OBJECT, 4)),
    (b"{}x", [(0, b"{}")], parse_error(EXPECTED_OBJECT, 2)),         # AFTER
    (b"{} ,{}", [(0, b"{}")], parse_error(EXPECTED_OBJECT, 3)),      # no commas between them
    (b'{"a":1}]', [(0, b'{"a":1}')], parse_error(EXPECTED_OBJECT, 7)),
    (b"{}\n[]", [(0, b"{}")], parse_error(EXPECTED_OBJECT, 3)),
    (b'{"a":1}{"b":2} 5', [(0, b'{"a":1}'), (7, b'{"b":2}')], parse_error(EXPECTED_OBJECT, 15)),
    (b'{"a":1', [], parse_error(UNEXPECTED_END, 6)),                 # EVENT at the end
    (b'{}{"a":[1,', [(0, b"{}")], parse_error(UNEXPECTED_END, 10)),
    (b'{}{"a":tru', [(0, b"{}")], parse_error(UNEXPECTED_END, 10)),
    (b'{"a":trux', [], parse_error("invalid literal", 8)),          # its first error, at the end
    (b'{}{"a" 1', [(0, b"{}")], parse_error("expected ':'", 7)),
    (b"\xef\xbb\x00{}", [], parse_error(BAD_BOM, 0)),                 # BOM2
    (b"\xef\x00", [], parse_error(BAD_BOM, 0)),                       # BOM1
    (b"\xef", [], parse_error(BAD_BOM, 0)),                           # BOM1 at the end
    (b"\xef\xbb", [], parse_error(BAD_BOM, 0)),                       # BOM2 at the end
    (b"{}\xef\xbb\xbf", [(0, b"{}")], parse_error(EXPECTED_OBJECT, 2)),   # not at offset 0
    (b" \xef\xbb\xbf{}", [], parse_error(EXPECTED_OBJECT, 1)),
])
def test_shape_errors(new, body, events, error):
    for cuts in [()] + list(every_cut(body)):
        got, _, err = scan(new(), body, cuts)
        assert (spans(got), err) == (events, error), cuts


def test_whitespace_or_nothing_between_objects(new):
    body = b' \t\r\n{"a":1}{"b":2}\r\n {"c":[3]} \n'
    got, _, err = scan(new(), body)
    assert err is None
    assert spans(got) == [(4, b'{"a":1}'), (11, b'{"b":2}'), (21, b'{"c":[3]}')]


def test_the_objects_before_a_fault_come_with_it(new):
    frames = new().feed(b'{"a":1}{"b":2}x{"c":3}')
    assert frames.raw() == [b'{"a":1}', b'{"b":2}'] and list(frames.offsets()) == [0, 7]
    assert (frames.error.detail, frames.error.offset) == (EXPECTED_OBJECT, 14)


# -- inside an object -----------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    b'{"a":"}]"}',                     # brackets inside a string do not count
    b'{"a":"{["}',
    b'{"a":"\\""}',                     # an escaped quote does not end the string
    b'{"a":"x\\\\"}',                   # an escaped backslash does not escape the quote
    b'{"a":"\\\\\\""}',
    b'{"a":[{"b":[]},{}],"c":{}}',
    b'{"a":"\xc3\xa9\\u00e9"}',
    b'{"a":"}{"}',                     # what ends one object and starts the next, in a string
])
@pytest.mark.parametrize("between", [b"", b" ", b"\r\n"])
def test_object_scan_finds_the_end(new, event, between):
    body = event + between + event
    got, _, err = scan(new(), body)
    assert err is None and spans(got) == [(0, event), (len(event) + len(between), event)]


@pytest.mark.parametrize("body,limits,error", [
    # the event scan is the JSON scanners' (test_json_scanner.py walks it); here: a fault
    # in a later object is located at its own offset, and the limits are each object's
    (b'{"a" 1}{"b":tru}', {}, None),                  # the grammar is the builder's to judge
    (b'{}{"a":[}', {}, parse_error("expected a value", 8)),      # located by the validator
    (b'{} {"a":[1}', {}, parse_error("expected ',' or ']'", 10)),
    (b'{"a":{"b":{}}}{}', {"max_depth": 3}, None),
    (b'{"a":{}}{"a":{"b":{}}}', {"max_depth": 2}, parse_error(too_deep(2), 18)),
    (b'{"a":"[[[{{{"}{}', {"max_depth": 1}, None),   # brackets in strings do not nest
    (b'{"a":"xxxxxxxx"}{"a":"xxxxxxxx"} {}', {"max_event": 16}, None),
    (b'{} {"a":"xxxxxxxxx"}', {"max_event": 16},
     ("PayloadTooLarge", 413, event_too_large(16), 19, None)),
    (b'{}{"a":tru,"b":"xxxxxxxxxxxxxxx"}', {"max_event": 16},   # an earlier fault wins
     parse_error("invalid literal", 10)),
])
def test_faults_inside_a_later_object(new, body, limits, error):
    for cuts in [()] + list(every_cut(body)):
        assert scan(new(**limits), body, cuts)[2] == error, cuts


def test_size_fault_found_before_the_object_arrives_whole(new):
    scanner = new(max_event=8)
    frames = scanner.feed(b'{}{"a":"x')
    assert frames.raw() == [b"{}"] and frames.error is None and scanner.state == "EVENT"
    frames = scanner.feed(b'xxxxxxxxxxxxxxx')
    assert (frames.error.status, frames.error.offset) == (413, 10)


@pytest.mark.parametrize("at", [62, 63, 64, 65, 126, 127, 128])
@pytest.mark.parametrize("piece", [b'\\"', b"\\\\", b'"', b"}", b"\\\\\\", b'\\\\"', b"}{"])
def test_block_boundaries(impl, at, piece):
    """Escapes, quotes and brackets straddling the compiled scan's 64-byte blocks: the
    kernel set under test answers as the reference for every alignment."""
    from fastingest import framing as reference
    event = b'{"s":"' + b"x" * max(0, at - 6) + piece + b'","t":"' + b"y" * 70 + b'"}'
    for body in (event + event, event + b"\n" + event, b"{}" + event):
        assert scan(impl.framing.JsonConcatScanner(1 << 20, 64), body) == \
            scan(reference.JsonConcatScanner(1 << 20, 64), body)


# -- chunking -------------------------------------------------------------------------------

def test_spans_and_offsets_survive_any_chunking(new):
    body = b' {"a":"}{"}{"b":[1,{"c":"\\""}]}\n{} '
    whole = scan(new(), body)
    assert whole[2] is None and [o for o, _, _ in whole[0]] == [1, 11, 32]
    for cuts in every_cut(body):
        assert scan(new(), body, cuts) == whole, cuts


def test_objects_completed_by_each_chunk(new):
    scanner = new()
    first = scanner.feed(b'{"a":1}{"b"')
    assert first.raw() == [b'{"a":1}'] and list(first.offsets()) == [0]
    second = scanner.feed(bytearray(b':2}{"c":3}'))           # any buffer type
    assert second.raw() == [b'{"b":2}', b'{"c":3}'] and list(second.offsets()) == [7, 14]
    assert second.line_numbers() is None
    third = scanner.feed(memoryview(b" "))
    assert len(third) == 0 and scanner.state == "AFTER"
    assert len(scanner.finish()) == 0 and scanner.state == "END"


# -- by hypothesis: valid bodies, streamed bodies, the twins ------------------------------------

SPACE = [b"", b"", b" ", b"\n", b"\r\n", b"\t "]


def concatenated(evs, seed):
    """A body of ``evs`` with random whitespace and escaping, and each object's span."""
    rnd = random.Random(seed)
    body, expected = b"", []
    for ev in evs:
        body += rnd.choice(SPACE)
        text = dump_json(ev, rnd)
        expected.append((len(body), text))
        body += text
    return body + rnd.choice(SPACE), expected


@given(event_lists, st.integers(0, 2**32 - 1), st.lists(st.integers(0, 4000), max_size=5))
def test_valid_bodies_give_the_objects_they_were_made_of(impl, evs, seed, cuts):
    body, expected = concatenated(evs, seed)
    scanner = impl.framing.JsonConcatScanner(1 << 20, 64)
    got, _, err = scan(scanner, body, cuts)
    assert err is None and spans(got) == expected


@given(event_lists, st.integers(0, 2**32 - 1), st.lists(st.integers(0, 4000), max_size=5),
       st.sampled_from([(24, 3), (64, 2), (1 << 20, 64)]))
def test_whole_equals_streamed_and_the_twins_agree(both_impls, evs, seed, cuts, limits):
    """Any body, valid or corrupted, fed whole, in random chunks and byte by byte, gives
    the same spans and fault, on both kernel sets."""
    body, _ = concatenated(evs, seed)
    if seed % 3:
        body = mutate(body, random.Random(seed))
    answers = []
    for kernels in both_impls:
        make = lambda: kernels.framing.JsonConcatScanner(*limits)  # noqa: E731
        whole = scan(make(), body)
        assert scan(make(), body, cuts) == whole
        if len(body) <= 400:
            assert scan(make(), body, range(1, len(body))) == whole
        answers.append(whole)
    assert answers[0] == answers[1]
