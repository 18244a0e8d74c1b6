"""The codec's constants, in one place: both kernel sets import them.

The pure-Python twins use these names directly; the compiled twins read them when they
are imported (reason codes, scanner states, the MessagePack header table) into C
globals and tables, so nothing here is ever written a second time in another language.

* body formats (``KIND_*``) and the sizes the layers share;
* each format scanner's lifecycle: its states, in order (a state's number is its
  position);
* the reasons an :class:`~fastingest.errors.IngestError` gives in ``detail``: the
  framing layer's, then the validators' with the codes the compiled validator reports;
* the MessagePack header table, for framing, validation and reading ``dt`` alike;
* the kinds of value the raw path's shallow read of an event's members reports.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

#: What the codec accepts wherever it takes bytes.
BytesLike = Union[bytes, bytearray, memoryview]
MiB = 1024 * 1024

# -- body formats and sizes ---------------------------------------------------------------

#: Body formats: the ``kind`` a Content-Type maps to (``formats.MEDIA_TYPES``).
KIND_JSON = 1
KIND_NDJSON = 2
KIND_MSGPACK = 3
#: JSON objects one after another, with optional whitespace between them (Splunk HEC's
#: event bodies). No Content-Type maps to it: the protocols that send it choose it.
KIND_JSON_CONCAT = 4
KIND_NAMES: Dict[int, str] = {KIND_JSON: "json", KIND_NDJSON: "ndjson", KIND_MSGPACK: "msgpack",
                              KIND_JSON_CONCAT: "json-concat"}

#: Framed events are built in runs of about this many bytes (one orjson / msgpack call
#: per run): orjson reserves a worst-case buffer for its whole input, so one call over a
#: large body costs page faults and several times the body in memory.
BUILD_RUN_BYTES = 64 * 1024

#: Bodies up to this size may take the one-object shortcut (``oneobject``).
ONE_OBJECT_MAX = 64 * 1024

#: Header values (Content-Type, Content-Encoding) longer than this are parsed every time
#: instead of being cached: the caches are keyed by the raw value, and a client could
#: otherwise pin megabytes of header text in them, unauthenticated.
MAX_CACHED_HEADER = 128

# -- the raw path's shallow read of an event's members (members.py) ------------------------

#: What a top-level member's value is, as ``members.top_members`` reports it; JSON_INT is
#: an integer orjson reads as an int (-2**63 to 2**64-1), JSON_NUMBER any other number.
JSON_MISSING = 0
JSON_STRING = 1
JSON_INT = 2
JSON_NUMBER = 3
JSON_NULL = 4
JSON_FALSE = 5
JSON_TRUE = 6
JSON_OBJECT = 7
JSON_ARRAY = 8

# -- scanner lifecycles -------------------------------------------------------------------
# Each tuple names one scanner's states in order; both twins number them by position and
# ``scanner.state`` answers the name. finish() ends in END (the body is complete; no more
# feeding) or FAILED, which is where a fatal fault leaves a scanner: every later
# feed()/finish() reports that fault again.

#: JsonScanner: one object, or an array of objects.
JSON_STATES: Tuple[str, ...] = (
    "START",    # nothing but whitespace yet (the body may open with a UTF-8 BOM)
    "BOM1",     # saw EF at offset 0
    "BOM2",     # saw EF BB
    "FIRST",    # after '[': an object or ']'
    "NEXT",     # after ',': an object
    "AFTER",    # after an element: ',' or ']'
    "EVENT",    # inside an event
    "END",      # the top-level value is complete: only whitespace may follow
    "FAILED",
)

#: NdjsonScanner: one object per line.
NDJSON_STATES: Tuple[str, ...] = (
    "START",    # at a line's start (or in its leading whitespace)
    "BOM1",     # saw EF at offset 0
    "BOM2",     # saw EF BB
    "EVENT",    # inside the line's event
    "AFTER",    # after the event: only whitespace until the newline
    "SKIP",     # errors="collect": skipping the rest of a bad line
    "END",      # finish(): the body ended, every line complete
    "FAILED",
)

#: JsonConcatScanner: JSON objects one after another (``{...}{...}``, whitespace allowed
#: around each; none needed between them).
JSON_CONCAT_STATES: Tuple[str, ...] = (
    "START",    # before the first object: whitespace (the body may open with a UTF-8 BOM)
    "BOM1",     # saw EF at offset 0
    "BOM2",     # saw EF BB
    "EVENT",    # inside an object
    "AFTER",    # after an object: whitespace, then the next object or the end
    "END",      # finish(): the body ended between objects (after none, too)
    "FAILED",
)

#: MsgpackScanner: one map, or an array of maps.
MSGPACK_STATES: Tuple[str, ...] = (
    "START",    # before the top-level header
    "ELEMS",    # inside the top-level array: a map or the array's end
    "EVENT",    # inside an event
    "END",      # the top-level value is complete: nothing may follow
    "FAILED",
)

# -- reasons (IngestError.detail) -----------------------------------------------------------

# The framing layer's (the body's shape, what follows an event, limits).
EMPTY_BODY = "empty body"
EXPECTED_BODY_JSON = "expected an object or an array of objects"
EXPECTED_OBJECT = "expected an object"
DATA_AFTER_BODY = "unexpected data after the body"
DATA_AFTER_EVENT = "unexpected data after the event"
LINE_ENDED = "line ended inside the event"
BAD_BOM = "invalid byte order mark"
EXPECTED_BODY_MSGPACK = "expected a map or an array of maps"
EXPECTED_MAP = "expected a map"

# The validators' (the grammar inside an event); some are the framing layer's too.
UNEXPECTED_END = "unexpected end of data"
NOT_OBJECT = "not an object"
EXPECTED_VALUE = "expected a value"
EXPECTED_KEY = "expected a string key"
EXPECTED_COLON = "expected ':'"
EXPECTED_COMMA_OR_BRACE = "expected ',' or '}'"
EXPECTED_COMMA_OR_BRACKET = "expected ',' or ']'"
INVALID_ESCAPE = "invalid escape"
INVALID_U_ESCAPE = "invalid \\u escape"
LONE_SURROGATE = "lone surrogate"
CONTROL_CHAR = "control character in string"
INVALID_UTF8 = "invalid UTF-8"
INVALID_NUMBER = "invalid number"
NUMBER_RANGE = "number out of range"
INVALID_LITERAL = "invalid literal"
NOT_MAP = "not a map"
RESERVED_BYTE = "reserved byte 0xc1"
LENGTH_PAST_END = "declared length runs past the end of the data"
MAP_KEY_NOT_STRING = "map key must be a string"
TIMESTAMP_LENGTH = "invalid timestamp length"
TIMESTAMP_NANOSECONDS = "timestamp nanoseconds out of range"
EXT_TYPE_RESERVED = "reserved extension type"

#: The validators' reasons by code: the compiled validator reports the position of its
#: reason in this tuple. Code 0 is the nesting error (its text names the limit: too_deep).
REASONS: Tuple[Optional[str], ...] = (
    None, UNEXPECTED_END, NOT_OBJECT, EXPECTED_VALUE, EXPECTED_KEY, EXPECTED_COLON,
    EXPECTED_COMMA_OR_BRACE, EXPECTED_COMMA_OR_BRACKET, INVALID_ESCAPE, INVALID_U_ESCAPE,
    LONE_SURROGATE, CONTROL_CHAR, INVALID_UTF8, INVALID_NUMBER, NUMBER_RANGE,
    INVALID_LITERAL, NOT_MAP, RESERVED_BYTE, LENGTH_PAST_END, MAP_KEY_NOT_STRING,
    TIMESTAMP_LENGTH, TIMESTAMP_NANOSECONDS, EXT_TYPE_RESERVED,
)

#: Validator reasons that only mean "the data stops here": while framing, an event cut at
#: the end of what arrived so far is not at fault for it.
CUT_OFF: Tuple[str, ...] = (UNEXPECTED_END, LENGTH_PAST_END)


def too_deep(max_depth: int) -> str:
    """The nesting reason for a limit of ``max_depth`` levels."""
    return f"nesting deeper than {max_depth}"


def event_too_large(max_event: int) -> str:
    """The 413 reason for one event over ``max_event`` bytes."""
    return f"event larger than {max_event} bytes"


def body_too_large(max_body: int) -> str:
    """The 413 reason for a body over ``max_body`` bytes."""
    return f"body larger than {max_body} bytes"


# -- MessagePack item headers ---------------------------------------------------------------

# Item classes.
MP_SCALAR = 0     # nil, bool, int, float: no container, no variable payload
MP_STR = 1
MP_BIN = 2
MP_EXT = 3        # ext and fixext: a type byte, then the data
MP_ARRAY = 4
MP_MAP = 5        # n entries: 2n items, keys at even positions
MP_RESERVED = 6   # 0xc1, never used


def _header_table() -> Tuple[Tuple[int, int, int], ...]:
    """``MSGPACK_HEADERS[first byte] = (class, head, n)``.

    ``head`` is the size of the item's header: the first byte, the length or count field
    and, for ext, the type byte. ``n >= 0``: the payload size in bytes (scalars, str,
    bin, ext data) or the element count (array, map) the first byte gives; ``n < 0``:
    they follow the first byte as a ``-n``-byte big-endian field.
    """
    table: List[Tuple[int, int, int]] = [(MP_RESERVED, 1, 0)] * 256
    for b in range(0x00, 0x80):                       # positive fixint
        table[b] = (MP_SCALAR, 1, 0)
    for b in range(0x80, 0x90):                       # fixmap
        table[b] = (MP_MAP, 1, b & 0x0F)
    for b in range(0x90, 0xA0):                       # fixarray
        table[b] = (MP_ARRAY, 1, b & 0x0F)
    for b in range(0xA0, 0xC0):                       # fixstr
        table[b] = (MP_STR, 1, b & 0x1F)
    for b in (0xC0, 0xC2, 0xC3):                      # nil, false, true
        table[b] = (MP_SCALAR, 1, 0)
    for b, size in zip(range(0xCA, 0xD4), (4, 8, 1, 2, 4, 8, 1, 2, 4, 8)):
        table[b] = (MP_SCALAR, 1, size)               # float 32/64, uint 8-64, int 8-64
    for b, size in zip(range(0xD4, 0xD9), (1, 2, 4, 8, 16)):
        table[b] = (MP_EXT, 2, size)                  # fixext 1-16
    for first, cls in ((0xC4, MP_BIN), (0xD9, MP_STR)):
        for i, width in enumerate((1, 2, 4)):         # bin / str 8, 16, 32
            table[first + i] = (cls, 1 + width, -width)
    for i, width in enumerate((1, 2, 4)):             # ext 8, 16, 32
        table[0xC7 + i] = (MP_EXT, 2 + width, -width)
    table[0xDC], table[0xDD] = (MP_ARRAY, 3, -2), (MP_ARRAY, 5, -4)
    table[0xDE], table[0xDF] = (MP_MAP, 3, -2), (MP_MAP, 5, -4)
    for b in range(0xE0, 0x100):                      # negative fixint
        table[b] = (MP_SCALAR, 1, 0)
    return tuple(table)


#: The header of every MessagePack first byte (see ``_header_table``).
MSGPACK_HEADERS = _header_table()
