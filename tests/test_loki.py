"""Loki push, sans-I/O, on both kernel sets: JSON v1 and v0 on both paths, snappy
protobuf, encodings, every answer of PROTOCOLS.md §3, selectors, limits."""
from __future__ import annotations

import gzip
import json

import pytest

from fastingest import IngestError, Limits
from fastingest.lokiformat import parse_labels, render_labels
from fastingest.snappy import compress_block, declared_length

from shippers import (ENCODE, RECEIVED, basic, bearer, field, loki_entry, loki_push, run,
                      service, varint)

V1 = "/loki/api/v1/push"
V0 = "/api/prom/push"
JS = {"Content-Type": "application/json", **basic()}
PB = {"Content-Type": "application/x-protobuf", **basic()}
TEXT = b"text/plain; charset=utf-8"


def text_of(out):
    assert out.header(b"content-type") == TEXT
    assert out.header(b"x-content-type-options") == b"nosniff"
    return out.status, out.body.decode()


def v1(*streams):
    return json.dumps({"streams": list(streams)}).encode()


def test_v1_json(impl):
    body = v1({"stream": {"app": "web", "n": 5, "ok": True},
               "values": [["1796544182426450500", "line one"], None,
                          ["0", "line two", {"trace": "abc"}, "ignored"]]},
              {"stream": {"app": "db"}, "values": None})
    out = run(service(), "POST", V1, JS, body, chunks=(9,))
    assert (out.status, out.body, out.response.headers) == (204, b"", ())
    labels = {"app": "web", "n": "5", "ok": "true"}
    assert out.events == [{"line": "line one", "labels": labels},
                          {"line": "line two", "labels": labels,
                           "structured_metadata": {"trace": "abc"}}]
    assert out.times == [1796544182426450500, RECEIVED] and set(out.sources) == {"app"}


@pytest.mark.parametrize("path", [V1, V0])
def test_v0_json_on_both_paths(impl, path):
    # python-logging-loki's default emitter: json.dumps with ", " separators
    body = json.dumps({"streams": [{"labels": '{app="demo", severity="error", q="a\\"b"}',
                                    "entries": [{"ts": "2026-12-06T08:02:58.458481+00:00",
                                                 "line": "caf\u00e9"}]}]}).encode()
    out = run(service(), "POST", path, JS, body)
    assert out.status == 204
    assert out.events == [{"line": "café", "labels": {"app": "demo", "severity": "error", "q": 'a"b'}}]
    assert out.times == [1796544178458481000]


def test_snappy_protobuf(impl):
    push = loki_push([
        ('{app="web", env="prod"}', [loki_entry(1796544182, 426450500, "hello"),
                                     loki_entry(0, 0, "no time", [("k", "v")])]),
        ('{app="db"}', [field(1, field(1, 5, 0)) + field(2, b"bad \xff")]),   # not UTF-8
    ])
    out = run(service(), "POST", V1, PB, compress_block(push), chunks=(3,))
    assert out.status == 204
    assert out.events[0] == {"line": "hello", "labels": {"app": "web", "env": "prod"}}
    assert out.events[1]["structured_metadata"] == {"k": "v"}
    assert out.events[2] == {"line": "bad \ufffd", "labels": {"app": "db"}}   # as Loki: kept
    assert out.times == [1796544182426450500, RECEIVED, 5_000_000_000]


@pytest.mark.parametrize("coding", ["gzip", "raw-deflate", "deflate"])
def test_encodings(impl, coding):
    name = "deflate" if coding == "raw-deflate" else coding
    body = v1({"stream": {"a": "b"}, "values": [["1", "x"]]})
    out = run(service(), "POST", V1, {**JS, "Content-Encoding": name}, ENCODE[coding](body))
    assert out.status == 204 and out.times == [1]
    push = compress_block(loki_push([('{a="b"}', [loki_entry(1, 0, "p")])]))
    out = run(service(), "POST", V1, {**PB, "Content-Encoding": name}, ENCODE[coding](push))
    assert out.status == 204 and out.events == [{"line": "p", "labels": {"a": "b"}}]
    out = run(service(), "POST", V1, {**PB, "Content-Encoding": "snappy"}, push)
    assert out.status == 204


def test_head_answers():
    svc = service()
    body = v1({"stream": {"a": "b"}, "values": [["1", "x"]]})
    assert text_of(run(svc, "GET", V1, JS)) == (405, "method not allowed\n")
    assert text_of(run(svc, "POST", V1, {"Content-Type": "application/json"}, body)) == \
        (401, "no credentials\n")
    assert text_of(run(svc, "POST", V1, {**JS, **basic("nope")}, body)) == \
        (403, "invalid credentials\n")
    assert run(svc, "POST", V1, {**JS, **bearer()}, body).status == 204
    assert text_of(run(svc, "POST", V1, basic(), body)) == (400, "mime: no media type\n")
    assert text_of(run(svc, "POST", V1, {**JS, "Content-Encoding": "br"}, body)) == \
        (400, 'Content-Encoding "br" not supported\n')
    out = run(svc, "POST", V1, {**JS, "X-Scope-OrgID": "tenant-1"}, body)
    assert out.events[0]["tenant"] == "tenant-1"


@pytest.mark.parametrize("body, status, text", [
    (b'{"streams":[]}', 422, "error at least one valid stream is required for ingestion"),
    (b"{}", 422, "error at least one valid stream is required for ingestion"),
    (v1({"stream": {}, "values": [["1", "x"]]}), 400, "error at least one label pair is required per stream"),
    (v1({"labels": "{}", "entries": []}), 400, "error at least one label pair is required per stream"),
    (v1({"stream": {"a": "b"}, "values": [[1, "x"]]}), 400, None),
    (v1({"stream": {"a": "b"}, "values": [["x", "x"]]}), 400, None),
    (v1({"stream": {"a": "b"}, "values": [["1", 5]]}), 400, None),
    (v1({"stream": {"a": "b"}, "values": [["1", "x", {"k": 1}]]}), 400, None),
    (v1({"stream": {"a": {"b": 1}}, "values": []}), 400, None),
    (v1({"labels": "{a=b}", "entries": []}), 400, None),
    (b'{"streams":[', 400, None),
])
def test_json_errors(impl, body, status, text):
    out = run(service(), "POST", V1, JS, body)
    got_status, got_text = text_of(out)
    assert got_status == status and got_text.endswith("\n")
    if text is not None:
        assert got_text == text + "\n"


def test_protobuf_errors(impl):
    svc = service()
    assert run(svc, "POST", V1, PB, b"\x05abc").status == 400   # corrupt snappy
    assert run(svc, "POST", V1, PB, compress_block(b"\x0b")).status == 400   # group
    assert text_of(run(svc, "POST", V1, PB, compress_block(b"")))[0] == 422
    bad_labels = compress_block(loki_push([("app=web", [loki_entry(1, 0, "x")])]))
    status, text = text_of(run(svc, "POST", V1, PB, bad_labels))
    assert status == 400 and text.startswith("couldn't parse labels: ")
    small = service(loki={"limits": Limits(max_body=100, max_compressed=1000)})
    bomb = compress_block(b"\x0a\x00" * 1000)
    assert declared_length(bomb) == 2000
    status, text = text_of(run(small, "POST", V1, PB, bomb))
    assert status == 413 and text.startswith("request body too large: ")
    status, text = text_of(run(small, "POST", V1, {**JS, "Content-Length": "5000"}, b""))
    assert text == "request body too large: message size too large than max (5000 vs 1000)\n"


def test_line_over_max_entry_size(impl):
    svc = service(loki={"limits": Limits(max_event=10)})
    out = run(svc, "POST", V1, JS, v1({"stream": {"a": "1"}, "values": [["1", "x" * 11]]}))
    assert text_of(out) == (400, "max entry size '10' bytes exceeded for stream '{a=\"1\"}' "
                                 "while adding an entry with length '11' bytes\n")
    push = compress_block(loki_push([('{ a="1"}', [loki_entry(1, 0, "y" * 12)])]))
    out = run(svc, "POST", V1, PB, push)
    assert text_of(out) == (400, "max entry size '10' bytes exceeded for stream '{a=\"1\"}' "
                                 "while adding an entry with length '12' bytes\n")
    assert run(svc, "POST", V1, JS, v1({"stream": {"a": "1"}, "values": [["1", "x" * 10]]})).status == 204
    wide = service(loki={"limits": Limits(max_event=40)})
    out = run(wide, "POST", V1, JS, v1({"stream": {"b": "2", "a": "1"}, "values": [["1", "x" * 41]]}))
    assert text_of(out)[1].startswith("max entry size '40' bytes exceeded for stream '{a=\"1\", b=\"2\"}'")


def test_labels_over_max_entry_size(impl):
    svc = service(loki={"limits": Limits(max_event=20)})
    push = compress_block(loki_push([('{a="' + "x" * 30 + '"}', [loki_entry(1, 0, "y")])]))
    assert text_of(run(svc, "POST", V1, PB, push))[0] == 400
    out = run(svc, "POST", V1, JS, v1({"stream": {"a": "x" * 30}, "values": [["1", "y"]]}))
    assert text_of(out) == (400, "stream labels of 39 bytes exceed the limit of 20 bytes\n")


def test_store_failure_is_503():
    out = run(service(), "POST", V1, JS, v1({"stream": {"a": "b"}, "values": [["1", "x"]]}),
              store_fails=True)
    assert text_of(out) == (503, "circuit breaker open, request denied\n")


@pytest.mark.parametrize("text, labels", [
    ('{a="1"}', {"a": "1"}),
    (' { a = "1" , _b="x\\ty\\\\z\\u00e9\\x41\\101" , } ', {"a": "1", "_b": "x\ty\\zéAA"}),
])
def test_selectors(text, labels):
    assert parse_labels(text) == labels
    assert parse_labels(render_labels(labels)) == labels


@pytest.mark.parametrize("text", ['', '{}', 'a="1"', '{a=1}', '{1a="x"}', '{a="1" b="2"}',
                                  '{a="1", a="2"}', '{a="\\q"}', '{a="1"'])
def test_bad_selectors(text):
    with pytest.raises(IngestError) as info:
        parse_labels(text)
    assert info.value.status == 400


def test_only_short_selectors_are_cached():
    from fastingest import lokiformat
    lokiformat._parse_labels_cached.cache_clear()
    long_text = '{a="' + "x" * 5000 + '"}'
    assert parse_labels(long_text) == {"a": "x" * 5000}
    assert parse_labels('{b="1"}') == {"b": "1"}
    assert lokiformat._parse_labels_cached.cache_info().currsize == 1


def test_snappy_preamble():
    assert declared_length(varint(300) + b"x") == 300
    with pytest.raises(IngestError):
        declared_length(b"\xff\xff\xff\xff\xff\xff")
    with pytest.raises(IngestError):
        declared_length(b"")
    assert field(1, "x") == b"\x0a\x01x" and gzip


def test_large_values_are_judged_before_they_are_built(impl):
    svc = service(loki={"limits": Limits(max_event=100)})
    huge_line = v1({"stream": {"a": "1"}, "values": [["1", "x" * 200_000]]})
    status, text = text_of(run(svc, "POST", V1, JS, huge_line))
    assert status == 400 and text.startswith("max entry size '100' bytes exceeded")
    escaped = v1({"stream": {"a": "1"}, "values": [["1", "\u00e9" * 50, {"k": "v" * 70_000}]]})
    status, text = text_of(run(svc, "POST", V1, JS, escaped))
    assert (status, text) == (400, "structured metadata of 70009 bytes exceeds the limit of "
                                   "65536 bytes\n")
    # escapes make the JSON text long, the line itself fits: measured, accepted
    out = run(svc, "POST", V1, JS, v1({"stream": {"a": "1"}, "values": [["1", "\u00e9" * 50]]}))
    assert out.status == 204 and out.events[0]["line"] == "\u00e9" * 50
    wide = v1({"stream": {"a": "1"}, "values": [["1", "\u00e9" * 51]]})
    assert text_of(run(svc, "POST", V1, JS, wide))[1].endswith("length '102' bytes\n")
