"""fastingest's own JSON object builder (``fastingest._jsonbuild``) against ``orjson.loads``:
for every input either the builder refuses it or orjson builds the same objects — equal
and of the same types all the way down (int vs float, -0.0, key order, duplicate keys
last-wins) — and nothing orjson refuses is ever built. Random values, their mutations
(byte flips, cuts, insertions, odd escapes, big and odd numbers, deep nesting, invalid
UTF-8, a BOM, whitespace), and the pinned edge cases. Then the builder inside ``decode``:
the same batches as orjson builds on both kernel sets, whatever the builder refuses.

The builder is compiled only (its pure-Python twin is orjson itself, in build.py).
"""
from __future__ import annotations

import json
import random

import orjson
import pytest
from hypothesis import example, given, settings, strategies as st

from fastingest import _kernels, decode
from helpers import RECEIVED, mutate, same_json

jb = pytest.importorskip("fastingest._jsonbuild") if _kernels.cython is not None else None
pytestmark = pytest.mark.skipif(jb is None, reason="compiled kernels not loaded")

REFUSED = object()


def examples(n: int) -> int:
    """n examples under the dev profile, scaled with the active profile (ci, long)."""
    return max(10, int(n * settings.default.max_examples / 200))


def orjson_answer(data: bytes):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return REFUSED


def check(data: bytes) -> bool:
    """The builder agrees with orjson on ``data``; True when it built it."""
    want = orjson_answer(data)
    try:
        got = jb.loads(data)
    except ValueError:
        return False
    assert want is not REFUSED, ("built what orjson refuses", data, got)
    assert same_json(got, want), (data, got, want)
    if data[:1] == b"{" and data[-1:] == b"}":   # an event's span: the framing's entry
        assert same_json(jb.loads_object(data), want), data
    return True


# -- random values ----------------------------------------------------------------------------

texts = st.text(max_size=30) | st.sampled_from(["dt", "level", "message", "é", "\u2028", "😀", "\x00"])
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 0])
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5),
    max_leaves=25,
)


def spell(value, rnd: random.Random) -> bytes:
    """``value`` as JSON text, spelled one of several ways (escapes, number forms)."""
    if isinstance(value, dict):
        items = [spell(k, rnd) + b":" + spell(v, rnd) for k, v in value.items()]
        if items and rnd.random() < 0.2:   # a duplicate key: last wins
            k = next(iter(value))
            items.append(spell(k, rnd) + b":" + spell(rnd.choice([1, "x", None]), rnd))
        return b"{" + b",".join(items) + b"}"
    if isinstance(value, list):
        return b"[" + b", ".join(spell(v, rnd) for v in value) + b"]"
    if isinstance(value, str):
        mode = rnd.randrange(3)
        if mode == 0:
            return orjson.dumps(value)
        if mode == 1:
            return json.dumps(value).encode()   # \uXXXX escapes, surrogate pairs
        return b'"' + "".join(f"\\u{ord(ch):04X}" if ord(ch) < 0x10000 else ch
                              for ch in value).encode("utf-8", "surrogatepass") + b'"'
    if isinstance(value, float):
        forms = [repr(value), f"{value:.17g}", f"{value:e}", f"{value:.3E}"]
        text = rnd.choice(forms)
        if "." not in text and "e" not in text.lower():
            text += ".0"
        return text.replace("inf", "1e999").encode()
    return json.dumps(value).encode()


@settings(max_examples=examples(300))
@given(values, st.randoms(use_true_random=False))
def test_random_values_build_as_orjson_builds_them(value, rnd):
    data = spell(value, rnd)
    check(data)
    check(b" \n" + data + b"\r\t")


@settings(max_examples=examples(300))
@given(st.dictionaries(texts, values, max_size=6), st.randoms(use_true_random=False))
def test_mutated_objects_are_built_identically_or_refused(value, rnd):
    data = spell(value, rnd)
    for _ in range(4):
        check(mutate(data, rnd))


@settings(max_examples=examples(300))
@given(st.binary(max_size=40))
def test_arbitrary_bytes_are_never_built_wrongly(data):
    check(data)
    check(b'{"a":' + data + b"}")
    check(b'{"a":"' + data + b'"}')


@settings(max_examples=examples(300))
@given(st.from_regex(rb"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,4})?\Z"))
def test_every_number_form_is_built_exactly_or_refused(token):
    check(token)
    check(b"[" + token + b"]")


# -- pinned edge cases --------------------------------------------------------------------------

BUILT = [
    b'{"a":1,"a":2}', b'{"b":1,"a":2,"b":3}', b'{}', b'[]', b'[[[]]]', b'{"":""}',
    b'-0', b'-0.0', b'0.0', b'0e5', b'-0e-5', b'1E2', b'1e+2', b'1.5e-3', b'123456789012345',
    b'9007199254740993.0', b'0.1', b'2.2250738585072014e-308', b'5e-324', b'1.7976931348623157e308',
    b'9223372036854775807', b'-9223372036854775808', b'18446744073709551615', b'1e-400',
    b'"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"', b'"\\u0000"', b'"\xc3\xa9"',
    b'"\xef\xbf\xbf"', b'"\xf4\x8f\xbf\xbf"', b'true', b'false', b'null', b' \t\r\n{} ',
    b'{"dt":"2024-01-01T00:00:00Z","x":[1,2.5,"s",null,true,{"k":false}]}',
    b'{"k" : 1 , "l" : [ 1 , 2 ] }',
    b'"' + b"x" * 300 + b'\\n"',    # an escaped string longer than the stack buffer
    # the exact fast path's edges (15 digits, 10^+-22) and the slow path just past them
    b'123456789012345e22', b'123456789012345e-22', b'1234567890123456e22', b'1e23', b'8.5e-23',
    b'0.000000000000000000001', b'999999999999999.0', b'9999999999999999.0', b'-1.5E+22',
]

REFUSED_BYTES = [
    b'', b' ', b'{', b'}', b'{"a"}', b'{"a":}', b'{"a":1,}', b'[1,]', b'[,1]', b'{,}', b'{"a":1 "b":2}',
    b'01', b'-', b'1.', b'.5', b'1e', b'1e+', b'+1', b'0x10', b'NaN', b'Infinity', b'-Infinity',
    b'1e999', b'-1e999', b'18446744073709551616', b'-9223372036854775809', b'1' * 40,
    b'"\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"', b'"\\ud800x"', b'"\\x"', b'"\\u12"', b'"\\u12G4"',
    b'"\x01"', b'"\t"', b'"\n"', b'"\xff"', b'"\xc0\x80"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"',
    b'"abc', b'tru', b'nul', b'falsey', b'\xef\xbb\xbf{}', b'{}x', b'{} {}', b'[1] 2',
    b"{'a':1}", b'{"a":1}\x00', b'\x00', b'[' * 1001 + b']' * 1001, b'{"a":\x0b1}',
]


@pytest.mark.parametrize("data", BUILT, ids=repr)
def test_pinned_values_are_built(data):
    assert check(data), data


@pytest.mark.parametrize("data", REFUSED_BYTES, ids=lambda d: repr(d[:24]))
def test_pinned_values_are_refused(data):
    assert not check(data), data


def test_nesting_up_to_the_framing_ceiling_is_built():
    data = b"[" * 1000 + b"]" * 1000
    assert type(orjson.loads(data)) is list
    got = jb.loads(data)
    for _ in range(999):   # walked, not compared: == recurses past the interpreter's limit
        assert type(got) is list and len(got) == 1
        got = got[0]
    assert got == []


def test_keys_are_shared_between_events():
    a, b = jb.loads(b'{"level":1}'), jb.loads(b'{"level":2}')
    assert next(iter(a)) is next(iter(b))


def test_not_bytes_like_is_a_type_error():
    with pytest.raises(TypeError):
        jb.loads("{}")


# -- inside decode: both kernel sets, bodies the builder refuses part of ------------------------

def _bodies(rnd: random.Random):
    ok = [{"dt": "2024-05-06T07:08:09.123Z", "message": f"m{i}", "n": i, "f": i / 3} for i in range(40)]
    # refused by the builder (a run of it then goes to orjson), accepted by orjson
    odd = b'{"dt":1700000000,"big":123456789012345678901234,"far":1e-400,"e":"\\ud83d\\ude00"}'
    lines = [orjson.dumps(e) for e in ok]
    yield "application/x-ndjson", b"\n".join(lines) + b"\n"
    yield "application/json", orjson.dumps(ok)
    yield "application/json", b"[" + b",".join(lines[:5] + [odd] + lines[5:]) + b"]"
    yield "application/x-ndjson", b"\n".join(lines[:5] + [odd, odd] + lines[5:])
    yield "application/x-ndjson", b"\n".join(orjson.dumps(e) for e in ok[:3]).replace(b"m1", b"\\ud800")
    yield "application/json", b'[{"a":18446744073709551616},{"dt":1700000000}]'
    yield "application/json", b'{"a":1e999}'   # orjson refuses: the same error either way
    body = orjson.dumps(ok)
    for _ in range(10):
        yield "application/json", mutate(body, rnd)


def test_decode_answers_as_orjson_builds_on_both_kernel_sets(both_impls):
    from helpers import using
    rnd = random.Random(14)
    for ctype, body in _bodies(rnd):
        answers = []
        for kernels in both_impls:
            with using(kernels):
                try:
                    batch = decode(body, ctype, received_ns=RECEIVED, errors="collect")
                    answers.append(("ok", batch.events, list(batch.times_ns), list(batch.offsets),
                                    [(e.offset, e.detail) for e in batch.errors]))
                except Exception as exc:   # the same IngestError on both sides
                    answers.append(("error", type(exc), str(exc), getattr(exc, "offset", None)))
        assert answers[0][0] == answers[1][0], (body, answers)
        if answers[0][0] == "ok":
            assert same_json(answers[0][1], answers[1][1]) and answers[0][2:] == answers[1][2:], body
        else:
            assert answers[0] == answers[1], body


def test_decode_builds_with_the_builder(both_impls):
    """The builder is on the default path: keys of decoded events are the builder's own
    cached key objects (orjson's would be others), for arrays, NDJSON and one object."""
    from helpers import using
    key = next(iter(jb.loads(b'{"zq_builder_key":0}')))
    bodies = [("application/json", b'[{"zq_builder_key":1},{"zq_builder_key":2}]'),
              ("application/x-ndjson", b'{"zq_builder_key":1}\n{"zq_builder_key":2}\n'),
              ("application/json", b'{"zq_builder_key":1}')]
    with using(both_impls[0]):
        for ctype, body in bodies:
            for event in decode(body, ctype).events:
                assert next(iter(event)) is key, (ctype, body)
