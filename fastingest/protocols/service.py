"""Routing: a :class:`Protocol` is one ingestion API; a :class:`Service` serves several
on one server and hands each request head to the protocol whose path it is."""
from __future__ import annotations

from typing import Optional, Sequence

from .exchange import Answer, Exchange
from .http import DEFAULT_DELIVERY, Delivery, HeaderList, Request, Response, text_response


class Protocol:
    """One ingestion API. Subclasses route a request head to an :class:`Exchange`."""

    name = "protocol"
    #: True when the API specifies the answer for unknown paths (it then answers them
    #: for every protocol of a :class:`Service`).
    specifies_not_found = False

    def start(self, request: Request) -> Optional[Exchange]:
        """The exchange for this request, or None when the path is not this API's."""
        raise NotImplementedError

    def not_found(self, request: Request) -> Response:
        """The answer for a path no protocol serves."""
        return text_response(404, "Not found.")


class Service:
    """Several protocols on one server: their paths must not clash.

    Unknown paths are answered by the first protocol that specifies its 404
    (Samsara), else by the first protocol. ``delivery`` is how the server wants every
    request's events (:class:`Delivery`: piece size, JSON text or objects).
    """

    def __init__(self, protocols: Sequence[Protocol],
                 delivery: Delivery = DEFAULT_DELIVERY) -> None:
        if not protocols:
            raise ValueError("a service needs at least one protocol")
        if type(delivery.piece_size) is not int or delivery.piece_size < 1:
            raise ValueError(f"piece_size must be a positive int, got {delivery.piece_size!r}")
        self.protocols = tuple(protocols)
        self.delivery = delivery
        self._not_found = next(
            (p for p in self.protocols if p.specifies_not_found), self.protocols[0])

    def start(self, method: str, path: str, headers: HeaderList, *,
              client: Optional[str] = None, received_ns: Optional[int] = None,
              query: str = "") -> Exchange:
        """Begin one request: the head is all a protocol needs to route and check it."""
        request = Request(method, path, headers, client, received_ns, query, self.delivery)
        for protocol in self.protocols:
            exchange = protocol.start(request)
            if exchange is not None:
                exchange.protocol = protocol.name
                return exchange
        return Answer(self._not_found.not_found(request))

    def protocol(self, name: str) -> Protocol:
        """The protocol called ``name`` (KeyError if it is not served)."""
        for protocol in self.protocols:
            if protocol.name == name:
                return protocol
        raise KeyError(name)


__all__ = ["Protocol", "Service"]
