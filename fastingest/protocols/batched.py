"""The exchange of the shipper protocols: a body reader handing out bounded batches.

A request body is read by a codec reader (:mod:`fastingest.bulk`, :mod:`fastingest.hec`,
a whole-body reader for OTLP and Loki). ``feed_batches(chunk)`` and ``end_batches()``
yield the chunk's (the rest's) events one batch at a time — a compressed chunk can hold
many pieces of body, each its own batch — so that only one batch exists at a time,
whatever the body holds; ``feed``/``end`` gather them (see
:class:`~fastingest.protocols.Exchange`).

A subclass provides ``_read(chunk)`` and ``_finish()`` (iterators of
:class:`~fastingest.protocols.Events`; an IngestError they raise becomes the protocol's
error answer through ``_error_response``), ``_success()`` and its ``UNAVAILABLE``; the
state checks, the 503 and the 413 are :class:`~fastingest.protocols.StoringExchange`'s.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List

from ..errors import IngestError
from ..shipping import BATCH_BYTES, RecordBatches
from ..wholebody import WholeBody
from . import Answer, Events, Response, StoringExchange


def answer_with(response: Response, exc: IngestError) -> Answer:
    """An answer decided by the head, keeping the codec error behind it (for logging)."""
    answer = Answer(response)
    answer.error = exc
    return answer


class BatchedExchange(StoringExchange):
    """See the module docstring."""

    def feed_batches(self, data: bytes) -> Iterator[Events]:
        self._check_receiving()
        return self._guarded(lambda: self._read(data))

    def end_batches(self) -> Iterator[Events]:
        self._check_receiving()
        self._ended = True
        return self._guarded(self._finish)

    def _guarded(self, start: Callable[[], Iterator[Events]]) -> Iterator[Events]:
        """The non-empty batches of ``start()``; a codec error sets the answer instead."""
        try:
            for events in start():
                if events.events:
                    yield events
                del events
                if self.response is not None:
                    return
        except IngestError as exc:
            self._fail(exc)

    def committed(self) -> Response:
        self._check_done()
        return self._success()

    def _read(self, data: bytes) -> Iterator[Events]:
        raise NotImplementedError

    def _finish(self) -> Iterator[Events]:
        raise NotImplementedError

    def _success(self) -> Response:
        raise NotImplementedError


class WholeBodyExchange(BatchedExchange):
    """A body that is one document: collected whole (at most ``max_body``, as it
    arrives), then walked by a reader (``_reader``) in batches of records covering
    ``piece_size`` bytes of body (the server's :class:`~fastingest.protocols.Delivery`)."""

    def __init__(self, source: str, received_ns: int, body: WholeBody,
                 piece_size: int = BATCH_BYTES) -> None:
        super().__init__(source, received_ns)
        self._body = body
        self._piece_size = piece_size

    def _read(self, data: bytes) -> Iterator[Events]:
        self._body.feed(data)
        return iter(())

    def _finish(self) -> Iterator[Events]:
        reader = self._reader(self._body.close())
        while not reader.done:
            events, times = reader.read(self._piece_size)
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
