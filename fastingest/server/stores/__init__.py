"""Where accepted events go: a small transactional interface, all or nothing per request.

The server drives one :class:`Transaction` per request::

    tx = store.begin(request_id)   # the client's Idempotency-Key / X-Request-Id, or None
    await tx.add(source, events, times_ns, received_ns)   # as the body streams, any number of times
    await tx.commit()    # durable when this returns: only then is the request acknowledged
    # or, on any error:
    await tx.abort()     # nothing of this request is kept

Every row is ``(source, time_ns, received_ns, event)``: the source name, the event time
and the reception time (int64 ns since the epoch, UTC), and the event itself (stores
serialise it as JSON with :func:`fastingest.jsonout.dumps`).

``request_id`` lets a store recognise a retried request: the NATS store derives each
event's ``Nats-Msg-Id`` from it, so JetStream keeps one copy of a request retried with
the same id; SQLite ignores it.

``store_from_url("sqlite:PATH")`` or ``store_from_url("nats://HOST:PORT")`` builds a
store from its command-line form.
"""
from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional, Sequence


class StoreError(Exception):
    """A store could not keep what it was given (disk full, database locked, closed...)."""


class Transaction(abc.ABC):
    """The events of one request; nothing is visible to readers before :meth:`commit`."""

    @abc.abstractmethod
    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Sequence[int],
                  received_ns: int) -> None:
        """Add events (``times_ns[i]`` is the time of ``events[i]``); may apply
        backpressure. Raises :class:`StoreError` if the transaction cannot go on."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make everything added durable at once; raises :class:`StoreError` if not."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Drop everything added. Never raises; safe after a failed commit."""


class Store(abc.ABC):
    """A place for events. ``open`` may be skipped (the first ``begin`` opens lazily,
    e.g. when the app is mounted in a framework that does not forward lifespan events),
    ``close`` waits for pending commits."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Get ready (create tables, start writers); raises if the store is unusable."""

    @abc.abstractmethod
    def begin(self, request_id: Optional[str] = None) -> Transaction:
        """A new, empty transaction; ``request_id`` names the request (the same id on a
        retry), for stores that can de-duplicate retries."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending commits and release resources."""


def store_from_url(url: str) -> Store:
    """A store from its command-line form: ``sqlite:PATH`` (``?synchronous=normal`` to
    trade the last commits on power loss for speed; see :class:`SQLiteStore`), or
    ``nats://HOST:PORT[,HOST:PORT...][?stream=NAME&...]`` (JetStream; see
    :class:`~fastingest.server.stores.nats.NATSStore`)."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if sep and scheme == "sqlite" and rest:
        from .sqlite import SQLiteStore
        return SQLiteStore.from_url(rest)
    if sep and scheme in ("nats", "tls") and rest.startswith("//") and len(rest) > 2:
        from .nats import NATSStore
        return NATSStore.from_url(url)
    raise ValueError(f"unsupported store {url!r}: use sqlite:PATH or nats://HOST:PORT")


__all__ = ["Store", "StoreError", "Transaction", "store_from_url"]
