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

from typing import Iterator, Optional

from ..errors import IngestError
from . import Events, Exchange, Response


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


__all__ = ["BatchedExchange"]
