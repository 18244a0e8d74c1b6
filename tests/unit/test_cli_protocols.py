"""``fastingest serve``'s protocol list and per-protocol limits, and create_app's."""
from __future__ import annotations

import argparse

import pytest

from fastingest.constants import MiB
from fastingest.limits import Limits
from fastingest.server import create_app
from fastingest.server.asgi import DEFAULT_PROTOCOL_LIMITS, PROTOCOLS, protocol_limits
from fastingest.server.cli import build_limits, parse_protocols, _size_setting


def test_protocol_lists():
    assert parse_protocols(["all"]) == PROTOCOLS
    assert parse_protocols(["both"]) == ("betterstack", "samsara")
    assert parse_protocols(["otlp,loki", "otlp", " Splunk "]) == ("otlp", "loki", "splunk")
    for bad in (["nope"], [","], ["otlp,x"]):
        with pytest.raises(ValueError):
            parse_protocols(bad)


def test_per_protocol_limits():
    args = argparse.Namespace(
        max_body=[_size_setting("50MiB"), _size_setting("otlp=128MiB")],
        max_compressed=None, max_event=[_size_setting("loki=1MiB")])
    limits = build_limits(args, ("betterstack", "otlp", "loki", "splunk"))
    assert limits["betterstack"] == Limits(max_body=50 * MiB)
    assert limits["otlp"].max_body == 128 * MiB
    assert limits["otlp"].max_compressed == DEFAULT_PROTOCOL_LIMITS["otlp"].max_compressed
    assert limits["loki"] == Limits(max_body=50 * MiB, max_compressed=100 * MiB, max_event=MiB)
    assert limits["splunk"].max_body == 50 * MiB
    with pytest.raises(argparse.ArgumentTypeError):
        _size_setting("kafka=1MiB")


def test_defaults_match_the_real_services():
    d = DEFAULT_PROTOCOL_LIMITS
    assert (d["otlp"].max_body, d["elasticsearch"].max_body, d["loki"].max_compressed,
            d["splunk"].max_body) == (64 * MiB, 100 * MiB, 100 * MiB, 800 * MiB)
    assert d["loki"].max_event == 256 * 1024 and d["betterstack"] == Limits()
    one = Limits(max_body=MiB)
    assert protocol_limits(one, "otlp") is one
    assert protocol_limits({"otlp": one}, "otlp") is one
    assert protocol_limits({"otlp": one}, "loki") is d["loki"]


def test_create_app_serves_every_protocol_with_elasticsearch_first():
    app = create_app(tokens={"t": "s"}, store="sqlite::memory:")
    names = [p.name for p in app.service.protocols]
    assert sorted(names) == sorted(PROTOCOLS) and names[0] == "elasticsearch"
    assert {p.name: p.limits for p in app.service.protocols}["otlp"] == DEFAULT_PROTOCOL_LIMITS["otlp"]
    with pytest.raises(ValueError):
        create_app(tokens={}, store="sqlite::memory:", protocols=["kafka"])
