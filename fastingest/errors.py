"""The one exception type every bad body turns into, and the exact protocol texts.

``IngestError.message`` is always the text a protocol answers with (Better Stack's
exact bodies); *where* and *why* live in ``offset``, ``line`` and ``detail`` so a
server can log them without changing what the client sees.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

#: 406 body of the Better Stack API for anything that is not valid JSON/NDJSON/MessagePack.
PARSE_MESSAGE = "Couldn't parse JSON content."
#: 413 body of the Better Stack API for every size limit.
SIZE_MESSAGE = "payload reached size limit"
#: 415 body for a Content-Type we do not decode.
MEDIA_TYPE_MESSAGE = (
    "Unsupported Content-Type: use application/json, application/x-ndjson or application/msgpack."
)


class IngestError(Exception):
    """A body that cannot be accepted.

    ``status`` is the HTTP status to answer with and ``message`` the exact response text;
    ``offset`` (byte offset in the decompressed body), ``line`` (1-based NDJSON line) and
    ``detail`` (a short reason) say where and why, when known.
    """

    status: int = 400
    default_message: str = "Bad request."

    def __init__(
        self,
        message: Optional[str] = None,
        *,
        detail: Optional[str] = None,
        offset: Optional[int] = None,
        line: Optional[int] = None,
        status: Optional[int] = None,
    ) -> None:
        self.message = self.default_message if message is None else message
        self.detail = detail
        self.offset = offset
        self.line = line
        if status is not None:
            self.status = status
        super().__init__(self.message)

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        extra = self.detail or ""
        if where:
            extra = f"{extra} at {', '.join(where)}" if extra else f"at {', '.join(where)}"
        return f"{self.message} ({extra})" if extra else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, message={self.message!r}, "
            f"detail={self.detail!r}, offset={self.offset!r}, line={self.line!r})"
        )

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:  # keyword-only arguments need help to survive pickling
        return (
            _rebuild,
            (type(self), self.message, self.detail, self.offset, self.line, self.status),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IngestError):
            return NotImplemented
        return (type(self), self.status, self.message, self.detail, self.offset, self.line) == (
            type(other), other.status, other.message, other.detail, other.offset, other.line)

    __hash__ = Exception.__hash__


def _rebuild(cls: "type[IngestError]", message: Optional[str], detail: Optional[str],
             offset: Optional[int], line: Optional[int], status: Optional[int]) -> IngestError:
    return cls(message, detail=detail, offset=offset, line=line, status=status)


def detached(exc: IngestError) -> IngestError:
    """``exc`` without its traceback and exception chain, to raise at the public API.

    A traceback keeps every frame between the raise and the API alive, and those frames
    hold the decoder objects that store the error (a reference cycle) and the request
    body: without this, each rejected body stayed in memory until the cyclic GC ran.
    """
    exc.__traceback__ = None
    exc.__context__ = None
    exc.__cause__ = None
    return exc


def copied(exc: IngestError) -> IngestError:
    """A new error equal to ``exc`` (same type, status, message, detail, offset, line)."""
    return _rebuild(type(exc), exc.message, exc.detail, exc.offset, exc.line, exc.status)


class ParseError(IngestError):
    """406: not valid JSON / NDJSON / MessagePack, or an element that is not an object."""

    status = 406
    default_message = PARSE_MESSAGE


class PayloadTooLarge(IngestError):
    """413: the body, the compressed body, or one event is over its limit."""

    status = 413
    default_message = SIZE_MESSAGE


class UnsupportedMediaType(IngestError):
    """415: a Content-Type (or Content-Encoding) that fastingest does not decode."""

    status = 415
    default_message = MEDIA_TYPE_MESSAGE


class DecompressionError(IngestError):
    """400: compressed data that is corrupt or truncated."""

    status = 400
    default_message = "Corrupt or truncated compressed body."


class LineError(NamedTuple):
    """One rejected NDJSON line in ``errors="collect"`` mode."""

    line: int
    offset: int
    detail: str
    status: int = 406


# The reasons the framing layer gives (``IngestError.detail``) live in .constants with
# every other reason; they are importable from here too.
from .constants import (BAD_BOM, DATA_AFTER_BODY, DATA_AFTER_EVENT, EMPTY_BODY,  # noqa: E402
                        EXPECTED_BODY_JSON, EXPECTED_BODY_MSGPACK, EXPECTED_COMMA_OR_BRACKET,
                        EXPECTED_MAP, EXPECTED_OBJECT, LENGTH_PAST_END, LINE_ENDED,
                        RESERVED_BYTE, UNEXPECTED_END, body_too_large, event_too_large,
                        too_deep)

__all__ = [
    "BAD_BOM", "DATA_AFTER_BODY", "DATA_AFTER_EVENT", "EMPTY_BODY", "EXPECTED_BODY_JSON",
    "EXPECTED_BODY_MSGPACK", "EXPECTED_COMMA_OR_BRACKET", "EXPECTED_MAP", "EXPECTED_OBJECT",
    "LENGTH_PAST_END", "LINE_ENDED", "MEDIA_TYPE_MESSAGE", "PARSE_MESSAGE", "RESERVED_BYTE",
    "SIZE_MESSAGE", "UNEXPECTED_END", "DecompressionError", "IngestError", "LineError",
    "ParseError", "PayloadTooLarge", "UnsupportedMediaType", "body_too_large", "copied",
    "detached", "event_too_large", "too_deep",
]
