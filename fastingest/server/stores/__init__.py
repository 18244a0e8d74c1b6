"""Where accepted events go: a small transactional interface, all or nothing per request.

The server drives one :class:`Transaction` per request::

    tx = store.begin(request_id)   # the client's Idempotency-Key, or None
    await tx.add(source, events, times_ns, received_ns)   # as the body streams, any number of times
    await tx.add_raw(source, raw, times_ns, received_ns)  # the same, events as JSON text
    tx.set_request_digest(digest)  # the body's digest, once it is complete (optional)
    await tx.commit()    # durable when this returns: only then is the request acknowledged
    # or, on any error:
    await tx.abort()     # nothing of this request is kept

Every row is ``(source, time_ns, received_ns, event)``: the source name, the event time
and the reception time (int64 ns since the epoch, UTC), and the event itself (stores
serialise it as JSON with :func:`fastingest.jsonout.dumps`).

A store that keeps events as JSON text says so (``Store.raw_json``): the server then
hands it each event's JSON text where the protocol has it without building objects
(``add_raw``: the original bytes of a JSON or NDJSON event, MessagePack transcoded),
and the store keeps that text as it is. Any other store gets objects through ``add``
(``add_raw``'s default decodes the text for it).

``request_id`` lets a store recognise a retried request: the NATS store derives each
event's ``Nats-Msg-Id`` from it and from the request's digest, so JetStream keeps one
copy of a request retried with the same key and the same body; SQLite ignores it.

A store answers what it cannot keep with :class:`StoreError` (the server answers 503:
retry later) or :class:`StoreTooLarge` (413: this request can never be stored whole).

``store_from_url("sqlite:PATH")`` or ``store_from_url("nats://HOST:PORT")`` builds a
store from its command-line form; :func:`redact_url` is that form fit to print.
"""
from __future__ import annotations

import abc
import re
from typing import Any, Dict, List, Optional, Sequence

import orjson


#: The environment variable giving the store's URL when no ``--store`` is given (keeps
#: credentials in it off the command line, which every local user can read).
STORE_ENV = "FASTINGEST_STORE"


class StoreError(Exception):
    """A store could not keep what it was given (disk full, database locked, closed...)."""


class StoreTooLarge(StoreError):
    """The request can never be stored whole (an event over the store's message size
    limit, more events or bytes than the stream may hold): a retry cannot help."""


class Transaction(abc.ABC):
    """The events of one request; nothing is visible to readers before :meth:`commit`."""

    @abc.abstractmethod
    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Sequence[int],
                  received_ns: int) -> None:
        """Add events (``times_ns[i]`` is the time of ``events[i]``); may apply
        backpressure. Raises :class:`StoreError` if the transaction cannot go on."""

    async def add_raw(self, source: str, raw: Sequence[bytes], times_ns: Sequence[int],
                      received_ns: int) -> None:
        """Add events given as their JSON text: ``raw[i]`` is one JSON object (UTF-8,
        one line), ``times_ns[i]`` its time. A store with ``raw_json`` keeps the text
        as it is; this default decodes it and calls :meth:`add`."""
        await self.add(source, [orjson.loads(text) for text in raw], times_ns, received_ns)

    def set_request_digest(self, digest: bytes) -> None:
        """The digest of the request as the client sent it (its body, Content-Type and
        Content-Encoding), given once the body is complete, before :meth:`commit`. A
        store that de-duplicates retries by request id scopes that id with it, so that
        one key with another body is another request (never silently dropped). The
        default ignores it."""

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

    #: The store keeps events as JSON text: give it text (``Transaction.add_raw``)
    #: wherever there is no need to build objects.
    raw_json = False

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
    if sep and scheme == "sqlite":
        from .sqlite import SQLiteStore
        return SQLiteStore.from_url(rest)
    if sep and scheme in ("nats", "tls") and rest.startswith("//") and len(rest) > 2:
        from .nats import NATSStore
        return NATSStore.from_url(url)
    raise ValueError(f"unsupported store {redact_url(url)!r}: use sqlite:PATH or "
                     "nats://HOST:PORT")


#: A URL in free text (a log line, an error message).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]]+")
#: The user information of one host of a URL's host list.
_HOST_INFO = re.compile(r"^(?P<info>[^/?#@\s,]*)@")
REDACTED = "***"


def _redact_match(match: "re.Match[str]") -> str:
    user, sep, _ = match.group("info").partition(":")
    # user:password -> user:***; a lone token (nats://TOKEN@host) -> ***
    return f"{user}:{REDACTED}@" if sep else f"{REDACTED}@"


def redact_url(url: str) -> str:
    """``url`` with every password or token replaced by ``***`` (the user name kept):
    ``nats://alice:***@h1:4222,***@h2:4222?stream=S``. Fit for banners and logs; also
    for malformed URLs (``nats:/user:pw@host``)."""
    scheme, sep, rest = url.partition(":")
    if not sep or "@" not in rest:
        return url
    slashes = len(rest) - len(rest.lstrip("/"))
    hosts, mark, tail = _split_hosts(rest[slashes:])
    hosts = ",".join(_HOST_INFO.sub(_redact_match, host) for host in hosts.split(","))
    return f"{scheme}:{rest[:slashes]}{hosts}{mark}{tail}"


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` (a log line, an error) with the credentials of any URL in it redacted,
    and every one of ``secrets`` (passwords, tokens known to be in use) replaced."""
    text = _URL.sub(lambda match: redact_url(match.group()), text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _split_hosts(rest: str) -> "tuple[str, str, str]":
    for i, ch in enumerate(rest):
        if ch in "/?#":
            return rest[:i], ch, rest[i + 1:]
    return rest, "", ""


__all__ = ["REDACTED", "STORE_ENV", "Store", "StoreError", "StoreTooLarge", "Transaction", "redact",
           "redact_url", "store_from_url"]
