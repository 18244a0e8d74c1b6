"""Events back to JSON: what the CLI prints and the stores keep.

Every event the codec accepts can be written. MessagePack events can hold values JSON
has no type for; they are written as:

* ``msgpack.Timestamp`` → RFC 3339 string with nanoseconds (UTC) for years 0001–9999,
  else ``{"seconds": s, "nanoseconds": ns}`` (the extension's own fields; MessagePack
  timestamps reach ±292 billion years, RFC 3339 text does not);
* ``bytes`` → base64 string, also as a map key (a map whose keys then collide keeps the
  last value, as duplicate keys do on input);
* ``msgpack.ExtType`` → ``{"ext": code, "data": base64}``;
* float NaN and infinities → ``null`` (orjson's choice; JSON has no such numbers).

orjson writes nearly everything; what it refuses (``bytes`` map keys, nesting deeper
than its 254 levels, reachable with ``Limits(max_depth=...)`` up to 1000) goes through
a slower iterative writer with the same output.
"""
from __future__ import annotations

import base64
import datetime
from typing import Any, Dict, Iterator, List, Sequence

import msgpack
import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_EPOCH = datetime.date(1970, 1, 1)
#: The seconds RFC 3339 text can show through :mod:`datetime`: 0001-01-01 … 9999-12-31
#: (a ``msgpack.Timestamp`` outside is written as its fields).
TIMESTAMP_TEXT_SECONDS = _TEXT_SECONDS = (
    (datetime.date(1, 1, 1) - _EPOCH).days * 86400,
    (datetime.date(9999, 12, 31) - _EPOCH).days * 86400 + 86399,
)


def format_ns(ns: int) -> str:
    """RFC 3339 UTC text with nanoseconds for an int64 ns timestamp."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return format_timestamp(seconds, frac)


def format_timestamp(seconds: int, nanoseconds: int) -> str:
    """RFC 3339 UTC text with nanoseconds for a time within
    :data:`TIMESTAMP_TEXT_SECONDS` (what a ``msgpack.Timestamp`` is written as)."""
    days, rem = divmod(seconds, 86400)
    day = _EPOCH + datetime.timedelta(days=days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:{ss:02d}.{nanoseconds:09d}Z"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _default(value: Any) -> Any:
    if isinstance(value, msgpack.Timestamp):
        if _TEXT_SECONDS[0] <= value.seconds <= _TEXT_SECONDS[1]:
            return format_timestamp(value.seconds, value.nanoseconds)
        return {"seconds": value.seconds, "nanoseconds": value.nanoseconds}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _b64(bytes(value))
    if isinstance(value, msgpack.ExtType):
        return {"ext": value.code, "data": _b64(value.data)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON with the MessagePack-only types mapped (module doc);
    TypeError only for types no decoder produces."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return _dumps_iteratively(value)


def dumps_each(values: Sequence[Any]) -> List[bytes]:
    """:func:`dumps` of each value, each in a bytes object of its own size: orjson's
    output keeps the buffer it wrote into (4 KiB for a short event), so a batch of
    32,768 tiny events would otherwise hold 128 MiB."""
    return [bytes(memoryview(dumps(value))) for value in values]


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return _b64(bytes(key))
    # int, float, bool, None...: orjson's OPT_NON_STR_KEYS spelling
    text: str = next(iter(orjson.loads(orjson.dumps({key: 0}, option=_OPTIONS))))
    return text


def _dumps_iteratively(value: Any) -> bytes:
    """:func:`dumps` without recursion and with any map keys (the rare path)."""
    out: List[bytes] = []
    stack: List[_Frame] = []

    def open_value(item: Any) -> None:
        if isinstance(item, dict):
            pairs: Dict[str, Any] = item
            if not all(type(k) is str for k in item):
                pairs = {_key(k): v for k, v in item.items()}   # last one wins
            out.append(b"{")
            stack.append(_Frame(iter(pairs.items()), True))
        elif isinstance(item, list) or type(item) is tuple:   # ExtType is a namedtuple
            out.append(b"[")
            stack.append(_Frame(iter(item), False))
        else:
            out.append(orjson.dumps(item, default=_default, option=_OPTIONS))

    open_value(value)
    while stack:
        frame = stack[-1]
        item: Any = next(frame.items, _END)
        if item is _END:
            stack.pop()
            out.append(b"}" if frame.is_map else b"]")
            continue
        if frame.first:
            frame.first = False
        else:
            out.append(b",")
        if frame.is_map:
            out.append(orjson.dumps(item[0]))
            out.append(b":")
            item = item[1]
        open_value(item)
    return b"".join(out)


class _Frame:
    """One open container of :func:`_dumps_iteratively`."""

    __slots__ = ("items", "is_map", "first")

    def __init__(self, items: Iterator[Any], is_map: bool) -> None:
        self.items = items
        self.is_map = is_map
        self.first = True


_END = object()
