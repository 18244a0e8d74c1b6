"""Events back to JSON: what the CLI prints and the stores keep.

MessagePack events can hold values JSON has no type for; they are written as:
``msgpack.Timestamp`` → RFC 3339 string with nanoseconds (UTC); ``bytes`` → base64
string; ``msgpack.ExtType`` → ``{"ext": code, "data": base64}``.
"""
from __future__ import annotations

import base64
import datetime
from typing import Any

import msgpack
import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_EPOCH = datetime.date(1970, 1, 1)


def format_ns(ns: int) -> str:
    """RFC 3339 UTC text with nanoseconds for an int64 ns timestamp."""
    seconds, frac = divmod(ns, 1_000_000_000)
    days, rem = divmod(seconds, 86400)
    day = _EPOCH + datetime.timedelta(days=days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:{ss:02d}.{frac:09d}Z"


def _default(value: Any) -> Any:
    if isinstance(value, msgpack.Timestamp):
        return format_ns(value.to_unix_nano())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, msgpack.ExtType):
        return {"ext": value.code, "data": base64.b64encode(value.data).decode("ascii")}
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """orjson with the MessagePack-only types mapped (see module docstring)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)
