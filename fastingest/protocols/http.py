"""What a protocol reads and answers: the request head and the response, HTTP-level.

Nothing here knows a protocol: :class:`Request` is the head parsed once (with the
:class:`Delivery` the server wants its events in), :class:`Response` an answer's
status, headers and exact body.
"""
from __future__ import annotations

import time
from typing import Dict, Iterable, NamedTuple, Optional, Tuple

import orjson

from ..stream import STREAM_PIECE

HeaderList = Iterable[Tuple[bytes, bytes]]
"""Request headers as ASGI gives them: ``(name, value)`` byte pairs."""

_TEXT_TYPE = (b"content-type", b"text/plain; charset=utf-8")
_JSON_TYPE = (b"content-type", b"application/json")


class Response(NamedTuple):
    """What to answer: status, headers (without Content-Length) and the exact body."""

    status: int
    headers: Tuple[Tuple[bytes, bytes], ...]
    body: bytes


def text_response(status: int, text: str, *extra: Tuple[bytes, bytes]) -> Response:
    """A ``text/plain; charset=utf-8`` response (Better Stack's kind)."""
    return Response(status, (_TEXT_TYPE,) + extra, text.encode("utf-8"))


def json_response(status: int, value: object, *extra: Tuple[bytes, bytes]) -> Response:
    """An ``application/json`` response (Samsara's kind)."""
    return Response(status, (_JSON_TYPE,) + extra, orjson.dumps(value))


#: The answer to a body that stopped arriving (text, as Better Stack answers).
REQUEST_TIMEOUT = text_response(408, "Request timeout.", (b"connection", b"close"))


class Delivery(NamedTuple):
    """How the server wants a request's events handed over (one setting for every
    protocol of a :class:`~fastingest.protocols.Service`).

    * ``piece_size``: decoded body bytes per batch (the codec's
      :class:`~fastingest.stream.StreamDecoder` piece; the shipper readers' batches):
      what one request holds at a time, and how long it keeps the event loop per turn.
    * ``raw_json``: the store keeps events as JSON text, so a protocol that need not
      build an event's object hands over its JSON text instead
      (:class:`~fastingest.protocols.RawEvents`): Better Stack's JSON and NDJSON bodies
      their events' original bytes, MessagePack bodies transcoded to JSON, Samsara's
      checked and enriched by a shallow scan. Protocols that build their own events
      (the shipper protocols) hand over objects (:class:`~fastingest.protocols.Events`)
      either way.
    """

    piece_size: int = STREAM_PIECE
    raw_json: bool = False


#: What a protocol gets when nobody says otherwise: objects, the codec's piece size.
DEFAULT_DELIVERY = Delivery()


class Request:
    """The request head, parsed once: method, route path, the headers, client address,
    the query string (without ``?``; only HEC reads it), and the :class:`Delivery` the
    server wants the events in."""

    __slots__ = ("method", "path", "headers", "client", "received_ns", "query", "delivery")

    def __init__(self, method: str, path: str, headers: HeaderList,
                 client: Optional[str] = None, received_ns: Optional[int] = None,
                 query: str = "", delivery: Delivery = DEFAULT_DELIVERY) -> None:
        self.method = method.upper()
        self.path = path
        self.query = query
        self.delivery = delivery
        # First value wins; header names are case-insensitive (ASGI sends them lower-cased).
        table: Dict[bytes, bytes] = {}
        for name, value in headers:
            table.setdefault(name.lower(), value)
        self.headers = table
        self.client = client
        self.received_ns = time.time_ns() if received_ns is None else received_ns

    def header(self, name: bytes) -> Optional[str]:
        """One header's value (latin-1 decoded, surrounding whitespace removed), or None."""
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1").strip()


__all__ = ["DEFAULT_DELIVERY", "Delivery", "HeaderList", "REQUEST_TIMEOUT", "Request", "Response",
           "json_response", "text_response"]
