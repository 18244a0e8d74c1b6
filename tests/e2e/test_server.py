"""The server end to end: real uvicorn on 127.0.0.1, a real SQLite file, httpx as the client.

What the client is told must match what is stored: after a 202 every event is in SQLite
with the right time; after any error nothing of that request is.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import brotli
import httpx
import msgpack
import pytest
import zstandard

from fastingest.compression import ENCODING_MESSAGE
from fastingest.errors import MEDIA_TYPE_MESSAGE
from fastingest.limits import Limits
from fastingest.server import create_app
from fastingest.server.cli import parse_size, parse_tokens
from fastingest.server.stores import Store, StoreError, Transaction, store_from_url
from fastingest.server.stores.sqlite import SQLiteStore

from servers import Serve

MiB = 1024 * 1024
TOKEN = "test-token"
TOKENS = {TOKEN: "app", "other-token": "other"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TEXT = "text/plain; charset=utf-8"
SIZE_TEXT = "payload reached size limit"
PARSE_TEXT = "Couldn't parse JSON content."


# -- a real server: `python -m fastingest serve` in its own process (tests/servers.py) ----

def read_rows(db, where: str = "1", args: Sequence = ()) -> List[Tuple[str, int, int, dict]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT source, time_ns, received_ns, event FROM events "
                            f"WHERE {where} ORDER BY rowid", args).fetchall()
    return [(s, t, r, json.loads(e)) for s, t, r, e in rows]


class Served:
    """The module's server, its client and database, and the rows of the current test."""

    def __init__(self, server: Serve, client: httpx.Client, db) -> None:
        self.server, self.client, self.db = server, client, db
        self.url = server.url
        self._mark = 0

    def reset(self) -> None:
        with sqlite3.connect(self.db) as conn:
            self._mark = conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]

    def new_rows(self) -> List[Tuple[str, int, int, dict]]:
        """Rows stored since the test began."""
        return read_rows(self.db, "rowid > ?", (self._mark,))

    def post(self, path: str = "/", body: bytes = b"", headers: Optional[Dict[str, str]] = None,
             **kw) -> httpx.Response:
        return self.client.post(path, content=body, headers=headers or {}, **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    db = tmp / "events.db"
    # A small spill threshold so that larger requests also go through the staging table.
    args = ["--token", f"app={TOKEN}", "--token", "other=other-token",
            "--store", f"sqlite:{db}?spill_bytes=262144", "--log-level", "warning"]
    with Serve(args, cwd=tmp) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        yield Served(server, client, db)


@pytest.fixture
def srv(served):
    served.reset()
    return served


# -- Better Stack over HTTP ----------------------------------------------------------------

EVENTS = [{"message": "A", "dt": "2022-12-31T13:45:59.123456Z"},
          {"message": "B", "dt": 1672490759123, "nested": {"values": 123}},
          {"message": "C", "dt": "not a time"}]
DT_NS = [1672494359123456000, 1672490759123000000, None]   # None: reception time


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


ENCODERS = {
    "identity": lambda d: d,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": deflate_raw,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    "br": brotli.compress,
}
BODIES = {
    "application/json": json.dumps(EVENTS).encode(),
    "application/x-ndjson": b"\r\n".join(json.dumps(e).encode() for e in EVENTS) + b"\n\n",
    "application/msgpack": msgpack.packb(EVENTS),
}


def check_stored(srv: Served, events: List[dict], source: str = "app",
                 times: Optional[List[Optional[int]]] = None) -> None:
    rows = srv.new_rows()
    assert [r[3] for r in rows] == events
    assert {r[0] for r in rows} <= {source}
    for (_, time_ns, received_ns, _), expected in zip(rows, times or [None] * len(rows)):
        assert time_ns == (received_ns if expected is None else expected)
        assert abs(received_ns - time.time_ns()) < 120 * 10**9


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
@pytest.mark.parametrize("ctype", sorted(BODIES))
def test_betterstack_202_each_content_type_and_encoding(srv, ctype, encoding):
    headers = {**AUTH, "Content-Type": ctype}
    if encoding != "identity":
        headers["Content-Encoding"] = "deflate" if encoding == "deflate-raw" else encoding
    r = srv.post("/", ENCODERS[encoding](BODIES[ctype]), headers)
    assert (r.status_code, r.content, r.headers["content-type"]) == (202, b"", TEXT)
    check_stored(srv, EVENTS, times=DT_NS)


def test_betterstack_seed_examples(srv):
    single = b'{"message":"My first event","nested":{"values":123}}'
    for ctype, body in [("application/json", single), ("application/x-ndjson", single),
                        ("application/msgpack", msgpack.packb(json.loads(single))),
                        ("application/msgpack", msgpack.packb([{"message": "A"}, {"message": "B"}])),
                        ("application/json",
                         b'{"message":"I have arrived on time","dt":"2023-08-09 07:03:30+00:00"}')]:
        assert srv.post("/", body, {**AUTH, "Content-Type": ctype}).status_code == 202
    rows = srv.new_rows()
    assert [r[3].get("message") for r in rows] == [
        "My first event", "My first event", "My first event", "A", "B", "I have arrived on time"]
    assert rows[-1][1] == 1691564610 * 10**9


def test_betterstack_msgpack_only_types_stored_as_json(srv):
    body = msgpack.packb([{"dt": msgpack.Timestamp(1672490759, 5), "raw": b"\x00\x01",
                           "ext": msgpack.ExtType(5, b"ab")}], datetime=False)
    assert srv.post("/", body, {**AUTH, "Content-Type": "application/msgpack"}).status_code == 202
    (row,) = srv.new_rows()
    assert row[1] == 1672490759000000005
    assert row[3] == {"dt": "2022-12-31T12:45:59.000000005Z", "raw": "AAE=",
                      "ext": {"ext": 5, "data": "YWI="}}


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
])
def test_betterstack_403(srv, headers):
    r = srv.post("/", b'{"a": 1}', {"Content-Type": "application/json", **headers})
    assert (r.status_code, r.text, r.headers["content-type"]) == (403, "Unauthorized", TEXT)
    assert srv.new_rows() == []


def test_betterstack_tokens_map_to_sources(srv):
    assert srv.post("/", b"{}", {"Authorization": "Bearer other-token",
                                 "Content-Type": "application/json"}).status_code == 202
    assert [r[0] for r in srv.new_rows()] == ["other"]


@pytest.mark.parametrize("ctype,body", [
    ("application/json", b'[{"a": 1}, {"a": tru}]'),
    ("application/json", b'[{"a": 1}, "not an object"]'),
    ("application/json", b'{"a": 1'),
    ("application/x-ndjson", b'{"a": 1}\n' * 3000 + b'{"a": }\n'),   # after events were added
    ("application/x-ndjson", b'{"a": "' + b"x" * 100 + b'"}\n' * 5000 + b"[]\n"),  # after a spill
    ("application/msgpack", msgpack.packb([{"a": 1}, [1]])),
    ("application/msgpack", b"\xc1"),
])
def test_betterstack_406_stores_nothing(srv, ctype, body):
    r = srv.post("/", body, {**AUTH, "Content-Type": ctype})
    assert (r.status_code, r.text, r.headers["content-type"]) == (406, PARSE_TEXT, TEXT)
    assert srv.new_rows() == []


def test_betterstack_415(srv):
    r = srv.post("/", b"{}", {**AUTH, "Content-Type": "text/csv"})
    assert (r.status_code, r.text) == (415, MEDIA_TYPE_MESSAGE)
    r = srv.post("/", b"{}", {**AUTH, "Content-Type": "application/json", "Content-Encoding": "lz4"})
    assert (r.status_code, r.text) == (415, ENCODING_MESSAGE)
    assert srv.new_rows() == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "br"])
def test_betterstack_400_corrupt_compressed(srv, encoding):
    good = ENCODERS[encoding](BODIES["application/json"] * 50)
    r = srv.post("/", good[:len(good) // 2], {**AUTH, "Content-Type": "application/json",
                                              "Content-Encoding": encoding})
    assert r.status_code == 400 and r.headers["content-type"] == TEXT and r.text
    assert srv.new_rows() == []


def test_betterstack_405_and_404(srv):
    # (GET and HEAD / are Elasticsearch's cluster root: tests/test_server_shippers.py)
    r = srv.client.put("/", headers=AUTH)
    assert (r.status_code, r.text, r.headers["allow"]) == (405, "Method not allowed.", "POST")
    r = srv.client.get("/somewhere")
    assert (r.status_code, r.text) == (404, '{"status":"ERROR","message":"Not found"}')


def test_empty_array_is_202_and_stores_nothing(srv):
    r = srv.post("/", b"[]", {**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 202 and srv.new_rows() == []


# -- size limits -----------------------------------------------------------------------------

def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 30) -> bytes:
    """Send bytes on a fresh connection, return what the server answers (head + body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        return read_response(sock)


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def head(path: str, headers: Dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def status_and_body(response: bytes) -> Tuple[int, bytes]:
    head_, _, body = response.partition(b"\r\n\r\n")
    return int(head_.split(b" ", 2)[1]), body


@pytest.mark.parametrize("encoding,declared", [(None, 20 * MiB + 1), ("gzip", 10 * MiB + 1)])
def test_413_declared_content_length_answered_before_reading(srv, encoding, declared):
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": str(declared)}
    if encoding:
        headers["Content-Encoding"] = encoding
    # Only the head is sent: the answer must come without the body ever arriving.
    status, body = status_and_body(raw_request(srv.server.port, head("/", headers), timeout=10))
    assert (status, body) == (413, SIZE_TEXT.encode())
    sam = {"Content-Type": "application/json", "Content-Length": str(20 * MiB + 1)}
    status, body = status_and_body(raw_request(srv.server.port, head("/v1/events", sam), timeout=10))
    assert (status, json.loads(body)) == (413, {"status": "ERROR", "message": SIZE_TEXT})


def test_413_declared_within_limit_is_read(srv):
    body = b'{"a": 1}' + b" " * (1 * MiB)
    r = srv.post("/", body, {**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 202 and len(srv.new_rows()) == 1


def test_413_chunked_body_cut_off_at_the_limit(srv):
    """A chunked body is not read past the limit: the answer comes while the client is
    still 'sending' (the terminating chunk is never sent)."""
    line = json.dumps({"message": "x" * 200}).encode() + b"\n"
    chunk = line * (64 * 1024 // len(line))
    headers = {**AUTH, "Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}
    with socket.create_connection(("127.0.0.1", srv.server.port), timeout=30) as sock:
        sock.sendall(head("/", headers))
        sent = 0
        while sent <= 20 * MiB + len(chunk):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        status, body = status_and_body(read_response(sock))
    assert (status, body) == (413, SIZE_TEXT.encode())
    assert srv.new_rows() == []


def test_413_chunked_with_httpx_and_connection_stays_usable(srv):
    line = json.dumps({"message": "y" * 200}).encode() + b"\n"

    def body():
        chunk = line * 300
        for _ in range(21 * MiB // len(chunk) + 2):
            yield chunk

    r = srv.client.post("/", content=body(), headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert (r.status_code, r.text) == (413, SIZE_TEXT)
    assert srv.new_rows() == []
    r = srv.post("/", b'{"after": 1}', {**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 202 and [x[3] for x in srv.new_rows()] == [{"after": 1}]


def test_413_compressed_over_10_mib_while_streaming(srv):
    events = b",".join([b'{"n": "' + b"q" * 1000 + b'"}'] * (10 * MiB // 1000 + 100))
    compressed = gzip.compress(b"[" + events + b"]", compresslevel=0)   # stored blocks
    assert 10 * MiB < len(compressed) and len(events) < 20 * MiB

    def body():   # chunked: no Content-Length, so the codec's streaming check answers
        for i in range(0, len(compressed), 256 * 1024):
            yield compressed[i:i + 256 * 1024]

    r = srv.client.post("/", content=body(), headers={
        **AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert (r.status_code, r.text) == (413, SIZE_TEXT)
    assert srv.new_rows() == []


def test_413_decompression_bomb(srv):
    bomb = gzip.compress(b'{"a": 1}\n' * (21 * MiB // 9 + 1))
    assert len(bomb) < MiB
    r = srv.post("/", bomb, {**AUTH, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert (r.status_code, r.text) == (413, SIZE_TEXT)
    assert srv.new_rows() == []


def test_413_one_event_over_1_mib(srv):
    body = json.dumps([{"ok": 1}, {"big": "z" * MiB}]).encode()
    r = srv.post("/", body, {**AUTH, "Content-Type": "application/json"})
    assert (r.status_code, r.text) == (413, SIZE_TEXT)
    assert srv.new_rows() == []


def test_large_request_goes_through_staging_and_is_complete(srv):
    """Bigger than the spill threshold: stored complete, in order."""
    events = [{"i": i, "pad": "p" * 200, "dt": 1672490759 + i} for i in range(8000)]
    body = b"\n".join(json.dumps(e).encode() for e in events)
    r = srv.post("/", gzip.compress(body), {**AUTH, "Content-Type": "application/x-ndjson",
                                            "Content-Encoding": "gzip"})
    assert r.status_code == 202
    rows = srv.new_rows()
    assert [r[3] for r in rows] == events
    assert [r[1] for r in rows] == [(1672490759 + i) * 10**9 for i in range(8000)]


# -- Samsara over HTTP ---------------------------------------------------------------------

def sam_events(n: int = 2, base_ms: int = 1_700_000_000_000) -> List[dict]:
    return [{"timestamp": base_ms + i, "sourceId": "3aw4sedrtcyvgbuhjkn",
             "eventName": "user.item.added", "page": "orders", "item": f"sku-{i}"} for i in range(n)]


@pytest.mark.parametrize("gzipped", [False, True])
def test_samsara_seed_example(srv, gzipped):
    events = sam_events()
    body = json.dumps(events).encode()
    headers = {"Content-Type": "application/json", "X-Samsara-publishedTimestamp": "1700000000999"}
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    before = time.time_ns() // 10**6
    r = srv.post("/v1/events", body, headers)
    after = time.time_ns() // 10**6
    assert (r.status_code, r.content) == (202, b"")
    rows = srv.new_rows()
    assert [r[0] for r in rows] == ["samsara", "samsara"]
    assert [r[1] for r in rows] == [e["timestamp"] * 10**6 for e in events]
    for (_, _, received_ns, stored), sent in zip(rows, events):
        assert stored["publishedAt"] == 1700000000999
        assert before <= stored["receivedAt"] <= after
        assert stored["receivedAt"] == received_ns // 10**6
        assert {k: v for k, v in stored.items() if k not in ("receivedAt", "publishedAt")} == sent


def test_samsara_warning_without_published_header(srv):
    r = srv.post("/v1/events", json.dumps(sam_events(1)).encode(), {"Content-Type": "application/json"})
    assert r.status_code == 202 and r.headers["content-type"] == "application/json"
    assert r.content == (b'{"status":"OK","warning":"For completeness, please provide the '
                         b'\'X-Samsara-publishedTimestamp\' header."}')
    (row,) = srv.new_rows()
    assert "publishedAt" not in row[3]


@pytest.mark.parametrize("headers,body,status,expected", [
    ({"Content-Type": "text/plain"}, b"[]", 400,
     b'{"status":"ERROR","message":"Invalid format, content-type must be application/json"}'),
    ({"Content-Type": "application/json", "X-Samsara-publishedTimestamp": "soon"}, b"[]", 400,
     b'{"status":"ERROR","message":"X-Samsara-publishedTimestamp must be a valid timestamp."}'),
    ({"Content-Type": "application/json"}, b'[{"timestamp": 1, "sourceId": "a", "eventName": "b"},',
     400, b"Malformed JSON in request body."),
    ({"Content-Type": "application/json"}, b'{"timestamp": 1, "sourceId": "a", "eventName": "b"}',
     400, b'{"status":"ERROR","message":"The body must be a JSON array of events."}'),
    ({"Content-Type": "application/json"},
     json.dumps(sam_events(2) + [{"timestamp": "x", "sourceId": "a"}] + sam_events(1)).encode(), 400,
     b'["OK","OK",{"timestamp":"must be an integer","eventName":"missing required key"},"OK"]'),
    ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"not gzip", 400, None),
    ({"Content-Type": "application/json", "Content-Encoding": "lz4"}, b"[]", 415, None),
])
def test_samsara_errors_store_nothing(srv, headers, body, status, expected):
    r = srv.post("/v1/events", body, headers)
    assert r.status_code == status
    if expected is not None:
        assert r.content == expected
    assert srv.new_rows() == []


def test_samsara_invalid_event_after_many_valid_ones_stores_nothing(srv):
    events = sam_events(3000) + [{"sourceId": "a", "eventName": "b"}]
    r = srv.post("/v1/events", json.dumps(events).encode(), {"Content-Type": "application/json"})
    assert r.status_code == 400
    verdicts = r.json()   # the first 1000 verdicts, then a summary of the rest
    assert verdicts[:1000] == ["OK"] * 1000
    assert verdicts[1000:] == [{"notShown": 2001, "invalid": 1, "firstInvalid": 3000}]
    assert srv.new_rows() == []


def test_samsara_404_for_unknown_paths(srv):
    for method, path in [("GET", "/nope"), ("POST", "/v1/event"), ("PUT", "/v2/api-status")]:
        r = srv.client.request(method, path)
        assert (r.status_code, r.content) == (404, b'{"status":"ERROR","message":"Not found"}')


def test_api_status_transitions_from_loopback(srv):
    get = lambda: srv.client.get("/v1/api-status")
    assert (get().status_code, get().json()) == (200, {"status": "online"})
    r = srv.client.put("/v1/api-status", json={"status": "offline"})
    assert (r.status_code, r.json()) == (200, {"status": "offline"})
    assert (get().status_code, get().json()) == (503, {"status": "offline"})
    # offline: ingestion keeps working
    assert srv.post("/v1/events", json.dumps(sam_events(1)).encode(),
                    {"Content-Type": "application/json"}).status_code == 202
    assert srv.post("/", b"{}", {**AUTH, "Content-Type": "application/json"}).status_code == 202
    assert len(srv.new_rows()) == 2
    for bad in ({"status": "down"}, {"state": "online"}, [{"status": "online"}]):
        assert srv.client.put("/v1/api-status", json=bad).status_code == 400
    assert srv.client.put("/v1/api-status", content=b"online").status_code == 400
    assert get().status_code == 503
    r = srv.client.put("/v1/api-status", json={"status": "online"})
    assert (r.status_code, r.json()) == (200, {"status": "online"})
    assert (get().status_code, get().json()) == (200, {"status": "online"})


# -- the ASGI app directly: fake client addresses, failing stores, disconnects ----------------

async def call_asgi(app, method: str, path: str, headers: Dict[str, str], chunks: Sequence[bytes] = (b"",),
                    client: Optional[Tuple[str, int]] = ("127.0.0.1", 50000), disconnect: bool = False,
                    root_path: str = "") -> Tuple[Optional[int], Dict[bytes, bytes], bytes]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or disconnect}
                for i, c in enumerate(chunks)]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    sent: List[dict] = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": root_path + path, "raw_path": (root_path + path).encode(),
             "root_path": root_path, "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": client, "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    if not sent:
        return None, {}, b""
    return (sent[0]["status"], dict(sent[0]["headers"]),
            b"".join(m.get("body", b"") for m in sent[1:]))


@pytest.mark.parametrize("client,status", [
    (("10.1.2.3", 4000), 403), (("2001:db8::1", 4000), 403), (None, 403),
    (("127.0.0.1", 4000), 200), (("::1", 4000), 200),
])
def test_api_status_put_allow_list_via_asgi(tmp_path, client, status):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'a.db'}")

    async def scenario():
        put = await call_asgi(app, "PUT", "/v1/api-status", {"content-type": "application/json"},
                              [b'{"status": "offline"}'], client=client)
        get = await call_asgi(app, "GET", "/v1/api-status", {}, client=client)
        await app.shutdown()
        return put, get

    put, get = asyncio.run(scenario())
    assert put[0] == status
    if status == 403:
        assert put[2] == b'{"status":"ERROR","message":"Forbidden"}'
        assert (get[0], get[2]) == (200, b'{"status":"online"}')
    else:
        assert (get[0], get[2]) == (503, b'{"status":"offline"}')


def test_api_status_custom_admin_network_via_asgi(tmp_path):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'a.db'}",
                     admin_networks=["10.0.0.0/8"])
    put = lambda client: call_asgi(app, "PUT", "/v1/api-status", {}, [b'{"status":"offline"}'],
                                   client=(client, 1))
    assert asyncio.run(put("10.9.9.9"))[0] == 200
    assert asyncio.run(put("127.0.0.1"))[0] == 403


class RecordingStore(Store):
    """A store that can fail on demand and records what happened to each transaction."""

    def __init__(self, fail_on: Optional[str] = None) -> None:
        self.fail_on = fail_on
        self.log: List[str] = []
        self.committed: List[dict] = []

    async def open(self) -> None:
        self.log.append("open")

    def begin(self, request_id: Optional[str] = None) -> Transaction:
        return RecordingTx(self)

    async def close(self) -> None:
        self.log.append("close")


class RecordingTx(Transaction):
    def __init__(self, store: RecordingStore) -> None:
        self.store, self.events = store, []

    async def add(self, source, events, times_ns, received_ns) -> None:
        if self.store.fail_on == "add":
            raise StoreError("disk full")
        self.store.log.append(f"add {len(events)}")
        self.events += events

    async def commit(self) -> None:
        if self.store.fail_on == "commit":
            raise StoreError("disk full")
        self.store.log.append("commit")
        self.store.committed += self.events

    async def abort(self) -> None:
        self.store.log.append("abort")


@pytest.mark.parametrize("fail_on", ["add", "commit"])
def test_store_failure_is_503_and_aborted(fail_on):
    store = RecordingStore(fail_on)
    app = create_app(tokens=TOKENS, store=store)
    bs = asyncio.run(call_asgi(app, "POST", "/", {**AUTH, "content-type": "application/json"},
                               [b'[{"a": 1}]']))
    assert (bs[0], bs[2], bs[1][b"retry-after"]) == (503, b"Service unavailable.", b"1")
    sam = asyncio.run(call_asgi(app, "POST", "/v1/events", {"content-type": "application/json"},
                                [json.dumps(sam_events(1)).encode()]))
    assert sam[0] == 503 and json.loads(sam[2])["status"] == "ERROR"
    assert store.committed == [] and store.log.count("abort") == 2


def test_client_disconnect_mid_body_aborts_and_answers_nothing():
    store = RecordingStore()
    app = create_app(tokens=TOKENS, store=store)
    status, _, _ = asyncio.run(call_asgi(
        app, "POST", "/", {**AUTH, "content-type": "application/x-ndjson"},
        [b'{"a": 1}\n{"a": 2}\n', b'{"a": 3}\n'], disconnect=True))
    assert status is None
    assert store.log == ["add 2", "add 1", "abort"] and store.committed == []


def test_error_after_events_aborts_and_early_answers_read_nothing():
    store = RecordingStore()
    app = create_app(tokens=TOKENS, store=store)
    status, _, body = asyncio.run(call_asgi(
        app, "POST", "/", {**AUTH, "content-type": "application/x-ndjson"},
        [b'{"a": 1}\n', b'{"a": \n', b"never read"]))
    assert (status, body) == (406, PARSE_TEXT.encode())
    assert store.log == ["add 1", "abort"]
    # 403 before a single body message is received: the pending messages stay unread
    messages_left = asyncio.run(_unread_after(app, {"content-type": "application/json"}))
    assert messages_left == 2


async def _unread_after(app, headers) -> int:
    messages = [{"type": "http.request", "body": b"{}", "more_body": True},
                {"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(m):
        sent.append(m)

    scope = {"type": "http", "method": "POST", "path": "/", "root_path": "", "headers":
             [(k.encode(), v.encode()) for k, v in headers.items()], "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    assert sent[0]["status"] == 403
    return len(messages)


def test_lifespan_opens_and_closes_the_store():
    store = RecordingStore()
    app = create_app(tokens=TOKENS, store=store)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(m):
        sent.append(m["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert store.log == ["open", "close"]


def test_unusable_store_fails_startup(tmp_path):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'missing-dir' / 'x.db'}")
    with pytest.raises(StoreError):
        asyncio.run(app.startup())


def test_mounted_in_starlette(tmp_path):
    """A sub-app under a prefix: root_path routing and lazy store opening (Starlette does
    not forward lifespan events to mounted apps)."""
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    db = tmp_path / "m.db"
    ingest = create_app(tokens=TOKENS, store=f"sqlite:{db}")
    host = Starlette(routes=[Mount("/ingest", app=ingest)])

    async def scenario():
        transport = httpx.ASGITransport(app=host)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            a = await client.post("/ingest/", content=b'{"m": 1}',
                                  headers={**AUTH, "Content-Type": "application/json"})
            b = await client.post("/ingest/v1/events", content=json.dumps(sam_events(1)),
                                  headers={"Content-Type": "application/json"})
            c = await client.get("/ingest/v1/api-status")
        await ingest.shutdown()
        return a.status_code, b.status_code, c.status_code

    assert asyncio.run(scenario()) == (202, 202, 200)
    assert [r[0] for r in read_rows(db)] == ["app", "samsara"]


# -- the SQLite store ------------------------------------------------------------------------

def test_sqlite_store_all_or_nothing_with_spill(tmp_path):
    db = tmp_path / "s.db"
    store = SQLiteStore(db, spill_bytes=1000)

    async def scenario():
        await store.open()
        kept, dropped = store.begin(), store.begin()
        for i in range(10):   # interleaved, both spilling several times
            await kept.add("k", [{"i": i, "pad": "x" * 300}], [i], 7)
            await dropped.add("d", [{"i": i, "pad": "x" * 300}], [i], 7)
        with sqlite3.connect(db) as conn:   # nothing visible before commit
            assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
        await dropped.abort()
        await kept.commit()
        await dropped.abort()   # twice is harmless
        with pytest.raises(StoreError):
            await kept.add("k", [{}], [0], 0)
        await store.close()

    asyncio.run(scenario())
    rows = read_rows(db)
    assert [(r[0], r[1], r[2], r[3]["i"]) for r in rows] == [("k", i, 7, i) for i in range(10)]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert "events_source_time" in {r[1] for r in conn.execute("PRAGMA index_list(events)")}


@pytest.mark.parametrize("sizes", [[1], [127], [128], [129], [300, 1, 255], [0, 2]])
def test_sqlite_multi_row_inserts_keep_every_row_in_order(tmp_path, sizes):
    """Rows go in as 128-row statements plus power-of-two pieces: none lost or reordered."""
    store = SQLiteStore(tmp_path / "m.db")

    async def scenario():
        txs = [store.begin() for _ in sizes]
        for n, (tx, size) in enumerate(zip(txs, sizes)):
            await tx.add(f"s{n}", [{"i": i} for i in range(size)], range(size), n)
        await asyncio.gather(*(tx.commit() for tx in txs))
        await store.close()

    asyncio.run(scenario())
    rows = read_rows(tmp_path / "m.db")
    for n, size in enumerate(sizes):
        mine = [(t, r, e) for s, t, r, e in rows if s == f"s{n}"]
        assert mine == [(i, n, {"i": i}) for i in range(size)]


def test_sqlite_group_commit_shares_transactions(tmp_path):
    store = SQLiteStore(tmp_path / "g.db")

    async def one(i):
        tx = store.begin()
        await tx.add("s", [{"i": i}], [i], i)
        await tx.commit()

    async def scenario():
        await store.open()
        await asyncio.gather(*(one(i) for i in range(200)))
        await store.close()

    asyncio.run(scenario())
    assert store.commits_written == 200
    assert store.groups_written < 200   # concurrent commits were written together
    assert sorted(r[3]["i"] for r in read_rows(tmp_path / "g.db")) == list(range(200))


def test_sqlite_two_writers_on_one_file(tmp_path):
    """Two stores (two connections, as two processes would have) wait for each other."""
    db = tmp_path / "two.db"

    def writer(name):
        store = SQLiteStore(db)

        async def go():
            for i in range(50):
                tx = store.begin()
                await tx.add(name, [{"i": i}] * 20, [i] * 20, 0)
                await tx.commit()
            await store.close()

        asyncio.run(go())

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall() == [
            ("a", 1000), ("b", 1000)]


def test_sqlite_closed_store_refuses(tmp_path):
    store = SQLiteStore(tmp_path / "c.db")

    async def scenario():
        await store.open()
        await store.close()
        with pytest.raises(StoreError):
            store.begin()

    asyncio.run(scenario())


def test_store_urls(tmp_path):
    s = store_from_url(f"sqlite:{tmp_path / 'u.db'}?synchronous=normal&spill_bytes=100")
    assert isinstance(s, SQLiteStore) and (s.synchronous, s.spill_bytes) == ("normal", 100)
    for bad in ("postgres://x", "sqlite:", f"sqlite:{tmp_path}/u.db?bogus=1",
                f"sqlite:{tmp_path}/u.db?synchronous=sometimes"):
        with pytest.raises(ValueError):
            store_from_url(bad)


# -- concurrency ------------------------------------------------------------------------------

def test_20_clients_5000_requests_exact_count_no_duplicates(srv):
    """20 clients (threads, each with its own connection: httpx's async pool is far
    slower than the server), both protocols mixed, 2 events per request."""
    clients, total = 20, 5000
    statuses: List[List[int]] = [[] for _ in range(clients)]

    def worker(w: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            for n in range(total // clients):
                ids = [f"{w}-{n}-{k}" for k in range(2)]
                if n % 2:
                    body = json.dumps([{"id": i, "dt": 1672490759 + n} for i in ids])
                    r = client.post("/", content=body,
                                    headers={**AUTH, "Content-Type": "application/json"})
                else:
                    body = json.dumps([{"id": i, "timestamp": 1_700_000_000_000 + n,
                                        "sourceId": "s", "eventName": "e"} for i in ids])
                    r = client.post("/v1/events", content=body,
                                    headers={"Content-Type": "application/json",
                                             "X-Samsara-publishedTimestamp": "1"})
                statuses[w].append(r.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.perf_counter() - started
    assert [s for r in statuses for s in r] == [202] * total
    with sqlite3.connect(srv.db) as conn:
        count, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT json_extract(event, '$.id')) FROM events "
            "WHERE rowid > ? AND json_extract(event, '$.id') IS NOT NULL", (srv._mark,)).fetchone()
    assert (count, distinct) == (2 * total, 2 * total)
    print(f"\n{total} requests from {clients} clients in {elapsed:.2f} s")


# -- the command line: `fastingest serve` in a subprocess ------------------------------------

def test_cli_parsers(monkeypatch):
    assert parse_tokens(["app=a1", " web = w1 ", "app=a2"]) == {"a1": "app", "w1": "web", "a2": "app"}
    for bad in (["app"], ["=tok"], ["app="], ["a=t", "b=t"], ["a=t t"]):
        with pytest.raises(ValueError):
            parse_tokens(bad)
    assert [parse_size(s) for s in ("100", "20MiB", "20M", "512k", "1GiB", "3 b")] == [
        100, 20 * MiB, 20 * MiB, 512 * 1024, 1024 * MiB, 3]
    from fastingest.cli import main
    monkeypatch.setenv("FASTINGEST_TOKENS", "env=e1, env2=e2")
    import fastingest.server.cli as server_cli
    seen = {}
    monkeypatch.setattr(server_cli, "create_app", lambda **kw: seen.update(kw) or None)
    monkeypatch.setattr("uvicorn.Server.run", lambda self, sockets=None: None)
    main(["serve", "--token", "cli=c1", "--protocol", "samsara", "--admin-network", "10.0.0.0/8",
          "--max-body", "1MiB", "--store", "sqlite::memory:", "--port", "0"])
    assert seen["tokens"] == {"e1": "env", "e2": "env2", "c1": "cli"}
    assert seen["protocols"] == ("samsara",) and seen["admin_networks"] == ["10.0.0.0/8"]
    assert seen["limits"] == {"samsara": Limits(max_body=MiB)}


def test_serve_prints_a_token_and_shuts_down_gracefully_on_sigterm(tmp_path):
    """`python -m fastingest serve` with no token: it makes one and prints a curl line.
    SIGTERM while a request is in flight: that request still completes and is stored,
    and so is everything acknowledged before; then the process ends (as uvicorn does,
    by re-raising SIGTERM once the shutdown is complete)."""
    db = tmp_path / "cli.db"
    env = {k: v for k, v in os.environ.items() if k != "FASTINGEST_TOKENS"}
    with Serve(["--store", f"sqlite:{db}"], cwd=tmp_path, env=env) as server:
        token = server.out.wait_for(r"created source 'default' with token (\S+)").group(1)
        curl = server.out.wait_for(r"curl -i -X POST (\S+) -H 'Authorization: Bearer (\S+)'")
        assert curl.groups() == (server.url + "/", token)
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}

        # A request in flight: the app has started reading it (uvicorn sends 100 Continue
        # only once the app asks for the body).
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(head("/", {**auth, "Transfer-Encoding": "chunked", "Expect": "100-continue"}))
        got = b""
        while b"\r\n\r\n" not in got:
            got += sock.recv(1024)
        assert got.startswith(b"HTTP/1.1 100")
        first = b'{"in": "flight", "n": 1}\n'
        sock.sendall(b"%x\r\n%s\r\n" % (len(first), first))

        with httpx.Client(base_url=server.url) as client:   # acknowledged before SIGTERM
            for n in range(20):
                r = client.post("/", content=b'{"acked": %d}' % n, headers=auth)
                assert r.status_code == 202

        server.proc.send_signal(signal.SIGTERM)
        server.err.wait_for(r"Shutting down")
        second = b'{"in": "flight", "n": 2}\n'
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second))
        status, _ = status_and_body(read_response(sock))
        sock.close()
        assert status == 202
        assert server.proc.wait(30) in (0, -signal.SIGTERM)
        server.err.wait_for(r"Application shutdown complete")
    events = [r[3] for r in read_rows(db)]
    assert [e for e in events if "acked" in e] == [{"acked": n} for n in range(20)]
    assert [e for e in events if "in" in e] == [{"in": "flight", "n": 1}, {"in": "flight", "n": 2}]
    assert {r[0] for r in read_rows(db)} == {"default"}
