"""Prometheus metrics: the exposition read by prometheus_client's own parser, bounded
labels, admin-only access, and the sums across `--workers` on a real server."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from typing import Dict, Tuple

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastingest.server import create_app
from fastingest.server.metrics import DURATION_BUCKETS, Metrics

from servers import Serve
from test_server import AUTH, TOKENS, RecordingStore, call_asgi

JSON = {**AUTH, "content-type": "application/json"}


def samples(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """Every sample of an exposition, parsed by prometheus_client: (name, labels) → value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(app, client=("127.0.0.1", 4000)):
    return asyncio.run(call_asgi(app, "GET", "/metrics", {}, client=client))


def test_counts_requests_events_bytes_and_durations(tmp_path):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'm.db'}")
    body = b'[{"a": 1}, {"a": 2}, {"a": 3}]'

    async def requests():
        assert (await call_asgi(app, "POST", "/", JSON, [body[:10], body[10:]]))[0] == 202
        assert (await call_asgi(app, "POST", "/", JSON, [b'[{"a": tru}]']))[0] == 406
        assert (await call_asgi(app, "POST", "/", {}, [b"{}"]))[0] == 403
        assert (await call_asgi(app, "GET", "/nowhere", {}))[0] == 404
        await app.shutdown()

    asyncio.run(requests())
    status, headers, text = scrape(app)
    assert status == 200
    assert headers[b"content-type"] == b"text/plain; version=0.0.4; charset=utf-8"
    m = samples(text.decode())
    assert value(m, "fastingest_requests_total", protocol="betterstack", status="202") == 1
    assert value(m, "fastingest_requests_total", protocol="betterstack", status="406") == 1
    assert value(m, "fastingest_requests_total", protocol="betterstack", status="403") == 1
    assert value(m, "fastingest_requests_total", protocol="none", status="404") == 1
    assert value(m, "fastingest_events_accepted_total", protocol="betterstack", source="app") == 3
    assert value(m, "fastingest_request_bytes_total", protocol="betterstack",
                 stage="compressed") == len(body) + 12
    assert value(m, "fastingest_request_duration_seconds_count", protocol="betterstack") == 3
    assert value(m, "fastingest_request_duration_seconds_bucket", protocol="betterstack",
                 le="+Inf") == 3
    assert value(m, "fastingest_store_commit_seconds_count") == 1
    assert value(m, "fastingest_requests_in_flight") == 0
    assert value(m, "fastingest_build_info", version=__import__("fastingest").__version__,
                 implementation=__import__("fastingest").IMPLEMENTATION) == 1


def test_decompressed_bytes_are_counted_apart(tmp_path):
    import gzip
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'm.db'}")
    body = b'[' + b'{"message": "the same again"},' * 999 + b'{"message": "end"}]'
    packed = gzip.compress(body)
    status = asyncio.run(call_asgi(app, "POST", "/", {**JSON, "content-encoding": "gzip"},
                                   [packed]))[0]
    assert status == 202
    m = samples(scrape(app)[2].decode())
    assert value(m, "fastingest_request_bytes_total", protocol="betterstack",
                 stage="compressed") == len(packed)
    assert value(m, "fastingest_request_bytes_total", protocol="betterstack",
                 stage="decompressed") == len(body)
    assert value(m, "fastingest_events_accepted_total", protocol="betterstack",
                 source="app") == 1000


def test_store_errors_are_counted():
    app = create_app(tokens=TOKENS, store=RecordingStore("commit"))
    assert asyncio.run(call_asgi(app, "POST", "/", JSON, [b'{"a": 1}']))[0] == 503
    m = samples(scrape(app)[2].decode())
    assert value(m, "fastingest_store_errors_total") == 1
    assert value(m, "fastingest_requests_total", protocol="betterstack", status="503") == 1
    assert value(m, "fastingest_events_accepted_total", protocol="betterstack", source="app") == 0


@pytest.mark.parametrize("client", [("10.1.2.3", 4000), ("2001:db8::1", 4000), None])
def test_only_admin_network_clients_get_metrics(tmp_path, client):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'm.db'}")
    status, _, body = scrape(app, client)
    assert (status, body) == (403, b"Forbidden.")


def test_admin_network_option_and_methods(tmp_path):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'm.db'}",
                     admin_networks=["10.0.0.0/8"])
    assert scrape(app, ("10.9.9.9", 1))[0] == 200
    assert scrape(app, ("127.0.0.1", 1))[0] == 403
    post = asyncio.run(call_asgi(app, "POST", "/metrics", {}, client=("10.9.9.9", 1)))
    assert (post[0], post[1][b"allow"]) == (405, b"GET, HEAD")


def test_without_metrics_the_path_is_a_protocol_404(tmp_path):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'm.db'}", metrics=False)
    assert scrape(app)[0] == 404


def test_labels_never_come_from_clients(tmp_path):
    """Unknown paths, sources and statuses fold into configured label values: a client
    cannot create series."""
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'm.db'}")

    async def requests():
        for n in range(50):
            await call_asgi(app, "POST", f"/made-up-{n}", {"x-source": f"s{n}"})
            await call_asgi(app, "POST", "/", {"authorization": f"Bearer guess-{n}"}, [b"{}"])
        await app.shutdown()

    asyncio.run(requests())
    text = scrape(app)[2].decode()
    assert "made-up" not in text and "guess" not in text and 's0"' not in text
    names = {name for name, _ in samples(text)}
    series = len(samples(text))
    asyncio.run(call_asgi(app, "GET", "/other", {}))
    assert len(samples(scrape(app)[2].decode())) == series   # no new series for new paths
    assert names


def test_unknown_source_counts_as_other():
    metrics = Metrics(["betterstack"], ["app"])
    metrics.request("betterstack", 202, 0.001, "not-configured", events=2)
    metrics.request("no-such-protocol", 202, 0.001, "app", events=1)
    m = samples(metrics.render().decode())
    assert value(m, "fastingest_events_accepted_total", protocol="betterstack", source="other") == 2
    assert value(m, "fastingest_events_accepted_total", protocol="none", source="app") == 1


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    metrics = Metrics(["betterstack"], [])
    for seconds in (0.0001, 0.0004, 0.003, 0.2, 100.0):
        metrics.request("betterstack", 202, seconds)
    m = samples(metrics.render().decode())
    name = "fastingest_request_duration_seconds"

    def bucket(le):
        return value(m, name + "_bucket", protocol="betterstack", le=le)

    assert bucket("0.0005") == 2 and bucket("0.005") == 3 and bucket("0.25") == 4
    assert bucket("30.0") == 4 and bucket("+Inf") == 5
    assert value(m, name + "_count", protocol="betterstack") == 5
    assert value(m, name + "_sum", protocol="betterstack") == pytest.approx(100.2035)
    assert len(DURATION_BUCKETS) == 15


def test_rows_of_several_slots_add_up_and_rebinding_resets_gauges():
    metrics = Metrics(["betterstack"], ["app"], workers=3)
    for slot in range(3):
        metrics.bind(slot)
        metrics.request("betterstack", 202, 0.01, "app", events=slot + 1, received=10)
        metrics.set_in_flight(2)
        metrics.connection_closed("evicted")
    m = samples(metrics.render().decode())
    assert value(m, "fastingest_requests_total", protocol="betterstack", status="202") == 3
    assert value(m, "fastingest_events_accepted_total", protocol="betterstack", source="app") == 6
    assert value(m, "fastingest_requests_in_flight") == 6
    assert value(m, "fastingest_connections_closed_total", reason="evicted") == 3
    metrics.bind(1)   # a replacement worker: its predecessor's requests in flight are gone
    m = samples(metrics.render().decode())
    assert value(m, "fastingest_requests_in_flight") == 4
    assert value(m, "fastingest_requests_total", protocol="betterstack", status="202") == 3


# -- a real server with workers -------------------------------------------------------------

def test_workers_share_the_counts_and_a_replaced_worker_keeps_them(tmp_path):
    """Two workers behind one port: every scrape, whichever worker answers it, counts
    every request; SIGKILL a worker and the replacement carries its counters on."""
    args = ["--workers", "2", "--token", "app=tok", "--store", f"sqlite:{tmp_path / 'w.db'}",
            "--log-level", "warning"]
    with Serve(args, cwd=tmp_path) as server:
        n = 40
        for i in range(n):   # fresh connections: the kernel spreads them over the workers
            with httpx.Client(base_url=server.url) as client:
                r = client.post("/", content=b'{"i": %d}' % i, headers={
                    "Authorization": "Bearer tok", "Content-Type": "application/json"})
                assert r.status_code == 202
        counts = set()
        for _ in range(10):
            with httpx.Client(base_url=server.url) as client:
                m = samples(client.get("/metrics").text)
            counts.add(value(m, "fastingest_requests_total", protocol="betterstack",
                             status="202"))
            assert value(m, "fastingest_events_accepted_total", protocol="betterstack",
                         source="app") == n
        assert counts == {n}
        victim = server.workers()[0]
        os.kill(victim, signal.SIGKILL)
        server.err.wait_for(r"worker %d was killed by SIGKILL" % victim)
        deadline = time.monotonic() + 30
        while victim in server.workers() or len(server.workers()) < 2:
            assert time.monotonic() < deadline, "the worker was not replaced"
            time.sleep(0.1)
        with httpx.Client(base_url=server.url) as client:
            for _ in range(5):
                m = samples(client.get("/metrics").text)
                assert value(m, "fastingest_requests_total", protocol="betterstack",
                             status="202") == n


def test_guard_closes_and_budget_refusals_are_counted(tmp_path):
    """The hostile-load counters through a real server: a head that never completes
    (header timeout) and a request refused for the in-flight budget."""
    args = ["--token", "app=tok", "--store", f"sqlite:{tmp_path / 'g.db'}", "--log-level",
            "warning", "--header-timeout", "1", "--max-inflight", "1"]
    with Serve(args, cwd=tmp_path) as server:
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")   # never finishes its head
        assert slow.recv(1024).startswith(b"HTTP/1.1 408")
        slow.close()
        held = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        held.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        with httpx.Client(base_url=server.url) as client:
            deadline = time.monotonic() + 10
            while True:   # until the held body counts as in flight
                m = samples(client.get("/metrics").text)
                if value(m, "fastingest_requests_in_flight") == 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert value(m, "fastingest_requests_in_flight") == 1
            r = client.post("/", content=b"{}", headers={"Authorization": "Bearer tok",
                                                         "Content-Type": "application/json"})
            assert r.status_code == 503
            m = samples(client.get("/metrics").text)
        held.close()
        assert value(m, "fastingest_inflight_refused_total") == 1
        assert value(m, "fastingest_connections_closed_total", reason="header_timeout") == 1
        assert value(m, "fastingest_requests_total", protocol="betterstack", status="503") == 1
