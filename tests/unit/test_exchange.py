"""The exchange lifecycle (fastingest.protocols.exchange): RECEIVING -> ENDED or
RESPONDED, each transition and each call out of turn, for a body-streaming exchange
(Better Stack), a status exchange (Samsara) and an answer decided by the head."""
from __future__ import annotations

import pytest

from fastingest import protocols
from fastingest.protocols import ENDED, RECEIVING, RESPONDED, ExchangeState, Service
from fastingest.protocols.betterstack import BetterStack
from fastingest.protocols.samsara import Samsara

HEAD = [(b"authorization", b"Bearer tok"), (b"content-type", b"application/x-ndjson")]


def start(headers=HEAD, path="/", method="POST"):
    service = Service([BetterStack(tokens={"tok": "app"}), Samsara()])
    return service.start(method, path, headers, client="127.0.0.1")


def test_states_are_named():
    assert [s.name for s in ExchangeState] == ["RECEIVING", "ENDED", "RESPONDED"]
    assert protocols.exchange.RECEIVING is ExchangeState.RECEIVING


def test_accepted_body_receiving_ended_committed():
    exchange = start()
    assert exchange.state is RECEIVING and exchange.response is None
    events = exchange.feed(b'{"a":1}\n')
    assert exchange.state is RECEIVING and events.events == [{"a": 1}]
    assert exchange.end() is None and exchange.state is ENDED
    assert exchange.committed().status == 202
    assert exchange.state is ENDED and exchange.response is None


def test_streamed_batches_walk_the_same_states():
    exchange = start()
    assert [e.events for e in exchange.feed_batches(b'{"a":1}\n{"b"')] == [[{"a": 1}]]
    assert exchange.state is RECEIVING
    assert [e.events for e in exchange.feed_batches(b':2}')] == [[{"b": 2}]]   # its '}' ends it
    assert [e.events for e in exchange.end_batches()] == []
    assert exchange.state is ENDED and exchange.committed().status == 202


def test_refused_body_is_responded():
    exchange = start()
    assert exchange.feed(b'{"a":tru}\n') is None
    assert exchange.state is RESPONDED and exchange.response.status == 406
    assert exchange.error is not None and exchange.error.detail == "invalid literal"
    with pytest.raises(RuntimeError, match="response is decided"):
        exchange.feed(b"{}\n")
    with pytest.raises(RuntimeError, match="response is decided"):
        exchange.end()
    with pytest.raises(RuntimeError, match="can be committed"):
        exchange.committed()


def test_body_cut_short_is_refused_at_the_end():
    exchange = start()
    exchange.feed(b'{"a":')
    assert exchange.end() is None and exchange.state is RESPONDED
    assert exchange.response.status == 406


def test_calls_out_of_turn():
    exchange = start()
    with pytest.raises(RuntimeError, match="can be committed"):
        exchange.committed()                  # still RECEIVING
    exchange.end()
    with pytest.raises(RuntimeError, match="already ended"):
        exchange.feed(b"{}\n")                # ENDED
    with pytest.raises(RuntimeError, match="already ended"):
        exchange.end()


@pytest.mark.parametrize("when", ["receiving", "ended"])
def test_store_failure_is_responded(when):
    exchange = start()
    if when == "ended":
        exchange.end()
    answer = exchange.failed()
    assert exchange.state is RESPONDED and exchange.response is answer and answer.status == 503


def test_timeout_is_responded():
    exchange = start()
    exchange.feed(b'{"a"')
    assert exchange.timed_out().status == 408 and exchange.state is RESPONDED


@pytest.mark.parametrize("headers,path,method,status", [
    (HEAD, "/", "GET", 405),
    ([(b"content-type", b"application/json")], "/", "POST", 403),
    (HEAD, "/nowhere", "POST", 404),
    ([(b"authorization", b"Bearer tok"), (b"content-type", b"text/plain")], "/", "POST", 415),
])
def test_answers_decided_by_the_head_start_responded(headers, path, method, status):
    exchange = start(headers, path, method)
    assert exchange.state is RESPONDED and exchange.response.status == status
    assert not exchange.stores_events


def test_status_exchange_is_responded_at_its_end():
    exchange = start([], "/v1/api-status", "PUT")
    assert exchange.state is RECEIVING and not exchange.stores_events
    exchange.feed(b'{"status": "offline"}')
    assert exchange.end() is None and exchange.state is RESPONDED
    assert exchange.response.status == 200


# -- the shipper protocols' exchanges (StoringExchange, as BatchedExchange) -----------------

def shipper_start(path="/_bulk"):
    from helpers import TOKEN, service
    head = [(b"authorization", f"Bearer {TOKEN}".encode()), (b"content-type", b"application/x-ndjson")]
    return service().start("POST", path, head, client="127.0.0.1")


def test_batched_exchange_walks_the_same_lifecycle():
    exchange = shipper_start()
    assert exchange.state is RECEIVING and exchange.stores_events
    list(exchange.feed_batches(b'{"index":{"_index":"logs"}}\n{"m":1}\n'))
    assert exchange.state is RECEIVING
    # a line's verdict may change until the next one: the last action comes at the end
    assert [b.events for b in exchange.end_batches()] == [[{"m": 1}]]
    assert exchange.state is ENDED
    assert exchange.committed().status == 200 and exchange.state is ENDED
    with pytest.raises(RuntimeError, match="already ended"):
        exchange.feed(b"{}\n")


def test_batched_exchange_store_answers():
    full = shipper_start()
    full.feed(b'{"index":{"_index":"logs"}}\n{"m":1}\n')
    assert full.too_large("over the stream's limit").status == 413 and full.state is RESPONDED
    assert full.error.detail == "over the stream's limit"
    down = shipper_start()
    down.end()
    assert down.failed().status == 429 and down.state is RESPONDED   # Elasticsearch's "retry"
    with pytest.raises(RuntimeError, match="can be committed"):
        down.committed()


# -- the server's piece size reaches every protocol (Delivery.piece_size) -------------------

def _piece_cases():
    """(path, headers, body) per protocol: bodies of about 60 KiB decoded."""
    import json
    from helpers import TOKEN, otlp_json, otlp_request
    auth = {"authorization": f"Bearer {TOKEN}"}
    lines = [json.dumps({"i": i, "pad": "x" * 40}) for i in range(1000)]
    ndjson = ("\n".join(lines) + "\n").encode()
    bulk = "".join('{"index":{"_index":"logs"}}\n' + line + "\n" for line in lines).encode()
    loki = json.dumps({"streams": [{"stream": {"job": "a"}, "values": [
        [str(1_700_000_000_000_000_000 + i), line] for i, line in enumerate(lines)]}]}).encode()
    samsara = json.dumps([{"timestamp": i, "sourceId": "s", "eventName": "e", "pad": "x" * 40}
                          for i in range(1000)]).encode()
    return {
        "betterstack": ("/", {**auth, "content-type": "application/x-ndjson"}, ndjson),
        "samsara": ("/v1/events", {"content-type": "application/json"}, samsara),
        "elasticsearch": ("/_bulk", {**auth, "content-type": "application/x-ndjson"}, bulk),
        "splunk-event": ("/services/collector/event", {"authorization": f"Splunk {TOKEN}"},
                         b"".join(b'{"event":%s}' % line.encode() for line in lines)),
        "splunk-raw": ("/services/collector/raw", {"authorization": f"Splunk {TOKEN}"}, ndjson),
        "loki": ("/loki/api/v1/push", {**auth, "content-type": "application/json"}, loki),
        "otlp": ("/v1/logs", {**auth, "content-type": "application/json"},
                 otlp_json(otlp_request(600))),
    }


@pytest.mark.parametrize("name", sorted(_piece_cases()))
def test_every_protocol_batches_by_the_servers_piece_size(name):
    from fastingest.protocols import Delivery
    from fastingest.protocols.elasticsearch import Elasticsearch
    from fastingest.protocols.loki import Loki
    from fastingest.protocols.otlp import Otlp
    from fastingest.protocols.splunk import Splunk
    from helpers import TOKENS
    path, headers, body = _piece_cases()[name]
    counts = []
    for piece in (4096, 1024 * 1024):
        service = Service([BetterStack(TOKENS), Samsara(), Elasticsearch(TOKENS), Otlp(TOKENS),
                           Loki(TOKENS), Splunk(TOKENS)], Delivery(piece_size=piece))
        exchange = service.start("POST", path, [(k.encode(), v.encode()) for k, v in headers.items()],
                                 client="127.0.0.1")
        assert exchange.response is None, exchange.response
        batches = [len(b[1]) for b in exchange.feed_batches(body)]
        batches += [len(b[1]) for b in exchange.end_batches()]
        assert exchange.response is None and exchange.committed().status in (200, 202, 204)
        counts.append(batches)
    small, whole = counts
    assert sum(small) == sum(whole) > 0
    # one piece: one batch (_bulk: the last action's verdict comes at the end, a second)
    assert len(whole) <= 2 and len(small) >= len(body) // 4096 // 2, (small, whole)
