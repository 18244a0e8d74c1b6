"""One request end to end, stage by stage: where `fastingest serve` spends its time per event.

The requests of benchmarks/load.py (100 JSON log events of ≈ 206 bytes, an RFC 3339 ``dt``
each), measured in process CPU time, each stage alone and then together:

1. **codec**: ``fastingest.split`` (the raw path the server takes for a store of JSON
   text) and ``fastingest.decode`` (objects) of the body;
2. **protocol**: the Better Stack exchange (head checks, streaming decoder, batches, the
   answer), delivering JSON text and delivering objects;
3. **store**: the SQLite store alone, ``--concurrency`` transactions of one request's
   rows at a time (``add_raw`` + ``commit``: the writer thread's group commits
   included, it runs in this process);
4. **app**: the whole ASGI app in this process (no HTTP): head, routing, limits, the
   exchange, the store transaction, metrics and the request log, ``--concurrency``
   requests at a time, with a real SQLite file;
5. **HTTP**: through uvicorn (uvloop, httptools) on loopback with load.py's client:
   an ASGI app that only reads the body and answers 202 (what uvicorn costs), then
   ``fastingest serve`` itself. Server CPU per event, from /proc.

Stages 1-4 are process CPU per event, min of ``--repeats``; in stages 3-5 part of it runs
in the SQLite writer thread, in parallel with the event loop.

    python benchmarks/profile_request.py                    # ~1.5 min
    python benchmarks/profile_request.py --cprofile 25      # + the app's top functions
    python benchmarks/profile_request.py --format msgpack   # the same events as MessagePack
    python benchmarks/profile_request.py --nats nats://127.0.0.1:4222 --cprofile 25
                                        # stages 3-5 with the NATS store (a fresh stream each)
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import load  # noqa: E402

import fastingest  # noqa: E402
from fastingest.protocols import Delivery, Service  # noqa: E402
from fastingest.protocols.betterstack import BetterStack  # noqa: E402
from fastingest.server import create_app  # noqa: E402
from fastingest.server.stores import store_from_url  # noqa: E402

CONTENT_TYPES = {"json": "application/json", "ndjson": "application/x-ndjson",
                 "msgpack": "application/msgpack"}


def bodies(n_events: int, fmt: str, count: int = 16) -> List[bytes]:
    """``count`` of load.py's request bodies in format ``fmt``, each with its own time
    (one millisecond apart, growing, as load.py's client sends them: times that repeat
    cost SQLite's (source, time_ns) index several times more)."""
    import json

    import msgpack
    out = []
    templates = load.make_requests(n_events)
    clock = load.Clock()
    for i in range(count):
        request = templates[i % len(templates)]
        body = request.partition(b"\r\n\r\n")[2].replace(load.STAMP, clock.stamp())
        if fmt == "ndjson":
            body = b"\n".join(json.dumps(e, separators=(",", ":")).encode()
                              for e in json.loads(body)) + b"\n"
        elif fmt == "msgpack":
            body = msgpack.packb(json.loads(body))
        out.append(body)
    return out


def per_event(f: Callable[[bytes], Any], items: List[bytes], n_events: int, loops: int,
              repeats: int) -> float:
    """Min over repeats of the process CPU µs per event of ``f(body)``."""
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        for i in range(loops):
            f(items[i % len(items)])
        best = min(best, time.process_time() - t)
    return best / loops / n_events * 1e6


def exchange_stage(items: List[bytes], ctype: str, raw: bool, args: argparse.Namespace) -> float:
    service = Service([BetterStack({"tok": "app"})], Delivery(args.piece_size, raw))
    headers = [(b"authorization", b"Bearer tok"), (b"content-type", ctype.encode())]

    def one(body: bytes) -> None:
        exchange = service.start("POST", "/", headers)
        for _ in exchange.feed_batches(body):
            pass
        for _ in exchange.end_batches():
            pass
        exchange.committed()

    return per_event(one, items, args.events, args.loops, args.repeats)


def store_url(args: argparse.Namespace, tmp: str, name: str) -> str:
    """A fresh store: a SQLite file in ``tmp``, or a new stream on ``--nats``."""
    if args.nats:
        stream = f"PROFILE_{name.upper()}_{os.getpid()}"
        return f"{args.nats}?stream={stream}&prefix=profile{name}{os.getpid()}"
    return f"sqlite:{os.path.join(tmp, name + '.db')}?synchronous={args.synchronous}"


def store_stage(items: List[bytes], ctype: str, args: argparse.Namespace, tmp: str) -> float:
    """The store alone: add_raw + commit of one request's rows, concurrently."""
    raw = [fastingest.split(body, ctype) for body in items]
    if ctype == CONTENT_TYPES["msgpack"]:
        from fastingest import _kernels
        texts = [_kernels.active.transcode.events_to_json(r.raw) for r in raw]
    else:
        texts = [r.raw for r in raw]
    best = float("inf")
    for rep in range(args.repeats):
        store = store_from_url(store_url(args, tmp, f"store{rep}"))

        async def run() -> float:
            await store.open()
            requests = args.loops

            async def client(k: int) -> None:
                for i in range(k, requests, args.concurrency):
                    tx = store.begin()
                    await tx.add_raw("app", texts[i], raw[i].times_ns, 1)
                    await tx.commit()

            t = time.process_time()
            await asyncio.gather(*(client(k) for k in range(args.concurrency)))
            took = time.process_time() - t
            await store.close()
            return took

        best = min(best, asyncio.run(run()))
    return best / args.loops / args.events * 1e6


def app_stage(items: List[bytes], ctype: str, args: argparse.Namespace, tmp: str,
              profile: int = 0) -> float:
    """The ASGI app in this process with a real store, requests concurrently."""
    best = float("inf")
    for rep in range(args.repeats):
        app = create_app(tokens={"tok": "app"}, store=store_url(args, tmp, f"app{rep}{profile}"),
                         protocols=["betterstack"], piece_size=args.piece_size)

        async def run() -> float:
            await app.startup()

            async def client(k: int) -> None:
                sent = []

                async def send(message: Dict[str, Any]) -> None:
                    sent.append(message)

                for i in range(k, args.loops, args.concurrency):
                    body = items[i % len(items)]
                    message = {"type": "http.request", "body": body, "more_body": False}

                    async def receive() -> Dict[str, Any]:
                        return message

                    scope = {"type": "http", "method": "POST", "path": "/", "root_path": "",
                             "query_string": b"", "client": ("127.0.0.1", 40000 + k),
                             "headers": [(b"authorization", b"Bearer tok"),
                                         (b"content-type", ctype.encode()),
                                         (b"content-length", b"%d" % len(body))]}
                    await app(scope, receive, send)
                    assert sent[-2]["status"] == 202, sent[-2]

            t = time.process_time()
            await asyncio.gather(*(client(k) for k in range(args.concurrency)))
            took = time.process_time() - t
            await app.shutdown()
            return took

        if profile and rep == args.repeats - 1:
            prof = cProfile.Profile()
            took = prof.runcall(asyncio.run, run())
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(profile)
        else:
            took = asyncio.run(run())
        best = min(best, took)
    return best / args.loops / args.events * 1e6


def http_stage(args: argparse.Namespace, tmp: str) -> Dict[str, float]:
    """Server CPU µs per event through uvicorn: the null app, then fastingest serve."""
    import json

    import msgpack
    requests = load.make_requests(args.events)
    if args.format != "json":
        converted = []
        for request in requests:
            head, _, body = request.partition(b"\r\n\r\n")
            events = json.loads(body.replace(load.STAMP, b"2026-11-23T08:00:00.000"))
            if args.format == "ndjson":
                body = b"\n".join(json.dumps(e).encode() for e in events) + b"\n"
            else:
                body = msgpack.packb(events)
            head = head.replace(b"application/json", CONTENT_TYPES[args.format].encode())
            head = head.split(b"Content-Length:")[0] + b"Content-Length: %d" % len(body)
            converted.append(head + b"\r\n\r\n" + body)
        requests = converted
    ns = SimpleNamespace(clients=args.concurrency, warmup=1.0, duration=args.duration,
                         events=args.events, requests=requests, sqlite_options="",
                         protocols=False, nats=args.nats)
    out: Dict[str, List[float]] = {"null": [], "fastingest": []}
    store_kind = "nats" if args.nats else "sqlite"
    for n in range(args.repeats):
        for kind in ("null", "fastingest"):
            # with --nats: a fresh stream per run (load.py names it after the run number)
            run = os.getpid() * 100 + n if args.nats else n
            out[kind].append(load.run_one(kind, args.synchronous, ns, tmp, run,
                                          store_kind if kind == "fastingest" else "sqlite")
                             ["cpu_us_per_event"])
    return {k: min(v) for k, v in out.items()}


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100, help="events per request (100)")
    p.add_argument("--format", choices=sorted(CONTENT_TYPES), default="json")
    p.add_argument("--loops", type=int, default=2000, help="requests per timing (2000)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--synchronous", default="normal")
    p.add_argument("--piece-size", type=int, default=64 * 1024)
    p.add_argument("--duration", type=float, default=4.0, help="HTTP stage: seconds per run")
    p.add_argument("--no-http", action="store_true", help="skip stage 5")
    p.add_argument("--nats", metavar="URL", default=None,
                   help="stages 3-5 with the NATS store on this server (fresh streams)")
    p.add_argument("--cprofile", type=int, default=0, metavar="N",
                   help="print the app stage's N top functions (cProfile, event-loop thread)")
    args = p.parse_args(argv)
    if not (1 <= args.events <= 10000 and 1 <= args.loops <= 100000 and 1 <= args.repeats <= 20):
        p.error("keep it bounded: events 1-10000, loops 1-100000, repeats 1-20")
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    ctype = CONTENT_TYPES[args.format]
    items = bodies(args.events, args.format, args.loops)
    print(f"fastingest {fastingest.__version__} ({fastingest.IMPLEMENTATION}), Python "
          f"{sys.version.split()[0]}; {args.events} events/request, {args.format}, "
          f"{len(items[0]):,} B body; min of {args.repeats}; "
          + (f"NATS {args.nats}" if args.nats else f"SQLite synchronous={args.synchronous}"))
    rows: List[tuple] = []
    rows.append(("codec: split (raw path)", per_event(
        lambda b: fastingest.split(b, ctype), items, args.events, args.loops, args.repeats)))
    rows.append(("codec: decode (objects)", per_event(
        lambda b: fastingest.decode(b, ctype), items, args.events, args.loops, args.repeats)))
    rows.append(("protocol + codec, JSON text", exchange_stage(items, ctype, True, args)))
    rows.append(("protocol + codec, objects", exchange_stage(items, ctype, False, args)))
    with tempfile.TemporaryDirectory(prefix="fastingest-profile-") as tmp:
        name = "NATS" if args.nats else "SQLite"
        rows.append((f"store: {name} add_raw + commit", store_stage(items, ctype, args, tmp)))
        rows.append(("app in process (no HTTP)", app_stage(items, ctype, args, tmp)))
        if not args.no_http:
            http = http_stage(args, tmp)
            rows.append(("HTTP: uvicorn + a null app", http["null"]))
            rows.append(("HTTP: fastingest serve", http["fastingest"]))
        if args.cprofile:
            app_stage(items, ctype, argparse.Namespace(**{**vars(args), "repeats": 1}), tmp,
                      profile=args.cprofile)
    print("\n| stage | CPU µs per event | per request |")
    print("|---|---:|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.2f} | {us * args.events:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
