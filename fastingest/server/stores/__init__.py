"""Where accepted events go: a small transactional interface, all or nothing per request.

The server drives one :class:`Transaction` per request::

    tx = store.begin()
    await tx.add(source, events, times_ns, received_ns)   # as the body streams, any number of times
    await tx.commit()    # durable when this returns: only then is the request acknowledged
    # or, on any error:
    await tx.abort()     # nothing of this request is kept

Every row is ``(source, time_ns, received_ns, event)``: the source name, the event time
and the reception time (int64 ns since the epoch, UTC), and the event itself (stores
serialise it as JSON with :func:`fastingest.jsonout.dumps`).

``store_from_url("sqlite:PATH")`` builds a store from its command-line form.
"""
from __future__ import annotations

import abc
from typing import List, Sequence


class StoreError(Exception):
    """A store could not keep what it was given (disk full, database locked, closed...)."""


class Transaction(abc.ABC):
    """The events of one request; nothing is visible to readers before :meth:`commit`."""

    @abc.abstractmethod
    async def add(self, source: str, events: List[dict], times_ns: Sequence[int],
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
    def begin(self) -> Transaction:
        """A new, empty transaction."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending commits and release resources."""


def store_from_url(url: str) -> Store:
    """A store from its command-line form: ``sqlite:PATH`` (``?synchronous=normal`` to
    trade the last commits on power loss for speed; see :class:`SQLiteStore`)."""
    scheme, sep, rest = url.partition(":")
    if sep and scheme.lower() == "sqlite" and rest:
        from .sqlite import SQLiteStore
        return SQLiteStore.from_url(rest)
    raise ValueError(f"unsupported store {url!r}: use sqlite:PATH")


__all__ = ["Store", "StoreError", "Transaction", "store_from_url"]
