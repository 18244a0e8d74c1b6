"""Sans-I/O ingestion protocols, in the style of h11.

A protocol never touches a socket, a framework or an event loop. The server hands it the
request head, then the body chunk by chunk, and the protocol says what to store and what
to answer::

    service = Service([BetterStack(tokens={"tok": "app"}), Samsara()])
    exchange = service.start("POST", "/", headers, client="127.0.0.1")
    while exchange.response is None and <more body>:
        events = exchange.feed(chunk)        # Events to add to the store's transaction, or None
    if exchange.response is None:
        events = exchange.end()              # the body is complete
    if exchange.response is None:            # the body was accepted: commit, then
        response = exchange.committed()      # 202 (or exchange.failed() when the store failed)
    else:
        response = exchange.response         # an error (or a non-storing answer): abort

Once ``exchange.response`` is set the server sends it, stops reading the body and
aborts whatever it added to its store transaction: a request is stored all or nothing.
All decoding, limits and event times come from the codec (:class:`~fastingest.stream.StreamDecoder`).

This package's face; the parts:

* :mod:`.http`: :class:`Request` (the head, parsed once, with the :class:`Delivery`
  the server wants), :class:`Response` and the helpers that make one
  (:func:`text_response`, :func:`json_response`);
* :mod:`.exchange`: :class:`Exchange` and its lifecycle (:class:`ExchangeState`:
  RECEIVING, ENDED, RESPONDED), :class:`StoringExchange` (events to the store, in
  bounded batches; its 503 and 413) and :class:`DecodingExchange` (a body streamed
  through the codec), :class:`Answer` (decided by the head), :class:`Events` (objects)
  and :class:`RawEvents` (their JSON text);
* :mod:`.service`: :class:`Protocol` (one API) and :class:`Service` (several on one server);
* :mod:`.access`: checks on a head the protocols share (bearer token, declared size,
  client networks);
* one module per protocol: :mod:`.betterstack`, :mod:`.samsara`, :mod:`.otlp`,
  :mod:`.elasticsearch`, :mod:`.loki`, :mod:`.splunk` (the shipper protocols share
  :mod:`.batched` and :mod:`.auth`).
"""
from __future__ import annotations

from .access import (LOOPBACK_NETWORKS, Network, bearer_token, client_in, declared_too_large,
                     parse_networks)
from .exchange import (ENDED, RECEIVING, RESPONDED, Answer, DecodingExchange, EventBatch, Events,
                       Exchange, ExchangeState, RawEvents, StoringExchange)
from .exchange import _gather as _gather   # several batches as one Events (batched.py)
from .http import (DEFAULT_DELIVERY, REQUEST_TIMEOUT, Delivery, HeaderList, Request, Response,
                   json_response, text_response)
from .service import Protocol, Service

__all__ = [
    "Answer", "DEFAULT_DELIVERY", "DecodingExchange", "Delivery", "ENDED", "EventBatch", "Events",
    "Exchange", "ExchangeState", "HeaderList", "LOOPBACK_NETWORKS", "Network", "Protocol",
    "RECEIVING", "REQUEST_TIMEOUT", "RESPONDED", "RawEvents", "Request", "Response", "Service",
    "StoringExchange", "bearer_token", "client_in", "declared_too_large", "json_response",
    "parse_networks", "text_response",
]
