"""The four shipper protocols through a real ``fastingest serve`` (uvicorn, SQLite):
status, headers and bodies as they reach a client over HTTP, and what got stored."""
from __future__ import annotations

import base64
import gzip
import json
import socket
import sqlite3

import httpx
import pytest

from fastingest.snappy import compress_block

from servers import Serve
from shippers import field, loki_entry, loki_push

TOKEN = "ship-token"
BASIC = "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shippers")
    db = tmp / "events.db"
    args = ["--token", f"ship={TOKEN}", "--store", f"sqlite:{db}", "--log-level", "warning",
            "--max-body", "loki=64KiB", "--max-compressed", "loki=64KiB"]
    with Serve(args, cwd=tmp) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        srv.client, srv.db = client, db
        yield srv


def stored(db, marker):
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT source, time_ns, event FROM events WHERE event LIKE ? "
                            "ORDER BY rowid", (f"%{marker}%",)).fetchall()
    return [(s, t, json.loads(e)) for s, t, e in rows]


def test_all_protocols_are_served_by_default(server):
    c = server.client
    assert c.post("/", headers={"Authorization": f"Bearer {TOKEN}",
                                "Content-Type": "application/json"},
                  content=b'{"m":"bs-default"}').status_code == 202
    assert c.get("/v1/api-status").status_code == 200
    assert c.get("/services/collector/health").json() == {"text": "HEC is healthy", "code": 17}
    r = c.get("/", headers={"Authorization": BASIC})
    assert r.status_code == 200 and r.headers["x-elastic-product"] == "Elasticsearch"
    r = c.head("/", headers={"Authorization": BASIC})
    assert (r.status_code, r.content, r.headers["x-elastic-product"]) == (200, b"", "Elasticsearch")
    r = c.put("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 405   # PUT / stays Better Stack's


def test_otlp_over_http(server):
    body = field(1, field(2, field(2, field(1, (1796544182426450500).to_bytes(8, "little"), 1)
                                   + field(5, field(1, "otlp-http")))))
    r = server.client.post("/v1/logs", content=gzip.compress(body), headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-protobuf",
        "Content-Encoding": "gzip"})
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "application/x-protobuf")
    assert stored(server.db, "otlp-http") == [
        ("ship", 1796544182426450500, {"body": "otlp-http", "time_unix_nano": 1796544182426450500})]
    r = server.client.get("/v1/logs")
    assert (r.status_code, r.text) == (405, "405 method not allowed, supported: [POST]")


def test_elasticsearch_over_http(server):
    r = server.client.post("/_bulk")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == ['Basic realm="security" charset="UTF-8"', "ApiKey"]
    body = b'{"index":{"_index":"i"}}\n{"m":"es-http","@timestamp":1796544182426}\n'
    r = server.client.put("/_bulk", content=body, headers={
        "Authorization": BASIC, "Content-Type": "application/vnd.elasticsearch+x-ndjson; compatible-with=9"})
    assert r.status_code == 200 and r.json()["items"][0]["index"]["status"] == 201
    assert stored(server.db, "es-http")[0][:2] == ("ship", 1796544182426000000)


def test_loki_over_http(server):
    push = loki_push([('{app="x"}', [loki_entry(1796544182, 1, "loki-http")])])
    r = server.client.post("/loki/api/v1/push", content=compress_block(push), headers={
        "Authorization": BASIC, "Content-Type": "application/x-protobuf"})
    assert (r.status_code, r.content) == (204, b"")
    assert "content-length" not in r.headers   # a 204 has no body and no length
    assert stored(server.db, "loki-http") == [("ship", 1796544182000000001,
                                               {"line": "loki-http", "labels": {"app": "x"}})]
    r = server.client.post("/loki/api/v1/push", content=b"{}", headers={"Authorization": BASIC})
    assert (r.status_code, r.text, r.headers["x-content-type-options"]) == (
        400, "mime: no media type\n", "nosniff")
    big = compress_block(b"\x0a\x00" * 40000)   # declares 80,000 bytes: over loki's 64 KiB
    r = server.client.post("/loki/api/v1/push", content=big, headers={
        "Authorization": BASIC, "Content-Type": "application/x-protobuf"})
    assert r.status_code == 413 and r.text.startswith("request body too large")


def test_splunk_over_http(server):
    r = server.client.post("/services/collector/raw?host=web-1&sourcetype=access",
                           content=b"hec-raw-1\nhec-raw-2\n", headers={"Authorization": f"Splunk {TOKEN}"})
    assert r.json() == {"text": "Success", "code": 0}
    assert [e for _, _, e in stored(server.db, "hec-raw-")] == [
        {"event": "hec-raw-1", "host": "web-1", "sourcetype": "access"},
        {"event": "hec-raw-2", "host": "web-1", "sourcetype": "access"}]
    r = server.client.post("/services/collector/event", content=b'{"event":"hec-x"}{"event":')
    assert r.status_code == 401 and r.json() == {"text": "Token is required", "code": 2}


def test_declared_length_over_the_limit_is_answered_before_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /loki/api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: " + BASIC.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n")
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413")
