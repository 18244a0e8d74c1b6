"""The listening sockets of ``fastingest serve``, made here and handed to uvicorn.

* IPv6 sockets are IPv6-only (``IPV6_V6ONLY``) on every path, one worker or several,
  whatever the system default (``net.ipv6.bindv6only``): an IPv4 client is never seen
  as ``::ffff:a.b.c.d``, so the admin check and the proxy-header trust check
  (:mod:`.proxy`) read every address alike. ``--host ::`` serves IPv6 only.
* A host name binds the first address it resolves to (``localhost`` → 127.0.0.1),
  and the banner announces the address really bound (:func:`url`).
* ``--workers N`` reserves the port with :func:`reserve_port`; each worker listens
  on its own ``SO_REUSEPORT`` socket from :func:`listen_on`, so that the kernel
  spreads connections evenly (see :mod:`.workers`).
"""
from __future__ import annotations

import socket
from typing import Any, Optional, Tuple

_UNSPECIFIED = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening yet); ``""`` is 0.0.0.0.
    ``reuse_port`` sets ``SO_REUSEPORT`` (several sockets on one port). OSError if
    the address cannot be bound or resolved."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host!r}: {exc.strerror}") from None
    return _bound(family, kind, proto, address, reuse_port)


def reserve_port(host: str, port: int) -> Optional[socket.socket]:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` but not listening: it
    holds the port (and tells which, for port 0) for the workers' :func:`listen_on`
    sockets. None where the platform has no ``SO_REUSEPORT`` (the workers then share
    one listening socket from :func:`bind`)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return None
    return bind(host, port, reuse_port=True)


def listen_on(reserved: socket.socket, backlog: int) -> socket.socket:
    """A worker's own listening socket on the reserved address (``SO_REUSEPORT``)."""
    sock = _bound(reserved.family, reserved.type, reserved.proto, reserved.getsockname(),
                  reuse_port=True)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def url(sock: socket.socket) -> str:
    """``http://ADDRESS:PORT`` to reach ``sock``: its bound address, the loopback
    address of its family for an unspecified one (0.0.0.0, ::)."""
    host, port = sock.getsockname()[:2]
    host = _UNSPECIFIED.get(host, host)
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _bound(family: int, kind: int, proto: int, address: Tuple[Any, ...],
           reuse_port: bool) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


__all__ = ["bind", "listen_on", "reserve_port", "url"]
