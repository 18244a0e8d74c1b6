"""The shallow read of an event's top-level members (fastingest/members.py, _members.pyx):
both twins give the same answer, and every span and kind it gives agrees with the event
orjson decodes; where it answers None a shallow read could be wrong."""
from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, strategies as st

from fastingest.constants import (JSON_ARRAY, JSON_FALSE, JSON_INT, JSON_MISSING, JSON_NULL,
                                  JSON_NUMBER, JSON_OBJECT, JSON_STRING, JSON_TRUE)

from helpers import LINE_WS, WS, dump_json, json_values, kernel_sets

NAMES = (b"timestamp", b"sourceId", b"eventName", b"receivedAt", b"publishedAt")


def kind_of(value) -> int:
    """The kind the read must report for a value orjson decoded."""
    if isinstance(value, str):
        return JSON_STRING
    if value is None:
        return JSON_NULL
    if value is True:
        return JSON_TRUE
    if value is False:
        return JSON_FALSE
    if isinstance(value, int):
        return JSON_INT
    if isinstance(value, float):
        return JSON_NUMBER
    return JSON_OBJECT if isinstance(value, dict) else JSON_ARRAY


def read(data: bytes):
    answers = [k.members.top_members(data, NAMES) for k in kernel_sets()]
    assert all(a == answers[0] for a in answers), answers
    return answers[0]


def check(data: bytes) -> None:
    found = read(data)
    event = orjson.loads(data)
    text = data.decode()
    escaped_key = "\\" in text and any("\\" in json_key for json_key in _raw_keys(data))
    if found is None:
        assert escaped_key or any(_raw_keys(data).count(n.decode()) > 1 for n in NAMES)
        return
    count, members = found
    assert count == len(_raw_keys(data))
    for name, (kind, start, end) in zip(NAMES, members):
        if name.decode() not in event:
            assert (kind, start, end) == (JSON_MISSING, 0, 0)
            continue
        value = event[name.decode()]
        assert orjson.loads(data[start:end]) == value
        assert kind == kind_of(value)


def _raw_keys(data: bytes):
    """The top-level keys as written (escapes kept), by a slow but plain walk."""
    keys, depth, i, n = [], 0, 0, len(data)
    expect_key = False
    while i < n:
        c = data[i:i + 1]
        if c == b'"':
            j = i + 1
            while data[j:j + 1] != b'"':
                j += 2 if data[j:j + 1] == b"\\" else 1
            if depth == 1 and expect_key:
                keys.append(data[i + 1:j].decode())
                expect_key = False
            i = j + 1
            continue
        if c in (b"{", b"["):
            depth += 1
            expect_key = c == b"{" and depth == 1
        elif c in (b"}", b"]"):
            depth -= 1
        elif c == b"," and depth == 1:
            expect_key = True
        i += 1
    return keys


members = st.sampled_from([n.decode() for n in NAMES]) | st.text(max_size=6)
objects = st.dictionaries(members, json_values | st.integers(-2**70, 2**70), max_size=8)


@given(objects, st.integers(0, 2**32), st.booleans())
def test_read_agrees_with_the_decoded_event(event, seed, one_line):
    rnd = random.Random(seed)
    check(dump_json(event, rnd, LINE_WS if one_line else WS))


@given(st.lists(st.tuples(members, json_values), max_size=6), st.integers(0, 2**32))
def test_repeated_members_and_escaped_keys(pairs, seed):
    """Objects written pair by pair (keys repeated at will), keys sometimes escaped."""
    rnd = random.Random(seed)
    parts = []
    for key, value in pairs:
        key_text = orjson.dumps(key).decode()
        if rnd.random() < 0.2 and len(key) > 0:
            key_text = '"\\u%04x' % ord(key[0]) + orjson.dumps(key[1:]).decode()[1:]
        parts.append(key_text.encode() + b":" + dump_json(value, rnd))
    check(b"{" + b",".join(parts) + b"}")


@pytest.mark.parametrize("data,expected", [
    (b"{}", (0, [(JSON_MISSING, 0, 0)] * 5)),
    (b' {\t}\n', (0, [(JSON_MISSING, 0, 0)] * 5)),
    (b'{"timestamp":-0}', (1, [(JSON_INT, 13, 15)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"timestamp":18446744073709551615}', (1, [(JSON_INT, 13, 33)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"timestamp":18446744073709551616}', (1, [(JSON_NUMBER, 13, 33)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"timestamp":-9223372036854775808}', (1, [(JSON_INT, 13, 33)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"timestamp":-9223372036854775809}', (1, [(JSON_NUMBER, 13, 33)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"timestamp":1e3}', (1, [(JSON_NUMBER, 13, 16)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"timestamp":1.0}', (1, [(JSON_NUMBER, 13, 16)] + [(JSON_MISSING, 0, 0)] * 4)),
    (b'{"x":"}\\"{","receivedAt" : null }',
     (2, [(JSON_MISSING, 0, 0)] * 3 + [(JSON_NULL, 27, 31), (JSON_MISSING, 0, 0)])),
    (b'{"time\\u0073tamp":1}', None),            # "timestamp" once decoded
    (b'{"a\\"b":1,"timestamp":2}', None),        # any escaped key: not sure what it spells
    (b'{"receivedAt":1,"receivedAt":null}', None),
])
def test_named_cases(data, expected):
    assert read(data) == expected
    check(data)
