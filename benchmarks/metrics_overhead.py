"""What the Prometheus metrics cost a request (benchmarks/README.md, "Metrics overhead").

Two measurements in one run, min of several repeats:

* the recording alone: the calls one request makes (``request``, ``commit``, two
  ``set_in_flight``), on a Metrics of 1 and of 8 workers' rows;
* a whole request through the ASGI app in this process (head, one-event JSON body,
  protocol, codec, a store that keeps nothing), with metrics and without, alternating,
  so that the difference is the metrics' share of a request's own cost (no HTTP, no
  SQLite: those only add to the denominator).

    python benchmarks/metrics_overhead.py [--requests 20000] [--repeats 7]
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Dict, List, Optional

from fastingest.server import create_app
from fastingest.server.metrics import Metrics
from fastingest.server.stores import Store, Transaction

BODY = b'{"message":"My first event","nested":{"values":123},"dt":"2023-08-09T07:03:30Z"}'
SCOPE = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"",
         "headers": [(b"authorization", b"Bearer tok"), (b"content-type", b"application/json"),
                     (b"content-length", b"%d" % len(BODY))],
         "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 9000)}


class NullStore(Store):
    """Keeps nothing: the request's own cost without a database."""

    async def open(self) -> None:
        pass

    def begin(self, request_id: Optional[str] = None) -> Transaction:
        return NullTx()

    async def close(self) -> None:
        pass


class NullTx(Transaction):
    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Any,
                  received_ns: int) -> None:
        pass

    async def commit(self) -> None:
        pass

    async def abort(self) -> None:
        pass


def recording(metrics: Metrics, n: int) -> float:
    """Seconds per request for the recording calls alone."""
    t = time.perf_counter()
    for _ in range(n):
        metrics.set_in_flight(1)
        metrics.commit(0.0004)
        metrics.set_in_flight(0)
        metrics.request("betterstack", 202, 0.0011, "app", 1, 80, 80)
    return (time.perf_counter() - t) / n


async def requests(app: Any, n: int) -> float:
    """Seconds per request through the ASGI app."""
    message = {"type": "http.request", "body": BODY, "more_body": False}

    async def receive() -> Dict[str, Any]:
        return message

    async def send(_: Dict[str, Any]) -> None:
        pass

    t = time.perf_counter()
    for _ in range(n):
        await app(SCOPE, receive, send)
    return (time.perf_counter() - t) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    one, eight = Metrics(["betterstack", "samsara"], ["app"]), \
        Metrics(["betterstack", "samsara"], ["app"], workers=8)
    rec1 = min(recording(one, args.requests) for _ in range(args.repeats))
    rec8 = min(recording(eight, args.requests) for _ in range(args.repeats))
    tokens = {"tok": "app"}
    with_m = create_app(tokens=tokens, store=NullStore(), protocols=["betterstack"])
    without = create_app(tokens=tokens, store=NullStore(), protocols=["betterstack"],
                         metrics=False)
    on: List[float] = []
    off: List[float] = []

    async def run() -> None:
        for _ in range(args.repeats):   # alternating: both see the same machine state
            on.append(await requests(with_m, args.requests))
            off.append(await requests(without, args.requests))

    asyncio.run(run())
    t0 = time.perf_counter()
    text = eight.render()
    render = time.perf_counter() - t0
    print(f"recording calls of one request: {rec1 * 1e9:.0f} ns (1 worker row), "
          f"{rec8 * 1e9:.0f} ns (8 rows)")
    print(f"one-event request through the ASGI app: {min(off) * 1e6:.2f} us without metrics, "
          f"{min(on) * 1e6:.2f} us with: +{(min(on) - min(off)) * 1e9:.0f} ns "
          f"({(min(on) / min(off) - 1) * 100:.1f}%)")
    print(f"a scrape of 8 workers' rows: {render * 1e3:.2f} ms, {len(text)} bytes")


if __name__ == "__main__":
    main()
