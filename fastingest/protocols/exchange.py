"""One request/response of a protocol, and its lifecycle (h11's ``_state.py`` is the model).

An exchange is in one of three states (:class:`ExchangeState`, ``exchange.state``)::

    RECEIVING --feed(), feed_batches()--> RECEIVING
    RECEIVING --end(), end_batches(): the body is accepted--> ENDED
    RECEIVING --a refusal (codec error, protocol check), timed_out()--> RESPONDED
    ENDED --the protocol refuses the whole (e.g. a bad event)--> RESPONDED
    ENDED --committed()--> the success answer (the server sends it; the state stays ENDED)
    RECEIVING, ENDED --failed(): the store could not take the events--> RESPONDED
    RECEIVING, ENDED --too_large(): the store can never keep the request whole--> RESPONDED

An exchange decided by the request head alone (:class:`Answer`: 404, 403, a status
query) starts in RESPONDED. ``response`` is set exactly in RESPONDED: the server sends
it, stops reading the body and aborts whatever it added to its store transaction, so
a request is stored all or nothing. Calls out of turn are programming errors
(RuntimeError): feeding once RESPONDED or ENDED, committing anything but ENDED.
"""
from __future__ import annotations

import enum
from array import array
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Union

from ..errors import IngestError, PayloadTooLarge
from ..stream import StreamDecoder
from .http import REQUEST_TIMEOUT, Response


class ExchangeState(enum.Enum):
    """Where an exchange is (see the module docstring for the transitions)."""

    RECEIVING = "receiving"   #: the head was accepted; the body is wanted
    ENDED = "ended"           #: the whole body was accepted: commit, then committed()/failed()
    RESPONDED = "responded"   #: ``response`` is decided: send it, store nothing


RECEIVING = ExchangeState.RECEIVING
ENDED = ExchangeState.ENDED
RESPONDED = ExchangeState.RESPONDED


class Events(NamedTuple):
    """Events to add to the request's store transaction.

    ``times_ns[i]`` is the event time of ``events[i]`` (int64 ns since the epoch, UTC);
    ``received_ns`` is when the request arrived.
    """

    source: str
    events: List[Dict[str, Any]]
    times_ns: Sequence[int]
    received_ns: int


class RawEvents(NamedTuple):
    """Events as the JSON text a store keeps, no objects built (what a protocol hands
    over when the server's :class:`~fastingest.protocols.Delivery` asks for
    ``raw_json``); a store takes them with
    :meth:`~fastingest.server.stores.Transaction.add_raw`.

    ``raw[i]`` is one event: a JSON object, UTF-8, on one line (no CR or LF byte);
    ``times_ns[i]`` its event time; ``received_ns`` when the request arrived.
    """

    source: str
    raw: List[bytes]
    times_ns: Sequence[int]
    received_ns: int


#: What an exchange hands to the store: objects, or their JSON text.
EventBatch = Union[Events, RawEvents]


class Exchange:
    """One request/response of a protocol: the lifecycle every exchange shares.

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
    _ended = False

    @property
    def bytes_decoded(self) -> Optional[int]:
        """Body bytes decoded so far (after the Content-Encoding), when the exchange
        decodes one."""
        return None

    @property
    def state(self) -> ExchangeState:
        """RECEIVING, ENDED or RESPONDED (see the module docstring)."""
        if self.response is not None:
            return RESPONDED
        return ENDED if self._ended else RECEIVING

    def feed(self, data: bytes) -> Optional[EventBatch]:
        """One more chunk of the body: all the events it completed, in one go."""
        self._check_receiving()
        return None

    def end(self) -> Optional[EventBatch]:
        """The body is complete: the remaining events, in one go."""
        self._check_receiving()
        self._ended = True
        return None

    def feed_batches(self, data: bytes) -> Iterator[EventBatch]:
        """One more chunk of the body, its events in bounded batches (a server adds
        each to its transaction before taking the next; see :meth:`feed`). Stop
        iterating once ``response`` is set."""
        events = self.feed(data)
        if events is not None:
            yield events

    def end_batches(self) -> Iterator[EventBatch]:
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
        """Body chunks are accepted in RECEIVING only."""
        if self.response is not None:
            raise RuntimeError("the response is decided: stop sending the body")
        if self._ended:
            raise RuntimeError("the body already ended")

    def _check_done(self) -> None:
        """Only an ENDED exchange can be committed."""
        if not self._ended or self.response is not None:
            raise RuntimeError("only a body that ended without an error can be committed")


class StoringExchange(Exchange):
    """An exchange whose body's events go to the store, in bounded batches: ``feed`` and
    ``end`` gather what ``feed_batches`` / ``end_batches`` hand out; a codec error
    becomes the protocol's answer (:meth:`_error_response`); :meth:`failed` is its 503
    (``UNAVAILABLE``) and :meth:`too_large` its 413. Subclasses say how the body is read.
    """

    UNAVAILABLE: Response
    stores_events = True

    def __init__(self, source: str, received_ns: int) -> None:
        self.source = source
        self.received_ns = received_ns

    def feed(self, data: bytes) -> Optional[EventBatch]:
        return _gather(self.feed_batches(data))

    def end(self) -> Optional[EventBatch]:
        events = _gather(self.end_batches())
        return events if self.response is None else None

    def failed(self) -> Response:
        self.response = self.UNAVAILABLE
        return self.UNAVAILABLE

    def too_large(self, detail: str) -> Response:
        self._fail(PayloadTooLarge(detail=detail))
        assert self.response is not None
        return self.response

    def _error_response(self, exc: IngestError) -> Response:
        raise NotImplementedError

    def _fail(self, exc: IngestError) -> None:
        self.error = exc
        self.response = self._error_response(exc)


class DecodingExchange(StoringExchange):
    """A body streamed through the codec (:class:`~fastingest.stream.StreamDecoder`):
    one batch per piece of decoded body, so memory stays bounded whatever a chunk
    inflates to. A subclass says what a batch becomes (:meth:`_batch`), what a codec
    error answers (:meth:`_error_response`), what the end of the body decides
    (:meth:`_at_end`), and its 503 (``UNAVAILABLE``).
    """

    def __init__(self, source: str, decoder: StreamDecoder, received_ns: int) -> None:
        super().__init__(source, received_ns)
        self._decoder = decoder

    @property
    def bytes_decoded(self) -> Optional[int]:
        return self._decoder.bytes_out

    def feed_batches(self, data: bytes) -> Iterator[EventBatch]:
        self._check_receiving()
        return self._events(self._decoder.feed_batches(data))

    def end_batches(self) -> Iterator[EventBatch]:
        self._check_receiving()
        self._ended = True
        return self._events(self._decoder.close_batches(), ending=True)

    def _events(self, batches: Iterator[Any], ending: bool = False) -> Iterator[EventBatch]:
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

    def _batch(self, batch: Any) -> Optional[EventBatch]:
        """What a decoded :class:`~fastingest.batch.Batch` (or, when the decoder is raw,
        :class:`~fastingest.batch.RawBatch`) becomes."""
        raise NotImplementedError

    def _at_end(self) -> None:
        """The whole body decoded without a codec error: set ``response`` if the
        protocol still refuses it."""


def _gather(batches: Iterator[EventBatch]) -> Optional[EventBatch]:
    """Several batches of one request as one :class:`Events` (or :class:`RawEvents`:
    an exchange hands out one kind)."""
    first: Optional[EventBatch] = None
    items: List[Any] = []
    times = array("q")
    for batch in batches:
        if first is None:
            first = batch
        items += batch[1]
        times.extend(batch.times_ns)
    if first is None:
        return None
    return type(first)(first.source, items, times, first.received_ns)


class Answer(Exchange):
    """An exchange whose response is decided by the head alone (404, 403, GET status...)."""

    def __init__(self, response: Response) -> None:
        self.response = response


__all__ = ["Answer", "DecodingExchange", "ENDED", "EventBatch", "Events", "Exchange",
           "ExchangeState", "RECEIVING", "RESPONDED", "RawEvents", "StoringExchange"]
