"""Elasticsearch ``_bulk``, sans-I/O, on both kernel sets: every answer of PROTOCOLS.md §2
(whole-request errors with ES's exact texts, per-item results, auth, content types,
compression, limits) and the cluster root."""
from __future__ import annotations

import base64
import gzip
import json

import pytest

from fastingest import Limits
from fastingest.bulk import timestamp_ns

from helpers import RECEIVED, TOKEN, basic, bearer, run, service

ND = {"Content-Type": "application/x-ndjson", **basic()}
PRODUCT = b"Elasticsearch"


def body_of(out):
    return json.loads(out.body)


def whole_error(out):
    doc = body_of(out)
    assert out.header(b"x-elastic-product") == PRODUCT
    assert doc["error"]["root_cause"][0]["type"] == doc["error"]["type"]
    return out.status, doc["error"]["type"], doc["error"]["reason"]


def test_bulk_success_items_in_order(impl):
    body = (b'{"index":{"_index":"logs","_id":"x"}}\n{"msg":"a","@timestamp":"2026-12-06T08:02:58.458481Z"}\n'
            b'{"create":{}}\r\n{"msg":"b","@timestamp":1796544182426}\n'
            b'\n'
            b'{"index":{"_index":"other","op_type":"create"}}\n{"msg":"c"}\n')
    out = run(service(), "PUT", "/logs/_bulk", ND, body, chunks=(7, 60))
    assert out.status == 200 and out.header(b"x-elastic-product") == PRODUCT
    doc = body_of(out)
    assert doc["errors"] is False and isinstance(doc["took"], int)
    items = doc["items"]
    assert [list(i) for i in items] == [["index"], ["create"], ["create"]]
    first = items[0]["index"]
    assert first == {"_index": "logs", "_id": "x", "_version": 1, "result": "created",
                     "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0,
                     "_primary_term": 1, "status": 201}
    assert items[1]["create"]["_index"] == "logs" and items[2]["create"]["_index"] == "other"
    ids = [items[1]["create"]["_id"], items[2]["create"]["_id"]]
    assert all(len(i) == 20 for i in ids) and ids[0] != ids[1]
    assert out.events == [{"msg": "a", "@timestamp": "2026-12-06T08:02:58.458481Z"},
                          {"msg": "b", "@timestamp": 1796544182426}, {"msg": "c"}]
    assert out.times == [1796544178458481000, 1796544182426000000, RECEIVED]
    assert set(out.sources) == {"app"}


def test_per_item_failures_store_the_rest(impl):
    body = (b'{"index":{"_index":"a"}}\n[1,2]\n'
            b'{"index":{}}\n{"no":"index"}\n'
            b'{"update":{"_index":"a","_id":"1"}}\n{"doc":{"x":1}}\n'
            b'{"delete":{"_index":"a","_id":"2"}}\n'
            b'{"delete":{"_index":"a"}}\n'
            b'{"index":{"_index":"a"}}\n{"kept":true}\n')
    out = run(service(), "POST", "/_bulk", ND, body)
    doc = body_of(out)
    assert out.status == 200 and doc["errors"] is True
    items = doc["items"]
    assert [next(iter(i)) for i in items] == ["index", "index", "update", "delete", "delete", "index"]
    assert items[0]["index"]["status"] == 400
    assert items[0]["index"]["error"]["type"] == "document_parsing_exception"
    assert items[1]["index"]["error"] == {"type": "action_request_validation_exception",
                                          "reason": "Validation Failed: 1: index is missing;"}
    assert items[2]["update"] == {"_index": "a", "_id": "1", "status": 400, "error": {
        "type": "illegal_argument_exception", "reason": "[update] is not supported by this endpoint"}}
    assert items[3]["delete"]["status"] == 404 and items[3]["delete"]["result"] == "not_found"
    assert items[4]["delete"]["status"] == 400
    assert items[5]["index"]["status"] == 201
    assert out.events == [{"kept": True}]


@pytest.mark.parametrize("body, status, type_, reason", [
    (b"", 400, "parse_exception", "request body is required"),
    (b"\n\n  \n", 400, "action_request_validation_exception", "Validation Failed: 1: no requests added;"),
    (b'{"index":{}}\n{}', 400, "illegal_argument_exception",
     "The bulk request must be terminated by a newline [\\n]"),
    (b'{"index":{}}\n{}\n"x"\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [3], expected START_OBJECT but found [VALUE_STRING]"),
    (b"12\n", 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected START_OBJECT but found [VALUE_NUMBER]"),
    (b"[]\n", 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]"),
    (b"{}\n", 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]"),
    (b'{"upsert":{}}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]"),
    (b'{"index":"x"}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]"),
    (b'{"index":{"_type":"doc"}}\n{}\n', 400, "illegal_argument_exception",
     "Action/metadata line [1] contains an unknown parameter [_type]"),
    (b'{"index":{"_id":[1]}}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected a simple value for field [_id] but found [START_ARRAY]"),
    (b'{"index":{},"delete":{}}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected END_OBJECT but found [FIELD_NAME]"),
    (b'{"index":{}} x\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], unexpected data after the closing brace"),
    (b'{"index":{}}\n\n{"index":{}}\n{}\n', 400, "action_request_validation_exception",
     "Validation Failed: 1: source is missing;"),
])
def test_whole_request_errors(impl, body, status, type_, reason):
    out = run(service(), "POST", "/logs/_bulk", ND, body)
    assert whole_error(out) == (status, type_, reason)
    assert out.events == []


def test_action_line_not_json_is_x_content_parse_exception(impl):
    out = run(service(), "POST", "/logs/_bulk", ND, b'{"index":tru}\n{}\n')
    assert whole_error(out)[:2] == (400, "x_content_parse_exception")


def test_method_not_allowed():
    out = run(service(), "GET", "/_bulk", ND)
    assert out.status == 405 and out.header(b"x-elastic-product") == PRODUCT
    assert out.body == (b'{"error":"Incorrect HTTP method for uri [/_bulk] and method [GET], '
                        b'allowed: [POST, PUT]","status":405}')


def test_auth_forms_and_failures():
    svc = service()
    ok = b'{"index":{"_index":"a"}}\n{"x":1}\n'
    key_id = base64.b64encode(f"keyid:{TOKEN}".encode()).decode()
    for auth in (basic(), bearer(), {"Authorization": f"ApiKey {TOKEN}"},
                 {"Authorization": f"ApiKey {key_id}"}, basic(user="anyone")):
        assert run(svc, "POST", "/_bulk", auth, ok).status == 200, auth
    out = run(svc, "POST", "/_bulk", {}, ok)
    assert out.status == 401
    assert out.headers(b"www-authenticate") == [b'Basic realm="security" charset="UTF-8"', b"ApiKey"]
    assert out.body == (
        b'{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication '
        b'credentials for REST request [/_bulk]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" '
        b'charset=\\"UTF-8\\"","ApiKey"]}}],"type":"security_exception","reason":"missing authentication '
        b'credentials for REST request [/_bulk]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" '
        b'charset=\\"UTF-8\\"","ApiKey"]}},"status":401}')
    out = run(svc, "POST", "/_bulk", basic("wrong", user="elastic"), ok)
    assert whole_error(out) == (401, "security_exception",
                                "unable to authenticate user [elastic] for REST request [/_bulk]")


@pytest.mark.parametrize("ctype, status", [
    (None, 200), ("application/json", 200), ("application/x-ndjson; charset=UTF-8", 200),
    ("application/vnd.elasticsearch+x-ndjson; compatible-with=9", 200),
    ("application/vnd.elasticsearch+json;compatible-with=8", 200),
    ("application/vnd.elasticsearch+x-ndjson; compatible-with=6", 406), ("text/plain", 406),
])
def test_content_types(ctype, status):
    headers = dict(basic())
    if ctype:
        headers["Content-Type"] = ctype
    out = run(service(), "POST", "/_bulk", headers, b'{"index":{"_index":"a"}}\n{}\n')
    assert out.status == status
    if status == 406:
        assert body_of(out) == {"error": f"Content-Type header [{ctype}] is not supported",
                                "status": 406}


def test_response_type_follows_accept():
    headers = {**ND, "Accept": "application/vnd.elasticsearch+json; compatible-with=9"}
    out = run(service(), "PUT", "/_bulk", headers, b'{"index":{"_index":"a"}}\n{}\n')
    assert out.header(b"content-type") == b"application/vnd.elasticsearch+json;compatible-with=9"


def test_gzip_and_limits(impl):
    body = b"".join(b'{"index":{"_index":"a"}}\n{"n":%d}\n' % i for i in range(300))
    out = run(service(), "POST", "/_bulk", {**ND, "Content-Encoding": "gzip"},
              gzip.compress(body), chunks=(100, 200))
    assert out.status == 200 and [e["n"] for e in out.events] == list(range(300))
    small = service(elasticsearch={"limits": Limits(max_body=500, max_compressed=500, max_event=100)})
    out = run(small, "POST", "/_bulk", ND, body)
    assert whole_error(out)[:2] == (413, "content_too_long_exception")
    out = run(small, "POST", "/_bulk", ND, b'{"index":{"_index":"a"}}\n{"x":"' + b"y" * 200 + b'"}\n')
    assert out.status == 413
    capped = service(elasticsearch={"max_actions": 10})
    assert run(capped, "POST", "/_bulk", ND, body).status == 413
    out = run(service(), "POST", "/_bulk", {**ND, "Content-Encoding": "compress"}, body)
    assert whole_error(out)[:2] == (400, "illegal_argument_exception")


def test_cluster_root():
    svc = service()
    out = run(svc, "GET", "/", basic())
    doc = body_of(out)
    assert out.status == 200 and out.header(b"x-elastic-product") == PRODUCT
    assert doc["tagline"] == "You Know, for Search" and doc["version"]["build_flavor"] == "default"
    assert doc["version"]["number"] >= "7.14"
    out = run(svc, "HEAD", "/", basic())
    assert (out.status, out.body, out.header(b"x-elastic-product")) == (200, b"", PRODUCT)
    assert run(svc, "GET", "/", {}).status == 401
    assert run(svc, "POST", "/", basic()).status == 404   # not ES's: Better Stack's POST /


@pytest.mark.parametrize("value, ns", [
    ("2026-12-06T08:02:58.123456789Z", 1796544178123456789),
    ("2026-12-06T09:02:58+01:00", 1796544178000000000),
    ("2026-12-06", 1796515200000000000),
    (1796544182426, 1796544182426000000),
    ("1796544182426.5", 1796544182426500000),
    (1796544182426.25, 1796544182426250000),
    ("yesterday", None), (True, None), (None, None), ({"a": 1}, None),
    ("1" * 5000, None), ("0" * 5000 + "1796544182426", 1796544182426000000),   # no huge int
])
def test_timestamp_forms(impl, value, ns):
    assert timestamp_ns(value) == ns


def test_store_failure_is_429():
    out = run(service(), "POST", "/_bulk", ND, b'{"index":{"_index":"a"}}\n{}\n', store_fails=True)
    assert whole_error(out)[:2] == (429, "es_rejected_execution_exception")
