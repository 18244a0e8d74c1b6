"""Load test: `fastingest serve` against the endpoint a user would write by hand.

Both servers run on uvicorn (uvloop + httptools when installed) in their own process on
127.0.0.1, each with a fresh SQLite file holding the same table and index, in WAL mode with
the same ``synchronous`` setting (so both acknowledge with the same durability):

* **fastingest**: ``python -m fastingest serve`` (streaming decode, writer thread, group
  commit);
* **naive**: Starlette + ``orjson.loads`` of the whole body + ``datetime.fromisoformat``
  for ``dt`` + one ``executemany`` and ``commit`` per request, on the event loop.

The client (this process, raw asyncio keep-alive connections, pre-built requests, so that
it stays cheap) sends batches of ``--events`` JSON events from ``--clients`` concurrent
connections for ``--duration`` seconds after a warm-up, and reports events/s and the
p50/p99 request latency. Servers are measured alternately, ``--rounds`` times each; the
best round of each is compared. At the end every acknowledged event is counted in SQLite.

    python benchmarks/load.py                         # synchronous=full and normal, ~1 min
    python benchmarks/load.py --synchronous normal --clients 50 --duration 10
    python benchmarks/load.py --scaleout              # fastingest only: SQLite and NATS x 1, 2 workers

``--protocols`` measures ``fastingest serve`` alone (SQLite, one worker) with the same
log events sent through each protocol it speaks: Better Stack JSON, OTLP/HTTP protobuf
(as the OpenTelemetry exporters send it), Elasticsearch ``_bulk`` NDJSON, Loki snappy
protobuf (8 streams, as Promtail groups by labels) and Splunk HEC concatenated objects;
``--protocols-list`` picks some. Each request template carries its own event times
(64 templates, one millisecond apart), so every protocol's times repeat alike.

``--scaleout`` measures ``fastingest serve`` alone, for each store (``--stores
sqlite,nats``) and worker count (``--workers 1,2``): SQLite in a fresh file, NATS
JetStream in a fresh stream of a nats-server it starts in a temp dir (or ``--nats URL``).
Server CPU then counts the supervisor and all its workers (not nats-server).

Bounded: at most rounds x servers x modes x (start + warm-up + duration) seconds, and
only loopback connections.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "load-test-token"


# -- the naive endpoint (runs in its own process: `load.py _naive DB SYNCHRONOUS`) ------------

def naive_main(db: str, synchronous: str) -> None:
    """What a user would write with Starlette, orjson and sqlite3: parse the whole body,
    read ``dt``, insert, commit, answer 202."""
    import datetime

    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from fastingest.server.stores.sqlite import SCHEMA

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.executescript(SCHEMA)   # the very table and index fastingest's store uses

    def event_time(dt, now: int) -> int:
        if isinstance(dt, str):
            try:
                return int(datetime.datetime.fromisoformat(dt).timestamp() * 1e9)
            except ValueError:
                return now
        if isinstance(dt, (int, float)):
            return int(dt * 1e9)
        return now

    async def ingest(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return PlainTextResponse("Unauthorized", 403)
        body = await request.body()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return PlainTextResponse("Couldn't parse JSON content.", 406)
        events = data if isinstance(data, list) else [data]
        now = time.time_ns()
        rows = [("bench", event_time(e.get("dt"), now), now, orjson.dumps(e).decode())
                for e in events]
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
        conn.commit()
        return Response(status_code=202)

    run_uvicorn(Starlette(routes=[Route("/", ingest, methods=["POST"])]), "naive")


def run_uvicorn(app, name: str) -> None:
    """Serve ``app`` on a free loopback port with uvicorn (uvloop, httptools when
    installed), printing ``<name> on http://127.0.0.1:PORT`` once it listens."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            port = self.servers[0].sockets[0].getsockname()[1]
            print(f"{name} on http://127.0.0.1:{port}", flush=True)

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            access_log=False, loop="auto", http="auto", lifespan="off")
    Server(config).run()


# -- the HTTP floor (`load.py _null`): uvicorn reading each body and answering 202 ------------

def null_main() -> None:
    """A raw ASGI app that reads the body and answers 202: what uvicorn, httptools and
    uvloop cost per request, with nothing decoded or stored."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    run_uvicorn(app, "null")


# -- servers -------------------------------------------------------------------------------

class ServerProcess:
    """A server subprocess; ready once it prints the line with its port. ``store``
    (fastingest only) replaces the SQLite file ``db``; ``nats_stream`` names the stream
    to count events in when it is a NATS store."""

    def __init__(self, kind: str, db: str, synchronous: str, store: Optional[str] = None,
                 workers: int = 1, nats_stream: Optional[str] = None,
                 protocol: str = "betterstack") -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        if kind == "fastingest":
            cmd = [sys.executable, "-m", "fastingest", "serve", "--port", "0",
                   "--token", f"bench={TOKEN}", "--protocol", protocol,
                   "--store", store or f"sqlite:{db}?synchronous={synchronous}",
                   "--workers", str(workers), "--log-level", "warning"]
        elif kind == "null":
            cmd = [sys.executable, os.path.abspath(__file__), "_null"]
        else:
            cmd = [sys.executable, os.path.abspath(__file__), "_naive", db, synchronous]
        self.kind, self.db, self.store, self.nats_stream = kind, db, store, nats_stream
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 30
        while True:
            line = self.proc.stdout.readline()
            match = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{kind} server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stored(self) -> Optional[int]:
        if self.kind == "null":
            return None
        if self.nats_stream is not None:
            return nats_count(self.store)
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]


# -- NATS JetStream (--scaleout) -------------------------------------------------------------

class NatsServer:
    """``nats-server -js`` on a free loopback port, storage in ``store_dir``."""

    def __init__(self, store_dir: str) -> None:
        path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
        binary = shutil.which("nats-server", path=path)
        if binary is None:
            raise SystemExit("nats-server is not installed (apt-get install nats-server), "
                             "or pass --nats URL")
        self.proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", "-1",
                                      "-sd", store_dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = None
        for line in self.proc.stderr:   # ready once it says so; the port is in the log
            found = re.search(r"client connections on 127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
            if "Server is ready" in line:
                break
        if port is None:
            self.stop()
            raise SystemExit("nats-server did not start")
        self.url = f"nats://127.0.0.1:{port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def nats_count(url: str) -> int:
    """Events in the stream of store ``url`` (a message may hold several: read as
    ``fastingest tail`` reads them)."""
    from fastingest.server.stores.nats import NATSStore, read_events

    async def count() -> int:
        n = 0
        async for _ in read_events(NATSStore.from_url(url)):
            n += 1
        return n

    return asyncio.run(count())


# -- the client ------------------------------------------------------------------------------

#: Stands for the per-request part of every ``dt`` in a request template; the client
#: fills in a time that grows with each request, as a live log stream's would.
STAMP = b"0000-00-00T00:00:00.000"
BASE_S = 1795435200   # 2026-11-23T08:00:00Z


def make_requests(n_events: int, variants: int = 16) -> List[bytes]:
    """A few different bodies of n_events typical log events, as full HTTP requests.
    Each event's ``dt`` is ``STAMP`` + its index in microseconds + ``Z``."""
    requests = []
    for v in range(variants):
        events = [{
            "dt": STAMP.decode() + f"{i % 1000:03d}Z",
            "level": ("info", "warn", "error")[i % 3],
            "message": f"GET /api/items/{v * 1000 + i} 200 in {i % 97}ms",
            "host": f"web-{i % 8}",
            "request_id": f"{v:04x}{i:08x}-5f1d-4c3a-9e7b",
            "user": {"id": 1000 + i, "plan": "pro" if i % 5 else "free"},
            "tags": ["http", "api"],
        } for i in range(n_events)]
        body = json.dumps(events, separators=(",", ":")).encode()
        requests.append(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return requests


class Clock:
    """One millisecond of event time per request, shared by all clients: event times
    grow through the run like those of a live stream (times that repeat or jump around
    cost SQLite's (source, time) index far more, and are not what shippers send)."""

    def __init__(self) -> None:
        self.ms = 0

    def stamp(self) -> bytes:
        self.ms += 1
        s, ms = divmod(self.ms, 1000)
        t = time.gmtime(BASE_S + s)
        return b"%04d-%02d-%02dT%02d:%02d:%02d.%03d" % (t.tm_year, t.tm_mon, t.tm_mday,
                                                        t.tm_hour, t.tm_min, t.tm_sec, ms)


# -- the same events in every protocol (--protocols) -------------------------------------------

PROTOCOL_OK = {"betterstack": b"HTTP/1.1 202", "otlp": b"HTTP/1.1 200",
               "elasticsearch": b"HTTP/1.1 200", "loki": b"HTTP/1.1 204", "splunk": b"HTTP/1.1 200"}


def _log_events(n: int, v: int) -> List[dict]:
    return [{"level": ("info", "warn", "error")[i % 3],
             "message": f"GET /api/items/{v * 1000 + i} 200 in {i % 97}ms",
             "host": f"web-{i % 8}", "request_id": f"{v:04x}{i:08x}-5f1d-4c3a-9e7b",
             "user_id": 1000 + i} for i in range(n)]


def _http(path: str, headers: List[Tuple[str, str]], body: bytes, method: str = "POST") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers) + f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def protocol_requests(protocol: str, n: int, variants: int = 64) -> List[bytes]:
    """``variants`` requests of n events each in ``protocol``'s wire format; template v's
    events are v milliseconds (plus their index in microseconds) after BASE_S."""
    import base64

    from fastingest.shipping import encode_field as _pb
    out = []
    for v in range(variants):
        events = _log_events(n, v)
        ns = [(BASE_S * 1000 + v) * 1_000_000 + i * 1000 for i in range(n)]
        if protocol == "betterstack":
            body = json.dumps([{**e, "dt": t} for e, t in zip(events, ns)],
                              separators=(",", ":")).encode()
            out.append(_http("/", [("Authorization", f"Bearer {TOKEN}"),
                                   ("Content-Type", "application/json")], body))
        elif protocol == "otlp":
            records = b"".join(_pb(2, _pb(1, t, 1) + _pb(11, t, 1) + _pb(2, 9 + i % 3 * 4, 0)
                                   + _pb(3, e["level"].upper()) + _pb(5, _pb(1, e["message"]))
                                   + _pb(6, _pb(1, "host") + _pb(2, _pb(1, e["host"])))
                                   + _pb(6, _pb(1, "request_id") + _pb(2, _pb(1, e["request_id"])))
                                   + _pb(6, _pb(1, "user_id") + _pb(2, _pb(3, e["user_id"], 0))))
                               for i, (e, t) in enumerate(zip(events, ns)))
            resource = _pb(1, _pb(1, _pb(1, "service.name") + _pb(2, _pb(1, "api"))))
            body = _pb(1, resource + _pb(2, _pb(1, _pb(1, "app")) + records))
            out.append(_http("/v1/logs", [("Authorization", f"Bearer {TOKEN}"),
                                          ("Content-Type", "application/x-protobuf")], body))
        elif protocol == "elasticsearch":
            lines = []
            for e, t in zip(events, ns):
                lines.append(b'{"create":{"_index":"logs"}}')
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9))
                lines.append(json.dumps({"@timestamp": f"{stamp}.{t % 10**9:09d}Z", **e},
                                        separators=(",", ":")).encode())
            body = b"\n".join(lines) + b"\n"
            auth = base64.b64encode(f"elastic:{TOKEN}".encode()).decode()
            out.append(_http("/_bulk", [("Authorization", f"Basic {auth}"),
                                        ("Content-Type", "application/x-ndjson")], body, "PUT"))
        elif protocol == "loki":
            import cramjam
            streams = {}
            for e, t in zip(events, ns):
                line = json.dumps({k: e[k] for k in ("message", "request_id", "user_id")},
                                  separators=(",", ":"))
                entry = _pb(1, _pb(1, t // 10**9, 0) + _pb(2, t % 10**9, 0)) + _pb(2, line)
                key = f'{{host="{e["host"]}", level="{e["level"]}"}}'
                streams.setdefault(key, []).append(_pb(2, entry))
            push = b"".join(_pb(1, _pb(1, k) + b"".join(es)) for k, es in streams.items())
            body = bytes(cramjam.snappy.compress_raw(push))
            auth = base64.b64encode(f"user:{TOKEN}".encode()).decode()
            headers = [("Authorization", f"Basic {auth}"),
                       ("Content-Type", "application/x-protobuf")]
            out.append(_http("/loki/api/v1/push", headers, body))
        elif protocol == "splunk":
            body = b"".join(json.dumps({"event": e, "host": e["host"], "sourcetype": "_json",
                                        "time": f"{t // 10**9}.{t % 10**9:09d}"},
                                       separators=(",", ":")).encode() for e, t in zip(events, ns))
            out.append(_http("/services/collector/event",
                             [("Authorization", f"Splunk {TOKEN}")], body))
        else:
            raise ValueError(protocol)
    return out


async def _client(port: int, requests: List[bytes], clock: Clock, stop_at: float,
                  measure_from: float, latencies: List[int], counts: List[int],
                  ok: bytes = b"HTTP/1.1 202") -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while True:
            start = time.perf_counter_ns()
            if start / 1e9 >= stop_at:
                return
            request = requests[i % len(requests)]
            writer.write(request.replace(STAMP, clock.stamp()) if STAMP in request else request)
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(ok):
                raise RuntimeError(f"unexpected answer: {head[:200]!r}")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if length and int(length.group(1)):
                await reader.readexactly(int(length.group(1)))
            end = time.perf_counter_ns()
            counts[0] += 1   # every acknowledged request, warm-up included (for the check)
            if start / 1e9 >= measure_from:
                latencies.append(end - start)
    finally:
        writer.close()


def process_cpu(pid: int, children: bool = True) -> Optional[float]:
    """CPU seconds (user + system, all threads) a process — and, with ``children``, its
    worker processes — used so far; None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        kids: List[int] = []
        if children:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = [int(c) for c in f.read().split()]
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu(c) or 0.0 for c in kids)


async def load(port: int, pid: int, requests: List[bytes], clients: int, warmup: float,
               duration: float, ok: bytes = b"HTTP/1.1 202", other_pids: Sequence[int] = ()
               ) -> Tuple[List[int], int, Optional[float], List[Optional[float]]]:
    """Run the clients; the measured latencies, every acknowledged request, the server's
    CPU seconds during the measured window, and those of ``other_pids`` (this client
    process, nats-server...)."""
    now = time.perf_counter()
    measure_from, stop_at = now + warmup, now + warmup + duration
    latencies: List[int] = []
    counts = [0]
    clock = Clock()

    others: List[Optional[float]] = []

    async def server_cpu() -> Optional[float]:
        await asyncio.sleep(warmup)   # a measurement point, not a synchronisation
        before = process_cpu(pid)
        # their own CPU only: this client's children are the servers it started
        others_before = [process_cpu(p, children=False) for p in other_pids]
        await asyncio.sleep(duration)
        after = process_cpu(pid)
        for p, b in zip(other_pids, others_before):
            a = process_cpu(p, children=False)
            others.append(None if a is None or b is None else a - b)
        return None if before is None or after is None else after - before

    cpu, *_ = await asyncio.gather(server_cpu(), *(
        _client(port, requests, clock, stop_at, measure_from, latencies, counts, ok)
        for _ in range(clients)))
    return latencies, counts[0], cpu, others


def run_one(kind: str, synchronous: str, args, tmp: str, n: int, store_kind: str = "sqlite",
            workers: int = 1, protocol: str = "betterstack") -> Dict[str, float]:
    db = os.path.join(tmp, f"{kind}-{synchronous}-{store_kind}-{workers}-{protocol}-{n}.db")
    store = stream = None
    if store_kind == "nats":   # a fresh stream per run, as SQLite gets a fresh file
        stream = f"LOAD_{workers}_{n}"
        store = f"{args.nats}?stream={stream}&prefix=load.w{workers}r{n}"
    elif kind == "fastingest" and args.sqlite_options:
        store = f"sqlite:{db}?synchronous={synchronous}&{args.sqlite_options}"
    server = ServerProcess(kind, db, synchronous, store, workers, stream, protocol)
    requests = args.requests if protocol == "betterstack" and not args.protocols \
        else args.protocol_requests[protocol]
    try:
        others = [os.getpid()]   # the client's own CPU, and nats-server's when started here
        if store_kind == "nats" and getattr(args, "nats_pid", None):
            others.append(args.nats_pid)
        latencies, acknowledged, cpu, other_cpu = asyncio.run(
            load(server.port, server.proc.pid, requests, args.clients, args.warmup,
                 args.duration, PROTOCOL_OK[protocol], others))
    finally:
        server.stop()
    stored = server.stored()
    expected = acknowledged * args.events
    if stored is not None and stored != expected:
        raise RuntimeError(f"{kind}: {stored} events stored, {expected} acknowledged")
    latencies.sort()
    n_req = len(latencies)
    duration = args.duration
    return {
        "events_per_s": n_req * args.events / duration,
        "requests_per_s": n_req / duration,
        "cpu_us_per_event": float("nan") if cpu is None else cpu / (n_req * args.events) * 1e6,
        "client_cpu_us_per_event": _per_event(other_cpu[0], n_req * args.events),
        "nats_cpu_us_per_event": _per_event(other_cpu[1] if len(other_cpu) > 1 else None,
                                            n_req * args.events),
        "p50_ms": latencies[n_req // 2] / 1e6,
        "p99_ms": latencies[min(n_req - 1, int(n_req * 0.99))] / 1e6,
        "stored": stored,
    }


def _per_event(seconds: Optional[float], events: int) -> float:
    return float("nan") if seconds is None or not events else seconds / events * 1e6


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_naive"]:
        naive_main(argv[1], argv[2])
        return 0
    if argv[:1] == ["_null"]:
        null_main()
        return 0
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=20, help="concurrent connections (20)")
    p.add_argument("--events", type=int, default=100, help="events per request (100)")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (1)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each server (2)")
    p.add_argument("--synchronous", choices=("full", "normal", "both"), default="both")
    p.add_argument("--scaleout", action="store_true",
                   help="fastingest only: each of --stores with each of --workers")
    p.add_argument("--stores", default="sqlite,nats", help="--scaleout: sqlite,nats")
    p.add_argument("--workers", default="1,2", help="--scaleout: worker counts (1,2)")
    p.add_argument("--sqlite-options", metavar="QUERY", default="",
                   help="extra sqlite: store options for fastingest, e.g. checkpoint_bytes=0")
    p.add_argument("--nats", metavar="URL",
                   help="--scaleout: an existing NATS server (default: start one)")
    p.add_argument("--protocols", action="store_true",
                   help="fastingest only: the same events through each protocol")
    p.add_argument("--protocols-list", default="betterstack,otlp,elasticsearch,loki,splunk",
                   help="--protocols: which ones")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 500 and 1 <= args.events <= 10000
            and 0 < args.duration <= 120 and 1 <= args.rounds <= 10):
        p.error("keep it bounded: clients 1-500, events 1-10000, duration <= 120 s, rounds 1-10")
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    args.requests = make_requests(args.events)
    body_size = len(args.requests[0].partition(b"\r\n\r\n")[2])
    if args.scaleout:
        return scaleout(args, body_size)
    if args.protocols:
        return protocols(args)
    modes = ("full", "normal") if args.synchronous == "both" else (args.synchronous,)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{args.clients} clients x {args.events} events/request ({body_size} B JSON), "
          f"{args.duration:g} s per run, best of {args.rounds}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="fastingest-load-") as tmp:
        for mode in modes:
            runs: Dict[str, List[Dict[str, float]]] = {"fastingest": [], "naive": []}
            for n in range(args.rounds):
                for kind in ("fastingest", "naive"):   # alternate: drift hits both alike
                    runs[kind].append(run_one(kind, mode, args, tmp, n))
            best = {k: max(v, key=lambda r: r["events_per_s"]) for k, v in runs.items()}
            results[mode] = {"best": best, "runs": runs}
            print(f"\nsynchronous={mode}")
            print("| server | events/s | requests/s | p50 ms | p99 ms | server CPU µs/event "
                  "| client CPU µs/event |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for kind in ("fastingest", "naive"):
                r = best[kind]
                print(f"| {kind} | {r['events_per_s']:,.0f} | {r['requests_per_s']:,.0f} | "
                      f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us_per_event']:.1f} | "
                      f"{r['client_cpu_us_per_event']:.1f} |")
            ratio = best["fastingest"]["events_per_s"] / best["naive"]["events_per_s"]
            rounds = {k: ", ".join(f"{r['events_per_s']:,.0f}" for r in v) for k, v in runs.items()}
            print(f"fastingest / naive: {ratio:.2f}x events/s "
                  f"(rounds: {rounds['fastingest']} vs {rounds['naive']})")
            results[mode]["ratio"] = ratio
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "requests"},
                       "results": results}, f, indent=2)
    return 0


def protocols(args) -> int:
    """fastingest serve with the same events in each protocol, alternating, best of rounds."""
    names = [n.strip() for n in args.protocols_list.split(",") if n.strip()]
    if not set(names) <= set(PROTOCOL_OK):
        raise SystemExit(f"--protocols-list: some of {', '.join(PROTOCOL_OK)}")
    args.protocol_requests = {n: protocol_requests(n, args.events) for n in names}
    synchronous = "full" if args.synchronous == "both" else args.synchronous
    body_sizes = {n: len(args.protocol_requests[n][0].partition(b"\r\n\r\n")[2]) for n in names}
    sizes = ", ".join(f"{n} {size:,} B" for n, size in body_sizes.items())
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{args.clients} clients x {args.events} events/request ({sizes}), "
          f"{args.duration:g} s per run, best of {args.rounds}; SQLite synchronous={synchronous}")
    runs: Dict[str, List[Dict[str, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="fastingest-load-") as tmp:
        for r in range(args.rounds):
            for name in names:   # alternate: drift hits all alike
                runs[name].append(run_one("fastingest", synchronous, args, tmp, r,
                                          protocol=name))
    best = {k: max(v, key=lambda x: x["events_per_s"]) for k, v in runs.items()}
    print("\n| protocol | events/s | requests/s | p50 ms | p99 ms | server CPU µs/event |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        x = best[name]
        print(f"| {name} | {x['events_per_s']:,.0f} | {x['requests_per_s']:,.0f} | "
              f"{x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['cpu_us_per_event']:.1f} |")
    for name, rs in runs.items():
        print(f"{name}: rounds " + ", ".join(f"{x['events_per_s']:,.0f}" for x in rs) + " events/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items()
                                if k not in ("requests", "protocol_requests")},
                       "results": {"best": best, "runs": runs}}, f, indent=2)
    return 0


def scaleout(args, body_size: int) -> int:
    """fastingest serve per store and worker count, alternating, best of --rounds."""
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    workers = [int(w) for w in args.workers.split(",")]
    if not set(stores) <= {"sqlite", "nats"} or not all(1 <= w <= 16 for w in workers):
        raise SystemExit("--stores: sqlite,nats; --workers: 1 to 16 each")
    synchronous = "full" if args.synchronous == "both" else args.synchronous
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"{args.clients} clients x {args.events} events/request ({body_size} B JSON), "
          f"{args.duration:g} s per run, best of {args.rounds}; SQLite synchronous={synchronous}")
    configs = [(s, w) for s in stores for w in workers]
    runs: Dict[str, List[Dict[str, float]]] = {f"{s} x{w}": [] for s, w in configs}
    nats_server = None
    with tempfile.TemporaryDirectory(prefix="fastingest-load-") as tmp:
        try:
            if "nats" in stores and not args.nats:
                nats_server = NatsServer(os.path.join(tmp, "nats"))
                args.nats = nats_server.url
                args.nats_pid = nats_server.proc.pid
            for n in range(args.rounds):
                for store_kind, w in configs:   # alternate: drift hits all alike
                    runs[f"{store_kind} x{w}"].append(
                        run_one("fastingest", synchronous, args, tmp, n, store_kind, w))
        finally:
            if nats_server is not None:
                nats_server.stop()
    best = {k: max(v, key=lambda r: r["events_per_s"]) for k, v in runs.items()}
    print("\n| store | workers | events/s | requests/s | p50 ms | p99 ms | server CPU µs/event "
          "| nats-server CPU µs/event | client CPU µs/event |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for store_kind, w in configs:
        r = best[f"{store_kind} x{w}"]
        name = f"SQLite (synchronous={synchronous})" if store_kind == "sqlite" else "NATS JetStream"
        nats_cpu = "" if store_kind == "sqlite" else f"{r['nats_cpu_us_per_event']:.1f}"
        print(f"| {name} | {w} | {r['events_per_s']:,.0f} | {r['requests_per_s']:,.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us_per_event']:.1f} | "
              f"{nats_cpu} | {r['client_cpu_us_per_event']:.1f} |")
    for key, rs in runs.items():
        rounds = ", ".join(f"{r['events_per_s']:,.0f}" for r in rs)
        print(f"{key}: rounds {rounds} events/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "requests"},
                       "results": {"best": best, "runs": runs}}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
