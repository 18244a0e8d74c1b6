"""Sans-I/O ingestion protocols, in the style of h11.

A protocol never touches a socket, a framework or an event loop. The server hands it the
request head, then the body chunk by chunk, and the protocol says what to store and what
to answer::

    service = Service([BetterStack(tokens={"tok": "app"}), Samsara()])
    exchange = service.start("POST", "/", headers, client="127.0.0.1")
    while exchange.response is None and <more body>:
        events = exchange.feed(chunk)        # Events to add to the store's transaction, or None
    if exchange.response is None:
        events = exchange.end()              # the body is complete
    if exchange.response is None:            # the body was accepted: commit, then
        response = exchange.committed()      # 202 (or exchange.failed() when the store failed)
    else:
        response = exchange.response         # an error (or a non-storing answer): abort

Once ``exchange.response`` is set the server sends it, stops reading the body and
aborts whatever it added to its store transaction: a request is stored all or nothing.
All decoding, limits and event times come from the codec (:class:`~fastingest.stream.StreamDecoder`).
"""
from __future__ import annotations

import ipaddress
import time
from array import array
from typing import (Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import orjson

from ..batch import Batch
from ..compression import parse_content_encoding
from ..errors import IngestError, PayloadTooLarge
from ..limits import Limits
from ..stream import StreamDecoder

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


class Events(NamedTuple):
    """Events to add to the request's store transaction.

    ``times_ns[i]`` is the event time of ``events[i]`` (int64 ns since the epoch, UTC);
    ``received_ns`` is when the request arrived.
    """

    source: str
    events: List[Dict[str, Any]]
    times_ns: Sequence[int]
    received_ns: int


class Request:
    """The request head, parsed once: method, route path, the headers, client address,
    and the query string (without ``?``; only HEC reads it)."""

    __slots__ = ("method", "path", "headers", "client", "received_ns", "query")

    def __init__(self, method: str, path: str, headers: HeaderList,
                 client: Optional[str] = None, received_ns: Optional[int] = None,
                 query: str = "") -> None:
        self.method = method.upper()
        self.path = path
        self.query = query
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


class Exchange:
    """One request/response of a protocol (a small state machine).

    ``response`` is None while the protocol still wants the body. ``feed``/``end``
    return :class:`Events` to store (or None) and set ``response`` on any error; after
    a successful ``end`` (``response`` still None) the caller commits the events it was
    given and asks :meth:`committed` (or :meth:`failed`) for the answer. ``error``
    keeps the codec error behind an error response, for logging.
    """

    response: Optional[Response] = None
    error: Optional[Exception] = None
    #: The name of the protocol that took the request (set by :class:`Service`; None
    #: for a path no protocol serves).
    protocol: Optional[str] = None
    #: Whether the body's events go to the store: such exchanges count against a
    #: server's in-flight budget, and :meth:`failed` is their retryable 503.
    stores_events = False

    @property
    def bytes_decoded(self) -> Optional[int]:
        """Body bytes decoded so far (after the Content-Encoding), when the exchange
        decodes one."""
        return None

    def feed(self, data: bytes) -> Optional[Events]:
        """One more chunk of the body: all the events it completed, in one go."""
        self._check_receiving()
        return None

    def end(self) -> Optional[Events]:
        """The body is complete: the remaining events, in one go."""
        self._check_receiving()
        return None

    def feed_batches(self, data: bytes) -> Iterator[Events]:
        """One more chunk of the body, its events in bounded batches (a server adds
        each to its transaction before taking the next; see :meth:`feed`). Stop
        iterating once ``response`` is set."""
        events = self.feed(data)
        if events is not None:
            yield events

    def end_batches(self) -> Iterator[Events]:
        """The body is complete: the remaining events in bounded batches (see
        :meth:`end`)."""
        events = self.end()
        if events is not None:
            yield events

    def committed(self) -> Response:
        """The store committed everything this exchange returned: the success response."""
        raise RuntimeError("this exchange stores nothing")

    def failed(self) -> Response:
        """The store could not take the events (at any point): a retryable error
        response, which also becomes ``response``."""
        raise RuntimeError("this exchange stores nothing")

    def too_large(self, detail: str) -> Response:
        """The store can never keep this request whole (an event over its message size
        limit, more than its stream holds): the protocol's 413, which also becomes
        ``response``; ``detail`` says why (``error``, for logging)."""
        raise RuntimeError("this exchange stores nothing")

    def timed_out(self) -> Response:
        """The client sent the body too slowly (the server's read timeout): 408, with
        ``Connection: close``; it also becomes ``response``."""
        self.response = REQUEST_TIMEOUT
        return REQUEST_TIMEOUT

    def _check_receiving(self) -> None:
        if self.response is not None:
            raise RuntimeError("the response is decided: stop sending the body")


class DecodingExchange(Exchange):
    """An exchange whose body streams through the codec: ``feed``/``end`` and the
    state checks the protocols share. A subclass says what a batch becomes
    (:meth:`_batch`), what a codec error answers (:meth:`_error_response`), what the
    end of the body decides (:meth:`_at_end`), and its 503 (``UNAVAILABLE``).

    ``feed_batches``/``end_batches`` hand out one batch per piece of decoded body
    (``StreamDecoder.feed_batches``), so memory stays bounded whatever the chunk
    inflates to; ``feed``/``end`` gather them into one :class:`Events`.
    """

    UNAVAILABLE: Response
    stores_events = True

    def __init__(self, source: str, decoder: StreamDecoder, received_ns: int) -> None:
        self.source = source
        self.received_ns = received_ns
        self._decoder = decoder
        self._ended = False

    @property
    def bytes_decoded(self) -> Optional[int]:
        return self._decoder.bytes_out

    def feed(self, data: bytes) -> Optional[Events]:
        return _gather(self.feed_batches(data))

    def end(self) -> Optional[Events]:
        events = _gather(self.end_batches())
        return events if self.response is None else None

    def feed_batches(self, data: bytes) -> Iterator[Events]:
        self._check_receiving()
        return self._events(self._decoder.feed_batches(data))

    def end_batches(self) -> Iterator[Events]:
        self._check_receiving()
        self._ended = True
        return self._events(self._decoder.close_batches(), ending=True)

    def _events(self, batches: Iterator[Any], ending: bool = False) -> Iterator[Events]:
        try:
            for batch in batches:
                events = self._batch(batch)
                batch = None
                if events is not None:
                    yield events
                events = None
                if self.response is not None:
                    return
        except IngestError as exc:
            self._fail(exc)
            return
        if ending:
            self._at_end()

    def failed(self) -> Response:
        self.response = self.UNAVAILABLE
        return self.UNAVAILABLE

    def too_large(self, detail: str) -> Response:
        self._fail(PayloadTooLarge(detail=detail))
        assert self.response is not None
        return self.response

    def _batch(self, batch: Batch) -> Optional[Events]:
        raise NotImplementedError

    def _error_response(self, exc: IngestError) -> Response:
        raise NotImplementedError

    def _at_end(self) -> None:
        """The whole body decoded without a codec error: set ``response`` if the
        protocol still refuses it."""

    def _fail(self, exc: IngestError) -> None:
        self.error = exc
        self.response = self._error_response(exc)

    def _check_receiving(self) -> None:
        super()._check_receiving()
        if self._ended:
            raise RuntimeError("the body already ended")

    def _check_done(self) -> None:
        if not self._ended or self.response is not None:
            raise RuntimeError("only a body that ended without an error can be committed")


def _gather(batches: Iterator[Events]) -> Optional[Events]:
    """Several batches of one request as one :class:`Events`."""
    first: Optional[Events] = None
    events: List[Dict[str, Any]] = []
    times = array("q")
    for batch in batches:
        if first is None:
            first = batch
        events += batch.events
        times.extend(batch.times_ns)
    if first is None:
        return None
    return Events(first.source, events, times, first.received_ns)


class Answer(Exchange):
    """An exchange whose response is decided by the head alone (404, 403, GET status...)."""

    def __init__(self, response: Response) -> None:
        self.response = response


class Protocol:
    """One ingestion API. Subclasses route a request head to an :class:`Exchange`."""

    name = "protocol"
    #: True when the API specifies the answer for unknown paths (it then answers them
    #: for every protocol of a :class:`Service`).
    specifies_not_found = False

    def start(self, request: Request) -> Optional[Exchange]:
        """The exchange for this request, or None when the path is not this API's."""
        raise NotImplementedError

    def not_found(self, request: Request) -> Response:
        """The answer for a path no protocol serves."""
        return text_response(404, "Not found.")


class Service:
    """Several protocols on one server: their paths must not clash.

    Unknown paths are answered by the first protocol that specifies its 404
    (Samsara), else by the first protocol.
    """

    def __init__(self, protocols: Sequence[Protocol]) -> None:
        if not protocols:
            raise ValueError("a service needs at least one protocol")
        self.protocols = tuple(protocols)
        self._not_found = next(
            (p for p in self.protocols if p.specifies_not_found), self.protocols[0])

    def start(self, method: str, path: str, headers: HeaderList, *,
              client: Optional[str] = None, received_ns: Optional[int] = None,
              query: str = "") -> Exchange:
        """Begin one request: the head is all a protocol needs to route and check it."""
        request = Request(method, path, headers, client, received_ns, query)
        for protocol in self.protocols:
            exchange = protocol.start(request)
            if exchange is not None:
                exchange.protocol = protocol.name
                return exchange
        return Answer(self._not_found.not_found(request))

    def protocol(self, name: str) -> Protocol:
        """The protocol called ``name`` (KeyError if it is not served)."""
        for protocol in self.protocols:
            if protocol.name == name:
                return protocol
        raise KeyError(name)


# -- helpers shared by the protocols ---------------------------------------------------

def bearer_token(request: Request) -> Optional[str]:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), or None."""
    value = request.header(b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def declared_too_large(request: Request, limits: Limits) -> bool:
    """Content-Length over the limit that applies: ``max_compressed`` when a real
    Content-Encoding is declared, else ``max_body``. Lets a server answer 413 before
    reading anything; everything else about size is the codec's job while streaming.
    """
    declared = request.header(b"content-length")
    # ASCII digits only: str.isdigit() also admits '²' (which int() refuses) and '١٢'
    # (which int() reads), and not every ASGI server validates the header.
    if declared is None or not declared.isascii() or not declared.isdigit():
        return False   # absent (chunked) or malformed: the HTTP layer's concern
    size = int(declared)
    if size <= min(limits.max_body, limits.max_compressed):
        return False   # within both limits: no need to look at the encoding
    compressed = bool(parse_content_encoding(request.header(b"content-encoding")))
    return size > (limits.max_compressed if compressed else limits.max_body)


Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

LOOPBACK_NETWORKS: Tuple[str, ...] = ("127.0.0.0/8", "::1/128")


def parse_networks(networks: Iterable[str]) -> Tuple[Network, ...]:
    """CIDR strings (``10.0.0.0/8``, ``::1``) to network objects; ValueError if invalid."""
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)


def client_in(client: Optional[str], networks: Sequence[Network]) -> bool:
    """Whether the client address lies in one of ``networks``.

    An unknown client (None, a Unix socket path, garbage) is never inside: admin
    actions fail closed. An address is taken as written: an IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``) is an IPv6 address, inside IPv6 networks only (list
    ``::ffff:127.0.0.0/104`` to admit it). uvicorn's proxy-header trust check and
    :mod:`fastingest.server.proxy` read addresses the same way, and ``fastingest
    serve`` makes its IPv6 sockets IPv6-only, so that an IPv4 client always shows
    as its IPv4 address.
    """
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in networks)


__all__ = [
    "Answer", "DecodingExchange", "Events", "Exchange", "HeaderList", "LOOPBACK_NETWORKS",
    "Protocol", "REQUEST_TIMEOUT", "Request", "Response", "Service", "bearer_token", "client_in",
    "declared_too_large", "json_response", "parse_networks", "text_response",
]
