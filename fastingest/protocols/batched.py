"""The exchange of the shipper protocols: a body reader handing out bounded batches.

A request body is read by a codec reader (:mod:`fastingest.bulk`, :mod:`fastingest.hec`,
a whole-body reader for OTLP and Loki). Each ``feed(chunk)`` and the ``end()`` may
yield several batches of events (a compressed chunk can hold many pieces of body):
they return the first, and :meth:`~fastingest.protocols.Exchange.more` the next ones,
None when that chunk (or the body) is done. Only one batch of events exists at a time,
whatever the body holds::

    events = exchange.feed(chunk)
    while events is not None:
        store(events)
        events = exchange.more()

A subclass provides ``_read(chunk)`` and ``_finish()`` (generators of
:class:`~fastingest.protocols.Events`; an IngestError they raise becomes the protocol's
error answer through ``_error_response``), ``_success()`` and its ``UNAVAILABLE``.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

from ..errors import IngestError
from ..shipping import RecordBatches
from ..wholebody import WholeBody
from . import Answer, Events, Exchange, Response


def answer_with(response: Response, exc: IngestError) -> Answer:
    """An answer decided by the head, keeping the codec error behind it (for logging)."""
    answer = Answer(response)
    answer.error = exc
    return answer


class BatchedExchange(Exchange):
    """See the module docstring."""

    UNAVAILABLE: Response

    def __init__(self, source: str, received_ns: int) -> None:
        self.source = source
        self.received_ns = received_ns
        self._batches: Optional[Iterator[Events]] = None
        self._ended = False

    def feed(self, data: bytes) -> Optional[Events]:
        self._check_receiving()
        try:
            self._batches = self._read(data)
        except IngestError as exc:
            self._fail(exc)
            return None
        return self.more()

    def end(self) -> Optional[Events]:
        self._check_receiving()
        self._ended = True
        try:
            self._batches = self._finish()
        except IngestError as exc:
            self._fail(exc)
            return None
        return self.more()

    def more(self) -> Optional[Events]:
        """The next batch of the last ``feed``/``end``, or None when it is done (or the
        response was decided)."""
        batches = self._batches
        if batches is None or self.response is not None:
            return None
        try:
            for events in batches:
                if events.events:
                    return events
        except IngestError as exc:
            self._fail(exc)
        self._batches = None
        return None

    def _fail(self, exc: IngestError) -> None:
        self._batches = None
        self.error = exc
        self.response = self._error_response(exc)

    def committed(self) -> Response:
        if not self._ended or self.response is not None or self._batches is not None:
            raise RuntimeError("only a body that ended without an error can be committed")
        return self._success()

    def failed(self) -> Response:
        self.response = self.UNAVAILABLE
        return self.UNAVAILABLE

    def _check_receiving(self) -> None:
        super()._check_receiving()
        if self._ended:
            raise RuntimeError("the body already ended")
        if self._batches is not None:
            raise RuntimeError("call more() until it returns None before feeding more")

    def _read(self, data: bytes) -> Iterator[Events]:
        raise NotImplementedError

    def _finish(self) -> Iterator[Events]:
        raise NotImplementedError

    def _success(self) -> Response:
        raise NotImplementedError

    def _error_response(self, exc: IngestError) -> Response:
        raise NotImplementedError


class WholeBodyExchange(BatchedExchange):
    """A body that is one document: collected whole (at most ``max_body``, as it
    arrives), then walked by a reader (``_reader``) in batches of records."""

    def __init__(self, source: str, received_ns: int, body: WholeBody) -> None:
        super().__init__(source, received_ns)
        self._body = body

    def _read(self, data: bytes) -> Iterator[Events]:
        self._body.feed(data)
        return iter(())

    def _finish(self) -> Iterator[Events]:
        reader = self._reader(self._body.close())
        while not reader.done:
            events, times = reader.read()
            yield Events(self.source, self._events(events), times, self.received_ns)
        self._walked(reader)

    def _reader(self, body: bytearray) -> RecordBatches:
        raise NotImplementedError

    def _events(self, events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """A batch's events as stored (a protocol may add to them)."""
        return events

    def _walked(self, reader: Any) -> None:
        """The whole body was walked (raise IngestError to refuse it after all)."""


__all__ = ["BatchedExchange", "WholeBodyExchange", "answer_with"]
