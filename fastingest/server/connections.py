"""Connection-level defences uvicorn lacks: a deadline for request heads, a connection cap.

uvicorn times out idle keep-alive connections, but not a request head that arrives a
byte at a time, nor a fresh connection that sends nothing: a few thousand such
connections (slowloris) take every file descriptor and lock everyone else out. The
protocol class made here wraps uvicorn's (httptools or h11, capped by :mod:`.headcaps`)
with a :class:`Guard`:

* **Header timeout.** A connection must complete each request head (request line and
  headers) within ``header_timeout`` seconds of connecting, or of the first byte of a
  later request on a kept-alive connection; otherwise it is closed (with a 408 when
  part of a head had arrived). The body's own pace is the application's business
  (``--read-timeout``/``--body-timeout``).
* **Connection cap.** Beyond ``max_connections`` open connections, a new one first
  evicts the connection that has waited longest for its request head (when it has
  waited ``EVICT_AFTER`` seconds at least: a slowloris connection, or an idle client);
  when there is none, the new connection is answered 503 with ``Retry-After`` and
  closed at once — refused fast, never left hanging in the listen backlog.

Connections waiting for a head are kept in arrival order, so the deadline sweep (every
``SWEEP_EVERY`` seconds) and the eviction both look at the oldest first and stop at the
first one still in time: the cost is O(connections closed), whatever the number open.
"""
from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, Callable, Dict, Optional, Tuple

log = logging.getLogger("fastingest.server")

#: Default seconds a request head may take.
HEADER_TIMEOUT = 10.0
#: Default most open connections per process (see :func:`default_max_connections`).
MAX_CONNECTIONS = 4096
#: File descriptors kept free for the store, logs and the listening sockets.
FD_RESERVE = 128
#: A connection waiting for its head this long may be evicted for a new one.
EVICT_AFTER = 1.0
#: Seconds between two looks for heads past their deadline.
SWEEP_EVERY = 0.5

REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
           b"retry-after: 1\r\nconnection: close\r\ncontent-length: 21\r\n\r\n"
           b"Too many connections.")
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"connection: close\r\ncontent-length: 17\r\n\r\nRequest timeout.")


def raise_open_file_limit() -> Tuple[int, int]:
    """Raise the soft limit of open files to the hard one (a server must not run out of
    descriptors at a shell's default 1,024); returns the (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):   # a container may forbid it: keep what we have
            pass
    return soft, hard


def default_max_connections() -> int:
    """MAX_CONNECTIONS, or fewer when the open-file limit would not allow them."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - FD_RESERVE))


class Guard:
    """The connections of one server process waiting for a request head."""

    def __init__(self, header_timeout: float = HEADER_TIMEOUT,
                 max_connections: Optional[int] = None,
                 on_close: Optional[Callable[[str], None]] = None) -> None:
        if header_timeout <= 0:
            raise ValueError("header_timeout must be positive")
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.header_timeout = header_timeout
        self.max_connections = max_connections or default_max_connections()
        #: protocol -> (loop time its head wait began, whether head bytes arrived)
        self._waiting: Dict[Any, Tuple[float, bool]] = {}
        self._sweeping: Optional[asyncio.TimerHandle] = None
        #: Connections closed for a late head, evicted, refused (for tests and logs);
        #: ``on_close`` hears of each ("header_timeout", "evicted", "refused": metrics).
        self.timed_out = 0
        self.evicted = 0
        self.refused = 0
        self.on_close = on_close or _ignore

    # -- events from the protocols ----------------------------------------------------------

    def opened(self, conn: Any, open_count: int) -> bool:
        """A new connection (``open_count`` including it); False when it was refused."""
        if open_count > self.max_connections and not self._evict(conn.loop.time()):
            self.refused += 1
            self.on_close("refused")
            conn.transport.write(REFUSED)
            conn.transport.close()
            return False
        self._wait(conn, False)
        return True

    def head_bytes(self, conn: Any) -> None:
        """Bytes of a new request head arrived on a connection not waiting yet (the next
        request of a kept-alive connection)."""
        if conn not in self._waiting:
            self._wait(conn, True)
        elif not self._waiting[conn][1]:
            self._waiting[conn] = (self._waiting[conn][0], True)

    def head_done(self, conn: Any) -> None:
        """A request head was complete."""
        self._waiting.pop(conn, None)

    def closed(self, conn: Any) -> None:
        self._waiting.pop(conn, None)

    # -- machinery ------------------------------------------------------------------------------

    def _wait(self, conn: Any, started: bool) -> None:
        self._waiting[conn] = (conn.loop.time(), started)
        if self._sweeping is None:
            self._sweeping = conn.loop.call_later(SWEEP_EVERY, self._sweep, conn.loop)

    def _evict(self, now: float) -> bool:
        for conn, (since, _) in self._waiting.items():
            if now - since < EVICT_AFTER:
                return False   # the oldest is recent: so are the rest
            del self._waiting[conn]
            self.evicted += 1
            self.on_close("evicted")
            conn.transport.close()
            return True
        return False

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweeping = None
        deadline = loop.time() - self.header_timeout
        late = []
        for conn, (since, started) in self._waiting.items():
            if since > deadline:
                break
            late.append((conn, started))
        for conn, started in late:
            del self._waiting[conn]
            self.timed_out += 1
            self.on_close("header_timeout")
            transport = conn.transport
            if not transport.is_closing():
                if started:
                    transport.write(TIMED_OUT)
                transport.close()
        if late:
            log.debug("closed %d connection(s) whose request head took over %g s",
                      len(late), self.header_timeout)
        if self._waiting:
            self._sweeping = loop.call_later(SWEEP_EVERY, self._sweep, loop)


def _ignore(reason: str) -> None:
    """No one listens to the guard's closes."""


def guarded_protocol(base: type, guard: Guard) -> type:
    """A subclass of uvicorn's HTTP protocol ``base`` (HttpToolsProtocol or H11Protocol)
    that reports to ``guard``; pass it as ``uvicorn.Config(http=...)``."""

    class GuardedProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            guard.opened(self, len(self.connections))

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                guard.head_bytes(self)
            super().data_received(data)
            # the parser completed a request head, or the head was refused (431: the
            # connection lingers, then closes; see headcaps)
            if self.cycle is not cycle or getattr(self, "head_refused", False):
                guard.head_done(self)

        def connection_lost(self, exc: Optional[Exception]) -> None:
            guard.closed(self)
            super().connection_lost(exc)

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = "Guarded" + base.__name__
    return GuardedProtocol


__all__ = ["EVICT_AFTER", "Guard", "HEADER_TIMEOUT", "MAX_CONNECTIONS", "default_max_connections",
           "guarded_protocol", "raise_open_file_limit"]
