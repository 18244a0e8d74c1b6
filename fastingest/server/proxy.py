"""Client addresses from trusted reverse proxies (``fastingest serve --proxy-headers``).

Behind a reverse proxy every connection comes from the proxy, so the admin check of
``PUT /v1/api-status`` would see the proxy's address for every client. With
``--proxy-headers``, a request whose connection comes from a trusted proxy
(``--forwarded-allow-ips``, 127.0.0.1 and ::1 by default) takes its client from
``X-Forwarded-For``:

* the header's addresses are read from the right (each proxy appends the address it
  got the request from); the client is the first that is not itself a trusted proxy,
  or the leftmost when all are;
* a trusted proxy that sends no ``X-Forwarded-For`` (nginx's default) vouches for
  nobody: the client is unknown (``None``), and an unknown client never passes the
  admin check. The proxy's own address is not used: every client behind it would
  share it;
* an entry that is not an IP address (``unknown``, a hostname, an empty element) ends
  the walk with an unknown client too;
* ``X-Forwarded-Proto`` (``http`` or ``https``) becomes the request's scheme.

A connection from anyone else keeps its own address, whatever headers it sends.
Addresses are compared as written, as :func:`fastingest.protocols.client_in` does
(``::ffff:127.0.0.1`` is not ``127.0.0.1``). uvicorn's own proxy-header middleware is
never used by ``fastingest serve``: it is on by default, trusts whatever the
``FORWARDED_ALLOW_IPS`` environment variable says, and keeps the proxy's address when
the header is missing.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Sequence, Tuple

from ..protocols import Network, client_in, parse_networks

Scope = Dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]

#: ``--forwarded-allow-ips`` by default (uvicorn's): a proxy on the same machine.
DEFAULT_TRUSTED = "127.0.0.1,::1"
_SCHEMES = (b"http", b"https")


def parse_trusted(text: str) -> Optional[Tuple[Network, ...]]:
    """``--forwarded-allow-ips``: comma-separated addresses or CIDRs → networks, or
    None for ``*`` (every peer is trusted). ValueError if an element is neither."""
    items = [item.strip() for item in text.split(",")]
    if items == ["*"]:
        return None
    if not all(items):
        raise ValueError(f"--forwarded-allow-ips: an empty element in {text!r}")
    try:
        return parse_networks(items)
    except ValueError:
        raise ValueError(f"--forwarded-allow-ips: not addresses or networks (CIDR), "
                         f"nor '*': {text!r}") from None


def _address(entry: str) -> Optional[Tuple[str, int]]:
    """One X-Forwarded-For element (``1.2.3.4``, ``1.2.3.4:5``, ``::1``, ``[::1]:5``)
    → (address, port), or None when it holds no IP address."""
    host, port = entry, "0"
    if entry.startswith("["):
        host, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] or "0"
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    if not (port.isascii() and port.isdigit() and int(port) < 65536):
        return None
    return host, int(port)


class ProxyHeaders:
    """ASGI middleware: ``scope["client"]`` and ``scope["scheme"]`` from the proxy
    headers of trusted peers (module doc). ``trusted``: ``--forwarded-allow-ips``
    text, or addresses/CIDRs."""

    def __init__(self, app: ASGIApp, trusted: "str | Iterable[str]" = DEFAULT_TRUSTED) -> None:
        self.app = app
        self.trusted = parse_trusted(trusted if isinstance(trusted, str) else ",".join(trusted))

    def trusts(self, host: Optional[str]) -> bool:
        """Whether ``host`` is a trusted proxy."""
        return self.trusted is None or client_in(host, self.trusted)

    def client(self, forwarded_for: Sequence[bytes]) -> Optional[Tuple[str, int]]:
        """The client that ``X-Forwarded-For`` values (in header order) vouch for."""
        entries = [e.strip() for value in forwarded_for
                   for e in value.decode("latin-1").split(",")]
        if not entries:
            return None
        for entry in reversed(entries):
            found = _address(entry)
            if found is None:
                return None
            if not self.trusts(found[0]):
                return found
        return _address(entries[0])

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "http":
            peer = scope.get("client")
            if self.trusts(peer[0] if peer else None):
                forwarded, proto = [], None
                for name, value in scope["headers"]:
                    name = name.lower()
                    if name == b"x-forwarded-for":
                        forwarded.append(value)
                    elif name == b"x-forwarded-proto":
                        proto = value.strip().lower()
                # In place, as uvicorn's middleware does: its access log reads this scope.
                scope["client"] = self.client(forwarded)
                if proto in _SCHEMES:
                    scope["scheme"] = proto.decode("ascii")
        await self.app(scope, receive, send)


__all__ = ["DEFAULT_TRUSTED", "ProxyHeaders", "parse_trusted"]
