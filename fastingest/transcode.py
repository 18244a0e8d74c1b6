"""MessagePack events to JSON text without building them (the pure-Python twin).

:func:`msgpack_to_json` writes, for one validated MessagePack map, exactly the bytes
:func:`fastingest.jsonout.dumps` writes for the event the codec decodes from it — walking
the MessagePack once, building no dict, list or value object:

* str as JSON strings, escaped as orjson escapes (``"``, ``\\``, ``\\b \\t \\n \\f \\r``,
  other bytes below 0x20 as ``\\u00XX``; everything else as it is: the validator
  guaranteed UTF-8); bin as base64 text, map keys too;
* ints as decimals; floats as orjson writes them (the shortest repr, fixed notation for
  decimal exponents -5 to 15, else ``1.5e-7`` / ``1e+16``; NaN and the infinities
  ``null``), checked against orjson when the module is imported (where a future orjson
  writes them otherwise, every float is written by orjson itself);
* the timestamp extension (-1) as RFC 3339 text with nanoseconds for years 0001-9999,
  else ``{"seconds":s,"nanoseconds":ns}``; other extension types as
  ``{"ext":code,"data":base64}``;
* any nesting (an explicit stack, no recursion).

A map whose keys write the same JSON text twice (a repeated key, or a bin key whose
base64 equals a text key of the same map) keeps the last value at the first key's place
when decoded — and a bin key and a text key collide only after decoding — so such an
event is decoded and written by ``jsonout.dumps`` instead (the rare path).

``fastingest._transcode`` is the compiled twin (same names, same answers).
"""
from __future__ import annotations

import base64
import struct
from typing import List, Optional, Sequence, Tuple

import orjson

from .builders import unpack_msgpack
from .constants import MP_ARRAY, MP_BIN, MP_EXT, MP_MAP, MP_RESERVED, MP_STR, MSGPACK_HEADERS
from .jsonout import TIMESTAMP_TEXT_SECONDS, dumps, format_timestamp

__all__ = ["NATIVE_FLOATS", "events_to_json", "format_float", "msgpack_to_json"]

#: orjson's escapes for the bytes that need one (``"``, ``\\`` and the controls).
_ESCAPES = {i: b"\\u%04x" % i for i in range(0x20)}
_ESCAPES.update({0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r",
                 0x22: b'\\"', 0x5C: b"\\\\"})
_NEEDS_ESCAPE = bytes(sorted(_ESCAPES))

_UINT = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q"}
_INT = {0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}


def format_float(value: float) -> bytes:
    """``value`` as orjson writes a float (see the module docstring)."""
    if value != value or value in (float("inf"), float("-inf")):
        return b"null"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if not e:
        return text.encode()
    power = int(exponent)
    if power == -5:   # orjson writes 1.2e-05 as 0.000012
        sign = "-" if mantissa[0] == "-" else ""
        digits = mantissa.lstrip("-").replace(".", "")
        return f"{sign}0.0000{digits}".encode()
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}".encode()


#: Values whose orjson text the float writer must reproduce (checked at import).
_FLOAT_PROBES = (0.0, -0.0, 1.0, -2.5, 0.1, 1e-5, -1.2345e-5, 9.87654321e-5, 1e-6, 1.5e-7,
                 1e-4, 1e15, 9999999999999998.0, 1e16, -1.2345e16, 1e21, 1e22, 5e-324,
                 1.7976931348623157e308, 123456.789, 1e100, -1e-100, 2.0 ** 70)
#: Whether :func:`format_float` writes what orjson writes; if not, orjson writes floats.
NATIVE_FLOATS = all(format_float(v) == orjson.dumps(v) for v in _FLOAT_PROBES)


def _float(value: float) -> bytes:
    return format_float(value) if NATIVE_FLOATS else orjson.dumps(value)


def _string(data: bytes) -> bytes:
    """A JSON string of valid UTF-8 ``data``, escaped as orjson escapes."""
    if any(c < 0x20 or c == 0x22 or c == 0x5C for c in data):
        out = bytearray(b'"')
        for c in data:
            escape = _ESCAPES.get(c)
            if escape is None:
                out.append(c)
            else:
                out += escape
        out += b'"'
        return bytes(out)
    return b'"' + data + b'"'


def _b64(data: bytes) -> bytes:
    return b'"' + base64.b64encode(data) + b'"'


def _timestamp(data: bytes) -> bytes:
    """The timestamp extension's data (4, 8 or 12 bytes, validated) as jsonout writes it."""
    if len(data) == 4:
        seconds, nanoseconds = struct.unpack(">I", data)[0], 0
    elif len(data) == 8:
        both = struct.unpack(">Q", data)[0]
        seconds, nanoseconds = both & ((1 << 34) - 1), both >> 34
    elif len(data) == 12:
        nanoseconds, seconds = struct.unpack(">Iq", data)
    else:
        raise ValueError("invalid timestamp length")
    if TIMESTAMP_TEXT_SECONDS[0] <= seconds <= TIMESTAMP_TEXT_SECONDS[1]:
        return b'"' + format_timestamp(seconds, nanoseconds).encode() + b'"'
    return b'{"seconds":%d,"nanoseconds":%d}' % (seconds, nanoseconds)


def _scalar(data: bytes, pos: int, first: int, size: int) -> bytes:
    if first <= 0x7F:
        return b"%d" % first
    if first >= 0xE0:
        return b"%d" % (first - 0x100)
    if first == 0xC0:
        return b"null"
    if first == 0xC2:
        return b"false"
    if first == 0xC3:
        return b"true"
    payload = data[pos + 1:pos + 1 + size]
    if first == 0xCA:
        return _float(struct.unpack(">f", payload)[0])
    if first == 0xCB:
        return _float(struct.unpack(">d", payload)[0])
    fmt = _UINT.get(first) or _INT[first]
    return b"%d" % struct.unpack(fmt, payload)[0]


class _Container:
    """One open array or map of the walk."""

    __slots__ = ("left", "is_map", "keys", "key_next", "started")

    def __init__(self, count: int, is_map: bool) -> None:
        self.left = count            # elements (maps: entries) not yet started
        self.is_map = is_map
        self.keys: List[bytes] = []  # a map's keys as written
        self.key_next = True         # a map: the next item is a key
        self.started = False         # an element (entry) was written: a comma first


def _header(data: bytes, pos: int) -> Tuple[int, int, int]:
    """``(class, header size, length or count)`` of the item at ``pos`` (ValueError
    when the data ends before the item does)."""
    if pos >= len(data):
        raise ValueError("MessagePack data ends early")
    cls, head, n = MSGPACK_HEADERS[data[pos]]
    if pos + head > len(data):
        raise ValueError("MessagePack data ends early")
    if n < 0:
        n = int.from_bytes(data[pos + 1:pos + 1 - n], "big")
    if cls != MP_ARRAY and cls != MP_MAP and n > len(data) - pos - head:
        raise ValueError("MessagePack data ends early")
    return cls, head, n


def _walk(data: bytes) -> Optional[bytes]:
    """The JSON text of one event, or None when a map repeats a key. Checks bounds and
    structure (ValueError), not UTF-8: the validator did."""
    if not data or MSGPACK_HEADERS[data[0]][0] != MP_MAP:
        raise ValueError("not a MessagePack map")
    out: List[bytes] = []
    stack: List[_Container] = []
    pos = 0
    while True:
        top = stack[-1] if stack else None
        is_key = False
        if top is not None:   # the separator before this item
            if top.is_map and not top.key_next:
                out.append(b":")
                top.key_next = True
            else:
                if top.started:
                    out.append(b",")
                top.started = True
                top.left -= 1
                if top.is_map:
                    is_key, top.key_next = True, False
        cls, head, n = _header(data, pos)
        first = data[pos]
        if cls == MP_RESERVED or is_key and cls != MP_STR and cls != MP_BIN:
            raise ValueError("not a valid MessagePack event")
        if cls == MP_ARRAY or cls == MP_MAP:
            pos += head
            if n:
                out.append(b"{" if cls == MP_MAP else b"[")
                stack.append(_Container(n, cls == MP_MAP))
                continue
            text = b"{}" if cls == MP_MAP else b"[]"
        elif cls == MP_STR:
            text = _string(data[pos + head:pos + head + n])
            pos += head + n
        elif cls == MP_BIN:
            text = _b64(data[pos + head:pos + head + n])
            pos += head + n
        elif cls == MP_EXT:
            code = struct.unpack(">b", data[pos + head - 1:pos + head])[0]
            payload = data[pos + head:pos + head + n]
            pos += head + n
            if code == -1:
                text = _timestamp(payload)
            else:
                text = b'{"ext":%d,"data":%b}' % (code, _b64(payload))
        else:
            text = _scalar(data, pos, first, n)
            pos += head + n
        if is_key:
            assert top is not None
            if text in top.keys:
                return None
            top.keys.append(text)
        out.append(text)
        # close every container this value completed
        while stack:
            top = stack[-1]
            if top.left or not top.key_next:
                break
            stack.pop()
            out.append(b"}" if top.is_map else b"]")
        if not stack:
            if pos != len(data):
                raise ValueError("data after the MessagePack event")
            return b"".join(out)


def msgpack_to_json(data: bytes) -> bytes:
    """The JSON text of one validated MessagePack event (a map): what ``jsonout.dumps``
    writes for the event decoded from it, without decoding it. For events the codec
    validated (a raw batch); other data may raise ValueError."""
    text = _walk(bytes(data))
    if text is None:   # a repeated key: the decoded event decides which value stays
        text = dumps(unpack_msgpack(data))
    return text


def events_to_json(raw: Sequence[bytes]) -> List[bytes]:
    """:func:`msgpack_to_json` of every event of a raw batch."""
    return [msgpack_to_json(event) for event in raw]
