"""The raw pipeline, differentially: a request delivered as JSON text (``Delivery(raw_json=
True)``: JSON/NDJSON events as sent, MessagePack transcoded, Samsara checked and enriched
by a shallow read) stores what the object path stores, through the real stores (a SQLite
file, a JetStream stream on a real nats-server): the same rows, each event the same
members and values (MessagePack: the same bytes), every event one line.

Hypothesis profiles are small here: every example opens a store."""
from __future__ import annotations

import asyncio
import os
import random
import sqlite3
from typing import Any, Dict, List, Tuple

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from fastingest.protocols import Delivery, RawEvents, Service
from fastingest.protocols.betterstack import BetterStack
from fastingest.protocols.samsara import Samsara
from fastingest.server.stores.nats import NATSStore, read_events
from fastingest.server.stores.sqlite import SQLiteStore

from helpers import event_lists, json_array_body, json_values, msgpack_body, ndjson_body

RECEIVED = 1_700_000_000_123_456_789
TOKENS = {"tok": "app"}
FORMATS = {
    "json": ("application/json", json_array_body),
    "ndjson": ("application/x-ndjson", ndjson_body),
    "msgpack": ("application/msgpack", lambda evs, rnd: msgpack_body(evs)),
}
Row = Tuple[str, int, int, bytes]


def handed(raw_json: bool, path: str, headers: Dict[str, str], body: bytes,
           piece: int) -> Tuple[int, list]:
    """The status and the batches one request hands to the store, delivered as asked."""
    svc = Service([BetterStack(TOKENS), Samsara()], Delivery(piece_size=piece, raw_json=raw_json))
    ex = svc.start("POST", path, [(k.encode(), v.encode()) for k, v in headers.items()],
                   client="127.0.0.1", received_ns=RECEIVED)
    batches: list = []
    if ex.response is None:
        batches += list(ex.feed_batches(body))
        if ex.response is None:
            batches += list(ex.end_batches())
    if ex.response is not None:
        return ex.response.status, []
    for batch in batches:
        assert (type(batch) is RawEvents) == raw_json
    return ex.committed().status, batches


async def _store_all(store: Any, batches: list) -> None:
    await store.open()
    try:
        tx = store.begin(None)
        for batch in batches:
            if type(batch) is RawEvents:
                await tx.add_raw(*batch)
            else:
                await tx.add(*batch)
        await tx.commit()
    finally:
        await store.close()


def sqlite_rows(path: str, batches: list) -> List[Row]:
    if os.path.exists(path):
        for suffix in ("", "-wal", "-shm", "-lock"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    asyncio.run(_store_all(SQLiteStore(path, synchronous="off"), batches))
    with sqlite3.connect(path) as conn:
        return [(s, t, r, e.encode()) for s, t, r, e in conn.execute(
            "SELECT source, time_ns, received_ns, event FROM events ORDER BY rowid")]


def nats_rows(url: str, stream: str, batches: list) -> List[Row]:
    store = NATSStore(url, stream=stream, prefix=stream.lower(), batch_bytes=300)

    async def run() -> List[Row]:
        await _store_all(store, batches)
        return [row async for row in read_events(store)]

    return asyncio.run(run())


def assert_same(objects: List[Row], text: List[Row], exact: bool) -> None:
    """The rows of both deliveries: same order, sources, times; events equal as values
    (as bytes when ``exact``), every stored event one line."""
    assert len(objects) == len(text)
    for a, b in zip(objects, text):
        assert a[:3] == b[:3]
        assert b"\n" not in b[3] and b"\r" not in b[3]
        assert orjson.loads(a[3]) == orjson.loads(b[3])
        if exact:
            assert a[3] == b[3]


def both_ways(headers: Dict[str, str], body: bytes, piece: int, store_rows: Any,
              exact: bool, path: str = "/") -> None:
    status, as_objects = handed(False, path, headers, body, piece)
    status_text, as_text = handed(True, path, headers, body, piece)
    assert status == status_text
    if status not in (200, 202):
        return
    assert_same(store_rows(as_objects, "o"), store_rows(as_text, "t"), exact)


# Members whose spelling a shallow read must handle: duplicated keys, escapes, dt forms.
dts = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                st.sampled_from(["2023-08-09 07:03:30+00:00", "2024-02-29T23:59:59.123456789Z",
                                 "not a time", ""]))
bs_events = st.lists(st.dictionaries(st.sampled_from(["dt", "message", "é\n", "a\\b"]) | st.text(max_size=4),
                                     json_values | dts, max_size=5), max_size=8)
#: receivedAt/publishedAt: null and false are filled in (replaced where they stand), any
#: other value kept; absent ones are appended.
_enrich = st.none() | st.just(False) | st.integers(0, 2**40) | st.text(max_size=3)
sam_valid = st.fixed_dictionaries(
    {"timestamp": st.integers(-2**62, 2**62), "sourceId": st.text(max_size=5),
     "eventName": st.text(max_size=5)},
    optional={"receivedAt": _enrich, "publishedAt": _enrich, "other": json_values})
sam_any = st.fixed_dictionaries(
    {"timestamp": st.integers(0, 2**53) | st.sampled_from([-1, 1.5, "1", None]),
     "sourceId": st.text(max_size=5) | st.sampled_from([None, 1]),
     "eventName": st.text(max_size=5)},
    optional={"receivedAt": _enrich})
sam_events = st.lists(sam_valid, max_size=6) | st.lists(sam_valid | sam_any, max_size=4)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(tmp_path_factory.mktemp("raw") / "events.db")


@settings(max_examples=40)
@given(st.sampled_from(sorted(FORMATS)), bs_events | event_lists, st.integers(0, 2**32),
       st.sampled_from([64, 4096, 256 * 1024]))
def test_betterstack_sqlite(db, fmt, events, seed, piece):
    ctype, make = FORMATS[fmt]
    body = make(events, random.Random(seed))
    both_ways({"authorization": "Bearer tok", "content-type": ctype}, body, piece,
              lambda batches, _: sqlite_rows(db, batches), exact=fmt == "msgpack")


@settings(max_examples=30)
@given(sam_events, st.integers(0, 2**32), st.booleans())
def test_samsara_sqlite(db, events, seed, published):
    rnd = random.Random(seed)
    body = json_array_body(events, rnd)
    headers = {"content-type": "application/json"}
    if published:
        headers["x-samsara-publishedtimestamp"] = "1700000000999"
    both_ways(headers, body, 4096, lambda batches, _: sqlite_rows(db, batches), exact=False,
              path="/v1/events")


_streams = iter(range(10**9))


@settings(max_examples=15)
@given(st.sampled_from(sorted(FORMATS)), bs_events | event_lists, st.integers(0, 2**32))
def test_betterstack_nats(nats_server, fmt, events, seed):
    ctype, make = FORMATS[fmt]
    body = make(events, random.Random(seed))
    n = next(_streams)
    both_ways({"authorization": "Bearer tok", "content-type": ctype}, body, 4096,
              lambda batches, way: nats_rows(nats_server.url, f"RAW{way.upper()}{n}", batches),
              exact=fmt == "msgpack")


@pytest.mark.parametrize("body", [
    # a repeated member, an escaped key, line breaks between tokens, a null to fill in:
    b'[{"timestamp":1,"sourceId":"a","eventName":"b","receivedAt":5,"receivedAt":null}]',
    b'[{"time\\u0073tamp":1,"sourceId":"a","eventName":"b"}]',
    b'[ {"timestamp" :\r\n 7 ,"sourceId":"a\\n","eventName":"b","publishedAt":false} \n,'
    b'{"timestamp":8,"sourceId":"","eventName":"","x":{"receivedAt":null}}\t]',
])
def test_samsara_shallow_read_edge_cases(db, body):
    both_ways({"content-type": "application/json",
               "x-samsara-publishedtimestamp": "1700000000999"}, body, 4096,
              lambda batches, _: sqlite_rows(db, batches), exact=False, path="/v1/events")
