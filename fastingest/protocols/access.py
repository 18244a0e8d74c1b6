"""Checks the protocols share on a request head: the bearer token, the declared body
size against the limits, and whether the client's address is in a network (admin
actions)."""
from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Sequence, Tuple, Union

from ..compression import parse_content_encoding
from ..limits import Limits
from .http import Request


def bearer_token(request: Request) -> Optional[str]:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive), or None."""
    value = request.header(b"authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def declared_too_large(request: Request, limits: Limits) -> bool:
    """Content-Length over the limit that applies: ``max_compressed`` when a real
    Content-Encoding is declared, else ``max_body``. Lets a server answer 413 before
    reading anything; everything else about size is the codec's job while streaming.
    """
    declared = request.header(b"content-length")
    # ASCII digits only: str.isdigit() also admits '²' (which int() refuses) and '١٢'
    # (which int() reads), and not every ASGI server validates the header.
    if declared is None or not declared.isascii() or not declared.isdigit():
        return False   # absent (chunked) or malformed: the HTTP layer's concern
    size = int(declared)
    if size <= min(limits.max_body, limits.max_compressed):
        return False   # within both limits: no need to look at the encoding
    compressed = bool(parse_content_encoding(request.header(b"content-encoding")))
    return size > (limits.max_compressed if compressed else limits.max_body)


Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

LOOPBACK_NETWORKS: Tuple[str, ...] = ("127.0.0.0/8", "::1/128")


def parse_networks(networks: Iterable[str]) -> Tuple[Network, ...]:
    """CIDR strings (``10.0.0.0/8``, ``::1``) to network objects; ValueError if invalid."""
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)


def client_in(client: Optional[str], networks: Sequence[Network]) -> bool:
    """Whether the client address lies in one of ``networks``.

    An unknown client (None, a Unix socket path, garbage) is never inside: admin
    actions fail closed. An address is taken as written: an IPv4-mapped IPv6 address
    (``::ffff:127.0.0.1``) is an IPv6 address, inside IPv6 networks only (list
    ``::ffff:127.0.0.0/104`` to admit it). uvicorn's proxy-header trust check and
    :mod:`fastingest.server.proxy` read addresses the same way, and ``fastingest
    serve`` makes its IPv6 sockets IPv6-only, so that an IPv4 client always shows
    as its IPv4 address.
    """
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in networks)


__all__ = ["LOOPBACK_NETWORKS", "Network", "bearer_token", "client_in", "declared_too_large",
           "parse_networks"]
