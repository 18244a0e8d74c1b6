"""Pure-Python reference grammar validators: one JSON object / one MessagePack map.

The framing layer finds each event's byte span with a light structural scan and lets
orjson / msgpack build the objects.  These validators build no objects; they say whether
an event is exactly what the builder accepts and, when it is not, *where* and *why*:

* :func:`scan_json_object` accepts exactly what ``orjson.loads`` accepts for a JSON object
  (RFC 8259 plus orjson's rules: strict UTF-8, paired surrogate escapes, numbers that stay
  finite as a double), up to ``max_depth``;
* :func:`scan_msgpack_map` accepts exactly what
  ``msgpack.unpackb(raw=False, strict_map_key=True, timestamp=0)`` accepts for a map.

Both return the index just past the value (the caller checks what follows) and raise
:class:`fastingest.errors.ParseError` with ``detail`` one of the reasons of
:mod:`fastingest.constants` (``REASONS``, importable from here too) and
``offset = base + index``.  :mod:`fastingest._validate` is the Cython twin: same names,
same answers (return value, or detail and offset); its C-level API for other Cython
modules is declared in ``fastingest/_validate.pxd``. MessagePack headers are read from
the table both twins share (``constants.MSGPACK_HEADERS``).

``buf`` is any C-contiguous bytes-like object and only ``buf[start:end]`` is read.  Bad
arguments are programming errors, not bad input: ``ValueError`` unless
``0 <= start <= end <= len(buf)`` (in bytes), ``TypeError`` / ``BufferError`` for objects
without a contiguous buffer.  Any *content* fails with ``ParseError`` only; ``start == end``
is ``UNEXPECTED_END`` at ``end``.

Error offsets (both twins, pinned by ``tests/test_validate.py``)
-----------------------------------------------------------------
JSON: the offset of the first byte at which the input stops being a prefix of any valid
document, judged token by token, with these precisions:

* data ending before the value is complete: ``UNEXPECTED_END`` at ``end`` (also inside a
  string, an escape, a multi-byte UTF-8 sequence whose bytes so far are valid, a literal,
  or a number -- a number's range is only judged once its token is complete);
* a byte that cannot start/continue the structure: at that byte (``EXPECTED_*``,
  ``INVALID_LITERAL`` at the first differing letter, ``INVALID_NUMBER`` at the byte where
  a digit was required, or at the extra digit after a leading zero);
* ``NUMBER_RANGE`` (the token parses to +-inf as a correctly rounded double): at the
  number's first byte (its ``-`` if any);
* ``CONTROL_CHAR``: at the raw byte < 0x20;
* ``INVALID_ESCAPE`` (``\\`` followed by a byte not in ``"\\/bfnrtu``) and
  ``INVALID_U_ESCAPE`` (``\\u`` not followed by 4 hex digits): at the backslash;
* ``LONE_SURROGATE``: at the backslash of the surrogate escape that has no partner -- a
  low escape (DC00-DFFF) not preceded by a high one, or a high escape (D800-DBFF) not
  immediately followed by a low one.  The follower of a high escape is read as a whole
  escape first: if it is malformed (``\\x``, ``\\u12G4``) or cut off by ``end``, that
  error wins; if it is a well-formed escape but not a low surrogate (``\\n``, ``\\u0041``,
  another high), or not an escape at all, the high escape is the lone one;
* ``INVALID_UTF8``: at the first byte of the invalid sequence, like
  ``UnicodeDecodeError.start`` (overlong forms, encoded surrogates ED A0-BF, > U+10FFFF,
  stray continuation bytes, a sequence cut short by a following ASCII byte).
  Non-ASCII bytes outside strings are structural errors (``EXPECTED_*``) at that byte;
* ``nesting deeper than N``: at the ``{`` / ``[`` that opens level N+1;
* ``NOT_OBJECT``: at ``start`` when its byte is not ``{`` (no leading whitespace).

MessagePack: errors are reported at the *header* of the offending item (``RESERVED_BYTE``,
``MAP_KEY_NOT_STRING``, ``UNEXPECTED_END`` when the header -- for ints and floats the
whole item -- is cut off by ``end``, or at ``end`` when the data stops where the next
item should begin, ``LENGTH_PAST_END`` when a str/bin/ext payload,
a fixext payload, or an array/map element count cannot fit before ``end`` assuming one byte
per element and two per map entry, the timestamp reasons, ``nesting deeper than N``,
``EXT_TYPE_RESERVED`` for ext types -128..-2, which msgpack-python refuses,
``NOT_MAP`` at ``start``), except ``INVALID_UTF8`` which points at the first byte of the
invalid sequence inside a str payload (a sequence cut short by the payload's end is
invalid, never "unexpected end").  Checks on one item run in this order: reserved byte,
map key type, header cut off by ``end``, depth, declared length, payload content.

Where we knowingly differ from the builders: nesting beyond ``max_depth`` is rejected
(orjson itself stops at 1024 levels, msgpack at 1024 non-empty containers, so a
``max_depth`` above 1023 would accept what they refuse -- ``Limits`` caps it at 1000);
empty containers count as a level here.
"""
from __future__ import annotations

import math
import re
import struct
from typing import Optional, Union

from .constants import (CONTROL_CHAR, EXPECTED_COLON, EXPECTED_COMMA_OR_BRACE,
                        EXPECTED_COMMA_OR_BRACKET, EXPECTED_KEY, EXPECTED_VALUE,
                        EXT_TYPE_RESERVED, INVALID_ESCAPE, INVALID_LITERAL, INVALID_NUMBER,
                        INVALID_U_ESCAPE, INVALID_UTF8, LENGTH_PAST_END, LONE_SURROGATE,
                        MAP_KEY_NOT_STRING, MP_BIN, MP_EXT, MP_MAP, MP_RESERVED,
                        MP_SCALAR, MP_STR, MSGPACK_HEADERS, NOT_MAP, NOT_OBJECT, NUMBER_RANGE,
                        REASONS, RESERVED_BYTE, TIMESTAMP_LENGTH, TIMESTAMP_NANOSECONDS,
                        UNEXPECTED_END, too_deep)
from .errors import ParseError

_Buf = Union[bytes, bytearray, memoryview]

# The reasons (one home: fastingest.constants) are importable from here too.
__all__ = [
    "CONTROL_CHAR", "EXPECTED_COLON", "EXPECTED_COMMA_OR_BRACE", "EXPECTED_COMMA_OR_BRACKET",
    "EXPECTED_KEY", "EXPECTED_VALUE", "EXT_TYPE_RESERVED", "INVALID_ESCAPE", "INVALID_LITERAL",
    "INVALID_NUMBER", "INVALID_U_ESCAPE", "INVALID_UTF8", "LENGTH_PAST_END", "LONE_SURROGATE",
    "MAP_KEY_NOT_STRING", "NOT_MAP", "NOT_OBJECT", "NUMBER_RANGE", "REASONS", "RESERVED_BYTE",
    "TIMESTAMP_LENGTH", "TIMESTAMP_NANOSECONDS", "UNEXPECTED_END", "scan_json_object",
    "scan_msgpack_map", "too_deep",
]


class _Fail(Exception):
    """Internal: (reason, index) before ``base`` is applied."""

    def __init__(self, reason: str, index: int) -> None:
        self.reason = reason
        self.index = index


def _prepare(buf: _Buf, start: int, end: int, max_depth: int) -> _Buf:
    """The bytes-like object to read and the checked range (same checks in both twins)."""
    if not isinstance(buf, (bytes, bytearray)):
        view = memoryview(buf)
        if not view.c_contiguous:
            raise BufferError("buf must be C-contiguous")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        buf = view
    if not 0 <= start <= end <= len(buf):
        raise ValueError(f"need 0 <= start <= end <= len(buf), got {start}, {end}, {len(buf)}")
    return buf


# =============================================================================== JSON

LBRACE, RBRACE, LBRACKET, RBRACKET, QUOTE, BACKSLASH, COLON, COMMA = b'{}[]"\\:,'
MINUS, PLUS, DOT, ZERO, NINE, LOWER_E, UPPER_E, U = b"-+.09eEu"

_WS = re.compile(rb"[ \t\n\r]*")
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")
_HEXDIGIT = frozenset(b"0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = frozenset(b'"\\/bfnrt')
_DIGITS = frozenset(b"0123456789")
# A run of string bytes that need no attention (may contain non-ASCII bytes).
_STR_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')
# A whole string with only valid escapes; surrogates and UTF-8 are checked afterwards.
_STR_FULL = re.compile(rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"')
# The regex engine keeps backtracking state for every repetition of a group: bound the
# text the group-repeating fast paths may see, so a hostile 1 MiB event of escapes or
# members cannot make it allocate ~100 bytes per repetition. Longer spans walk.
_REGEX_SPAN = 64 * 1024
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NUMBER_SIMPLE = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_SCALAR = (rb'(?:("[^"\\\x00-\x1f]*")|(' + _NUMBER_SIMPLE + rb")|true|false|null)")
# Fast paths: one whole "key": scalar member (or array element) and what follows it.
_MEMBER = re.compile(
    rb'[ \t\n\r]*"([^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*' + _SCALAR + rb"[ \t\n\r]*([,}])")
_ELEMENT = re.compile(rb"[ \t\n\r]*" + _SCALAR + rb"[ \t\n\r]*([,\]])")
_LITERALS = {word[0]: word for word in (b"true", b"false", b"null")}


def _truncated_reason() -> str:
    """The reason CPython's UTF-8 decoder gives for a sequence the data cuts short."""
    try:
        b"\xc3".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason
    raise AssertionError("unreachable")  # pragma: no cover


_TRUNCATED = _truncated_reason()


def _check_utf8(buf: _Buf, a: int, b: int, end: int) -> None:
    """Strict UTF-8 over ``buf[a:b]``; a sequence cut off at ``end`` is 'end of data'."""
    seg = bytes(buf[a:b])
    if seg.isascii():
        return
    try:
        seg.decode("utf-8")
    except UnicodeDecodeError as exc:
        if b == end and exc.end == len(seg) and exc.reason == _TRUNCATED:
            raise _Fail(UNEXPECTED_END, end) from None
        raise _Fail(INVALID_UTF8, a + exc.start) from None


def _hex4(buf: _Buf, p: int, end: int) -> int:
    """The code unit of the ``\\uXXXX`` escape whose backslash is at ``p``."""
    m = _HEX4.match(buf, p + 2, end)
    if m is not None:
        return int(m.group(), 16)
    for i in range(p + 2, p + 6):
        if i >= end:
            raise _Fail(UNEXPECTED_END, end)
        if buf[i] not in _HEXDIGIT:
            raise _Fail(INVALID_U_ESCAPE, p)
    raise AssertionError("unreachable")  # pragma: no cover


def _escape(buf: _Buf, p: int, end: int) -> int:
    """Check the escape whose backslash is at ``p``; return the index after it (pair)."""
    if p + 1 >= end:
        raise _Fail(UNEXPECTED_END, end)
    e = buf[p + 1]
    if e in _SIMPLE_ESCAPES:
        return p + 2
    if e != U:
        raise _Fail(INVALID_ESCAPE, p)
    cu = _hex4(buf, p, end)
    if 0xDC00 <= cu <= 0xDFFF:
        raise _Fail(LONE_SURROGATE, p)
    if not 0xD800 <= cu <= 0xDBFF:
        return p + 6
    q = p + 6
    if q >= end:
        raise _Fail(UNEXPECTED_END, end)
    if buf[q] != BACKSLASH:
        raise _Fail(LONE_SURROGATE, p)
    if q + 1 >= end:
        raise _Fail(UNEXPECTED_END, end)
    e = buf[q + 1]
    if e == U:
        cu = _hex4(buf, q, end)
        if 0xDC00 <= cu <= 0xDFFF:
            return q + 6
        raise _Fail(LONE_SURROGATE, p)
    if e in _SIMPLE_ESCAPES:
        raise _Fail(LONE_SURROGATE, p)
    raise _Fail(INVALID_ESCAPE, q)


def _string_walk(buf: _Buf, pos: int, end: int) -> int:
    """Exact string check, in order; ``pos`` is at the opening quote."""
    p = pos + 1
    while True:
        q = _STR_PLAIN.match(buf, p, end).end()  # type: ignore[union-attr]  # a "*" pattern always matches
        _check_utf8(buf, p, q, end)
        if q >= end:
            raise _Fail(UNEXPECTED_END, end)
        c = buf[q]
        if c == QUOTE:
            return q + 1
        if c == BACKSLASH:
            p = _escape(buf, q, end)
            continue
        raise _Fail(CONTROL_CHAR, q)


def _string(buf: _Buf, pos: int, end: int) -> int:
    m = _STR_FULL.match(buf, pos, min(end, pos + _REGEX_SPAN))
    if m is None:
        return _string_walk(buf, pos, end)
    q = m.end()
    s = m.group()
    if BACKSLASH in s and _MAYBE_SURROGATE.search(s) is not None:
        return _string_walk(buf, pos, end)
    if not s.isascii():
        _check_utf8(buf, pos + 1, q - 1, -1)
    return q


def _number_range(buf: _Buf, a: int, b: int) -> None:
    if math.isinf(float(bytes(buf[a:b]))):
        raise _Fail(NUMBER_RANGE, a)


def _number(buf: _Buf, pos: int, end: int) -> int:
    m = _NUMBER.match(buf, pos, end)
    if m is None:  # '-' not followed by a digit
        if pos + 1 >= end:
            raise _Fail(UNEXPECTED_END, end)
        raise _Fail(INVALID_NUMBER, pos + 1)
    q = m.end()
    if q >= end:
        raise _Fail(UNEXPECTED_END, end)
    c = buf[q]
    frac, exp = m.group(1), m.group(2)
    if exp is None:
        if c in _DIGITS:  # only after a leading zero
            raise _Fail(INVALID_NUMBER, q)
        if c == DOT and frac is None:
            if q + 1 >= end:
                raise _Fail(UNEXPECTED_END, end)
            raise _Fail(INVALID_NUMBER, q + 1)
        if c == LOWER_E or c == UPPER_E:
            r = q + 1
            if r < end and (buf[r] == PLUS or buf[r] == MINUS):
                r += 1
            if r >= end:
                raise _Fail(UNEXPECTED_END, end)
            raise _Fail(INVALID_NUMBER, r)
    if exp is not None or q - pos > 300:
        _number_range(buf, pos, q)
    return q


def _literal(buf: _Buf, pos: int, end: int) -> int:
    word = _LITERALS[buf[pos]]
    n = len(word)
    if end - pos >= n and buf[pos:pos + n] == word:
        return pos + n
    for i in range(1, n):
        if pos + i >= end:
            raise _Fail(UNEXPECTED_END, end)
        if buf[pos + i] != word[i]:
            raise _Fail(INVALID_LITERAL, pos + i)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_scalar(buf: _Buf, m: "re.Match[bytes]", group: int, end: int) -> None:
    """Finish the checks of a fast-path scalar (its token is complete)."""
    s = m.group(group)
    if s is not None:
        if not s.isascii():
            _check_utf8(buf, m.start(group) + 1, m.end(group) - 1, -1)
        return
    s = m.group(group + 1)
    if s is not None and (len(s) > 300 or LOWER_E in s or UPPER_E in s):
        _number_range(buf, m.start(group + 1), m.end(group + 1))


# Fast accept path: one regex for a whole object nested at most _FAST_DEPTH levels whose
# strings hold only valid escapes and paired surrogates and whose numbers cannot overflow
# (<= 200 integer digits, exponent below 100); what it matches is valid once its
# non-ASCII bytes decode as UTF-8.  Everything else (and every error) takes the exact path.
_FAST_DEPTH = 3
_fast_object_re: "Optional[re.Pattern[bytes]]" = None


def _fast_object() -> "re.Pattern[bytes]":
    global _fast_object_re
    if _fast_object_re is None:
        w = rb"[ \t\n\r]*"
        normal = rb'[^"\\\x00-\x1f]*'
        special = (rb'\\(?:["\\/bfnrt]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4}'
                   rb"|u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})")
        string = b'"' + normal + b"(?:" + special + normal + b')*"'
        scalar = (string + rb"|-?(?:0|[1-9][0-9]{0,199})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?"
                  rb"(?![0-9.eE])|true|false|null")

        def obj(inner: bytes) -> bytes:
            member = string + w + b":" + w + b"(?:" + inner + b")" + w
            return rb"\{" + w + b"(?:" + member + b"(?:," + w + member + rb")*)?\}"

        def arr(inner: bytes) -> bytes:
            element = b"(?:" + inner + b")" + w
            return rb"\[" + w + b"(?:" + element + b"(?:," + w + element + rb")*)?\]"

        value = scalar
        for _ in range(_FAST_DEPTH - 1):
            value = b"|".join([scalar, obj(value), arr(value)])
        _fast_object_re = re.compile(obj(value))
    return _fast_object_re


# parser states
_KEY_OR_CLOSE, _KEY, _VALUE_OR_CLOSE, _VALUE, _AFTER = range(5)


def _scan_json(buf: _Buf, start: int, end: int, max_depth: int) -> int:
    if start >= end:
        raise _Fail(UNEXPECTED_END, end)
    if buf[start] != LBRACE:
        raise _Fail(NOT_OBJECT, start)
    if max_depth < 1:
        raise _Fail(too_deep(max_depth), start)
    if max_depth >= _FAST_DEPTH:
        m = _fast_object().match(buf, start, min(end, start + _REGEX_SPAN))
        if m is not None:
            q = m.end()
            span = bytes(buf[start:q])
            if span.isascii():
                return q
            try:
                span.decode("utf-8")
                return q
            except UnicodeDecodeError:
                pass
    stack = [True]  # True: object, False: array
    pos = start + 1
    state = _KEY_OR_CLOSE
    member, element, ws = _MEMBER.match, _ELEMENT.match, _WS.match
    while True:
        if state <= _KEY:  # a member (or, after '{', the '}')
            m = member(buf, pos, end)
            if m is not None:
                s = m.group(1)
                if not s.isascii():
                    _check_utf8(buf, m.start(1), m.end(1), -1)
                _check_scalar(buf, m, 2, end)
                pos = m.end()
                if m.group(4) == b"}":
                    stack.pop()
                    if not stack:
                        return pos
                    state = _AFTER
                else:
                    state = _KEY
                continue
            pos = ws(buf, pos, end).end()  # type: ignore[union-attr]  # a "*" pattern always matches
            if pos >= end:
                raise _Fail(UNEXPECTED_END, end)
            c = buf[pos]
            if c == QUOTE:
                pos = ws(buf, _string(buf, pos, end), end).end()  # type: ignore[union-attr]  # a "*" pattern always matches
                if pos >= end:
                    raise _Fail(UNEXPECTED_END, end)
                if buf[pos] != COLON:
                    raise _Fail(EXPECTED_COLON, pos)
                pos += 1
                state = _VALUE
                continue
            if c == RBRACE and state == _KEY_OR_CLOSE:
                stack.pop()
                pos += 1
                if not stack:
                    return pos
                state = _AFTER
                continue
            raise _Fail(EXPECTED_KEY, pos)

        if state == _AFTER:
            pos = ws(buf, pos, end).end()  # type: ignore[union-attr]  # a "*" pattern always matches
            if pos >= end:
                raise _Fail(UNEXPECTED_END, end)
            c = buf[pos]
            if stack[-1]:
                if c == COMMA:
                    pos += 1
                    state = _KEY
                elif c == RBRACE:
                    pos += 1
                    stack.pop()
                    if not stack:
                        return pos
                else:
                    raise _Fail(EXPECTED_COMMA_OR_BRACE, pos)
            else:
                if c == COMMA:
                    pos += 1
                    state = _VALUE
                elif c == RBRACKET:
                    pos += 1
                    stack.pop()
                    if not stack:  # pragma: no cover - the root is an object
                        return pos
                else:
                    raise _Fail(EXPECTED_COMMA_OR_BRACKET, pos)
            continue

        # _VALUE or _VALUE_OR_CLOSE
        if not stack[-1]:
            m = element(buf, pos, end)
            if m is not None:
                _check_scalar(buf, m, 1, end)
                pos = m.end()
                if m.group(3) == b"]":
                    stack.pop()
                    state = _AFTER
                else:
                    state = _VALUE
                continue
        pos = ws(buf, pos, end).end()  # type: ignore[union-attr]  # a "*" pattern always matches
        if pos >= end:
            raise _Fail(UNEXPECTED_END, end)
        c = buf[pos]
        if c == QUOTE:
            pos = _string(buf, pos, end)
        elif c == LBRACE or c == LBRACKET:
            if len(stack) >= max_depth:
                raise _Fail(too_deep(max_depth), pos)
            pos += 1
            if c == LBRACE:
                stack.append(True)
                state = _KEY_OR_CLOSE
            else:
                stack.append(False)
                state = _VALUE_OR_CLOSE
            continue
        elif c == MINUS or ZERO <= c <= NINE:
            pos = _number(buf, pos, end)
        elif c in _LITERALS:
            pos = _literal(buf, pos, end)
        elif c == RBRACKET and state == _VALUE_OR_CLOSE:
            pos += 1
            stack.pop()
        else:
            raise _Fail(EXPECTED_VALUE, pos)
        state = _AFTER


def scan_json_object(buf: _Buf, start: int, end: int, max_depth: int, base: int = 0) -> int:
    """Validate the JSON object starting exactly at ``buf[start]`` (read up to ``end``).

    Returns the index just past the object's closing ``}``; raises ``ParseError`` with
    ``offset = base + index`` of the first offending byte (see the module docstring).
    """
    buf = _prepare(buf, start, end, max_depth)
    try:
        return _scan_json(buf, start, end, max_depth)
    except _Fail as fail:
        raise ParseError(detail=fail.reason, offset=base + fail.index) from None


# ========================================================================= MessagePack

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_MAP_HEADERS = frozenset(b for b in range(256) if MSGPACK_HEADERS[b][0] == MP_MAP)


def _check_str_payload(buf: _Buf, a: int, b: int) -> None:
    seg = bytes(buf[a:b])
    if not seg.isascii():
        try:
            seg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Fail(INVALID_UTF8, a + exc.start) from None


def _scan_msgpack(buf: _Buf, start: int, end: int, max_depth: int) -> int:
    if start >= end:
        raise _Fail(UNEXPECTED_END, end)
    if buf[start] not in _MAP_HEADERS:
        raise _Fail(NOT_MAP, start)
    # The open container: items left (a map of n entries holds 2n and expects a key
    # whenever the count left is even) and whether it is a map; enclosing ones are saved
    # on ``stack``.  The root value sits in a virtual one-item frame at depth 0.
    rem, is_map, depth = 1, False, 0
    stack = []
    pos = start
    headers = MSGPACK_HEADERS
    while True:
        if pos >= end:
            raise _Fail(UNEXPECTED_END, end)
        b = buf[pos]
        if b < 0x80 and (rem & 1 or not is_map):   # positive fixint, not a key
            pos += 1
        elif 0xA0 <= b < 0xC0:                # fixstr
            body = pos + 1
            q = body + (b & 0x1F)
            if q > end:
                raise _Fail(LENGTH_PAST_END, pos)
            pos = q
            _check_str_payload(buf, body, q)
        else:
            cls, head, n = headers[b]
            if cls == MP_RESERVED:
                raise _Fail(RESERVED_BYTE, pos)
            if is_map and not rem & 1 and cls != MP_STR and cls != MP_BIN:
                raise _Fail(MAP_KEY_NOT_STRING, pos)
            if cls == MP_SCALAR:   # the whole item counts as its header
                head += n
            if pos + head > end:
                raise _Fail(UNEXPECTED_END, pos)
            if n < 0:
                if n == -1:
                    n = buf[pos + 1]
                elif n == -2:
                    n = _U16(buf, pos + 1)[0]
                else:
                    n = _U32(buf, pos + 1)[0]
            body = pos + head
            if cls == MP_SCALAR:
                pos = body
            elif cls == MP_STR or cls == MP_BIN:
                if n > end - body:
                    raise _Fail(LENGTH_PAST_END, pos)
                pos = body + n
                if cls == MP_STR:
                    _check_str_payload(buf, body, pos)
            elif cls == MP_EXT:
                if n > end - body:
                    raise _Fail(LENGTH_PAST_END, pos)
                code = buf[body - 1]
                if code == 0xFF:  # type -1: timestamp
                    if n == 8:
                        if (_U32(buf, body)[0] >> 2) > 999999999:
                            raise _Fail(TIMESTAMP_NANOSECONDS, pos)
                    elif n == 12:
                        if _U32(buf, body)[0] > 999999999:
                            raise _Fail(TIMESTAMP_NANOSECONDS, pos)
                    elif n != 4:
                        raise _Fail(TIMESTAMP_LENGTH, pos)
                elif code >= 0x80:  # types -128..-2: msgpack.ExtType refuses them
                    raise _Fail(EXT_TYPE_RESERVED, pos)
                pos = body + n
            else:  # array or map
                if depth >= max_depth:
                    raise _Fail(too_deep(max_depth), pos)
                items = 2 * n if cls == MP_MAP else n
                if items > end - body:
                    raise _Fail(LENGTH_PAST_END, pos)
                pos = body
                if items:
                    stack.append((rem, is_map))
                    rem, is_map = items, cls == MP_MAP
                    depth += 1
                    continue
        # one item done: count it off, closing every container it completes
        rem -= 1
        while not rem:
            if not depth:
                return pos
            rem, is_map = stack.pop()
            depth -= 1
            rem -= 1


def scan_msgpack_map(buf: _Buf, start: int, end: int, max_depth: int, base: int = 0) -> int:
    """Validate the MessagePack map starting exactly at ``buf[start]`` (read up to ``end``).

    Returns the index just past the map; raises ``ParseError`` with ``offset = base +
    index`` (see the module docstring).
    """
    buf = _prepare(buf, start, end, max_depth)
    try:
        return _scan_msgpack(buf, start, end, max_depth)
    except _Fail as fail:
        raise ParseError(detail=fail.reason, offset=base + fail.index) from None
