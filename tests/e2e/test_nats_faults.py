"""Durability under faults, NATS JetStream store (issue 19; 18.3, 18.6; 12).

Every deadline holds (NATS stopped under a big request), the stream's limits are read
and honoured (413 for what can never fit, never a 202 for what the stream drops),
retries are de-duplicated only when they are the same request, a deleted stream comes
back, credentials are never printed, and a request's memory does not grow with its
event count. A real nats-server (JetStream, loopback, temp dir), real `fastingest serve`
processes, httpx; store-level tests where a check needs no HTTP.
"""
from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import time
from collections import Counter
from typing import Dict, List

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastingest.server.stores import (REDACTED, StoreError, StoreTooLarge, redact, redact_url,
                                      store_from_url)
from fastingest.server.stores import natsspool
from fastingest.server.stores.nats import (MSG_ID, TIME_HEADER, NATSStore, _headers,
                                           header_source, message_events)
from fastingest.server.stores.natspublish import INFLIGHT_BYTES
from fastingest.server.stores.natsspool import BATCH_EVENTS, Spool
from servers import (AUTH, TOKEN, NatsServer, Serve, require_nats_server, stream_events,
                     stream_messages, transaction_peak)

NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}
SAMSARA = {"Content-Type": "application/json", "X-Samsara-publishedTimestamp": "1"}


@pytest.fixture
def nats_up(nats_server):
    """For tests that pause NATS: running again afterwards."""
    yield nats_server
    nats_server.resume()


def serve(nats_server, tmp_path, query: str, *extra: str) -> Serve:
    return Serve(["--token", f"app={TOKEN}", "--store", f"{nats_server.url}?{query}",
                  "--log-level", "warning", *extra], cwd=tmp_path)


def ndjson(events: List[dict]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def ids_in(url: str, stream: str) -> Counter:
    return Counter(json.loads(data).get("id") for _, _, data in stream_events(url, stream))


def js_call(url: str, call):
    """Run ``call(js)`` on a fresh connection (stream admin from the test's side)."""
    import nats

    async def go():
        nc = await nats.connect(url)
        try:
            return await call(nc.jetstream())
        finally:
            await nc.close()
    return asyncio.run(go())


# -- 19.3: every deadline holds --------------------------------------------------------------

def test_big_request_gets_503_within_ack_timeout_while_nats_is_stopped(nats_up, tmp_path):
    """NATS paused (SIGSTOP) under a 15,000-event (5 MB) request: 503 after about
    ack_timeout, not hung (a 50,000-event, 4.5 MB one got no answer in 90 s before).
    A retry with the same key then stores every event once."""
    nats = nats_up
    events = [{"id": f"big-{i}", "pad": "p" * 320} for i in range(15_000)]
    body = ndjson(events)
    assert len(body) > 4 * 2**20
    headers = {**NDJSON, "Idempotency-Key": "big-request"}
    with serve(nats, tmp_path, "stream=PAUSE&prefix=pause&ack_timeout=1s") as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        nats.pause()
        started = time.monotonic()
        r = client.post("/", content=body, headers=headers)
        took = time.monotonic() - started
        nats.resume()
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert took < 8, f"answered after {took:.1f} s"
        for _ in range(20):   # the client retries its 503, as shippers do
            r = client.post("/", content=body, headers=headers)
            if r.status_code == 202:
                break
        assert r.status_code == 202
    stored = ids_in(nats.url, "PAUSE")
    assert stored == Counter({e["id"]: 1 for e in events})


def test_paused_nats_lands_at_most_the_in_flight_budget(nats_up, tmp_path):
    """What a failed request can still put in the stream is bounded by the in-flight
    budget (4 MiB of frames), not the request (33,195 of 50,000 events landed before)."""
    nats = nats_up
    events = [{"id": f"late-{i}", "pad": "p" * 320} for i in range(15_000)]
    with serve(nats, tmp_path, "stream=LATE&prefix=late&ack_timeout=1s") as server:
        nats.pause()
        r = httpx.post(f"{server.url}/", content=ndjson(events), headers=NDJSON, timeout=60)
        nats.resume()
        assert r.status_code == 503
        # Nothing more is sent for it: once what was in flight is in, the count stays.
        assert httpx.post(f"{server.url}/", content=ndjson([{"id": "after"}]),
                          headers=NDJSON, timeout=30).status_code == 202
    landed = sum(n for i, n in ids_in(nats.url, "LATE").items() if i != "after")
    # An event's least share of a frame: its JSON, its time and their two separators.
    share = len(json.dumps(events[0])) + len(str(time.time_ns())) + 2
    assert landed <= INFLIGHT_BYTES // share, landed


def test_room_check_of_a_full_refusing_stream_has_the_deadline_too(nats_up):
    """A discard=new stream with max_bytes is asked for its room at each commit: with
    NATS paused that question fails after ack_timeout as a 503, not a 500 or a hang."""
    nats = nats_up
    store = NATSStore(nats.url, stream="ROOM", prefix="room", max_bytes=10**6,
                      ack_timeout=0.5)

    async def scenario():
        await store.open()
        tx = store.begin()
        await tx.add("s", [{"i": 1}], [1], 0)
        nats.pause()
        started = time.monotonic()
        try:
            with pytest.raises(StoreError):
                await tx.commit()
        finally:
            nats.resume()
        took = time.monotonic() - started
        await store.close()
        return took

    assert asyncio.run(scenario()) < 3


# -- 19.4: stream limits ---------------------------------------------------------------------

def test_event_over_the_streams_max_msg_size_is_413_and_nothing_stored(nats_server, tmp_path):
    """An existing stream with max_msg_size=600 and one 850-byte event among 100: 413
    in each protocol's words, nothing stored (503 three times and 99 stored before)."""
    from nats.js.api import StreamConfig
    js_call(nats_server.url, lambda js: js.add_stream(StreamConfig(
        name="SMALLMSG", subjects=["small.>"], max_msg_size=600)))
    events = [{"id": f"m-{i}"} for i in range(100)]
    events[57]["pad"] = "x" * 830
    with serve(nats_server, tmp_path, "stream=SMALLMSG&prefix=small") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/", content=ndjson(events), headers=NDJSON)
        assert (r.status_code, r.text) == (413, "payload reached size limit")
        sam = [{"id": "s-big", "timestamp": 1, "sourceId": "s", "eventName": "e",
                "pad": "x" * 830}]
        r = client.post("/v1/events", content=json.dumps(sam), headers=SAMSARA)
        assert r.status_code == 413
        assert r.json() == {"status": "ERROR", "message": "payload reached size limit"}
        del events[57]
        assert client.post("/", content=ndjson(events), headers=NDJSON).status_code == 202
    assert ids_in(nats_server.url, "SMALLMSG") == Counter({e["id"]: 1 for e in events})


@pytest.mark.parametrize("method,path,headers", [
    ("POST", "/", {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}),
    ("POST", "/v1/events", {"Content-Type": "application/json"}),
    ("POST", "/v1/logs", {"Authorization": f"Bearer {TOKEN}",
                          "Content-Type": "application/x-protobuf"}),
    ("POST", "/_bulk", {"Authorization": f"Bearer {TOKEN}",
                        "Content-Type": "application/x-ndjson"}),
    ("POST", "/loki/api/v1/push", {"Authorization": f"Bearer {TOKEN}",
                                   "Content-Type": "application/json"}),
    ("POST", "/services/collector/event", {"Authorization": f"Splunk {TOKEN}"}),
])
def test_store_too_large_is_each_protocols_413(method, path, headers, tmp_path):
    """What the server answers when the store refuses a request as too large
    (StoreTooLarge): the protocol's own 413, for every protocol served."""
    from fastingest.server import create_app
    app = create_app(tokens={TOKEN: "app"}, store=f"sqlite:{tmp_path / 'x.db'}")
    exchange = app.service.start(method, path, [(k.lower().encode(), v.encode())
                                                for k, v in headers.items()])
    assert exchange.response is None, exchange.response
    response = exchange.too_large("over the stream's max_msg_size")
    assert response.status == 413 and exchange.response is response
    assert "max_msg_size" in str(exchange.error)


def test_request_over_max_bytes_is_413_and_a_full_stream_503_never_partial(nats_server,
                                                                             tmp_path):
    """``max_bytes=200000`` in the store URL: a 10,000-event request is 413 and stores
    nothing (202 with 729 of 10,000 kept before: discard=old evicted the rest). Smaller
    requests fill the stream (created discard=new) until 503: each stored whole or not."""
    with serve(nats_server, tmp_path, "stream=MAXB&prefix=maxb&max_bytes=200000") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        big = [{"id": f"b-{i}"} for i in range(10_000)]
        assert client.post("/", content=ndjson(big), headers=NDJSON).status_code == 413
        answers: Dict[int, int] = {}
        for n in range(30):
            batch = [{"id": f"r{n}-{i}", "pad": "p" * 100} for i in range(50)]
            answers[n] = client.post("/", content=ndjson(batch), headers=NDJSON).status_code
            if answers[n] == 503:
                break
    assert set(answers.values()) == {202, 503} and answers[n] == 503
    stored = ids_in(nats_server.url, "MAXB")
    assert {i.split("-")[0] for i in stored} == {f"r{k}" for k, s in answers.items() if s == 202}
    assert all(v == 1 for v in stored.values()) and len(stored) % 50 == 0
    info = js_call(nats_server.url, lambda js: js.stream_info("MAXB"))
    assert str(getattr(info.config.discard, "value", info.config.discard)) == "new"
    assert info.state.bytes <= 200_000


@pytest.mark.parametrize("batch_bytes", [0, 40])
def test_existing_stream_limits_are_read_and_honoured(nats_server, batch_bytes):
    """Limits of a stream the store did not create (discard=old, max_msgs,
    max_msgs_per_subject): a request that could not stay whole is refused before
    anything is sent; one that fits is stored. The limits count messages: one per
    event with ``batch_bytes=0``, else the events that fit in ``batch_bytes`` (40: two
    of these 14-16-byte events) share one."""
    from nats.js.api import DiscardPolicy, StreamConfig
    name = f"OLDLIM{batch_bytes}"
    js_call(nats_server.url, lambda js: js.add_stream(StreamConfig(
        name=name, subjects=[f"oldlim{batch_bytes}.>"], discard=DiscardPolicy.OLD,
        max_bytes=100_000, max_msgs=500, max_msgs_per_subject=300)))
    store = NATSStore(nats_server.url, stream=name, prefix=f"oldlim{batch_bytes}",
                      batch_bytes=batch_bytes)
    per = 1 if batch_bytes == 0 else 2   # events of {"i": 123, "p": ""} in a message

    async def attempt(n: int, pad: int = 0) -> None:
        tx = store.begin()
        await tx.add("s", [{"i": i, "p": "x" * pad} for i in range(n)], [1] * n, 0)
        await tx.commit()

    async def scenario():
        await store.open()
        assert (store.limits.max_bytes, store.limits.max_msgs,
                store.limits.max_msgs_per_subject, store.limits.discard_new) == (
            100_000, 500, 300, False)
        too_many = 301 * per   # 301 messages either way
        for n, pad, what in ((too_many, 0, "messages of one source"), (200, 600, "bytes")):
            with pytest.raises(StoreTooLarge, match=what):
                await attempt(n, pad)
        await attempt(300)
        await store.close()

    asyncio.run(scenario())
    info = js_call(nats_server.url, lambda js: js.stream_info(name))
    assert info.state.messages == -(-300 // per)
    assert len(stream_events(nats_server.url, name)) == 300


def test_message_size_limit_is_exact_to_the_byte(nats_server):
    """The largest event that fits (headers included) is stored, one byte more is 413:
    the store's idea of a message's size is JetStream's."""
    from nats.js.api import StreamConfig
    js_call(nats_server.url, lambda js: js.add_stream(StreamConfig(
        name="EXACT", subjects=["exact.>"], max_msg_size=400)))
    store = NATSStore(nats_server.url, stream="EXACT", prefix="exact")
    time_ns = 1_700_000_000_000_000_000

    async def attempt(pad: int) -> None:
        tx = store.begin("key")
        await tx.add("src", [{"p": "x" * pad}], [time_ns], 7)
        await tx.commit()

    header = len(_headers("src:key:" + "0" * 32 + ":0", time_ns, b"7", b"src"))
    fitting = 400 - header - len('{"p":""}')

    async def scenario():
        await store.open()
        with pytest.raises(StoreTooLarge):
            await attempt(fitting + 1)
        await attempt(fitting)
        await store.close()

    asyncio.run(scenario())
    assert len(stream_messages(nats_server.url, "EXACT")) == 1


@pytest.mark.parametrize("batch_bytes", [0, 4096, 64 * 1024])
def test_stored_bytes_estimate_covers_what_jetstream_counts(nats_server, batch_bytes):
    """The bytes and messages a request is checked with against max_bytes and
    max_msgs (before publishing) are JetStream's own count, the bytes rounded up by at
    most a couple per message; whatever the messages hold, the events come back."""
    name = f"COUNT{batch_bytes}"
    store = NATSStore(nats_server.url, stream=name, prefix=f"count{batch_bytes}",
                      batch_bytes=batch_bytes)
    counted = {}
    events = [{"i": i, "s": "é" * (i % 7)} for i in range(1234)]
    times = [1_700_000_000_000_000_000 + i for i in range(1234)]

    async def scenario():
        await store.open()
        tx = store.begin("k")
        await tx.add("a.b", events[:1000], times[:1000], 123)
        await tx.add("a.b", events[1000:], times[1000:], 123)
        spool = tx._spool
        spool.close_message()
        counted["estimate"], counted["messages"] = spool.stored_bytes, spool.messages
        await tx.commit()
        await store.close()

    asyncio.run(scenario())
    state = js_call(nats_server.url, lambda js: js.stream_info(name)).state
    assert state.messages == counted["messages"]
    assert state.bytes <= counted["estimate"] <= state.bytes + 2 * state.messages
    if batch_bytes == 0:
        assert state.messages == 1234
    elif batch_bytes == 4096:   # the events' 24,000 bytes of JSON, 4 KiB at a time
        assert 6 <= state.messages <= 12
    else:
        assert state.messages == 2   # 1000 events at most in a message
    stored = stream_events(nats_server.url, name)
    assert [json.loads(e) for _, _, e in stored] == events
    assert [int(h[TIME_HEADER]) for _, h, _ in stored] == times


# -- 19.5, 18.6: idempotency ------------------------------------------------------------------

def test_same_key_with_another_body_is_stored_and_keys_cannot_be_squatted(nats_server,
                                                                           tmp_path):
    """A retry (same key, same body) is stored once, in either protocol (Samsara adds
    receivedAt to every event: the digest is of the body as sent). The same key with
    another body is another request: stored, never silently dropped, so an anonymous
    Samsara POST cannot pre-empt a victim's key."""
    with serve(nats_server, tmp_path, "stream=IDEM&prefix=idem") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        def post(ids, key, path="/", gzipped=False):
            if path == "/":
                body, headers = ndjson([{"id": i} for i in ids]), dict(NDJSON)
            else:
                body = json.dumps([{"id": i, "timestamp": 1, "sourceId": "s",
                                    "eventName": "e"} for i in ids]).encode()
                headers = dict(SAMSARA)
            if gzipped:
                body, headers["Content-Encoding"] = gzip.compress(body, mtime=0), "gzip"
            r = client.post(path, content=body, headers={**headers, "Idempotency-Key": key})
            assert r.status_code == 202

        post(["a1", "a2"], "k1")
        post(["a1", "a2"], "k1")            # a retry
        post(["b1"], "k1")                  # the same key, another body
        post(["a1", "a2"], "k1", gzipped=True)   # the same events, another body as sent
        post(["sam"], "k2", "/v1/events")
        time.sleep(0.01)                    # another receivedAt
        post(["sam"], "k2", "/v1/events")   # a retry
        post(["attacker"], "batch-0001", "/v1/events")   # squatting a victim's key
        post(["victim"], "batch-0001", "/v1/events")
        for _ in range(2):   # no key: two requests, whatever their bodies
            r = client.post("/", content=ndjson([{"id": "nokey"}]), headers=NDJSON)
            assert r.status_code == 202
    stored = ids_in(nats_server.url, "IDEM")
    assert stored == Counter({"a1": 2, "a2": 2, "b1": 1, "sam": 1, "attacker": 1, "victim": 1,
                              "nokey": 2})
    ids = [h[MSG_ID] for _, h, _ in stream_messages(nats_server.url, "IDEM")]
    assert ids[0].startswith("app:k1:") and ids[0].endswith(":0") and len(set(ids)) == len(ids)
    # Without a key: a random key and no digest (nothing to recognise a retry by).
    for msg_id in ids[-2:]:
        assert re.fullmatch(r"app:[0-9a-f]{32}:0{32}:0", msg_id), msg_id


# -- 19.7, 19.8: the stream deleted, refused at creation; closing -----------------------------

def test_deleted_stream_is_recreated_on_the_first_503(nats_server, tmp_path):
    """The stream deleted while the server stays connected: the first request gets 503
    and has the stream created again; the next ones are stored (503 for every request
    until a reconnect before)."""
    with serve(nats_server, tmp_path, "stream=GONE&prefix=gone&max_age=1d") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/", content=ndjson([{"id": "first"}]), headers=NDJSON)
        assert r.status_code == 202
        js_call(nats_server.url, lambda js: js.delete_stream("GONE"))
        r = client.post("/", content=ndjson([{"id": "lost"}]), headers=NDJSON)
        assert r.status_code == 503
        for n in range(50):   # the stream is being created again in the background
            r = client.post("/", content=ndjson([{"id": "back"}]), headers=NDJSON)
            if r.status_code == 202:
                break
            time.sleep(0.05)
        assert r.status_code == 202
    assert ids_in(nats_server.url, "GONE") == Counter({"back": 1})
    config = js_call(nats_server.url, lambda js: js.stream_info("GONE")).config
    assert config.subjects == ["gone.>"] and config.max_age == 86400


def test_stream_creation_refused_says_why(nats_server):
    """A stream whose subjects overlap another's cannot be created: the error says so
    (it was taken for a creation race and reported as "stream not found")."""
    from nats.js.api import StreamConfig
    js_call(nats_server.url, lambda js: js.add_stream(StreamConfig(
        name="HOLDER", subjects=["clash.>"])))
    store = NATSStore(nats_server.url, stream="CLASH", prefix="clash")
    with pytest.raises(StoreError, match="overlap") as caught:
        asyncio.run(store.open())
    assert "not found" not in str(caught.value)


def test_close_never_raises_when_the_connection_fails_to_close(nats_server, caplog):
    store = NATSStore(nats_server.url, stream="CLOSING", prefix="closing")

    async def scenario():
        await store.open()
        nc = store._nc

        async def fail() -> None:
            raise OSError("injected: socket gone")
        nc.drain = nc.close = fail
        await store.close()

    with caplog.at_level(logging.WARNING, logger="fastingest.server"):
        asyncio.run(scenario())
    assert "injected" in caplog.text


# -- 18.3: credentials -----------------------------------------------------------------------

def test_credentials_are_never_printed_and_can_come_from_the_environment(tmp_path):
    """nats-server with a user and password: the banner and every log line show the
    store without the password; FASTINGEST_STORE and FASTINGEST_NATS_USER/_PASSWORD keep
    it off the command line."""
    import os
    nats = NatsServer(require_nats_server(), tmp_path / "nats",
                      ["--user", "alice", "--pass", "hunter2-s3cret"]).start()
    try:
        url = f"nats://alice:hunter2-s3cret@127.0.0.1:{nats.port}"
        args = ["--token", f"app={TOKEN}", "--store", f"{url}?stream=AUTH&prefix=auth",
                "--log-level", "debug", "--workers", "2"]
        with Serve(args, cwd=tmp_path) as server:
            assert httpx.post(f"{server.url}/", content=ndjson([{"id": "cli"}]),
                              headers=NDJSON, timeout=30).status_code == 202
            nats.stop()
            server.err.wait_for(r"connection lost")
            r = httpx.post(f"{server.url}/", content=ndjson([{"id": "down"}]),
                           headers=NDJSON, timeout=30)
            assert r.status_code == 503
            server.err.wait_for(r"store failure")
            nats.start()
            server.err.wait_for(r"reconnected")
        output = "".join(server.out.seen + server.err.seen)
        assert f"alice:{REDACTED}@127.0.0.1:{nats.port}" in server.out.seen[0]
        assert "hunter2" not in output
        env = dict(os.environ, FASTINGEST_STORE=f"nats://127.0.0.1:{nats.port}?stream=AUTH"
                   "&prefix=auth", FASTINGEST_NATS_USER="alice",
                   FASTINGEST_NATS_PASSWORD="hunter2-s3cret")
        with Serve(["--token", f"app={TOKEN}"], cwd=tmp_path, env=env) as server:
            assert httpx.post(f"{server.url}/", content=ndjson([{"id": "env"}]),
                              headers=NDJSON, timeout=30).status_code == 202
        assert "hunter2" not in "".join(server.out.seen + server.err.seen)
        assert ids_in(url, "AUTH") == Counter({"cli": 1, "env": 1})
    finally:
        nats.stop()


def test_redaction_and_credential_options(tmp_path, monkeypatch):
    assert redact_url("nats://alice:pw@h1:4222,bob:pw2@h2:4222?stream=S") == \
        f"nats://alice:{REDACTED}@h1:4222,bob:{REDACTED}@h2:4222?stream=S"
    assert redact_url("nats://t0ken@h:4222") == f"nats://{REDACTED}@h:4222"
    assert redact_url("nats://h:4222") == "nats://h:4222"
    assert redact_url("sqlite:x.db?synchronous=full") == "sqlite:x.db?synchronous=full"
    assert redact("lost nats://a:b@h (tls://t@h2:1, tls://u:v@h3,w:x@h4/)", ["zz"]) == \
        f"lost nats://a:{REDACTED}@h (tls://{REDACTED}@h2:1, " \
        f"tls://u:{REDACTED}@h3,w:{REDACTED}@h4/)"
    with pytest.raises(ValueError) as caught:
        store_from_url("nats:/alice:hunter2@h")
    assert "hunter2" not in str(caught.value)
    store = store_from_url("nats://alice:hunter2@h:1,h2:2?stream=S")
    assert "hunter2" not in repr(store) and "hunter2" not in store.where()
    assert store.redact("auth failed for hunter2") == f"auth failed for {REDACTED}"
    creds = tmp_path / "user.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n...\n")
    monkeypatch.setenv("FASTINGEST_NATS_TOKEN", "tok-from-env")
    store = store_from_url(f"nats://h:1?creds={creds}")
    assert store.connect_options()["user_credentials"] == str(creds)
    assert store.connect_options()["token"] == "tok-from-env"
    assert "tok-from-env" not in repr(store)
    with pytest.raises(ValueError, match="creds file"):
        store_from_url(f"nats://h:1?creds={tmp_path}/missing.creds")


# -- issue 12: memory, the spool -------------------------------------------------------------

def test_nats_transaction_memory_does_not_grow_with_events(nats_server):
    """40,000 tiny events in batches of 10,000: the store's own peak is its spool's
    memory part, one window and the in-flight budget (about 10 MiB), not the event count
    (~5 KiB per event before: 200 MiB here, 13 GB for 2.6 M events; flat from 100,000 to
    2.6 M events now: benchmarks/store_memory.py)."""
    peak = transaction_peak(NATSStore(nats_server.url, stream="MEM", prefix="mem"), 4)
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert js_call(nats_server.url, lambda js: js.stream_info("MEM")).state.messages == \
        40_000 // BATCH_EVENTS   # 1000 of these events to a message
    assert len(stream_events(nats_server.url, "MEM")) == 40_000


@given(st.lists(st.tuples(st.sampled_from(["", "a", "é.b"]), st.integers(-2**63, 2**63 - 1),
                          st.lists(st.dictionaries(st.text(max_size=3),
                                                   st.integers(-2**63, 2**64 - 1)),
                                   max_size=5)), max_size=6),
       st.integers(1, 64), st.sampled_from([0, 1, 30, 200]), st.integers(150, 400))
def test_spool_gives_back_what_was_written(segments, read_size, batch_bytes, limit):
    """Messages come back in order, across any read size (records split between
    reads), on disk or in memory; each holds consecutive events of one source and
    reception time, within batch_bytes (an event alone may exceed it) and the message
    limit; the digest covers sources and events, not times."""
    saved = natsspool.READ_SIZE
    natsspool.READ_SIZE = read_size
    try:
        spool = Spool(max_memory=32, batch_bytes=batch_bytes, overhead=7)
        other = Spool(max_memory=1 << 20, batch_bytes=batch_bytes)
        expected = []
        for source, received, events in segments:
            subject, value = f"p.{source}".encode(), header_source(source).encode()
            texts = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()
                     for e in events]
            times = [received ^ i for i in range(len(events))]
            try:
                spool.write(subject, value, received, texts, times, 90, limit, _refuse)
            except _Refused:
                return   # an event too large for a message of its own: refused whole
            other.write(subject, value, 0, texts, [0] * len(events), 90, 1 << 30, _refuse)
            expected += [(subject, value, received, t, e) for t, e in zip(times, texts)]
        spool.close_message()
        got, index = [], 0
        for subject, value, received, stamps, payload, first, n in spool.records():
            assert first == index and n >= 1
            index += n
            header = 90 + len(str(first)) + len(stamps)
            assert header + len(payload) <= limit
            if n > 1:
                assert len(payload) <= batch_bytes and n <= BATCH_EVENTS
            headers = {TIME_HEADER: stamps.decode()}
            got += [(subject, value, received, t, e)
                    for t, e in message_events(headers, payload)]
        assert got == expected and spool.count == len(expected) == index
        assert spool.digest() == other.digest()
        if batch_bytes == 0:
            assert spool.messages == len(expected)
    finally:
        natsspool.READ_SIZE = saved


class _Refused(Exception):
    pass


def _refuse(length: int, size: int) -> None:
    raise _Refused


@given(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 2**40)), min_size=1, max_size=40),
       st.lists(st.integers(1, 12), min_size=1, max_size=40),
       st.sampled_from([1, 50, 200, 600]), st.integers(120, 700))
def test_spool_cuts_do_not_depend_on_how_events_were_added(events, splits, batch_bytes, limit):
    """The same events added at once, one by one, or in any runs: the same messages
    (subjects, first indexes, times, payloads) — a retry whose body arrives otherwise is
    cut alike, so JetStream recognises its messages by their ids. (The ids' digest is
    the server's digest of the body as sent.)"""
    texts = [b'{"p":"%s"}' % (b"x" * size) for size, _ in events]
    times = [t for _, t in events]

    def spooled(runs):
        spool = Spool(max_memory=1 << 20, batch_bytes=batch_bytes)
        pos = 0
        try:
            for run in runs:
                spool.write(b"p.a", b"a", 5, texts[pos:pos + run], times[pos:pos + run], 90,
                            limit, _refuse)
                pos += run
        except _Refused:
            return "refused"
        spool.close_message()
        return list(spool.records()), spool.messages

    runs, left = [], len(texts)
    for size in splits:
        if left <= 0:
            break
        runs.append(min(size, left))
        left -= size
    if left > 0:
        runs.append(left)
    whole = spooled([len(texts)])
    assert spooled([1] * len(texts)) == whole
    assert spooled(runs) == whole
    if whole != "refused":
        assert all(n >= 1 for *_, n in whole[0])


def test_spool_without_digest_cuts_alike_and_keeps_memory_then_file():
    """A spool made without a digest (a request without a key) cuts the same messages;
    records stay in memory while they fit max_memory and all go to the file after."""
    texts = [b'{"n":%d}' % i for i in range(50)]
    spools = [Spool(max_memory=m, batch_bytes=40, digest=d)
              for m, d in ((1 << 20, True), (1 << 20, False), (600, False))]
    for spool in spools:
        spool.write(b"p.a", b"a", 5, texts, list(range(50)), 90, 1 << 20, _refuse)
        spool.close_message()
    records = [list(spool.records()) for spool in spools]
    assert records[0] == records[1] == records[2] and len(records[0]) > 3
    assert spools[1]._file is None and spools[2]._file is not None
    with pytest.raises(ValueError):
        spools[1].digest()
