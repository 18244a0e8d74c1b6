"""A raw ASGI 3 app over the sans-I/O protocols and a store.

    app = create_app(tokens={"<token>": "app"}, store="sqlite:fastingest.db")
    # uvicorn module:app  — or mount it: Starlette(routes=[Mount("/ingest", app)])

Per request the app asks the protocols for an exchange, streams the body into it chunk
by chunk (stopping as soon as the response is decided: an early 403/413/415 reads
nothing), adds the events it yields to one store transaction, and answers 202 only
after that transaction committed. Any error, or a client that goes away, aborts it.

A body that stops arriving is answered 408 (and the connection closed) once no chunk
came for ``read_timeout`` seconds, or the whole body took longer than
``body_timeout``; uvicorn itself never times out a request body. The transaction is
named after the client's ``Idempotency-Key`` (else ``X-Request-Id``) header, so that
a store that can (NATS) keeps a retried request once.

When mounted in a framework that does not forward lifespan events to sub-apps, the
store opens on first use; call ``await app.startup()`` / ``await app.shutdown()`` from
the host's lifespan to open it eagerly and to flush it on exit.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import (Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

from ..limits import DEFAULT_LIMITS, Limits
from ..protocols import LOOPBACK_NETWORKS, Exchange, Protocol, Response, Service
from ..protocols import elasticsearch, loki, otlp, splunk
from ..protocols.betterstack import BetterStack
from ..protocols.samsara import Samsara, StatusCell
from .stores import Store, StoreError, Transaction, store_from_url

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

#: Request headers naming a request across retries (first one present wins).
REQUEST_ID_HEADERS = (b"idempotency-key", b"x-request-id")
#: Default seconds without a body chunk before 408.
READ_TIMEOUT = 30.0


class IngestApp:
    """The ASGI application: ``service`` (the protocols) and ``store``.

    ``read_timeout``: seconds to wait for the next body chunk; ``body_timeout``: seconds
    for the whole body (None: no limit). Either one answers 408.
    """

    def __init__(self, service: Service, store: Store, *, read_timeout: float = READ_TIMEOUT,
                 body_timeout: Optional[float] = None) -> None:
        if read_timeout <= 0 or (body_timeout is not None and body_timeout <= 0):
            raise ValueError("read_timeout and body_timeout must be positive")
        self.service = service
        self.store = store
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()   # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

    async def startup(self) -> None:
        """Open the store (raises if it is unusable)."""
        await self.store.open()

    async def shutdown(self) -> None:
        """Flush and close the store; call once no request is in flight."""
        await self.store.close()

    # -- HTTP ----------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        received_ns = time.time_ns()
        client = scope.get("client")
        exchange = self.service.start(
            scope["method"], route_path(scope), scope["headers"],
            client=client[0] if client else None, received_ns=received_ns,
            query=scope.get("query_string", b"").decode("latin-1"))
        response = exchange.response
        if response is None:
            response = await self._exchange(exchange, receive, scope["headers"])
            if response is None:
                return   # the client went away: nobody to answer
        if exchange.error is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d: %s", scope["method"], scope["path"], response.status,
                      exchange.error)
        headers = list(response.headers)
        if response.status != 204 and response.status != 304:   # (RFC 9110: no length there)
            headers.append((b"content-length", b"%d" % len(response.body)))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _exchange(self, exchange: Exchange, receive: Receive,
                        headers: Iterable[Tuple[bytes, bytes]]) -> Optional[Response]:
        """Stream the body into the exchange and its events into one transaction."""
        tx: Optional[Transaction] = None
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
                if chunk:
                    events = exchange.feed(chunk)
                    while events is not None:   # one bounded batch at a time
                        if tx is None:
                            tx = self.store.begin(request_id(headers))
                        await tx.add(*events)
                        events = exchange.more()
                    if exchange.response is not None:
                        return exchange.response   # stop reading: answer now
            events = exchange.end()
            while events is not None:
                if tx is None:
                    tx = self.store.begin(request_id(headers))
                await tx.add(*events)
                events = exchange.more()
            if exchange.response is not None:
                return exchange.response
            if tx is not None:
                await tx.commit()
            committed = True
            return exchange.committed()
        except StoreError as exc:
            response = exchange.failed()
            log.error("store failure, answering %d: %s", response.status, exc)
            return response
        finally:
            if tx is not None and not committed:
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
    """The client's name for this request: ``Idempotency-Key``, else ``X-Request-Id``."""
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
    * ``read_timeout`` / ``body_timeout``: 408 when no body chunk came for that long /
      the whole body took that long.
    * ``status``: where the api-status lives (shared memory to share it between
      worker processes); by default in the app.
    """
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
    return IngestApp(Service(built), store, read_timeout=read_timeout, body_timeout=body_timeout)


def protocol_limits(limits: Union[Limits, Mapping[str, Limits], None], name: str) -> Limits:
    """The limits protocol ``name`` gets from ``create_app``'s ``limits`` argument."""
    if isinstance(limits, Limits):
        return limits
    if limits is not None and name in limits:
        return limits[name]
    return DEFAULT_PROTOCOL_LIMITS[name]


__all__ = ["DEFAULT_PROTOCOL_LIMITS", "IngestApp", "PROTOCOLS", "READ_TIMEOUT", "create_app",
           "protocol_limits", "request_id", "route_path"]
