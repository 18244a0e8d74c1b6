"""The real, unmodified client libraries of the four shipper protocols against a live
``fastingest serve`` (its own process, real uvicorn, a real SQLite file).

For each: the client reports success, and every event it sent is stored once, under
the token's source, with its own time.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
import warnings
from decimal import Decimal
from typing import Any, Dict, List, Tuple

import pytest

from servers import Serve

TOKEN = "client-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clients")
    db = tmp / "events.db"
    with Serve(["--token", f"shippers={TOKEN}", "--store", f"sqlite:{db}",
                "--log-level", "warning"], cwd=tmp) as server:
        server.db = db
        yield server


def rows(db, marker: str) -> List[Tuple[str, int, Dict[str, Any]]]:
    """Stored events whose JSON contains ``marker``, in storing order."""
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT source, time_ns, event FROM events WHERE event LIKE ? "
                             "ORDER BY rowid", (f"%{marker}%",)).fetchall()
    return [(s, t, json.loads(e)) for s, t, e in found]


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


# -- elasticsearch-py ------------------------------------------------------------------------

def test_elasticsearch_helpers_bulk(served):
    es_mod = pytest.importorskip("elasticsearch")
    from elasticsearch import helpers

    client = es_mod.Elasticsearch(served.url, basic_auth=("elastic", TOKEN), request_timeout=30)
    base_ms = 1_796_544_182_000
    actions = [{"_index": "logs", "_source": {"msg": f"es-{i}", "@timestamp": base_ms + i}}
               for i in range(1200)]   # three chunks of 500
    actions[7]["_source"]["@timestamp"] = "2026-12-06T08:02:58.123456789Z"
    ok, errors = helpers.bulk(client, actions)
    assert (ok, errors) == (1200, [])
    assert client.ping()
    assert client.info()["tagline"] == "You Know, for Search"
    stored = rows(served.db, '"msg":"es-')
    assert len(stored) == 1200
    by_msg = {e["msg"]: (s, t) for s, t, e in stored}
    assert by_msg["es-0"] == ("shippers", base_ms * 1_000_000)
    assert by_msg["es-1199"] == ("shippers", (base_ms + 1199) * 1_000_000)
    assert by_msg["es-7"][1] == 1796544178123456789


def test_elasticsearch_bad_source_is_a_failed_item(served):
    es_mod = pytest.importorskip("elasticsearch")
    from elasticsearch import helpers

    client = es_mod.Elasticsearch(served.url, api_key=TOKEN, request_timeout=30)
    with pytest.raises(helpers.BulkIndexError) as info:
        helpers.bulk(client, [{"_index": "x", "_source": {"msg": "es-ok-item"}},
                              {"_op_type": "update", "_index": "x", "_id": "1",
                               "doc": {"msg": "es-update"}}])
    assert len(info.value.errors) == 1
    assert info.value.errors[0]["update"]["status"] == 400
    assert [e["msg"] for _, _, e in rows(served.db, "es-ok-item")] == ["es-ok-item"]


# -- OpenTelemetry SDK, OTLP/HTTP log exporter ------------------------------------------------

def test_opentelemetry_otlp_http_exporter(served):
    pytest.importorskip("opentelemetry.sdk._logs")
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    results: List[Any] = []

    class Recording(OTLPLogExporter):
        def export(self, batch):   # what the SDK is told, untouched
            result = super().export(batch)
            results.append(result)
            return result

    exporter = Recording(endpoint=f"{served.url}/v1/logs",
                         headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    provider = LoggerProvider(resource=Resource.create({"service.name": "otel-test"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # moving to another package
        logger = _logger("otel-client", LoggingHandler(logger_provider=provider))
    sent = []
    for i in range(150):
        before = time.time_ns()
        logger.info("otel-%d", i, extra={"n": i})
        sent.append(before)
    provider.shutdown()
    from opentelemetry.sdk._logs.export import LogRecordExportResult as Result
    assert results and all(r == Result.SUCCESS for r in results)
    stored = rows(served.db, '"body":"otel-')
    assert sorted(e["attributes"]["n"] for _, _, e in stored) == list(range(150))
    for source, time_ns, event in stored:
        assert source == "shippers"
        assert event["resource"]["service.name"] == "otel-test"
        assert event["severity_text"] == "INFO" and event["severity_number"] == 9
        assert time_ns == event["time_unix_nano"]      # the record's own creation time
        assert sent[event["attributes"]["n"]] - 10**9 < time_ns <= time.time_ns()


# -- python-logging-loki, both emitter versions -----------------------------------------------

@pytest.mark.parametrize("version", ["0", "1"])
def test_python_logging_loki(served, version):
    logging_loki = pytest.importorskip("logging_loki")
    failures: List[logging.LogRecord] = []

    class Handler(logging_loki.LokiHandler):
        def handleError(self, record):   # the library's failure path: count, don't print
            failures.append(record)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # version "0" warns
        handler = Handler(url=f"{served.url}/loki/api/v1/push", tags={"app": "loki-test"},
                          auth=("user", TOKEN), version=version)
    logger = _logger(f"loki-client-{version}", handler)
    created = []
    for i in range(20):
        logger.warning("loki-v%s-%d", version, i)
        created.append(time.time_ns())
    handler.close()
    assert failures == []
    stored = rows(served.db, f"loki-v{version}-")
    assert [e["line"] for _, _, e in stored] == [f"loki-v{version}-{i}" for i in range(20)]
    for (source, time_ns, event), after in zip(stored, created):
        assert source == "shippers"
        assert event["labels"]["app"] == "loki-test"
        assert event["labels"]["severity"] == "warning"
        # v0: the record's creation time to the microsecond; v1: the emit time, which the
        # library computes as float seconds x 1e9 (a few hundred ns of rounding)
        assert after - 10**9 < time_ns <= after + 10**6


# -- splunk-handler -----------------------------------------------------------------------------

def test_splunk_handler(served, capsys):
    splunk_handler = pytest.importorskip("splunk_handler")
    handler = splunk_handler.SplunkHandler(
        host="127.0.0.1", port=served.port, token=TOKEN, index="main", protocol="http",
        verify=False, flush_interval=0.1, sourcetype="text")
    logger = _logger("splunk-client", handler)
    sent = []
    for i in range(60):
        logger.info("splunk-%d", i)
        sent.append(time.time())
    handler.close()   # sends what is queued (concatenated objects, no separator)
    deadline = time.monotonic() + 20
    while len(rows(served.db, '"event":"splunk-')) < 60 and time.monotonic() < deadline:
        time.sleep(0.1)
    out = capsys.readouterr().out
    assert "Exception" not in out, out
    stored = rows(served.db, '"event":"splunk-')
    assert sorted(int(e["event"].split("-")[1]) for _, _, e in stored) == list(range(60))
    for source, time_ns, event in stored:
        assert source == "shippers"
        assert event["index"] == "main" and event["sourcetype"] == "text"
        # the decimal seconds it sent, to the nanosecond, without float rounding
        assert time_ns == int(Decimal(repr(event["time"])) * 10**9)
