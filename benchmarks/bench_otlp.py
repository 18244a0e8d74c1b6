"""The OTLP protobuf walker against the ``protobuf`` package, in one process.

The job: an ``ExportLogsServiceRequest`` body (what the OpenTelemetry exporters post) to
the events fastingest stores — one dict per log record with its attributes, resource and
scope as dicts, and each record's int64-ns time. Compared, min of ``--repeat`` runs each,
alternating:

* ``fastingest (compiled)``: ``_protobuf.OtlpLogs`` (the server's path), all batches;
* ``fastingest (pure twin)``: ``protobuf.OtlpLogs``;
* ``protobuf parse only``: ``ExportLogsServiceRequest.FromString`` (upb, the C backend;
  it builds message objects lazily, so this alone delivers nothing usable);
* ``protobuf parse + same events``: that parse, then the same dicts read from the
  message objects (what one would write with the package to do the same job: the
  tests' reference mapping, ``tests/shippers.py``);
* ``protobuf parse + MessageToDict``: the package's generic conversion (camelCase keys,
  ids in base64, int64 as strings: not even the same result).

    python benchmarks/bench_otlp.py                  # 512-record batches (the SDK default)
    python benchmarks/bench_otlp.py --records 10000 --repeat 20
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))   # the reference mapping (tests/shippers.py)


def make_request(records: int) -> Any:
    """A batch as the Python SDK's exporter sends it: a resource, one scope, records with
    a string body, code attributes and trace context."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    def kv(key: str, value: Any) -> KeyValue:
        if isinstance(value, str):
            return KeyValue(key=key, value=AnyValue(string_value=value))
        return KeyValue(key=key, value=AnyValue(int_value=value))

    resource = Resource(attributes=[kv("service.name", "checkout"), kv("service.version", "1.4.2"),
                                    kv("telemetry.sdk.language", "python"),
                                    kv("telemetry.sdk.name", "opentelemetry"),
                                    kv("telemetry.sdk.version", "1.45.2"),
                                    kv("host.name", "web-7")])
    logs = [LogRecord(
        time_unix_nano=1_796_544_182_426_450_500 + i * 1000,
        observed_time_unix_nano=1_796_544_182_426_460_500 + i * 1000,
        severity_number=9, severity_text="INFO",
        body=AnyValue(string_value=f"GET /api/items/{i} 200 in {i % 97}ms user=alice"),
        attributes=[kv("code.filepath", "/app/checkout/views.py"), kv("code.function", "get_item"),
                    kv("code.lineno", 120 + i % 40), kv("http.status_code", 200)],
        trace_id=(i * 7919 + 1).to_bytes(16, "big"), span_id=(i * 104729 + 1).to_bytes(8, "big"),
        flags=1) for i in range(records)]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource, scope_logs=[ScopeLogs(scope=InstrumentationScope(name="checkout.views"),
                                                 log_records=logs)])])


def with_package(body: bytes, received_ns: int) -> Any:
    """The same events, built from the protobuf package's message objects (the tests'
    reference mapping, tests/shippers.py)."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from shippers import reference_events
    return reference_events(ExportLogsServiceRequest.FromString(body), received_ns)


def walker(module: Any) -> Callable[[bytes], Any]:
    def run(body: bytes) -> Any:
        reader = module.OtlpLogs(body, 1, 64 << 20, 128)
        events: List[Any] = []
        times: List[int] = []
        while not reader.done:
            got, when = reader.read()
            events.extend(got)
            times.extend(when)
        return events, times
    return run


def best(fn: Callable[[bytes], Any], body: bytes, repeat: int) -> float:
    """Min seconds of ``repeat`` runs (GC on, as a server runs)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(body)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: Any = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=512, help="log records per request (512)")
    p.add_argument("--repeat", type=int, default=30, help="runs of each, min taken (30)")
    args = p.parse_args(argv)
    if not (1 <= args.records <= 200_000 and 1 <= args.repeat <= 1000):
        p.error("keep it bounded: records 1-200000, repeat 1-1000")
    from google.protobuf import __version__ as pb_version
    from google.protobuf.internal import api_implementation
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from fastingest import _kernels, protobuf as pure

    body = make_request(args.records).SerializeToString()
    compiled = _kernels.cython.protobuf if _kernels.cython is not None else None
    ours = walker(compiled) if compiled is not None else None
    reference = with_package(body, 1)
    if ours is not None:
        assert ours(body) == reference, "the walker and the package disagree"
    assert walker(pure)(body) == reference
    cases = [
        ("fastingest (compiled)", ours),
        ("fastingest (pure twin)", walker(pure)),
        ("protobuf parse only", ExportLogsServiceRequest.FromString),
        ("protobuf parse + same events", lambda b: with_package(b, 1)),
        ("protobuf parse + MessageToDict",
         lambda b: MessageToDict(ExportLogsServiceRequest.FromString(b))),
    ]
    results: Dict[str, float] = {}
    for _ in range(2):   # two alternating passes: drift hits all alike
        for name, fn in cases:
            if fn is not None:
                t = best(fn, body, max(1, args.repeat // 2))
                results[name] = min(results.get(name, t), t)
    gc.collect()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"protobuf {pb_version} ({api_implementation.Type()} backend); "
          f"{args.records} records, {len(body):,} bytes; min of {args.repeat} runs")
    base = results.get("fastingest (compiled)")
    print("\n| path | ms per request | µs per record | MB/s | compiled walker is |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in cases:
        if name not in results:
            continue
        t = results[name]
        ratio = f"{t / base:.2f}x faster" if base and name != "fastingest (compiled)" else ""
        if base and t < base:
            ratio = f"{base / t:.2f}x slower"
        print(f"| {name} | {t * 1e3:.2f} | {t / args.records * 1e6:.2f} | "
              f"{len(body) / t / 1e6:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
