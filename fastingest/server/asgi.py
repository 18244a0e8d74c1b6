"""A raw ASGI 3 app over the sans-I/O protocols and a store.

    app = create_app(tokens={"<token>": "app"}, store="sqlite:fastingest.db")
    # uvicorn module:app  — or mount it: Starlette(routes=[Mount("/ingest", app)])

Per request the app asks the protocols for an exchange, streams the body into it chunk
by chunk (stopping as soon as the response is decided: an early 403/413/415 reads
nothing), adds the events it yields to one store transaction, and answers 202 only
after that transaction committed. Any error, or a client that goes away, aborts it. A
store error answers 503 (retry later), or 413 when the store can never keep the request
whole (:class:`~fastingest.server.stores.StoreTooLarge`).

A body that stops arriving is answered 408 (and the connection closed) once no chunk
came for ``read_timeout`` seconds, or the whole body took longer than
``body_timeout``; uvicorn itself never times out a request body. The transaction is
named after the client's ``Idempotency-Key`` header and given a digest of the body as
sent (with its Content-Type and Content-Encoding), so that a store that can (NATS)
keeps a retried request once, and a reused key with another body as another request.

When mounted in a framework that does not forward lifespan events to sub-apps, the
store opens on first use; call ``await app.startup()`` / ``await app.shutdown()`` from
the host's lifespan to open it eagerly and to flush it on exit.

``GET /metrics`` answers the Prometheus metrics (:mod:`.metrics`) to clients in
``admin_networks`` (403 to others); every rejected request gets a log line
(:mod:`.logs`), every request with ``access_log``.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from typing import (Any, Awaitable, Callable, Dict, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, Union)

from ..limits import DEFAULT_LIMITS, Limits
from ..protocols import (LOOPBACK_NETWORKS, Delivery, EventBatch, Exchange, Protocol, RawEvents,
                         Response, Service, client_in, parse_networks, text_response)
from ..protocols import elasticsearch, loki, otlp, splunk
from ..protocols.betterstack import BetterStack
from ..protocols.samsara import Samsara, StatusCell
from .logs import MAX_TEXT, RequestLog
from .metrics import CONTENT_TYPE, Metrics, sources_of
from .stores import Store, StoreError, StoreTooLarge, Transaction, store_from_url

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Every protocol the server speaks, served together by default (their paths do not clash).
PROTOCOLS = ("betterstack", "samsara", "otlp", "elasticsearch", "loki", "splunk")
#: Each protocol's default limits (the real services' sizes; see each module).
DEFAULT_PROTOCOL_LIMITS: Dict[str, Limits] = {
    "betterstack": DEFAULT_LIMITS,
    "samsara": DEFAULT_LIMITS,
    "otlp": otlp.DEFAULT_LIMITS,
    "elasticsearch": elasticsearch.DEFAULT_LIMITS,
    "loki": loki.DEFAULT_LIMITS,
    "splunk": splunk.DEFAULT_LIMITS,
}
#: Routing precedence: ``GET``/``HEAD /`` is Elasticsearch's, ``POST /`` Better Stack's,
#: so Elasticsearch is asked first.
_PRECEDENCE = ("elasticsearch",)

log = logging.getLogger("fastingest.server")

#: Request headers naming a request across retries (first one present wins). Only
#: Idempotency-Key: X-Request-Id names a request for tracing, and proxies set it.
REQUEST_ID_HEADERS = (b"idempotency-key",)
#: Request headers that change what a body means: part of the request digest.
DIGESTED_HEADERS = (b"content-type", b"content-encoding")
#: Default seconds without a body chunk before 408.
READ_TIMEOUT = 30.0
#: Default in-flight budget: request bodies one process reads, decodes and commits at
#: once; more are answered 503 + Retry-After before their body is read (README,
#: "Memory and overload").
MAX_INFLIGHT = 64
#: Decoded body bytes per batch, for every protocol (``Delivery.piece_size``): a
#: request holds one piece's events at a time and keeps the event loop for one piece
#: per turn (benchmarks/README.md, "Piece size in the server").
PIECE_SIZE = 64 * 1024
#: Seconds between two warnings about requests refused for the budget.
OVERLOAD_LOG_EVERY = 10.0
#: Where the Prometheus metrics are answered (to admin-network clients only).
METRICS_PATH = "/metrics"
_METRICS_FORBIDDEN = text_response(403, "Forbidden.")
_METRICS_METHODS = text_response(405, "Method not allowed.", (b"allow", b"GET, HEAD"))
#: Counted and logged (never sent) for a client that went away before its answer, as
#: nginx's 499 "client closed request".
_GONE = text_response(499, "client went away before the answer")


class IngestApp:
    """The ASGI application: ``service`` (the protocols) and ``store``.

    ``read_timeout``: seconds to wait for the next body chunk; ``body_timeout``: seconds
    for the whole body (None: no limit). Either one answers 408. ``metrics`` (None: no
    ``/metrics``) count every request; ``request_log`` writes their log lines.
    """

    def __init__(self, service: Service, store: Store, *, read_timeout: float = READ_TIMEOUT,
                 body_timeout: Optional[float] = None, max_inflight: int = MAX_INFLIGHT,
                 metrics: Optional[Metrics] = None, request_log: Optional[RequestLog] = None,
                 admin_networks: Iterable[str] = LOOPBACK_NETWORKS) -> None:
        if read_timeout <= 0 or (body_timeout is not None and body_timeout <= 0):
            raise ValueError("read_timeout and body_timeout must be positive")
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.service = service
        self.store = store
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout
        self.max_inflight = max_inflight
        #: Request bodies being read, decoded or committed right now.
        self.inflight = 0
        self._refused = 0           # 503s for the budget since the last warning
        self._warned_at = -OVERLOAD_LOG_EVERY
        self.metrics = metrics
        self.request_log = RequestLog() if request_log is None else request_log
        self.admin_networks = parse_networks(admin_networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()   # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

    def _overloaded(self) -> None:
        """Count a request refused for the in-flight budget; warn at most every
        OVERLOAD_LOG_EVERY seconds (an overload must not also flood the log)."""
        self._refused += 1
        if self.metrics is not None:
            self.metrics.inflight_refused()
        now = time.monotonic()
        if now - self._warned_at >= OVERLOAD_LOG_EVERY:
            log.warning("in-flight budget of %d request bodies reached: answered 503 to %d "
                        "request(s)", self.max_inflight, self._refused)
            self._warned_at, self._refused = now, 0

    async def startup(self) -> None:
        """Open the store (raises if it is unusable)."""
        await self.store.open()

    async def shutdown(self) -> None:
        """Flush and close the store; call once no request is in flight."""
        await self.store.close()

    # -- HTTP ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        received_ns = time.time_ns()
        client = scope.get("client")
        path = route_path(scope)
        if path == METRICS_PATH and self.metrics is not None:
            await self._respond(send, self._metrics(scope["method"], client))
            return
        exchange = self.service.start(
            scope["method"], path, scope["headers"],
            client=client[0] if client else None, received_ns=received_ns,
            query=scope.get("query_string", b"").decode("latin-1"))
        response = exchange.response
        tally = _Tally()
        if response is None:
            if exchange.stores_events and self.inflight >= self.max_inflight:
                response = exchange.failed()   # 503 + Retry-After, the body left unread
                self._overloaded()
            else:
                self._in_flight(exchange.stores_events)
                try:
                    response = await self._exchange(exchange, receive, scope["headers"], tally)
                finally:
                    self._in_flight(-exchange.stores_events)
                if response is None:   # the client went away: nobody to answer,
                    self._account(scope, client, exchange, _GONE, tally, started)   # but count
                    return
        self._account(scope, client, exchange, response, tally, started)
        await self._respond(send, response)

    # -- metrics and request lines ----------------------------------------------------------

    def _in_flight(self, delta: int) -> None:
        self.inflight += delta
        if delta and self.metrics is not None:
            self.metrics.set_in_flight(self.inflight)

    def _metrics(self, method: str, client: Optional[Tuple[str, int]]) -> Response:
        assert self.metrics is not None
        if not client_in(client[0] if client else None, self.admin_networks):
            return _METRICS_FORBIDDEN
        if method not in ("GET", "HEAD"):
            return _METRICS_METHODS
        return Response(200, ((b"content-type", CONTENT_TYPE),), self.metrics.render())

    def _account(self, scope: Scope, client: Optional[Tuple[str, int]], exchange: Exchange,
                 response: Response, tally: "_Tally", started: float) -> None:
        """Count the request in the metrics and write its log line."""
        status = response.status
        seconds = time.perf_counter() - started
        source = getattr(exchange, "source", None)
        decoded = exchange.bytes_decoded
        events = tally.events if status < 300 else 0
        if self.metrics is not None:
            self.metrics.request(exchange.protocol, status, seconds, source, events,
                                 tally.received, decoded)
        if self.request_log.wants(status):
            detail = None
            if status >= 400:
                detail = (str(exchange.error) if exchange.error is not None
                          else response.body[:MAX_TEXT].decode("utf-8", "replace"))
            self.request_log.request(
                status, scope["method"], scope["path"], protocol=exchange.protocol,
                source=source, client=_address(client), received=tally.received,
                decoded=decoded, events=events, seconds=seconds, detail=detail)

    async def _respond(self, send: Send, response: Response) -> None:
        headers = list(response.headers)
        if response.status != 204 and response.status != 304:   # (RFC 9110: no length there)
            headers.append((b"content-length", b"%d" % len(response.body)))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _exchange(self, exchange: Exchange, receive: Receive,
                        headers: Iterable[Tuple[bytes, bytes]],
                        tally: "_Tally") -> Optional[Response]:
        """Stream the body into the exchange and its events into one transaction.

        Each batch (one piece of decoded body) is added to the transaction before the
        next is decoded, and the loop is yielded to between batches: a body inflating
        to millions of events neither piles them up nor keeps other requests waiting.
        """
        key = request_id(headers)
        digest = request_digest(headers) if key is not None else None
        tx = _Pending(self.store, key, tally)
        committed = False
        loop = asyncio.get_running_loop()
        body_deadline = None if self.body_timeout is None else loop.time() + self.body_timeout
        try:
            more = True
            while more:
                deadline = loop.time() + self.read_timeout
                if body_deadline is not None and body_deadline < deadline:
                    deadline = body_deadline
                try:
                    message = await _receive_before(receive, deadline)
                except asyncio.TimeoutError:
                    return exchange.timed_out()
                if message["type"] != "http.request":   # http.disconnect
                    return None
                more = message.get("more_body", False)
                chunk = message.get("body", b"")
                del message
                tally.received += len(chunk)
                if chunk:
                    if digest is not None:
                        digest.update(chunk)
                    await tx.add_batches(exchange.feed_batches(chunk))
                    del chunk   # not kept while the next one is awaited
                    if exchange.response is not None:
                        return exchange.response   # stop reading: answer now
            await tx.add_batches(exchange.end_batches())
            if exchange.response is not None:
                return exchange.response
            committing = time.perf_counter()
            await tx.commit(None if digest is None else digest.digest())
            committed = True
            if self.metrics is not None:
                self.metrics.commit(time.perf_counter() - committing)
            return exchange.committed()
        except StoreTooLarge as exc:
            response = exchange.too_large(str(exc))
            log.warning("store refused a request, answering %d: %s", response.status, exc)
            return response
        except StoreError as exc:
            if self.metrics is not None:
                self.metrics.store_error()
            response = exchange.failed()
            log.error("store failure, answering %d: %s", response.status, exc)
            return response
        finally:
            if not committed:
                await tx.abort()

    # -- lifespan --------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Tally:
    """What one request brought: body bytes as received, events given to the store."""

    __slots__ = ("received", "events")

    def __init__(self) -> None:
        self.received = 0
        self.events = 0


def _address(client: Optional[Tuple[str, int]]) -> Optional[str]:
    if not client:
        return None
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Pending:
    """The store transaction of one request, begun when its first events come."""

    __slots__ = ("store", "request_id", "tx", "tally")

    def __init__(self, store: Store, request_id: Optional[str], tally: _Tally) -> None:
        self.store = store
        self.request_id = request_id
        self.tx: Optional[Transaction] = None
        self.tally = tally

    async def add_batches(self, batches: Iterator[EventBatch]) -> None:
        """Add each batch before the next is decoded, yielding the loop between them."""
        try:
            for events in batches:
                if self.tx is None:
                    self.tx = self.store.begin(self.request_id)
                if type(events) is RawEvents:
                    await self.tx.add_raw(*events)
                else:
                    await self.tx.add(*events)
                self.tally.events += len(events[1])
                del events   # not kept while other requests run
                await asyncio.sleep(0)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:   # stopped early (a store error): release the decoder
                close()

    async def commit(self, digest: Optional[bytes] = None) -> None:
        """Commit; ``digest``: of the body as sent (see ``request_digest``)."""
        if self.tx is not None:
            if digest is not None:
                self.tx.set_request_digest(digest)
            await self.tx.commit()

    async def abort(self) -> None:
        if self.tx is not None:
            await self.tx.abort()


if sys.version_info >= (3, 11):
    async def _receive_before(receive: Receive, deadline: float) -> Message:
        """``receive()``, or TimeoutError at ``deadline`` (loop time)."""
        async with asyncio.timeout_at(deadline):
            return await receive()
else:   # pragma: no cover
    async def _receive_before(receive: Receive, deadline: float) -> Message:
        delay = deadline - asyncio.get_running_loop().time()
        return await asyncio.wait_for(receive(), max(delay, 0.0))


def request_id(headers: Iterable[Tuple[bytes, bytes]]) -> Optional[str]:
    """The client's name for this request across retries: its ``Idempotency-Key``."""
    found: Dict[bytes, str] = {}
    for name, value in headers:
        name = name.lower()
        if name in REQUEST_ID_HEADERS and name not in found:
            text = value.decode("latin-1").strip()
            if text:
                found[name] = text
    for name in REQUEST_ID_HEADERS:
        if name in found:
            return found[name]
    return None


def request_digest(headers: Iterable[Tuple[bytes, bytes]]) -> "hashlib.blake2b":
    """A digest to feed the body to, started with the headers that say what it means."""
    digest = hashlib.blake2b(digest_size=16)
    found: Dict[bytes, bytes] = {}
    for name, value in headers:   # the first value wins, as for the protocols
        found.setdefault(name.lower(), value)
    for name in DIGESTED_HEADERS:
        value = found.get(name, b"").strip()
        digest.update(b"%d:%b\n" % (len(value), value))
    return digest


def route_path(scope: Scope) -> str:
    """The path below ``root_path`` (where a framework mounted the app), as Starlette does."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        path = path[len(root):]
    return path or "/"


def create_app(
    *,
    tokens: Mapping[str, str],
    store: Union[Store, str],
    limits: Union[Limits, Mapping[str, Limits], None] = None,
    protocols: Sequence[Union[str, Protocol]] = PROTOCOLS,
    admin_networks: Iterable[str] = LOOPBACK_NETWORKS,
    samsara_source: str = "samsara",
    samsara_auth: bool = False,
    read_timeout: float = READ_TIMEOUT,
    body_timeout: Optional[float] = None,
    status: Optional[StatusCell] = None,
    max_inflight: int = MAX_INFLIGHT,
    metrics: Union[Metrics, bool] = True,
    access_log: bool = False,
    piece_size: int = PIECE_SIZE,
) -> IngestApp:
    """The ingestion server as an ASGI app.

    * ``tokens``: token → source name, for every protocol and credential form
      (``Bearer``, ``Basic`` with the token as password, ``ApiKey``, ``Splunk``).
    * ``store``: a :class:`~fastingest.server.stores.Store` or its URL (``sqlite:PATH``).
    * ``limits``: body, compressed body and event size limits (413 beyond them): one
      :class:`Limits` for every protocol, or a mapping protocol name → Limits; the
      protocols left out get their own defaults (:data:`DEFAULT_PROTOCOL_LIMITS`).
    * ``protocols``: names from :data:`PROTOCOLS` — ``"betterstack"`` (``POST /``),
      ``"samsara"`` (``/v1/events``, ``/v1/api-status``), ``"otlp"`` (``/v1/logs``),
      ``"elasticsearch"`` (``/_bulk``, ``GET /``), ``"loki"`` (``/loki/api/v1/push``),
      ``"splunk"`` (``/services/collector/...``) — or ready :class:`Protocol` objects.
    * ``admin_networks``: client networks allowed to ``PUT /v1/api-status``.
    * ``samsara_source``: the source Samsara events are stored under; with
      ``samsara_auth`` they need a Bearer token instead, stored under its source.
      Without ``samsara_auth``, a ``samsara_source`` that is also a token's source is
      refused (ValueError): unauthenticated events would land among that source's.
    * ``read_timeout`` / ``body_timeout``: 408 when no body chunk came for that long /
      the whole body took that long.
    * ``status``: where the api-status lives (shared memory to share it between
      worker processes); by default in the app.
    * ``max_inflight``: request bodies read, decoded and committed at once; beyond
      it a request is answered 503 with ``Retry-After`` before its body is read.
    * ``metrics``: the :class:`~fastingest.server.metrics.Metrics` to count into (made
      before forking workers), True for this process's own, False for no ``/metrics``.
    * ``access_log``: a log line for every request (rejected ones always get one).
    * ``piece_size``: decoded body bytes per batch handed to the store, for every
      protocol (memory per request, and the event loop's turn per piece).

    Events go to a store that keeps JSON text (``store.raw_json``) as JSON text, without
    objects, wherever the protocol allows (:class:`~fastingest.protocols.Delivery`).
    """
    admin_networks = tuple(admin_networks)
    if ("samsara" in protocols and not samsara_auth
            and samsara_source in set(tokens.values())):
        raise ValueError(
            f"the Samsara source {samsara_source!r} is also a token's source: anyone could "
            f"add events to it through the unauthenticated /v1/events; choose another "
            f"--samsara-source, or require tokens there with --samsara-auth")
    if isinstance(store, str):
        store = store_from_url(store)
    built: List[Protocol] = []
    for protocol in protocols:
        if isinstance(protocol, Protocol):
            built.append(protocol)
            continue
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}: use {', '.join(PROTOCOLS)}")
        own = protocol_limits(limits, protocol)
        if protocol == "betterstack":
            built.append(BetterStack(tokens, own))
        elif protocol == "samsara":
            built.append(Samsara(source=samsara_source, tokens=tokens if samsara_auth else None,
                                 limits=own, admin_networks=admin_networks, status=status))
        elif protocol == "otlp":
            built.append(otlp.Otlp(tokens, own))
        elif protocol == "elasticsearch":
            built.append(elasticsearch.Elasticsearch(tokens, own))
        elif protocol == "loki":
            built.append(loki.Loki(tokens, own))
        else:
            built.append(splunk.Splunk(tokens, own))
    built.sort(key=lambda p: p.name not in _PRECEDENCE)   # stable: otherwise as given
    if metrics is True:
        metrics = Metrics([p.name for p in built], sources_of(tokens, samsara_source))
    delivery = Delivery(piece_size=piece_size, raw_json=store.raw_json)
    return IngestApp(Service(built, delivery), store, read_timeout=read_timeout,
                     body_timeout=body_timeout,
                     max_inflight=max_inflight, metrics=metrics or None,
                     request_log=RequestLog(access_log), admin_networks=admin_networks)


def protocol_limits(limits: Union[Limits, Mapping[str, Limits], None], name: str) -> Limits:
    """The limits protocol ``name`` gets from ``create_app``'s ``limits`` argument."""
    if isinstance(limits, Limits):
        return limits
    if limits is not None and name in limits:
        return limits[name]
    return DEFAULT_PROTOCOL_LIMITS[name]


__all__ = ["DEFAULT_PROTOCOL_LIMITS", "IngestApp", "MAX_INFLIGHT", "METRICS_PATH", "PIECE_SIZE",
           "PROTOCOLS", "READ_TIMEOUT", "create_app", "protocol_limits", "request_digest", "request_id",
           "route_path"]
