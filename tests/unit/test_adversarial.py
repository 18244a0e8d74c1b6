"""Adversarial bodies from RFC 8259 (JSON) and the MessagePack spec, category by category.

Every body goes through decode(), split() and StreamDecoder (whole and one byte at a
time) on both kernel sets, and must give the documented answer: the same status and
detail (the README's "Errors that say where" and "Implementation-defined choices"),
never a crash or another exception type.
"""
from __future__ import annotations

import struct

import msgpack
import pytest

from fastingest import IngestError, Limits, StreamDecoder, decode, split
from fastingest.batch import Batch

from helpers import RECEIVED

JSON, NDJSON, MSGPACK = "application/json", "application/x-ndjson", "application/msgpack"


def _error(exc: IngestError) -> tuple:
    return (type(exc).__name__, exc.status, exc.message, exc.detail, exc.offset, exc.line)


def _stream(body: bytes, ctype: str, step: int, **kw):
    dec = StreamDecoder(ctype, received_ns=RECEIVED, **kw)
    out = Batch()
    try:
        for i in range(0, len(body), step):
            out.extend(dec.feed(body[i:i + step]))
        out.extend(dec.close())
    except IngestError as exc:
        return _error(exc)
    return ("ok", out.events, list(out.times_ns))


def answer(body: bytes, ctype: str = JSON, stream_steps=(1, 7), **kw):
    """decode()'s outcome, after checking split() and StreamDecoder give the same."""
    try:
        batch = decode(body, ctype, received_ns=RECEIVED, **kw)
        got: tuple = ("ok", batch.events, list(batch.times_ns))
    except IngestError as exc:
        got = _error(exc)
    try:
        raw = split(body, ctype, received_ns=RECEIVED, **kw)
        assert got[0] == "ok", (got, raw.raw)
        assert len(raw.raw) == len(got[1]) and list(raw.times_ns) == got[2]
    except IngestError as exc:
        assert _error(exc) == got
    for step in stream_steps:
        streamed = _stream(body, ctype, step, **kw)
        assert streamed == got or repr(streamed) == repr(got), step   # NaN != NaN
    return got


def rejected(body: bytes, ctype: str = JSON, **kw):
    """(status, detail, offset) of a rejected body."""
    got = answer(body, ctype, **kw)
    assert got[0] != "ok", got
    return got[1], got[3], got[4]


def accepted(body: bytes, ctype: str = JSON, **kw) -> list:
    got = answer(body, ctype, **kw)
    assert got[0] == "ok", got
    return got[1]


def ev(value: bytes) -> bytes:
    """A JSON event whose "a" member is ``value``."""
    return b'{"a":' + value + b"}"


# ----------------------------------------------------------------------------- JSON
# RFC 8259 section 7: escapes; 8.2: unpaired surrogates; 8.1: UTF-8.

@pytest.mark.parametrize("body", [
    b'"\\x"', b'"\\a"', b'"\\\'"', b'"\\0"', b'"\\U0041"', b'"\\', b'"\\ "',
])
def test_bad_escape(impl, body):
    assert rejected(ev(body))[:2] == (406, "invalid escape") or rejected(ev(body))[0] == 406


@pytest.mark.parametrize("body", [b'"\\u12"', b'"\\uZZZZ"', b'"\\u-123"', b'"\\u 123"', b'"\\u00g0"'])
def test_bad_unicode_escape(impl, body):
    assert rejected(ev(body)) == (406, "invalid \\u escape", 6)


def test_escapes_that_are_valid(impl):
    body = ev(b'"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\ud83d\\ude00 \\uFFFF"')
    assert accepted(body) == [{"a": '" \\ / \b \f \n \r \t A \u00e9 \U0001F600 \uffff'}]


@pytest.mark.parametrize("body", [
    b'"\\ud800"', b'"\\udbff"', b'"\\udc00"', b'"\\udfff"', b'"\\ud800\\u0041"',
    b'"\\ud800x"', b'"\\ud800\\ud800"', b'"\\udc00\\ud800"', b'"\\ud800\\"',
])
def test_lone_surrogate_escape(impl, body):
    assert rejected(ev(body)) == (406, "lone surrogate", 6)


@pytest.mark.parametrize("raw", [
    b"\xff", b"\xfe", b"\x80", b"\xbf",                      # never valid / lone continuation
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xf0\x80\x80\x80",
    b"\xf0\x8f\xbf\xbf",                                      # overlong forms
    b"\xed\xa0\x80", b"\xed\xbf\xbf",                         # UTF-8-encoded surrogates
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80",  # beyond U+10FFFF
    b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98",                    # truncated sequences
    b"\xc3\x28", b"\xe2\x28\xa1",                             # bad continuation
])
def test_invalid_utf8_in_string(impl, raw):
    assert rejected(ev(b'"' + raw + b'"')) == (406, "invalid UTF-8", 6)
    assert rejected(b'{"' + raw + b'":1}') == (406, "invalid UTF-8", 2)      # in a key
    assert rejected(b'{"k":1}\n' + ev(b'"x' + raw + b'"'), NDJSON)[:2] == (406, "invalid UTF-8")


def test_valid_utf8_edges(impl):
    text = "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff\ud7ff\ue000"
    assert accepted(ev(b'"' + text.encode() + b'"')) == [{"a": text}]


@pytest.mark.parametrize("value,detail,offset", [
    (b"NaN", "expected a value", 5), (b"Infinity", "expected a value", 5),
    (b"-Infinity", "invalid number", 6), (b"nan", "invalid literal", 5),
    (b"inf", "expected a value", 5), (b"-NaN", "invalid number", 6),
])
def test_nan_and_infinity(impl, value, detail, offset):
    status, got_detail, got_offset = rejected(ev(value))
    assert status == 406 and got_detail == detail and got_offset in (offset, offset + 1)


@pytest.mark.parametrize("value", [b"01", b"-01", b"00", b"00.5", b"-00", b"0123e4"])
def test_leading_zeros(impl, value):
    assert rejected(ev(value))[:2] == (406, "invalid number")


@pytest.mark.parametrize("value", [b"1.", b"1.e3", b"1e", b"1e+", b"-", b"--1", b"1.2.3", b"0x10", b"1_000"])
def test_malformed_numbers(impl, value):
    assert rejected(ev(value))[0] == 406


@pytest.mark.parametrize("value", [b".5", b"+1"])
def test_number_without_integer_part(impl, value):
    assert rejected(ev(value)) == (406, "expected a value", 5)


@pytest.mark.parametrize("body,detail", [
    (b'{"a":1,}', "expected a string key"), (b'{"a":[1,]}', "expected a value"),
    (b'[{"a":1},]', "expected an object"), (b'{,}', "expected a string key"),
    (b'{"a":1,,"b":2}', "expected a string key"), (b'[{"a":1},,{"b":2}]', "expected an object"),
])
def test_trailing_and_double_commas(impl, body, detail):
    assert rejected(body)[:2] == (406, detail)


@pytest.mark.parametrize("byte", list(range(0x20)))
def test_control_characters_in_strings(impl, byte):
    assert rejected(ev(b'"x' + bytes([byte]) + b'"')) == (406, "control character in string", 7)
    assert rejected(b'{"k' + bytes([byte]) + b'":1}') == (406, "control character in string", 3)


def test_del_and_c1_controls_are_allowed(impl):
    # RFC 8259 only requires escaping U+0000..U+001F
    assert accepted(ev(b'"\x7f\xc2\x80\xc2\x9f"')) == [{"a": "\x7f\x80\x9f"}]


@pytest.mark.parametrize("ctype", [JSON, NDJSON])
@pytest.mark.parametrize("open_,close", [(b"[", b"]"), (b'{"a":', b"}")])
def test_100000_deep_nesting(impl, ctype, open_, close):
    depth = 100_000
    body = b'{"a":' + open_ * depth + b"1" + close * depth + b"}"
    status, detail, offset = rejected(body, ctype, stream_steps=(4096,))
    assert (status, detail) == (406, "nesting deeper than 128")
    assert offset == 5 + 127 * len(open_)


def test_100000_deep_nesting_at_top_level(impl):
    assert rejected(b"[" * 100_000 + b"]" * 100_000, stream_steps=(4096,)) == \
        (406, "expected an object", 1)
    assert rejected(b"[" * 100_000, NDJSON, stream_steps=(4096,)) == (406, "expected an object", 0)


def test_100000_deep_msgpack(impl):
    body = b"\x81\xa1a" + b"\x91" * 100_000 + b"\x01"
    assert rejected(body, MSGPACK, stream_steps=(4096,)) == (406, "nesting deeper than 128", 3 + 127)
    body = b"\x81\xa1a" + b"\x81\xa1a" * 100_000 + b"\x01"
    assert rejected(body, MSGPACK, stream_steps=(4096,))[:2] == (406, "nesting deeper than 128")


@pytest.mark.parametrize("value,expected", [
    (b"18446744073709551616", 18446744073709551616.0),           # 2^64: beyond 64 bits -> float
    (b"-9223372036854775809", -9223372036854775809.0),
    (b"9223372036854775807", 9223372036854775807),
    (b"18446744073709551615", 18446744073709551615),             # orjson keeps uint64
    (b"-9223372036854775808", -9223372036854775808),
    (b"1e-400", 0.0), (b"1.7976931348623157e308", 1.7976931348623157e308),
    (b"0." + b"0" * 500 + b"1", 0.0),
])
def test_huge_numbers_accepted(impl, value, expected):
    [event] = accepted(ev(value))
    assert event["a"] == expected and type(event["a"]) is type(expected)


@pytest.mark.parametrize("value", [b"1e400", b"-1e400", b"1.8e308", b"9" * 400, b"-" + b"9" * 400,
                                   b"1" + b"0" * 309 + b".5"])
def test_numbers_overflowing_a_double(impl, value):
    assert rejected(ev(value)) == (406, "number out of range", 5)


def test_huge_number_dt_is_kept_and_falls_back(impl):
    [event] = accepted(b'{"dt":18446744073709551616}')
    assert answer(b'{"dt":18446744073709551616}')[2] == [RECEIVED]
    assert event == {"dt": 18446744073709551616.0}


def test_bom(impl):
    assert accepted(b'\xef\xbb\xbf{"a":1}') == [{"a": 1}]
    assert accepted(b'\xef\xbb\xbf[{"a":1}]') == [{"a": 1}]
    assert accepted(b'\xef\xbb\xbf{"a":1}\n{"b":2}', NDJSON) == [{"a": 1}, {"b": 2}]
    assert rejected(b"\xef\xbb\xbf") == (406, "empty body", 3)
    assert accepted(b"\xef\xbb\xbf", NDJSON) == []
    assert rejected(b'\xef\xbb{"a":1}') == (406, "invalid byte order mark", 0)
    assert rejected(b'\xef{"a":1}')[:2] == (406, "invalid byte order mark")
    assert rejected(b' \xef\xbb\xbf{"a":1}') == (406, "expected an object or an array of objects", 1)
    assert rejected(b'{"a":1}\n\xef\xbb\xbf{"b":1}', NDJSON) == (406, "expected an object", 8)
    assert rejected(b'\xfe\xff\x00{', JSON)[0] == 406          # UTF-16 BOMs are not JSON
    assert rejected(b'\xef\xbb\xbf\x81\xa1a\x01', MSGPACK)[0] == 406


@pytest.mark.parametrize("body,ctype,detail,offset", [
    (b'{"a":1} x', JSON, "unexpected data after the body", 8),
    (b'{"a":1}{}', JSON, "unexpected data after the body", 7),
    (b'{"a":1}\x00', JSON, "unexpected data after the body", 7),
    (b'[{"a":1}] ]', JSON, "unexpected data after the body", 10),
    (b'[{"a":1}],', JSON, "unexpected data after the body", 9),
    (b'{"a":1} x\n', NDJSON, "unexpected data after the event", 8),
    (b'{"a":1}{"b":2}\n', NDJSON, "unexpected data after the event", 7),
    (msgpack.packb({"a": 1}) + b"\x00", MSGPACK, "unexpected data after the body", 4),
    (msgpack.packb([{"a": 1}]) + b"\xc0", MSGPACK, "unexpected data after the body", 5),
])
def test_trailing_garbage(impl, body, ctype, detail, offset):
    assert rejected(body, ctype) == (406, detail, offset)


@pytest.mark.parametrize("body", [b'[1]', b'"x"', b"[[]]", b"1", b"null", b"true", b'["a"]', b"[{}, 1]"])
def test_non_object_events(impl, body):
    status, detail, _ = rejected(body)
    assert status == 406 and detail in ("expected an object", "expected an object or an array of objects")


VALID_BODIES = [
    (JSON, b'[{"dt":"2022-12-31T13:45:59Z","m":"h\xc3\xa9","n":[1,-2.5e3,true,null],"o":{"p":"\\u00e9"}},'
           b' {"b":{}}]'),
    (JSON, b' {"message":"My first event","nested":{"values":123}} '),
    (NDJSON, b'{"a":1,"dt":1672490759123}\r\n\n{"b":"\\ud83d\\ude00"}\n{"c":[{}]}'),
    (MSGPACK, msgpack.packb([{"dt": msgpack.Timestamp(1672490759, 5), "b": b"\x00", "f": 1.5,
                              "l": [1, "x", None], "m": {"k": True}}, {"x": 2**40}], use_bin_type=True)),
    (MSGPACK, msgpack.packb({"s": "x" * 40, "d": {"e": msgpack.ExtType(7, b"abc")}})),
]


@pytest.mark.parametrize("ctype,body", VALID_BODIES)
def test_truncation_at_every_byte(impl, ctype, body):
    full = accepted(body, ctype)
    for cut in range(len(body)):
        got = answer(body[:cut], ctype, stream_steps=(1,))
        if got[0] == "ok":
            # only complete NDJSON lines (or a body that was whitespace-padded) survive
            assert got[1] == full[:len(got[1])], cut
        else:
            assert got[0] == "ParseError" and got[1] == 406, (cut, got)
            assert 0 <= got[4] <= cut, (cut, got)


# ----------------------------------------------------------------------- MessagePack

def test_reserved_byte_0xc1(impl):
    assert rejected(b"\x81\xa1a\xc1", MSGPACK) == (406, "reserved byte 0xc1", 3)
    assert rejected(b"\x81\xc1\x01", MSGPACK) == (406, "reserved byte 0xc1", 1)
    assert rejected(b"\x91\x81\xa1a\x91\xc1", MSGPACK) == (406, "reserved byte 0xc1", 5)
    assert rejected(b"\xc1", MSGPACK) == (406, "expected a map or an array of maps", 0)
    assert rejected(b"\x91\xc1", MSGPACK) == (406, "expected a map", 1)


# Every header that carries a length or a payload, cut after each of its bytes.
HEADERS = [
    b"\xc4\x01x", b"\xc5\x00\x01x", b"\xc6\x00\x00\x00\x01x",             # bin 8/16/32
    b"\xd9\x01x", b"\xda\x00\x01x", b"\xdb\x00\x00\x00\x01x",             # str 8/16/32
    b"\xdc\x00\x01\x01", b"\xdd\x00\x00\x00\x01\x01",                     # array 16/32
    b"\xde\x00\x01\xa1k\x01", b"\xdf\x00\x00\x00\x01\xa1k\x01",           # map 16/32
    b"\xcc\x01", b"\xcd\x00\x01", b"\xce\x00\x00\x00\x01", b"\xcf" + b"\x00" * 7 + b"\x01",
    b"\xd0\x01", b"\xd1\x00\x01", b"\xd2\x00\x00\x00\x01", b"\xd3" + b"\x00" * 7 + b"\x01",
    b"\xca" + struct.pack(">f", 1.5), b"\xcb" + struct.pack(">d", 1.5),
    b"\xd4\x05x", b"\xd5\x05xy", b"\xd6\x05" + b"x" * 4, b"\xd7\x05" + b"x" * 8, b"\xd8\x05" + b"x" * 16,
    b"\xc7\x01\x05x", b"\xc8\x00\x01\x05x", b"\xc9\x00\x00\x00\x01\x05x",   # ext 8/16/32
    b"\xd6\xff\x00\x00\x00\x01", b"\xd7\xff" + b"\x00" * 7 + b"\x01",
    b"\xc7\x0c\xff" + b"\x00" * 11 + b"\x01",                              # timestamps 32/64/96
    b"\xa3abc", b"\x92\x01\x02", b"\x81\xa1k\x01",
]


@pytest.mark.parametrize("value", HEADERS, ids=lambda v: v[:1].hex())
def test_every_truncated_header(impl, value):
    body = b"\x81\xa1a" + value
    accepted(body, MSGPACK)
    for cut in range(len(b"\x81\xa1a"), len(body)):
        status, detail, offset = rejected(body[:cut], MSGPACK, stream_steps=(1,))
        assert status == 406 and detail in ("unexpected end of data",
                                            "declared length runs past the end of the data"), cut
        assert 3 <= offset <= cut, (cut, offset)   # the header of the innermost cut element
    # the same value as the event itself inside an array body, cut the same way
    body = b"\x91" + body
    for cut in range(1, len(body)):
        assert rejected(body[:cut], MSGPACK, stream_steps=(1,))[0] == 406


@pytest.mark.parametrize("header", [
    b"\xc6\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x05",
])
def test_declared_length_2_32_minus_1_inside_an_event(impl, header):
    # cannot fit in max_event (1 MiB): a 413 at the header, before allocating anything
    assert rejected(b"\x81\xa1a" + header, MSGPACK) == (413, "event larger than 1048576 bytes", 3)
    # with a generous max_event it cannot fit in the data: a 406 at close
    big = Limits(max_event=20 * 1024 * 1024)
    status, detail, offset = rejected(b"\x81\xa1a" + header + b"\x00" * 8, MSGPACK, limits=big,
                                      stream_steps=(5,))
    assert status in (406, 413) and offset == 3, (status, detail, offset)


def test_declared_length_2_32_minus_1_at_top_level(impl):
    assert rejected(b"\xdd\xff\xff\xff\xff", MSGPACK) == \
        (406, "declared length runs past the end of the data", 0)
    assert rejected(b"\xdd\xff\xff\xff\xff\x80\x80", MSGPACK)[:2] == \
        (406, "declared length runs past the end of the data")
    assert rejected(b"\xdf\xff\xff\xff\xff", MSGPACK) == (413, "event larger than 1048576 bytes", 0)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3"])
def test_invalid_utf8_in_msgpack_str(impl, raw):
    n = bytes([0xa0 | len(raw)])
    assert rejected(b"\x81\xa1a" + n + raw, MSGPACK) == (406, "invalid UTF-8", 4)
    assert rejected(b"\x81" + n + raw + b"\x01", MSGPACK) == (406, "invalid UTF-8", 2)          # key
    assert rejected(b"\x81\xa1a\xd9" + bytes([len(raw)]) + raw, MSGPACK) == (406, "invalid UTF-8", 5)


def test_invalid_utf8_in_msgpack_bin_is_fine(impl):
    assert accepted(b"\x81\xa1a\xc4\x02\xff\xfe", MSGPACK) == [{"a": b"\xff\xfe"}]


@pytest.mark.parametrize("key", [b"\x01", b"\xc0", b"\xc2", b"\xc3", b"\xcb" + struct.pack(">d", 1.0),
                                 b"\x91\x01", b"\x80", b"\xd4\x05x", b"\xd6\xff\x00\x00\x00\x01"])
def test_non_string_map_keys(impl, key):
    assert rejected(b"\x81" + key + b"\x01", MSGPACK) == (406, "map key must be a string", 1)
    assert rejected(b"\x81\xa1a\x81" + key + b"\x01", MSGPACK) == (406, "map key must be a string", 4)


def test_bin_keys_are_accepted_as_bytes(impl):
    assert accepted(b"\x81\xc4\x01a\x01", MSGPACK) == [{b"a": 1}]


def test_ext_types(impl):
    assert accepted(msgpack.packb({"e": msgpack.ExtType(5, b"x")}), MSGPACK) == \
        [{"e": msgpack.ExtType(5, b"x")}]
    assert accepted(msgpack.packb({"e": msgpack.ExtType(127, b"")}), MSGPACK) == \
        [{"e": msgpack.ExtType(127, b"")}]
    # -1 is the timestamp, in its three sizes
    for body in (b"\x81\xa2dt\xd6\xff\x00\x00\x00\x01", b"\x81\xa2dt\xd7\xff" + struct.pack(">Q", (5 << 34) | 1),
                 b"\x81\xa2dt\xc7\x0c\xff" + struct.pack(">Iq", 5, -1)):
        [event] = accepted(body, MSGPACK)
        assert isinstance(event["dt"], msgpack.Timestamp)
    # the other negative types are reserved by the spec
    for code in (0xfe, 0x80, 0xfb):
        assert rejected(b"\x81\xa1e\xd4" + bytes([code]) + b"\x00", MSGPACK) == \
            (406, "reserved extension type", 3)
    # a timestamp of a length other than 4/8/12, or with nanoseconds >= 1e9
    assert rejected(b"\x81\xa1e\xd4\xff\x00", MSGPACK) == (406, "invalid timestamp length", 3)
    assert rejected(b"\x81\xa1e\xc7\x05\xff" + b"\x00" * 5, MSGPACK) == (406, "invalid timestamp length", 3)
    assert rejected(b"\x81\xa1e\xd7\xff" + b"\xff" * 8, MSGPACK) == \
        (406, "timestamp nanoseconds out of range", 3)


def test_msgpack_edge_values(impl):
    [event] = accepted(msgpack.packb({"u": 2**64 - 1, "i": -2**63, "f": float("inf"),
                                      "e": "", "b": b""}), MSGPACK)
    assert event == {"u": 2**64 - 1, "i": -2**63, "f": float("inf"), "e": "", "b": b""}
    [event] = accepted(msgpack.packb({"n": float("nan")}), MSGPACK)
    assert event["n"] != event["n"]
    assert accepted(b"\x90", MSGPACK) == []
    assert accepted(b"\x80", MSGPACK) == [{}]
    assert rejected(b"", MSGPACK) == (406, "empty body", 0)


def test_duplicate_keys_last_wins_everywhere(impl):
    assert accepted(b'{"a":1,"a":2}') == [{"a": 2}]
    assert answer(b'{"dt":1672490759,"dt":"x"}')[2] == [RECEIVED]
    assert answer(b'{"dt":"x","dt":1672490759}')[2] == [1672490759 * 10**9]
    assert accepted(b"\x82\xa1a\x01\xa1a\x02", MSGPACK) == [{"a": 2}]


@pytest.mark.parametrize("body,expected", [
    (b'{"a":1}\r{"b":2}', (406, "unexpected data after the event", 8)),   # a lone CR ends no line
    (b'{"a":1}\x0b\n', (406, "unexpected data after the event", 7)),      # VT is not JSON whitespace
    (b'\x0c{"a":1}\n', (406, "expected an object", 0)),                  # nor is FF
    (b'{"a":1}\n\x00\n', (406, "expected an object", 8)),
    (b'{"a":1}\n\xef\xbb\xbf\n', (406, "expected an object", 8)),        # a BOM only opens the body
])
def test_ndjson_line_separators_and_stray_bytes(impl, body, expected):
    assert rejected(body, NDJSON) == expected


def test_ndjson_whitespace_only_lines(impl):
    assert accepted(b'{"a":1}\r\r\n', NDJSON) == [{"a": 1}]
    assert accepted(b"\r\n\r\n \t \n", NDJSON) == []


def test_nul_escapes_are_fine(impl):
    assert accepted(b'{"\\u0000":"\\u0000"}') == [{"\x00": "\x00"}]


def _buffers(body: bytes):
    import array
    yield "bytearray", bytearray(body)
    yield "memoryview", memoryview(body)
    yield "slice", memoryview(b"xx" + body + b"yy")[2:-2]
    yield "array-b", array.array("b", body)
    pad = body + b" " * (-len(body) % 4)
    yield "cast-I", memoryview(pad).cast("I")
    yield "strided", memoryview(bytes(b for c in body for b in (c, 0x20)))[::2]
    if len(pad) % 4 == 0 and pad:
        yield "2-D", memoryview(pad).cast("B", (4, len(pad) // 4))


def _outcome(fn, buf, ctype):
    try:
        got = fn(buf, ctype, received_ns=RECEIVED)
    except IngestError as exc:
        return _error(exc)
    items = got.raw if hasattr(got, "raw") else got.events
    return ("ok", repr(items), list(got.times_ns), list(got.offsets))


@pytest.mark.parametrize("ctype,body", VALID_BODIES + [(JSON, b'[{"a":1},{"b":tru}]'), (NDJSON, b'{"a":1}\n{')])
def test_any_buffer_layout_gives_the_bytes_answer(impl, ctype, body):
    """Regression: a memoryview of another format (array('b'), cast('I')), a strided or
    2-D view made the compiled decode()/split() raise ValueError/BufferError while the
    pure-Python twin decoded the bytes. Every buffer now gives the answer of its bytes."""
    for name, buf in _buffers(body):
        view = memoryview(buf)
        data = view.tobytes()
        for fn in (decode, split):
            assert _outcome(fn, buf, ctype) == _outcome(fn, data, ctype), (name, fn.__name__)
        whole = _outcome(decode, data, ctype)
        dec = StreamDecoder(ctype, received_ns=RECEIVED)
        try:
            events = dec.feed(buf).events + dec.close().events
        except IngestError as exc:
            assert _error(exc) == whole, name
        else:
            assert whole[0] == "ok" and repr(events) == whole[1], name
