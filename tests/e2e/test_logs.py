"""Request log lines: one per rejected request by default, every request with the access
log, text or JSON, never a credential, escaped and rate-capped."""
from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from fastingest.server import create_app
from fastingest.server.logs import (ACCESS_LOGGER, JsonFormatter, RequestLog, TextFormatter,
                                    clip, logging_config)

from servers import Serve
from test_server import AUTH, TOKEN, TOKENS, call_asgi

JSON = {**AUTH, "content-type": "application/json"}


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    return lambda: [r for r in caplog.records if r.name == ACCESS_LOGGER]


def run(app, *calls):
    async def go():
        out = [await call_asgi(app, *c) for c in calls]
        await app.shutdown()
        return out
    return asyncio.run(go())


def test_rejected_requests_get_a_line_accepted_ones_do_not(tmp_path, lines):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'l.db'}")
    run(app, ("POST", "/", JSON, [b'[{"a": 1}]']),
        ("POST", "/", JSON, [b'[{"a": 1}, {"a": tru}]']),
        ("POST", "/", {"authorization": "Bearer nope"}, [b"{}"]))
    records = lines()
    assert [r.request["status"] for r in records] == [406, 403]
    bad = records[0].request
    assert bad == {**bad, "method": "POST", "path": "/", "protocol": "betterstack",
                   "source": "app", "client": "127.0.0.1:50000", "bytes": 22, "decoded": 22,
                   "events": 0,
                   "detail": "Couldn't parse JSON content. (invalid literal at byte 20)"}
    assert records[1].request["detail"] == "Unauthorized" and records[1].request["source"] is None
    assert all(r.levelno == logging.INFO for r in records)


def test_access_log_adds_the_accepted_requests(tmp_path, lines):
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'l.db'}", access_log=True)
    run(app, ("POST", "/", JSON, [b'[{"a": 1}, {"a": 2}]']))
    (record,) = lines()
    assert record.request["status"] == 202 and record.request["events"] == 2
    assert "detail" not in record.request


def test_no_credential_reaches_the_log(tmp_path, lines):
    """Tokens travel in headers (never logged) or a query string (cut from the path)."""
    app = create_app(tokens=TOKENS, store=f"sqlite:{tmp_path / 'l.db'}", access_log=True)
    run(app, ("POST", "/", {**JSON, "authorization": "Bearer wrong-secret"}, [b"{}"]),
        ("POST", "/", JSON, [b"[{\"a\": tru}]"]),
        ("POST", "/v1/events", {"content-type": "application/json",
                                "authorization": f"Bearer {TOKEN}"}, [b"[]"]))
    text = "\n".join(TextFormatter().format(r) + JsonFormatter().format(r) for r in lines())
    assert len(lines()) == 3
    assert TOKEN not in text and "wrong-secret" not in text


def test_client_text_is_escaped_and_clipped():
    assert clip("a\nb\x1bc") == "a\\nb\\x1bc"
    assert len(clip("x" * 1000)) == 200
    log = logging.LogRecord(ACCESS_LOGGER, logging.INFO, "", 0, "%d %s %s",
                            (404, "GET", clip("/a\n2026 INFO forged")), None)
    log.request = {"status": 404, "path": "/a", "detail": 'say "hi" = x'}
    text = TextFormatter().format(log)
    assert "\n" not in text and 'detail="say \\"hi\\" = x"' in text
    assert json.loads(JsonFormatter().format(log))["detail"] == 'say "hi" = x'


def test_rejection_lines_are_capped_per_second(caplog):
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    log = RequestLog(per_second=5)
    log._second = int(__import__("time").monotonic())   # a fresh second for the test
    for _ in range(50):
        log.request(403, "POST", "/", protocol="betterstack", source=None, client=None,
                    received=0, decoded=None, events=0, seconds=0.0, detail="Unauthorized")
    assert len(caplog.records) == 5 and log._suppressed == 45
    log._second -= 1   # the next second: the summary, then lines again
    log.request(403, "POST", "/", protocol="betterstack", source=None, client=None,
                received=0, decoded=None, events=0, seconds=0.0)
    assert "45 more rejected requests" in caplog.records[5].getMessage()
    assert len(caplog.records) == 7


def test_logging_config_rejects_unknown_formats():
    logging_config("json")
    with pytest.raises(ValueError):
        logging_config("yaml")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_served_log_lines(tmp_path, fmt):
    """A real server: the rejected request's line on stderr, in the chosen format,
    uvicorn's own lines in it too; no access line for the accepted request."""
    args = ["--token", "app=s3cret", "--store", f"sqlite:{tmp_path / 's.db'}",
            "--log-format", fmt]
    with Serve(args, cwd=tmp_path) as server:
        with httpx.Client(base_url=server.url) as client:
            ok = client.post("/", content=b'{"a": 1}', headers={
                "Authorization": "Bearer s3cret", "Content-Type": "application/json"})
            bad = client.post("/?token=s3cret", content=b"{}",
                              headers={"Authorization": "Bearer guess"})
        assert (ok.status_code, bad.status_code) == (202, 403)
        line = server.err.wait_for(r"fastingest\.access").string
        server.stop()
    log = "".join(server.err.seen) + "".join(iter(lambda: server.err.lines.get(timeout=10), ""))
    assert "s3cret" not in log and "guess" not in log
    assert log.count("fastingest.access") == 1
    if fmt == "json":
        entries = [json.loads(x) for x in log.splitlines() if x.strip()]
        (access,) = [e for e in entries if e["logger"] == "fastingest.access"]
        assert access["status"] == 403 and access["path"] == "/" and access["level"] == "info"
        assert any(e["logger"].startswith("uvicorn") for e in entries)
    else:
        assert " INFO fastingest.access: 403 POST / protocol=betterstack source=- " in line
        assert "detail=Unauthorized" in line


def test_a_client_that_went_away_is_counted_as_499(lines):
    """Nothing is answered (nobody to answer) and nothing stored, but the request is
    logged and counted, as nginx's 499."""
    from fastingest.server.metrics import Metrics
    from test_server import RecordingStore
    metrics = Metrics(["betterstack", "samsara"], ["app"])
    app = create_app(tokens=TOKENS, store=RecordingStore(), metrics=metrics)
    status, _, _ = asyncio.run(call_asgi(app, "POST", "/", {**AUTH, "content-type":
                                                           "application/x-ndjson"},
                                         [b'{"a": 1}\n'], disconnect=True))
    assert status is None
    (record,) = lines()
    assert record.request["status"] == 499 and record.request["bytes"] == 9
    assert record.request["detail"] == "client went away before the answer"
    assert 'fastingest_requests_total{protocol="betterstack",status="499"} 1' in \
        metrics.render().decode()
