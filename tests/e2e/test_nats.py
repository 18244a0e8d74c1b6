"""The NATS JetStream store end to end: a real nats-server (JetStream, loopback, temp
dir), real `fastingest serve` processes, httpx and raw sockets as clients.

What the client is told must match what is in the stream: every event of a 202 is
there exactly once with its subject and time headers, a retry with the same
Idempotency-Key is not stored twice, and a 503 means "not acknowledged".
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Dict, List

import httpx
import pytest

from fastingest.server.stores import StoreError, store_from_url
from fastingest.server.stores.nats import (MSG_ID, RECEIVED_HEADER, SOURCE_HEADER,
                                           TIME_HEADER, NATSStore, _headers, header_source,
                                           parse_duration, request_key, subject_token)
from fastingest.server.stores.natspublish import header_dict
from servers import (AUTH, ROOT, TOKEN, Load, Serve, assert_acked_present_once, raw_exchange,
                     stream_events, stream_messages)

STREAM = "EVENTS"
PREFIX = "ingest.events"
ODD_SOURCE = "web.eu *1"        # needs escaping in a subject token
ODD_TOKEN = "odd-token"


@pytest.fixture(scope="module")
def served(nats_server, tmp_path_factory):
    """Two workers publishing to ``EVENTS``; short ack (2 s) and read (1 s) timeouts."""
    store = (f"{nats_server.url}?stream={STREAM}&prefix={PREFIX}&ack_timeout=2s"
             f"&duplicate_window=5m&max_age=1d&reconnect_wait=100ms")
    args = ["--token", f"app={TOKEN}", "--token", f"{ODD_SOURCE}={ODD_TOKEN}",
            "--store", store, "--workers", "2", "--read-timeout", "1", "--log-level", "warning"]
    with Serve(args, cwd=tmp_path_factory.mktemp("serve")) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        server.client = client
        yield server


@pytest.fixture
def nats_up(nats_server):
    """For tests that stop or pause NATS: it is running again afterwards."""
    yield nats_server
    if nats_server.proc is None:
        nats_server.start()
    else:
        nats_server.resume()


def stored(nats_server) -> List[tuple]:
    """Every event in the stream (its message's headers, its own time)."""
    return stream_events(nats_server.url, STREAM)


def ids_in(messages) -> Counter:
    return Counter(json.loads(data).get("id") for _, _, data in messages)


def post(served, events: List[dict], headers: Dict[str, str] = AUTH, path: str = "/"):
    return served.client.post(path, content=json.dumps(events), headers=headers)


# -- what is stored --------------------------------------------------------------------------

def test_stream_created_with_the_configured_options(served, nats_server):
    import nats

    async def info():
        nc = await nats.connect(nats_server.url)
        try:
            return await nc.jetstream().stream_info(STREAM)
        finally:
            await nc.close()

    config = asyncio.run(info()).config
    assert config.subjects == [f"{PREFIX}.>"]
    assert (config.retention, config.storage) == ("limits", "file")
    assert (config.max_age, config.duplicate_window, config.num_replicas) == (86400, 300, 1)


def test_every_202_event_is_in_the_stream_once_with_subject_and_headers(served, nats_server):
    """Concurrent clients on both protocols against two workers, plus a source whose
    name needs escaping: each acknowledged event once, on its subject, with its time."""
    before = len(stored(nats_server))
    messages_before = len(stream_messages(nats_server.url, STREAM))
    with Load(served.url, clients=8, events=4) as load:
        load.wait_acked(400)
    odd = [{"id": f"odd-{i}", "dt": "2022-12-31T13:45:59.123456789Z"} for i in range(3)]
    r = post(served, odd, {**AUTH, "Authorization": f"Bearer {ODD_TOKEN}"})
    assert r.status_code == 202
    assert set(load.statuses) == {202} and load.failures == 0
    messages = stored(nats_server)[before:]
    assert_acked_present_once(load.acked + [e["id"] for e in odd], ids_in(messages))
    assert len(messages) == len(load.acked) + 3   # nothing else either
    # A request's events share a message (4 and 3 here): one id per message, none twice.
    msg_ids = Counter(h[MSG_ID] for _, h, _ in stream_messages(nats_server.url,
                                                               STREAM)[messages_before:])
    assert max(msg_ids.values()) == 1 and len(msg_ids) < len(messages)
    for subject, headers, data in messages:
        event = json.loads(data)
        if "dt" in event and event["id"].startswith("odd"):
            assert subject == f"{PREFIX}.web%2Eeu%20%2A1"
            assert headers[SOURCE_HEADER] == ODD_SOURCE
            assert int(headers[TIME_HEADER]) == 1672494359123456789
        elif "dt" in event:
            assert (subject, headers[SOURCE_HEADER]) == (f"{PREFIX}.app", "app")
            assert int(headers[TIME_HEADER]) == event["dt"] * 10**9
        else:
            assert (subject, headers[SOURCE_HEADER]) == (f"{PREFIX}.samsara", "samsara")
            assert int(headers[TIME_HEADER]) == event["timestamp"] * 10**6
            assert event["receivedAt"] == int(headers[RECEIVED_HEADER]) // 10**6
        assert abs(int(headers[RECEIVED_HEADER]) - time.time_ns()) < 120 * 10**9


def test_retry_with_the_same_key_and_body_is_stored_once(served, nats_server):
    before = len(stored(nats_server))
    events = [{"id": f"retry-{i}"} for i in range(3)]
    for headers in ({"Idempotency-Key": "order-42"}, {"Idempotency-Key": "order-42"},
                    {"Idempotency-Key": "k" * 300}, {"Idempotency-Key": "k" * 300}):
        assert post(served, events, {**AUTH, **headers}).status_code == 202
    # No key, or only X-Request-Id (tracing): every request is new, stored again.
    for headers in ({}, {}, {"X-Request-Id": "req-7"}, {"X-Request-Id": "req-7"}):
        assert post(served, events, {**AUTH, **headers}).status_code == 202
    ids = ids_in(stored(nats_server)[before:])
    assert ids == {f"retry-{i}": 6 for i in range(3)}   # order-42, k*300, 2 x none, 2 x req-7
    # The same key from another source is another request.
    r = post(served, events, {**AUTH, "Authorization": f"Bearer {ODD_TOKEN}",
                              "Idempotency-Key": "order-42"})
    assert r.status_code == 202 and len(stored(nats_server)) == before + 21


def test_a_large_request_is_stored_whole(served, nats_server):
    """10,000 events, 3 MB: beyond nats-py's 2 MiB pending buffer, so the send waits for
    its flusher; every event once, in order."""
    before = len(stored(nats_server))
    body = b"\n".join(json.dumps({"id": f"big-{i}", "pad": "p" * 250}).encode()
                      for i in range(10_000))
    assert len(body) > 2.5 * 2**20
    r = served.client.post("/", content=body, headers={**AUTH, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 202
    ids = [json.loads(data)["id"] for _, _, data in stored(nats_server)[before:]]
    assert ids == [f"big-{i}" for i in range(10_000)]
    times = [int(headers[TIME_HEADER]) for _, headers, _ in stored(nats_server)[before:]]
    assert len(set(times)) == 1 and abs(times[0] - time.time_ns()) < 120 * 10**9


# -- NATS failures ---------------------------------------------------------------------------

def test_ack_timeout_is_503_and_a_retry_with_the_same_key_stores_once(served, nats_up):
    """NATS paused (SIGSTOP): connected but silent, so no acknowledgement comes within
    ack_timeout → 503. The messages reach JetStream once it resumes; the client's retry
    with the same Idempotency-Key is then de-duplicated."""
    nats = nats_up
    before = len(stored(nats))
    events = [{"id": f"paused-{i}"} for i in range(4)]
    headers = {**AUTH, "Idempotency-Key": "paused-request"}
    nats.pause()
    started = time.monotonic()
    r = post(served, events, headers)
    assert (r.status_code, r.text, r.headers["retry-after"]) == (503, "Service unavailable.", "1")
    assert 1.9 < time.monotonic() - started < 10
    nats.resume()
    for _ in range(50):   # the client retries on 503 (Retry-After: 1), as shippers do
        r = post(served, events, headers)
        if r.status_code == 202:
            break
    assert r.status_code == 202
    assert ids_in(stored(nats)[before:]) == {f"paused-{i}": 1 for i in range(4)}


def test_nats_down_is_503_nothing_stored_and_ingestion_resumes(served, nats_up):
    nats = nats_up
    before = len(stored(nats))
    nats.stop()
    for _ in range(2):   # both workers noticed (the signal: their log line)
        served.err.wait_for(r"NATS store: connection lost")
    for path, body, headers in [
            ("/", [{"id": "down-bs"}], AUTH),
            ("/v1/events", [{"id": "down-sam", "timestamp": 1, "sourceId": "s",
                             "eventName": "e"}], {"Content-Type": "application/json"})]:
        for _ in range(4):   # whichever worker answers
            started = time.monotonic()
            r = post(served, body, headers, path)
            # fails fast: no waiting for the 2 s ack timeout
            assert r.status_code == 503 and time.monotonic() - started < 1.5
    assert post(served, [{"id": "ok"}], {**AUTH, "Authorization": "Bearer wrong"}).status_code == 403
    nats.start()
    for _ in range(2):
        served.err.wait_for(r"NATS store: reconnected")
    for n in range(8):   # both workers ingest again, without a restart
        r = post(served, [{"id": f"resumed-{n}"}], {**AUTH, "Idempotency-Key": f"resumed-{n}"})
        assert r.status_code == 202
    ids = ids_in(stored(nats)[before:])
    assert ids == {f"resumed-{n}": 1 for n in range(8)}   # nothing of the 503s


def test_open_fails_fast_when_nats_is_unreachable(tmp_path):
    from servers import free_port
    store = NATSStore(f"nats://127.0.0.1:{free_port()}", connect_timeout=0.5,
                      reconnect_wait=0.1)
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect to NATS"):
        asyncio.run(store.open())
    assert time.monotonic() - started < 5


# -- the server killed, clients misbehaving ------------------------------------------------

def test_sigkill_mid_load_loses_no_acknowledged_event(nats_server, tmp_path):
    """The whole server (supervisor and both workers) SIGKILLed while 8 clients post:
    every event whose request was answered 202 is in the stream, once."""
    store = f"{nats_server.url}?stream=KILLED&prefix=killed"
    args = ["--token", f"app={TOKEN}", "--store", store, "--workers", "2",
            "--log-level", "warning"]
    with Serve(args, cwd=tmp_path) as server:
        with Load(server.url, clients=8, events=5) as load:
            load.wait_acked(300)
            server.kill()
    assert load.statuses[202] >= 300
    messages = stream_events(nats_server.url, "KILLED")
    assert_acked_present_once(load.acked, ids_in(messages))


def test_disconnect_mid_body_and_slow_body_store_nothing(served, nats_server):
    before = len(stored(nats_server))
    body = json.dumps([{"id": f"partial-{i}"} for i in range(50)]).encode()
    head = (f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    # Gone mid-body: the socket closes after half the body.
    assert raw_exchange(served.port, head + body[:len(body) // 2],
                        wait=lambda sock: sock.shutdown(1), timeout=5) == b""
    # Too slow: half the body, then nothing; --read-timeout 1 answers 408 and closes.
    started = time.monotonic()
    answer = raw_exchange(served.port, head + body[:len(body) // 2])
    assert answer.startswith(b"HTTP/1.1 408 ") and answer.endswith(b"Request timeout.")
    assert b"connection: close" in answer.lower()
    assert 0.9 < time.monotonic() - started < 10
    # Samsara answers in its own JSON.
    sam = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 100\r\n\r\n[")
    answer = raw_exchange(served.port, sam)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b'{"status":"ERROR","message":"Request timeout"}')
    # The server is healthy and nothing of those requests was stored.
    assert post(served, [{"id": "after-slow"}]).status_code == 202
    assert ids_in(stored(nats_server)[before:]) == {"after-slow": 1}


# -- fastingest tail -------------------------------------------------------------------------

def tail(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "fastingest", "tail", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kw)


def test_tail_prints_the_stream_and_follows_it(served, nats_server):
    url = f"{nats_server.url}?stream={STREAM}&prefix={PREFIX}"
    events = [{"id": "tail-1", "dt": 1672490759}, {"id": "tail-2", "dt": 1672490760}]
    assert post(served, events, {**AUTH, "Authorization": f"Bearer {ODD_TOKEN}"}).status_code == 202
    proc = tail("--store", url, "--source", ODD_SOURCE)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["event"]["id"] for r in lines][-2:] == ["tail-1", "tail-2"]
    assert {r["source"] for r in lines} == {ODD_SOURCE}
    assert lines[-1]["time_ns"] == 1672490760 * 10**9
    assert lines[-1]["time"] == "2022-12-31T12:46:00.000000000Z"
    # --since: only what was received since; --follow: then new events as they come.
    since = tail("--store", url, "--since", "2100-01-01T00:00:00Z")
    assert since.communicate(timeout=30)[0] == b""
    follow = tail("--store", url, "--source", "app", "--since", str(time.time_ns()), "--follow")
    try:
        # tail subscribes asynchronously: keep posting until its first line comes.
        import threading
        got: List[bytes] = []
        reader = threading.Thread(target=lambda: got.append(follow.stdout.readline()))
        reader.start()
        n = 0
        while reader.is_alive() and n < 100:
            assert post(served, [{"id": f"follow-{n}"}]).status_code == 202
            n += 1
            reader.join(0.2)
        assert json.loads(got[0])["event"]["id"].startswith("follow-")
    finally:
        follow.send_signal(signal.SIGTERM)
    assert follow.wait(10) == 0   # SIGTERM ends a follow cleanly


# -- units: URLs, names ----------------------------------------------------------------------

def test_nats_store_urls_and_names():
    s = store_from_url("nats://a:4222,b:4223?stream=S&prefix=p.q&retention=workqueue&max_age=7d"
                       "&replicas=3&duplicate_window=2m&ack_timeout=500ms&storage=memory")
    assert isinstance(s, NATSStore)
    assert s.servers == ["nats://a:4222", "nats://b:4223"]
    assert (s.stream, s.prefix, s.retention, s.max_age, s.replicas, s.duplicate_window,
            s.ack_timeout, s.storage) == ("S", "p.q", "workqueue", 7 * 86400, 3, 120, 0.5, "memory")
    assert store_from_url("tls://h:4222").servers == ["tls://h:4222"]
    for bad in ("nats://", "nats://h?bogus=1", "nats://h?retention=forever", "nats://h?stream=a.b",
                "nats://h?prefix=a.*", "nats://h?replicas=0", "nats://h?max_age=soon"):
        with pytest.raises(ValueError):
            store_from_url(bad)
    assert [subject_token(s) for s in ("app", "a.b", "x y*>", "é", "%", "")] == [
        "app", "a%2Eb", "x%20y%2A%3E", "%C3%A9", "%25", "%"]
    assert [header_source(s) for s in ("app", "web.eu *1", "é", "50%")] == [
        "app", "web.eu *1", "%C3%A9", "50%25"]
    assert header_dict(_headers("a:b:0", 5, b"6", b"app")) == {
        MSG_ID: "a:b:0", TIME_HEADER: "5", RECEIVED_HEADER: "6", SOURCE_HEADER: "app"}
    assert header_dict(_headers("a:b:0", [5, -7, 10**18], b"6", b"app"))[TIME_HEADER] == \
        "5 -7 1000000000000000000"
    assert parse_duration("90") == 90 and parse_duration("1.5h") == 5400
    assert request_key("order-42") == "order-42"
    assert request_key("k" * 300) == request_key("k" * 300) != request_key("k" * 301)
    assert request_key("a b") != request_key("a_b") and " " not in request_key("a b")
    assert request_key(None) != request_key(None)
