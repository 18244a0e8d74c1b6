"""The grammar validators (fastingest.validate and its Cython twin fastingest._validate).

Three kinds of tests, each run on both twins:

* differential: a validator accepts a byte string exactly when orjson / msgpack accept it
  (generated documents with random whitespace and escaping, and random corruptions of them);
* twin agreement: both twins give the same return value, or the same detail and offset;
* tables pinning the offset and reason of every error category, deep nesting, huge
  declared lengths, every truncation point, and named regressions.
"""
from __future__ import annotations

import json
import math
import os
import random
import struct

import msgpack
import orjson
import pytest
from hypothesis import given, strategies as st

from fastingest import validate
from fastingest.errors import ParseError

V = validate

try:
    from fastingest import _validate
except ImportError:  # pragma: no cover - pure-Python runs
    _validate = None

PUREPYTHON = bool(os.environ.get("FASTINGEST_PUREPYTHON"))


def _compiled():
    if PUREPYTHON:
        pytest.skip("FASTINGEST_PUREPYTHON is set: the compiled validator is not tested")
    if _validate is None:
        pytest.fail("fastingest._validate did not import; run `python setup.py build_ext --inplace`")
    return _validate


@pytest.fixture(scope="module", params=["cython", "python"])
def mod(request):
    """The validator module under test."""
    return _compiled() if request.param == "cython" else validate


@pytest.fixture(scope="module")
def twins():
    return _compiled(), validate


# ----------------------------------------------------------------------------- helpers

DEPTH = 1000  # below orjson's (1024) and msgpack's (1024) own limits


def run(module, fn: str, buf, start=0, end=None, max_depth=DEPTH, base=0):
    """("ok", ret) or ("err", detail, offset)."""
    if end is None:
        end = len(buf)
    try:
        return ("ok", getattr(module, fn)(buf, start, end, max_depth, base))
    except ParseError as exc:
        assert exc.status == 406
        return ("err", exc.detail, exc.offset)


def rj(module, buf, **kw):
    return run(module, "scan_json_object", buf, **kw)


def rm(module, buf, **kw):
    return run(module, "scan_msgpack_map", buf, **kw)


def orjson_ok(data: bytes) -> bool:
    try:
        return isinstance(orjson.loads(data), dict)
    except orjson.JSONDecodeError:
        return False


def unpack(data: bytes):
    return msgpack.unpackb(data, raw=False, strict_map_key=True, timestamp=0)


def msgpack_ok(data: bytes) -> bool:
    try:
        return isinstance(unpack(data), dict)
    except Exception:  # ValueError, UnicodeDecodeError, FormatError, StackError, ExtraData
        return False


def check_json_against_orjson(module, data: bytes) -> None:
    """The differential oracle for one candidate event starting at offset 0."""
    out = rj(module, data)
    if out[0] == "ok":
        p = out[1]
        assert 0 < p <= len(data)
        assert orjson_ok(data[:p]), (data, out)
        rest_is_ws = data[p:].strip(b" \t\r\n") == b""
        assert orjson_ok(data) == rest_is_ws, (data, out)
        return
    _, detail, offset = out
    assert 0 <= offset <= len(data)
    if detail == V.NOT_OBJECT:
        assert offset == 0 and data[:1] != b"{"
        return
    assert not detail.startswith("nesting deeper than")
    assert not orjson_ok(data), (data, out)
    if detail == V.UNEXPECTED_END:
        assert offset == len(data)


def check_msgpack_against_msgpack(module, data: bytes) -> None:
    out = rm(module, data)
    if out[0] == "ok":
        p = out[1]
        assert 0 < p <= len(data)
        assert msgpack_ok(data[:p]), (data, out)
        if p == len(data):
            assert msgpack_ok(data)
        else:
            with pytest.raises(msgpack.ExtraData):
                unpack(data)
        return
    _, detail, offset = out
    assert 0 <= offset <= len(data)
    if detail == V.NOT_MAP:
        assert offset == 0
        assert data[:1] and not (0x80 <= data[0] <= 0x8F or data[0] in (0xDE, 0xDF))
        return
    assert not detail.startswith("nesting deeper than")
    assert not msgpack_ok(data), (data, out)


# -------------------------------------------------------------------- JSON generation

class Num(str):
    """A raw JSON number token."""


H = 2**1024 - 2**970          # the rounding boundary of DBL_MAX: >= H overflows
HS = str(H)
BOUNDARY_NUMBERS = [
    HS, str(H - 1), str(H + 1), "-" + HS, "-" + str(H - 1), HS + ".0", str(H - 1) + ".999999",
    HS[0] + "." + HS[1:] + "e308", HS[0] + "." + str(H - 1)[1:] + "e+308", "0." + HS + "e309",
    "0.000" + HS + "e312", HS + "e-0", HS + "0e-1", str(H - 1) + "9e-1", "0." + str(H - 1) + "E309",
    "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
    "1.797693134862315807937289714053e308", "1.797693134862315807937289714054e308",
    "1.797693134862315807937289714052e308", "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.99999",
    "1e308", "1e309", "-1e309", "10e307", "10e308", "0.1e309", "0.1e310", "1e-400", "0e999999",
    "0.0e99999999999999999999", "1e99999999999999999999", "1e-99999999999999999999",
    "9" * 308, "9" * 309, "1" + "0" * 308, "-" + "9" * 400, "1" + "0" * 400 + "e-92",
    "1" + "0" * 400 + "e-93", "0." + "0" * 400 + "1e709", "4.9e-324", "2e-324", "3e-324",
    "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
    "-0", "-0.0", "0e0", "0E+0", "1E-0", "1e" + "0" * 1000 + "308", "1e" + "0" * 1000 + "309",
    "0." + "0" * 5000 + "1e5309", "0." + "0" * 5000 + "1e5310", "1" + "0" * 5000 + "e-4692",
    "1" + "0" * 5000 + "e-4691",
]
number_tokens = (
    st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
    | st.sampled_from(BOUNDARY_NUMBERS)
).map(Num)

text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.text(
    alphabet=st.sampled_from('ab"\\/\b\f\n\r\t\x00\x1f\x7f é€𝄞😀\u2028\ufeff\uffff'), max_size=8)
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | number_tokens | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(text, json_values, max_size=6)

SHORT_ESCAPES = {'"': b'\\"', "\\": b"\\\\", "/": b"\\/", "\b": b"\\b", "\f": b"\\f",
                 "\n": b"\\n", "\r": b"\\r", "\t": b"\\t"}


def _u(cu: int, rnd: random.Random) -> bytes:
    h = "%04x" % cu
    return b"\\u" + "".join(c.upper() if rnd.random() < 0.5 else c for c in h).encode()


def enc_str(s: str, rnd: random.Random) -> bytes:
    out = [b'"']
    for ch in s:
        o = ord(ch)
        r = rnd.random()
        if ch in '"\\' or o < 0x20 or r < 0.15:
            if ch in SHORT_ESCAPES and r < 0.6:
                out.append(SHORT_ESCAPES[ch])
            elif o > 0xFFFF:
                o -= 0x10000
                out.append(_u(0xD800 + (o >> 10), rnd) + _u(0xDC00 + (o & 0x3FF), rnd))
            else:
                out.append(_u(o, rnd))
        elif ch == "/" and r < 0.3:
            out.append(b"\\/")
        else:
            out.append(ch.encode("utf-8"))
    out.append(b'"')
    return b"".join(out)


def dump(value, rnd: random.Random) -> bytes:
    """JSON with random insignificant whitespace, escaping and number spelling."""
    def ws():
        return rnd.choice([b"", b"", b"", b" ", b"\t", b"\n", b"\r\n", b" \n \t"])

    if isinstance(value, dict):
        items = [ws() + enc_str(k, rnd) + ws() + b":" + ws() + dump(v, rnd) + ws()
                 for k, v in value.items()]
        return b"{" + (b",".join(items) if items else ws()) + b"}"
    if isinstance(value, list):
        items = [ws() + dump(v, rnd) + ws() for v in value]
        return b"[" + (b",".join(items) if items else ws()) + b"]"
    if isinstance(value, Num):
        return value.encode()
    if isinstance(value, str):
        return enc_str(value, rnd)
    if isinstance(value, float) and rnd.random() < 0.3:
        return ("%.17e" % value).encode()
    return json.dumps(value).encode()


TRICKY_JSON = [
    b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b" ", b"\n", b"\x00", b"\x1f", b"\x7f",
    b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82",
    b"\\u", b"\\ud800", b"\\udc00", b"\\uDBFF\\uDFFF", b"\\x", b"\\u12", b"0", b"-", b".", b"e",
    b"E+", b"1e400", b"-0", b"01", b"true", b"tru", b"nul", b"fals", b"NaN", b"Infinity",
    b'"a":', b'"":1,', b"[]", b"{}", b"9" * 310, b"\xef\xbb\xbf",
]


def mutate(data: bytes, rnd: random.Random, tricky=TRICKY_JSON) -> bytes:
    """1-3 random corruptions: flips, tricky insertions, deletions, cuts, splices."""
    b = bytearray(data)
    for _ in range(rnd.randrange(1, 4)):
        op = rnd.randrange(7)
        pos = rnd.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1:
            b[pos:pos] = rnd.choice(tricky)
        elif op == 2 and b:
            del b[pos:pos + rnd.randrange(1, 4)]
        elif op == 3:
            del b[pos:]
        elif op == 4:
            src = rnd.randrange(len(data) + 1)
            b[pos:pos] = data[src:src + rnd.randrange(1, 12)]
        elif op == 5 and b:
            b[min(pos, len(b) - 1)] = rnd.randrange(256)
        else:
            b[pos:pos + rnd.randrange(0, 3)] = rnd.choice(tricky)
    return bytes(b)


# ----------------------------------------------------------------- msgpack generation

class RawExt(tuple):
    """An ext value with any type code (msgpack.ExtType refuses negative codes)."""

    def __new__(cls, code: int, data: bytes):
        return super().__new__(cls, (code, data))


def _ext(code: int, data: bytes) -> RawExt:
    return RawExt(code, data)


timestamps = st.one_of(
    st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1)),
    st.builds(msgpack.Timestamp, st.integers(0, 2**34 - 1), st.integers(0, 999_999_999)),
    st.builds(msgpack.Timestamp, st.integers(-(2**63), 2**63 - 1), st.integers(0, 999_999_999)),
    # raw ext -1 payloads: valid and invalid lengths / nanoseconds
    st.builds(lambda n: _ext(-1, n), st.binary(min_size=0, max_size=16)),
    st.builds(lambda ns, s: _ext(-1, struct.pack(">Q", (ns << 34) | s)),
              st.integers(999_999_990, 2**30 - 1), st.integers(0, 2**34 - 1)),
    st.builds(lambda ns, s: _ext(-1, struct.pack(">Iq", ns, s)),
              st.integers(999_999_990, 2**32 - 1), st.integers(-(2**63), 2**63 - 1)),
)
mp_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.binary(max_size=40)
    | st.builds(_ext, st.integers(-128, 127), st.binary(max_size=20)) | timestamps
)
mp_keys = st.text(alphabet=st.characters(codec="utf-8"), max_size=10) | st.binary(max_size=6)
mp_values = st.recursive(
    mp_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(mp_keys, inner, max_size=4),
    max_leaves=16,
)
mp_maps = st.dictionaries(mp_keys, mp_values, max_size=6)


_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def pack(value, single_float: bool = False) -> bytes:
    """MessagePack of ``value`` (RawExt for ext values with any code)."""
    out = []

    def enc(v):
        if isinstance(v, RawExt):
            code, data = v
            n = len(data)
            if n in _FIXEXT:
                out.append(bytes([_FIXEXT[n]]))
            elif n < 256:
                out.append(b"\xc7" + bytes([n]))
            elif n < 65536:
                out.append(b"\xc8" + struct.pack(">H", n))
            else:
                out.append(b"\xc9" + struct.pack(">I", n))
            out.append(struct.pack(">b", code) + data)
        elif isinstance(v, dict):
            n = len(v)
            out.append(bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n))
            for k, x in v.items():
                enc(k)
                enc(x)
        elif isinstance(v, list):
            n = len(v)
            out.append(bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n))
            for x in v:
                enc(x)
        else:
            try:
                out.append(msgpack.packb(v, use_bin_type=True, use_single_float=single_float))
            except OverflowError:  # a double out of float32 range
                out.append(msgpack.packb(v, use_bin_type=True))

    enc(value)
    return b"".join(out)


TRICKY_MSGPACK = [
    b"\xc1", b"\xc0", b"\x80", b"\x81", b"\x90", b"\x91", b"\xa1", b"\xa3\xed\xa0\x80",
    b"\xa2\xc3\x28", b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x01", b"\xd6\xff\x00\x00\x00\x00",
    b"\xd7\xff\xff\xff\xff\xff\x00\x00\x00\x00", b"\xc7\x05\xff", b"\xd4\xff\x00", b"\xcb",
    b"\xd9\x02a", b"\x01", b"\xff", b"\xde\x00\x01", b"\xdc\x00\x00", b"\xc4\x00",
]


# ============================================================================== tests

def test_reasons_are_shared(twins):
    cy, py = twins
    assert cy.REASONS is py.REASONS
    assert len(set(V.REASONS[1:])) == len(V.REASONS) - 1
    assert V.UNEXPECTED_END == "unexpected end of data"
    assert V.LENGTH_PAST_END == "declared length runs past the end of the data"


# --------------------------------------------------------------- JSON: differential

@given(json_objects, st.randoms(use_true_random=False))
def test_json_valid_documents(mod, value, rnd):
    data = dump(value, rnd)
    out = rj(mod, data)
    if orjson_ok(data):
        assert out == ("ok", len(data))
    else:  # a generated number token out of range (or a huge integer)
        assert out[0] == "err" and out[1] == V.NUMBER_RANGE, (data, out)
    check_json_against_orjson(mod, data)


@given(json_objects, st.randoms(use_true_random=False))
def test_json_mutated_documents(mod, value, rnd):
    data = dump(value, rnd)
    for _ in range(8):
        check_json_against_orjson(mod, mutate(data, rnd))


@given(st.binary(max_size=40))
def test_json_random_bytes(mod, tail):
    check_json_against_orjson(mod, b"{" + tail)
    check_json_against_orjson(mod, b'{"' + tail)
    check_json_against_orjson(mod, b'{"a":[' + tail)


@given(number_tokens, st.sampled_from([b"}", b" }", b",\"b\":1}"]))
def test_json_numbers_match_orjson(mod, token, after):
    data = b'{"n":' + token.encode() + after
    check_json_against_orjson(mod, data)
    assert (rj(mod, data)[0] == "ok") == (not math.isinf(float(token)))


@given(st.lists(st.sampled_from(["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\uD834",
                                 "\\uDD1E", "\\u0041", "\\n", "\\\\", "x", "\\u00e9", "\\"]),
                max_size=6))
def test_json_surrogate_sequences_match_orjson(mod, parts):
    body = "".join(parts).encode()
    for data in (b'{"s":"' + body + b'"}', b'{"' + body + b'":0}'):
        check_json_against_orjson(mod, data)


@given(st.binary(min_size=1, max_size=6))
def test_json_utf8_sequences_match_orjson(mod, raw):
    data = b'{"s":"' + raw + b'"}'
    check_json_against_orjson(mod, data)


# --------------------------------------------------------------- JSON: twins agree

@given(json_objects, st.randoms(use_true_random=False), st.integers(0, 3))
def test_json_twins_agree(twins, value, rnd, mode):
    cy, py = twins
    data = dump(value, rnd)
    if mode:
        data = mutate(data, rnd)
    if mode == 3:  # embedded in a larger buffer, read up to a random end
        prefix = bytes(rnd.randrange(256) for _ in range(rnd.randrange(4)))
        data = prefix + data + b"xyz"
        start = len(prefix)
        end = rnd.randrange(start, len(data) + 1)
        base = rnd.randrange(10**6)
        for buf in (data, bytearray(data), memoryview(data)):
            assert rj(cy, buf, start=start, end=end, base=base) == rj(
                py, buf, start=start, end=end, base=base)
    assert rj(cy, data) == rj(py, data)
    for depth in (1, 2, 3):
        assert rj(cy, data, max_depth=depth) == rj(py, data, max_depth=depth)


@given(st.binary(max_size=64))
def test_json_twins_agree_random_bytes(twins, tail):
    cy, py = twins
    for data in (b"{" + tail, b'{"k":' + tail, tail):
        assert rj(cy, data) == rj(py, data)


# --------------------------------------------------------------- MessagePack: differential

@given(mp_maps, st.booleans())
def test_msgpack_valid_documents(mod, value, single_float):
    data = pack(value, single_float)
    out = rm(mod, data)
    if msgpack_ok(data):
        assert out == ("ok", len(data))
    else:  # a generated invalid timestamp payload
        assert out[0] == "err" and out[1] in (
            V.TIMESTAMP_LENGTH, V.TIMESTAMP_NANOSECONDS, V.EXT_TYPE_RESERVED)
    check_msgpack_against_msgpack(mod, data)


@given(mp_maps, st.randoms(use_true_random=False))
def test_msgpack_mutated_documents(mod, value, rnd):
    data = pack(value)
    for _ in range(8):
        check_msgpack_against_msgpack(mod, mutate(data, rnd, TRICKY_MSGPACK))


@given(st.binary(max_size=40))
def test_msgpack_random_bytes(mod, tail):
    check_msgpack_against_msgpack(mod, b"\x81" + tail)
    check_msgpack_against_msgpack(mod, b"\x82\xa1a" + tail)
    check_msgpack_against_msgpack(mod, b"\x81\xa1a\x92" + tail)
    check_msgpack_against_msgpack(mod, tail)


@given(mp_maps, st.randoms(use_true_random=False), st.integers(0, 3))
def test_msgpack_twins_agree(twins, value, rnd, mode):
    cy, py = twins
    data = pack(value)
    if mode:
        data = mutate(data, rnd, TRICKY_MSGPACK)
    if mode == 3:
        prefix = bytes(rnd.randrange(256) for _ in range(rnd.randrange(4)))
        data = prefix + data + b"\xc1\xc1"
        start = len(prefix)
        end = rnd.randrange(start, len(data) + 1)
        base = rnd.randrange(10**6)
        for buf in (data, bytearray(data), memoryview(data)):
            assert rm(cy, buf, start=start, end=end, base=base) == rm(
                py, buf, start=start, end=end, base=base)
    assert rm(cy, data) == rm(py, data)
    for depth in (1, 2, 3):
        assert rm(cy, data, max_depth=depth) == rm(py, data, max_depth=depth)


@given(st.binary(max_size=64))
def test_msgpack_twins_agree_random_bytes(twins, tail):
    cy, py = twins
    for data in (b"\x81" + tail, b"\xdf\x00\x00\x00\x02" + tail, tail):
        assert rm(cy, data) == rm(py, data)


# ------------------------------------------------------------------------ depth

def _nest_json(levels: int) -> bytes:
    """An object nested ``levels`` deep (alternating objects and arrays)."""
    out, close = [b"{"], [b"}"]
    for i in range(1, levels):
        if i % 2:
            out.append(b'"k":[')
            close.append(b"]")
        else:
            out.append(b"{")
            close.append(b"}")
    return b"".join(out) + (b'"k":1' if levels % 2 else b"1") + b"".join(reversed(close))


@given(st.integers(1, 40), st.integers(0, 45))
def test_json_depth_limit(mod, levels, max_depth):
    data = _nest_json(levels)
    out = rj(mod, data, max_depth=max_depth)
    if levels <= max_depth:
        assert out == ("ok", len(data))
        assert orjson_ok(data)
    else:
        # the opening bracket of level max_depth + 1
        opens = [i for i, c in enumerate(data) if c in b"{["]
        assert out == ("err", f"nesting deeper than {max_depth}", opens[max_depth])


@given(st.integers(1, 40), st.integers(0, 45))
def test_msgpack_depth_limit(mod, levels, max_depth):
    value = 1
    for i in range(levels - 1):
        value = {"k": value} if i % 2 else [value]
    value = {"k": value}
    data = pack(value)
    out = rm(mod, data, max_depth=max_depth)
    if levels <= max_depth:
        assert out == ("ok", len(data))
    else:
        assert out[:2] == ("err", f"nesting deeper than {max_depth}")


def test_json_100000_deep(mod):
    n = 100_000
    data = b'{"a":' * n + b"1" + b"}" * n
    assert rj(mod, data, max_depth=1000) == ("err", "nesting deeper than 1000", 5 * 1000)
    data = b'{"a":' + b"[" * n + b"]" * n + b"}"
    assert rj(mod, data, max_depth=1000) == ("err", "nesting deeper than 1000", 5 + 999)
    assert rj(mod, data, max_depth=n + 1) == ("ok", len(data))   # no recursion either way
    data = b"{" + b'"":{' * n  # cut off
    assert rj(mod, data, max_depth=10**9) == ("err", V.UNEXPECTED_END, len(data))


def test_msgpack_100000_deep(mod):
    n = 100_000
    data = b"\x81\xa1a" * n + b"\x01"
    assert rm(mod, data, max_depth=1000) == ("err", "nesting deeper than 1000", 3 * 1000)
    assert rm(mod, data, max_depth=n) == ("ok", len(data))
    data = b"\x81\xa1a" + b"\x91" * n + b"\x90"
    assert rm(mod, data, max_depth=1000) == ("err", "nesting deeper than 1000", 3 + 999)
    assert rm(mod, data, max_depth=n + 2) == ("ok", len(data))
    assert rm(mod, data[:-1], max_depth=n + 2) == ("err", V.LENGTH_PAST_END, len(data) - 2)


def test_depth_zero_and_negative(mod):
    assert rj(mod, b"{}", max_depth=0) == ("err", "nesting deeper than 0", 0)
    assert rm(mod, b"\x80", max_depth=0) == ("err", "nesting deeper than 0", 0)
    assert rj(mod, b"{}", max_depth=-5) == ("err", "nesting deeper than -5", 0)
    assert rj(mod, b'{"a":[]}', max_depth=1) == ("err", "nesting deeper than 1", 5)
    assert rm(mod, b"\x81\xa1a\x90", max_depth=1) == ("err", "nesting deeper than 1", 3)


# ----------------------------------------------------------------- JSON error table

E = V
JSON_ERRORS = [
    # (document, reason, offset)
    (b"", E.UNEXPECTED_END, 0),
    (b" {}", E.NOT_OBJECT, 0),
    (b"[1]", E.NOT_OBJECT, 0),
    (b'"a"', E.NOT_OBJECT, 0),
    (b"\xef\xbb\xbf{}", E.NOT_OBJECT, 0),
    (b"{", E.UNEXPECTED_END, 1),
    (b'{"a":1', E.UNEXPECTED_END, 6),
    (b'{"a":1 ', E.UNEXPECTED_END, 7),
    (b'{"a', E.UNEXPECTED_END, 3),
    (b'{"a":', E.UNEXPECTED_END, 5),
    (b'{"a":[', E.UNEXPECTED_END, 6),
    (b'{"a":[1,', E.UNEXPECTED_END, 8),
    (b'{"a":"\\', E.UNEXPECTED_END, 7),
    (b'{"a":"\\u00', E.UNEXPECTED_END, 10),
    (b'{"a":"\\ud800', E.UNEXPECTED_END, 12),
    (b'{"a":"\\ud800\\', E.UNEXPECTED_END, 13),
    (b'{"a":"\\ud800\\udc', E.UNEXPECTED_END, 16),
    (b'{"a":"\xe2\x82', E.UNEXPECTED_END, 8),
    (b'{"a":"\xf0\x9f\x98', E.UNEXPECTED_END, 9),
    (b'{"a":tr', E.UNEXPECTED_END, 7),
    (b'{"a":-', E.UNEXPECTED_END, 6),
    (b'{"a":1.', E.UNEXPECTED_END, 7),
    (b'{"a":1e', E.UNEXPECTED_END, 7),
    (b'{"a":1e-', E.UNEXPECTED_END, 8),
    (b'{"a":1e400', E.UNEXPECTED_END, 10),  # range is judged on the complete token
    (b'{"a":0', E.UNEXPECTED_END, 6),
    (b'{"a":1}', None, 7),
    # structure
    (b'{"a":}', E.EXPECTED_VALUE, 5),
    (b'{"a":NaN}', E.EXPECTED_VALUE, 5),
    (b'{"a":Infinity}', E.EXPECTED_VALUE, 5),
    (b'{"a":+1}', E.EXPECTED_VALUE, 5),
    (b'{"a":.5}', E.EXPECTED_VALUE, 5),
    (b"{\"a\":'x'}", E.EXPECTED_VALUE, 5),
    (b'{"a":[1,]}', E.EXPECTED_VALUE, 8),
    (b'{"a":[,1]}', E.EXPECTED_VALUE, 6),
    (b'{"a":\xc2\xa01}', E.EXPECTED_VALUE, 5),
    (b'{"a":\x0c1}', E.EXPECTED_VALUE, 5),
    (b"{,}", E.EXPECTED_KEY, 1),
    (b'{"a":1,}', E.EXPECTED_KEY, 7),
    (b"{1:2}", E.EXPECTED_KEY, 1),
    (b"{a:2}", E.EXPECTED_KEY, 1),
    (b'{"a":{,}}', E.EXPECTED_KEY, 6),
    (b'{"a" 1}', E.EXPECTED_COLON, 5),
    (b'{"a",1}', E.EXPECTED_COLON, 4),
    (b'{"a"=1}', E.EXPECTED_COLON, 4),
    (b'{"a":1 "b":2}', E.EXPECTED_COMMA_OR_BRACE, 7),
    (b'{"a":1]', E.EXPECTED_COMMA_OR_BRACE, 6),
    (b'{"a":1;"b":2}', E.EXPECTED_COMMA_OR_BRACE, 6),
    (b'{"a":1.5.3}', E.EXPECTED_COMMA_OR_BRACE, 8),
    (b'{"a":1e5e}', E.EXPECTED_COMMA_OR_BRACE, 8),
    (b'{"a":truex}', E.EXPECTED_COMMA_OR_BRACE, 9),
    (b'{"a":0x10}', E.EXPECTED_COMMA_OR_BRACE, 6),
    (b'{"a":1\xff}', E.EXPECTED_COMMA_OR_BRACE, 6),
    (b'{"a":[1}', E.EXPECTED_COMMA_OR_BRACKET, 7),
    (b'{"a":[1 2]}', E.EXPECTED_COMMA_OR_BRACKET, 8),
    (b'{"a":[1:2]}', E.EXPECTED_COMMA_OR_BRACKET, 7),
    # strings
    (b'{"a":"\x00"}', E.CONTROL_CHAR, 6),
    (b'{"a":"x\x1f"}', E.CONTROL_CHAR, 7),
    (b'{"a\n":1}', E.CONTROL_CHAR, 3),
    (b'{"a":"\t"}', E.CONTROL_CHAR, 6),
    (b'{"a":"\\x"}', E.INVALID_ESCAPE, 6),
    (b'{"a":"\\U0041"}', E.INVALID_ESCAPE, 6),
    (b'{"a":"\\\'"}', E.INVALID_ESCAPE, 6),
    (b'{"a":"\\\xc3\xa9"}', E.INVALID_ESCAPE, 6),
    (b'{"a":"\\u12G4"}', E.INVALID_U_ESCAPE, 6),
    (b'{"a":"\\u12"}', E.INVALID_U_ESCAPE, 6),
    (b'{"a":"\\u"}', E.INVALID_U_ESCAPE, 6),
    (b'{"a":"\\u-123"}', E.INVALID_U_ESCAPE, 6),
    (b'{"a":"\\u 123"}', E.INVALID_U_ESCAPE, 6),
    (b'{"a":"\\u00e"}', E.INVALID_U_ESCAPE, 6),
    # surrogates: the backslash of the escape without a partner
    (b'{"a":"\\ud800"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\uDBFFx"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\udc00"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\uDFFF\\uD800"}', E.LONE_SURROGATE, 6),
    (b'{"a":"ab\\udc00\\ud800"}', E.LONE_SURROGATE, 8),
    (b'{"a":"\\ud800\\u0041"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\ud800\\ud800\\udc00"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\ud800\\n"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\ud800\\\\"}', E.LONE_SURROGATE, 6),
    (b'{"a":"\\ud800\xc3\xa9"}', E.LONE_SURROGATE, 6),
    (b'{"\\udc00":1}', E.LONE_SURROGATE, 2),
    (b'{"a":"\\ud800\\uZZZZ"}', E.INVALID_U_ESCAPE, 12),  # the follower's own error wins
    (b'{"a":"\\ud800\\x"}', E.INVALID_ESCAPE, 12),
    (b'{"a":"\\ud800\\udc00\\udc00"}', E.LONE_SURROGATE, 18),
    # UTF-8: the first byte of the invalid sequence
    (b'{"a":"\xff"}', E.INVALID_UTF8, 6),
    (b'{"a":"\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"ab\xbf"}', E.INVALID_UTF8, 8),
    (b'{"a":"\xc0\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xc1\xbf"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xe0\x80\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xe0\x9f\xbf"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xed\xa0\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xed\xbf\xbf"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xf0\x80\x80\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xf0\x8f\xbf\xbf"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xf4\x90\x80\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xf5\x80\x80\x80"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xe2\x82"}', E.INVALID_UTF8, 6),      # cut short by the quote
    (b'{"a":"\xe2\x82\\n"}', E.INVALID_UTF8, 6),
    (b'{"a":"\xc3"', E.INVALID_UTF8, 6),
    (b'{"a":"\xed\xa0', E.INVALID_UTF8, 6),         # never a valid prefix, even at the end
    (b'{"a":"\xf0\x80', E.INVALID_UTF8, 6),
    (b'{"\xc3\xa9\xff":1}', E.INVALID_UTF8, 4),
    (b'{"a":"' + b"x" * 20 + b'\xe9t\xe9"}', E.INVALID_UTF8, 26),
    (b'{"a":"' + "é".encode() * 9 + b'\xa9"}', E.INVALID_UTF8, 24),
    # numbers
    (b'{"a":01}', E.INVALID_NUMBER, 6),
    (b'{"a":-01}', E.INVALID_NUMBER, 7),
    (b'{"a":00}', E.INVALID_NUMBER, 6),
    (b'{"a":-}', E.INVALID_NUMBER, 6),
    (b'{"a":-a}', E.INVALID_NUMBER, 6),
    (b'{"a":--1}', E.INVALID_NUMBER, 6),
    (b'{"a":-.5}', E.INVALID_NUMBER, 6),
    (b'{"a":1.}', E.INVALID_NUMBER, 7),
    (b'{"a":1.e5}', E.INVALID_NUMBER, 7),
    (b'{"a":1e}', E.INVALID_NUMBER, 7),
    (b'{"a":1E+}', E.INVALID_NUMBER, 8),
    (b'{"a":1e-x}', E.INVALID_NUMBER, 8),
    (b'{"a":0.5e}', E.INVALID_NUMBER, 9),
    (b'{"a":1e400}', E.NUMBER_RANGE, 5),
    (b'{"a":-1e400}', E.NUMBER_RANGE, 5),
    (b'{"a":[1e309]}', E.NUMBER_RANGE, 6),
    (b'{"a":' + b"9" * 309 + b"}", E.NUMBER_RANGE, 5),
    (b'{"a":' + HS.encode() + b"}", E.NUMBER_RANGE, 5),
    (b'{"a":1.7976931348623159e308}', E.NUMBER_RANGE, 5),
    (b'{"a":0.' + b"0" * 400 + b'1e710}', E.NUMBER_RANGE, 5),
    (b'{"a":1e99999999999999999999999}', E.NUMBER_RANGE, 5),
    # literals: the first differing letter
    (b'{"a":tru}', E.INVALID_LITERAL, 8),
    (b'{"a":True}', E.EXPECTED_VALUE, 5),
    (b'{"a":trUe}', E.INVALID_LITERAL, 7),
    (b'{"a":fals}', E.INVALID_LITERAL, 9),
    (b'{"a":nul }', E.INVALID_LITERAL, 8),
    (b'{"a":nil}', E.INVALID_LITERAL, 6),
    (b'{"a":t}', E.INVALID_LITERAL, 6),
]


@pytest.mark.parametrize("data,reason,offset", JSON_ERRORS)
def test_json_error_table(mod, data, reason, offset):
    if reason is None:
        assert rj(mod, data) == ("ok", offset)
        assert orjson_ok(data)
        return
    assert rj(mod, data) == ("err", reason, offset)
    assert rj(mod, b"xx" + data + b"yy", start=2, end=2 + len(data), base=100) == (
        "err", reason, 100 + 2 + offset)
    if reason != V.NOT_OBJECT:  # orjson takes leading whitespace
        assert not orjson_ok(data)


JSON_OK = [
    b"{}", b"{ }", b"{\t\n\r }", b'{"":""}', b'{"a":[]}', b'{"a":[ ]}', b'{"a":{}}',
    b'{"a":-0}', b'{"a":-0.0e-0}', b'{"a":0e5}', b'{"a":1E+2}', b'{"a":1e-400}',
    b'{"a":18446744073709551616}', b'{"a":' + b"9" * 308 + b"}", b'{"a":1.7976931348623158e308}',
    b'{"a":' + str(H - 1).encode() + b"}", b'{"a":"\\ud800\\udc00"}', b'{"a":"\\uDBFF\\uDFFF"}',
    b'{"a":"\\u0000"}', b'{"a":"\\"\\\\\\/\\b\\f\\n\\r\\t"}', b'{"a":"\x7f"}', b'{"a":"\xef\xbf\xbf"}',
    b'{"a":"\xef\xbb\xbf"}', b'{"a":"\xf4\x8f\xbf\xbf"}', b'{"a":"\xed\x9f\xbf"}', b'{"a":1,"a":2}',
    b'{"a":true,"b":false,"c":null}', b'{"\\u0041":[1,2.5,-3e3,"x",{"y":[{}]}]}',
    "{\"é\":\"日本語😀\"}".encode(), b'{"a":"\\/"}',
]


@pytest.mark.parametrize("data", JSON_OK)
def test_json_accepted_table(mod, data):
    assert orjson_ok(data)
    assert rj(mod, data) == ("ok", len(data))
    assert rj(mod, data + b" \n", end=len(data) + 2) == ("ok", len(data))
    assert rj(mod, data + b'{"next":1}') == ("ok", len(data))


SAMPLE_JSON = ('{"dt":"2022-12-31T13:45:59.123456Z","level":"info","message":"Ünïcode 日本 😀 \\"q\\" '
               '\\u00e9\\ud83d\\ude00","n":-12.5e-3,"big":123456789012345678901234567890,'
               '"ok":true,"no":false,"nil":null,"tags":["a","b",[]],"ctx":{"k":{"x":[1,{"y":0}]}}}'
               ).encode()


def test_json_every_truncation(mod):
    assert rj(mod, SAMPLE_JSON) == ("ok", len(SAMPLE_JSON))
    for k in range(len(SAMPLE_JSON)):
        cut = SAMPLE_JSON[:k]
        assert rj(mod, cut) == ("err", V.UNEXPECTED_END, k), k
        # reading a longer buffer only up to ``end`` is the same
        assert rj(mod, SAMPLE_JSON, end=k, base=7) == ("err", V.UNEXPECTED_END, k + 7), k


# ----------------------------------------------------------------- MessagePack table

FF4 = b"\xff\xff\xff\xff"
MP_ERRORS = [
    (b"", E.UNEXPECTED_END, 0),
    (b"\x90", E.NOT_MAP, 0),
    (b"\xa1a", E.NOT_MAP, 0),
    (b"\xc1", E.NOT_MAP, 0),
    (b"\x01", E.NOT_MAP, 0),
    (b"\x81", E.LENGTH_PAST_END, 0),                # one entry needs two bytes
    (b"\x81\xa1a", E.UNEXPECTED_END, 3),
    (b"\xde\x00", E.UNEXPECTED_END, 0),              # header cut off: at the header
    (b"\xdf\x00\x00\x00", E.UNEXPECTED_END, 0),
    (b"\x81\xa1a\xcd\x01", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xcb\x00\x00\x00\x00\x00\x00\x00", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xca\x00", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xd3", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xd9", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xda\x00", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xc7\x01", E.UNEXPECTED_END, 3),     # ext header includes its type byte
    (b"\x81\xa1a\xd4", E.UNEXPECTED_END, 3),
    (b"\x81\xa1a\xdc\x00", E.UNEXPECTED_END, 3),
    (b"\x81\xda\x00", E.UNEXPECTED_END, 1),
    (b"\x81\xd9", E.LENGTH_PAST_END, 0),
    (b"\x82\xa1a\x01\xa1b", E.UNEXPECTED_END, 6),
    (b"\x81\xa1a\x92\x01\xcd", E.UNEXPECTED_END, 5),
    # declared lengths past the end: at the header, at once
    (b"\x81\xa1a\xdb" + FF4, E.LENGTH_PAST_END, 3),
    (b"\x81\xa1a\xc6" + FF4, E.LENGTH_PAST_END, 3),
    (b"\x81\xa1a\xc9" + FF4 + b"\x01", E.LENGTH_PAST_END, 3),
    (b"\x81\xa1a\xdd" + FF4, E.LENGTH_PAST_END, 3),
    (b"\x81\xa1a\xdf" + FF4, E.LENGTH_PAST_END, 3),
    (b"\xdf" + FF4 + b"\xa1a\x01", E.LENGTH_PAST_END, 0),
    (b"\xdd" + FF4, E.NOT_MAP, 0),
    (b"\x81\xdb" + FF4, E.LENGTH_PAST_END, 1),
    (b"\x81\xa5abc", E.LENGTH_PAST_END, 1),
    (b"\x81\xa1a\xa2x", E.LENGTH_PAST_END, 3),
    (b"\x81\xa1a\xd6\x01\x00", E.LENGTH_PAST_END, 3),  # fixext payload
    (b"\x81\xa1a\xd8\x01" + b"\x00" * 15, E.LENGTH_PAST_END, 3),
    (b"\x81\xa1a\x93\x01\x02", E.LENGTH_PAST_END, 3),  # 3 elements cannot fit in 2 bytes
    (b"\x81\xa1a\x82\xa1b\x01", E.LENGTH_PAST_END, 3),  # 2 entries need >= 4 bytes
    (b"\x82\xa1a\x01", E.LENGTH_PAST_END, 0),
    (b"\x8f", E.LENGTH_PAST_END, 0),
    (b"\x81\xa1a\xde\xff\xff" + b"\x00" * 100, E.LENGTH_PAST_END, 3),
    # reserved byte, key types
    (b"\x81\xa1a\xc1", E.RESERVED_BYTE, 3),
    (b"\x81\xc1\x01", E.RESERVED_BYTE, 1),
    (b"\x81\xa1a\x91\xc1", E.RESERVED_BYTE, 4),
    (b"\x81\x01\x01", E.MAP_KEY_NOT_STRING, 1),
    (b"\x81\xc0\x01", E.MAP_KEY_NOT_STRING, 1),
    (b"\x81\x90\x01", E.MAP_KEY_NOT_STRING, 1),
    (b"\x81\x80\x01", E.MAP_KEY_NOT_STRING, 1),
    (b"\x81\xd4\x05\x00\x01", E.MAP_KEY_NOT_STRING, 1),
    (b"\x81\xd6\xff\x00\x00\x00\x00\x01", E.MAP_KEY_NOT_STRING, 1),
    (b"\x81\xcb\x00", E.MAP_KEY_NOT_STRING, 1),          # key type before the cut-off header
    (b"\x82\xa1a\x01\x02\x03", E.MAP_KEY_NOT_STRING, 4),
    (b"\x81\xa1a\x81\xa1b\x81\x00\x00", E.MAP_KEY_NOT_STRING, 7),
    # UTF-8 in str payloads (keys too): the sequence start; a payload end cuts a sequence
    (b"\x81\xa1\xff\x01", E.INVALID_UTF8, 2),
    (b"\x81\xa1a\xa3ab\xc3", E.INVALID_UTF8, 6),
    (b"\x81\xa1a\xa3\xed\xa0\x80", E.INVALID_UTF8, 4),
    (b"\x81\xa1a\xa2\xc0\x80", E.INVALID_UTF8, 4),
    (b"\x81\xa1a\xa4\xf4\x90\x80\x80", E.INVALID_UTF8, 4),
    (b"\x81\xa1a\xd9\x0a" + b"abcdefghi\x80", E.INVALID_UTF8, 14),
    (b"\x81\xa1a\xa2\xc3\x28", E.INVALID_UTF8, 4),
    # timestamps (ext -1)
    (b"\x81\xa1a\xd4\xff\x00", E.TIMESTAMP_LENGTH, 3),
    (b"\x81\xa1a\xd5\xff\x00\x00", E.TIMESTAMP_LENGTH, 3),
    (b"\x81\xa1a\xd8\xff" + b"\x00" * 16, E.TIMESTAMP_LENGTH, 3),
    (b"\x81\xa1a\xc7\x00\xff", E.TIMESTAMP_LENGTH, 3),
    (b"\x81\xa1a\xc7\x05\xff" + b"\x00" * 5, E.TIMESTAMP_LENGTH, 3),
    (b"\x81\xa1a\xd7\xff" + struct.pack(">Q", 1_000_000_000 << 34), E.TIMESTAMP_NANOSECONDS, 3),
    (b"\x81\xa1a\xd7\xff" + struct.pack(">Q", (2**30 - 1) << 34), E.TIMESTAMP_NANOSECONDS, 3),
    (b"\x81\xa1a\xc7\x08\xff" + struct.pack(">Q", 1_000_000_000 << 34), E.TIMESTAMP_NANOSECONDS, 3),
    (b"\x81\xa1a\xc7\x0c\xff" + struct.pack(">Iq", 1_000_000_000, 0), E.TIMESTAMP_NANOSECONDS, 3),
    (b"\x81\xa1a\xc9\x00\x00\x00\x0c\xff" + struct.pack(">Iq", 2**32 - 1, 0),
     E.TIMESTAMP_NANOSECONDS, 3),
    # ext types -128..-2: msgpack.ExtType refuses negative codes other than -1
    (b"\x81\xa1a\xd4\xfe\x00", E.EXT_TYPE_RESERVED, 3),
    (b"\x81\xa1a\xc7\x00\x80", E.EXT_TYPE_RESERVED, 3),
    (b"\x81\xa1a\xc8\x00\x01\x80\x00", E.EXT_TYPE_RESERVED, 3),
    (b"\x81\xa1a\x91\xd8\xf0" + b"\x00" * 16, E.EXT_TYPE_RESERVED, 4),
]


@pytest.mark.parametrize("data,reason,offset", MP_ERRORS)
def test_msgpack_error_table(mod, data, reason, offset):
    assert rm(mod, data) == ("err", reason, offset)
    assert rm(mod, b"\x00" + data + b"\x00\x00", start=1, end=1 + len(data), base=50) == (
        "err", reason, 50 + 1 + offset)
    assert not msgpack_ok(data)


MP_OK = [
    b"\x80", b"\xde\x00\x00", b"\xdf\x00\x00\x00\x00", b"\x81\xa0\xc0", b"\x81\xc4\x00\xc0",
    b"\x81\xc4\x01\xff\x01", b"\x81\xa1a\xc4\x01\xff", b"\x81\xa1a\xd4\x05\x00",
    b"\x81\xa1a\xc7\x00\x05", b"\x81\xa1a\xd4\x7f\x00", b"\x81\xa1a\xd6\xff\xff\xff\xff\xff",
    b"\x81\xa1a\xd7\xff" + struct.pack(">Q", (999_999_999 << 34) | (2**34 - 1)),
    b"\x81\xa1a\xc7\x0c\xff" + struct.pack(">Iq", 999_999_999, -(2**63)),
    b"\x81\xa1a\xc7\x04\xff\x00\x00\x00\x00", b"\x81\xa1a\xc8\x00\x08\xff" + b"\x00" * 8,
    b"\x81\xa1a\xca\x7f\x80\x00\x01", b"\x81\xa1a\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01",
    b"\x81\xa1a\xcf" + FF4 + FF4, b"\x81\xa1a\xd3\x80" + b"\x00" * 7, b"\x81\xa1a\xe0",
    b"\x81\xa1a\x90", b"\x81\xa1a\x80", b"\x81\xa1a\xdc\x00\x00", b"\x82\xa1a\x01\xa1a\x02",
    b"\x81\xa3\xef\xbb\xbf\xa4\xf4\x8f\xbf\xbf", b"\x81\xa1a\xa3\xed\x9f\xbf",
    b"\x81\xa1a\x93\xc0\xc2\xc3", b"\x81\xda\x00\x01a\xdb\x00\x00\x00\x01b",
]


@pytest.mark.parametrize("data", MP_OK)
def test_msgpack_accepted_table(mod, data):
    assert msgpack_ok(data)
    assert rm(mod, data) == ("ok", len(data))
    assert rm(mod, data + b"\xc1") == ("ok", len(data))
    assert rm(mod, data + b"\x00", end=len(data)) == ("ok", len(data))


SAMPLE_MSGPACK = pack({
    "dt": msgpack.Timestamp(1672494359, 123456000), "level": "info", "message": "Ünïcode 日本 😀",
    "n": -12.5, "i": [0, 127, 128, 255, 65536, 2**32, 2**63, -1, -33, -129, -(2**40)],
    "b": b"\x00\xff", "ok": True, "nil": None, "ext": RawExt(5, b"xyz"), "e2": RawExt(127, b"q" * 300),
    "ctx": {"k": {"x": [1, {"y": 0.5}]}, b"bin": []}, "s": "x" * 40, "long": "y" * 300,
    "ts12": msgpack.Timestamp(-5, 1), "ts4": msgpack.Timestamp(5),
})


def test_msgpack_every_truncation(mod):
    data = SAMPLE_MSGPACK
    assert rm(mod, data) == ("ok", len(data))
    for k in range(len(data)):
        out = rm(mod, data[:k])
        assert out[0] == "err" and out[1] in (V.UNEXPECTED_END, V.LENGTH_PAST_END), (k, out)
        assert out[2] <= k
        if out[1] == V.UNEXPECTED_END and k and data[out[2]] not in range(0xC4, 0xE0):
            assert out[2] == k
        assert rm(mod, data, end=k) == out
        assert not msgpack_ok(data[:k])


def test_huge_declared_lengths_allocate_nothing(mod):
    for header in (b"\xdb", b"\xc6", b"\xdd", b"\xdf"):
        data = b"\x81\xa1a" + header + FF4 + b"\x00" * 10
        assert rm(mod, data) == ("err", V.LENGTH_PAST_END, 3)
    data = b"\x81\xa1a\xc9" + FF4 + b"\xff"
    assert rm(mod, data) == ("err", V.LENGTH_PAST_END, 3)
    # the largest counts that still fit are walked, not allocated
    data = b"\x81\xa1a\xdd\x00\x01\x00\x00" + b"\xc0" * 65536
    assert rm(mod, data) == ("ok", len(data))
    assert rm(mod, data[:-1]) == ("err", V.LENGTH_PAST_END, 3)


# ------------------------------------------------------------------------ buffers & API

def test_buffer_kinds(mod):
    data = b'__{"a":[1,"\xc3\xa9"]}__'
    for buf in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert mod.scan_json_object(buf, 2, len(data) - 2, 10) == len(data) - 2
    mp = b"\x00" + pack({"a": [1, "é"]})
    for buf in (mp, bytearray(mp), memoryview(mp)):
        assert mod.scan_msgpack_map(buf, 1, len(mp), 10) == len(mp)
    # a memoryview of another item size is read as its bytes
    import array
    arr = array.array("H", [0])
    arr.frombytes(b'{"a":1}\x00')
    view = memoryview(arr)
    assert mod.scan_json_object(view, 2, 9, 10) == 9


def test_bad_arguments(mod):
    with pytest.raises(ValueError):
        mod.scan_json_object(b"{}", 0, 3, 10)
    with pytest.raises(ValueError):
        mod.scan_json_object(b"{}", 2, 1, 10)
    with pytest.raises(ValueError):
        mod.scan_msgpack_map(b"\x80", -1, 1, 10)
    with pytest.raises(TypeError):
        mod.scan_json_object("{}", 0, 2, 10)
    with pytest.raises(BufferError):
        mod.scan_json_object(memoryview(b"{}}}")[::2], 0, 2, 10)


def test_error_is_parse_error_with_base(mod):
    with pytest.raises(ParseError) as info:
        mod.scan_json_object(b'{"a":01}', 0, 8, 10, 1000)
    assert (info.value.status, info.value.detail, info.value.offset) == (406, V.INVALID_NUMBER, 1006)
    assert info.value.message == "Couldn't parse JSON content."
    with pytest.raises(ParseError) as info:
        mod.scan_msgpack_map(b"\x81\xa1a\xc1", 0, 4, 10, base=5)
    assert (info.value.detail, info.value.offset) == (V.RESERVED_BYTE, 8)


def test_large_input_releases_the_gil(mod):
    # over the nogil threshold of the compiled twin: same answers
    items = ",".join(f'"k{i}":["v{i}",{i}.5,{{"x":null}}]' for i in range(20000))
    data = ("{" + items + "}").encode()
    assert rj(mod, data) == ("ok", len(data))
    bad = data[:-1] + b"]"
    assert rj(mod, bad) == ("err", V.EXPECTED_COMMA_OR_BRACE, len(data) - 1)
    mp = pack({f"k{i}": [f"v{i}", i, {"x": None}] for i in range(20000)})
    assert rm(mod, mp) == ("ok", len(mp))
    assert rm(mod, mp[:-1]) == ("err", V.UNEXPECTED_END, len(mp) - 1)


def test_long_strings_and_numbers(mod):
    s = ("a" * 1000 + "é" + "b" * 7 + "日本" + "\\n" + "c" * 13).encode()
    data = b'{"s":"' + s + b'"}'
    assert rj(mod, data) == ("ok", len(data))
    for i in range(len(s)):  # a control byte at every position of a long string
        bad = data[:6 + i] + b"\x01" + data[6 + i:]
        out = rj(mod, bad)
        assert out[0] == "err"
        assert out == rj(validate, bad)
    data = b'{"n":' + b"1" * 100000 + b"e-99990}"
    assert rj(mod, data) == ("ok", len(data))
    data = b'{"n":' + b"1" * 100000 + b"e-99690}"
    assert rj(mod, data) == ("err", V.NUMBER_RANGE, 5)


# ----------------------------------------------------------------------- regressions

@pytest.mark.parametrize("token", [
    "0." + HS + "e309", HS + "0e-1", str(H - 1) + "9e-1", HS[0] + "." + HS[1:] + "0000e308",
])
def test_regression_boundary_digit_comparison(mod, token):
    """Digits spread over the integer part, the fraction and the exponent."""
    data = b'{"n":' + token.encode() + b"}"
    assert (rj(mod, data)[0] == "ok") == orjson_ok(data) == (not math.isinf(float(token)))


@st.composite
def boundary_spellings(draw):
    """Numbers within a few ulps of the overflow boundary, spelled every way."""
    digits = draw(st.sampled_from([HS, str(H - 1), str(H + 1), str(2**1024 - 2**971),
                                   str(2**1024 - 2**969), str(2**1024)]))
    k = draw(st.integers(1, len(digits)))          # significant digits kept
    sig = digits[:k]
    if draw(st.booleans()):                        # nudge the last kept digit
        last = int(sig[-1]) + draw(st.sampled_from([-1, 1]))
        if 0 <= last <= 9 and (k > 1 or last > 0):
            sig = sig[:-1] + str(last)
    sig += "0" * draw(st.integers(0, 3)) + draw(st.sampled_from(["", "1", "000001"]))
    lead = draw(st.integers(0, 4))                 # leading zeros after "0."
    point = draw(st.integers(0, len(sig)))         # where the decimal point goes
    if lead:
        mantissa, shift = "0." + "0" * lead + sig, lead + 1
    elif point in (0, len(sig)):
        mantissa, shift = sig, len(sig)
    else:
        mantissa, shift = sig[:point] + "." + sig[point:], point
    exp = len(digits) - shift                      # keep the magnitude near 1.8e308
    exp += draw(st.sampled_from([0, 0, 0, -1, 1]))
    sign = draw(st.sampled_from(["", "-"]))
    e = draw(st.sampled_from(["e", "E"]))
    zeros = "0" * draw(st.integers(0, 2))
    if exp == 0 and draw(st.booleans()):
        return sign + mantissa
    return f"{sign}{mantissa}{e}{'+' if exp >= 0 and draw(st.booleans()) else ''}" \
           f"{'-' if exp < 0 else ''}{zeros}{abs(exp)}"


@given(boundary_spellings())
def test_json_number_boundary_spellings(mod, token):
    data = b'{"n":' + token.encode() + b"}"
    expected_ok = not math.isinf(float(token))
    assert orjson_ok(data) == expected_ok, token
    assert rj(mod, data) == (("ok", len(data)) if expected_ok else ("err", V.NUMBER_RANGE, 5))


_UTF8_SECOND = list(range(0x80, 0x100)) + [0x41, 0x22, 0x5C, 0x00]


def test_json_utf8_two_byte_prefixes_exhaustive(mod):
    """Every lead byte with every continuation-range (and a few ASCII) second byte."""
    for b0 in range(0x80, 0x100):
        for b1 in _UTF8_SECOND:
            for tail in (b"\x80\x80", b"\xbf\xbf", b"a"):
                body = bytes([b0, b1]) + tail
                data = b'{"s":"' + body + b'"}'
                try:
                    body.decode("utf-8")
                    expected = ("ok", len(data))
                except UnicodeDecodeError as exc:
                    expected = ("err", V.INVALID_UTF8, 6 + exc.start)
                if b1 in (0x22, 0x5C, 0x00) and expected[0] == "ok":
                    continue  # not reachable: the lead byte alone is invalid there
                assert rj(mod, data) == expected, data


def test_msgpack_utf8_two_byte_prefixes_exhaustive(mod):
    for b0 in range(0x80, 0x100):
        for b1 in range(0x100):
            body = bytes([b0, b1, 0x80, 0x80])
            for payload in (body, body[:2], body[:3]):
                data = b"\x81\xa1s" + bytes([0xA0 | len(payload)]) + payload
                try:
                    payload.decode("utf-8")
                    expected = ("ok", len(data))
                except UnicodeDecodeError as exc:
                    expected = ("err", V.INVALID_UTF8, 4 + exc.start)
                assert rm(mod, data) == expected, data


# ------------------------------------------------------- reads stay inside [start, end)

class GuardedBuffer:
    """Bytes placed to end exactly at a PROT_NONE page: any read past ``end`` faults."""

    def __init__(self, size: int = 1 << 16) -> None:
        import ctypes
        import mmap
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        page = mmap.PAGESIZE
        self.size = (size + page - 1) // page * page
        addr = libc.mmap(None, self.size + page, mmap.PROT_READ | mmap.PROT_WRITE,
                         mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        if libc.mprotect(addr + self.size, page, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect failed")
        self.addr = addr
        self.ctypes = ctypes

    def view(self, data: bytes) -> memoryview:
        assert len(data) <= self.size
        start = self.addr + self.size - len(data)
        self.ctypes.memmove(start, data, len(data))
        return memoryview((self.ctypes.c_char * len(data)).from_address(start)).cast("B")


@pytest.fixture(scope="module")
def guarded():
    if not hasattr(os, "fork") or os.uname().sysname != "Linux":
        pytest.skip("needs Linux mmap/mprotect")
    return GuardedBuffer()


def test_compiled_reads_nothing_past_end(guarded):
    cy = _compiled()
    rnd = random.Random(5)
    samples = [SAMPLE_JSON, b'{"a":"' + b"x" * 40 + b'"}', b'{"a":[1,2,{"b":"\\ud83d\\ude00"}]}',
               b'{"a":' + b"1" * 50 + b"e1}", b'{"a":true,"b":false,"c":null}']
    for data in samples + [mutate(s, rnd) for s in samples for _ in range(30)]:
        for k in range(len(data) + 1):
            view = guarded.view(data[:k])
            assert rj(cy, view) == rj(validate, data[:k])
    mps = [SAMPLE_MSGPACK, pack({"a": "é" * 20, "b": [1, 2.5, None]})]
    for data in mps + [mutate(s, rnd, TRICKY_MSGPACK) for s in mps for _ in range(20)]:
        for k in range(len(data) + 1):
            view = guarded.view(data[:k])
            assert rm(cy, view) == rm(validate, data[:k])


# --------------------------------------------------------- regressions found in development

@pytest.mark.parametrize("code", [-128, -2, -100])
def test_regression_negative_ext_types_other_than_timestamp(mod, code):
    """msgpack.ExtType only takes codes 0..127, so unpackb refuses ext types -128..-2
    (found by the differential test: the spec allows them, msgpack-python does not)."""
    data = b"\x81\xa1a\xd4" + struct.pack(">b", code) + b"\x00"
    assert not msgpack_ok(data)
    assert rm(mod, data) == ("err", V.EXT_TYPE_RESERVED, 3)
    assert rm(mod, b"\x81\xa1a\xd4\x7f\x00") == ("ok", 6)


def test_regression_literal_cut_by_end_inside_a_longer_buffer(mod):
    """The Python twin compared a literal against the buffer past ``end``."""
    data = b'{"a":true}'
    for k in range(5, 9):
        assert rj(mod, data, end=k) == ("err", V.UNEXPECTED_END, k)


def test_regression_ext_code_generator_packs_negative_codes():
    """The test packer writes raw ext codes (msgpack.ExtType(-1, ...) raises)."""
    assert pack({"a": RawExt(-1, b"\x00" * 4)}) == b"\x81\xa1a\xd6\xff\x00\x00\x00\x00"
