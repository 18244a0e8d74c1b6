"""Hostile load against `fastingest serve` on loopback: memory and latency under attack.

Five attacks, each against a fresh server process (its peak RSS, VmHWM, is per attack):

* **gzip**: N concurrent requests, each ~30 KB of gzip inflating to 20 MiB of
  ``{"a":1}`` lines (2,621,440 events: within every limit, so they are stored), for each N
  of ``--concurrency``; meanwhile small requests (at least 20), one every ``--small-every`` s,
  whose latency is reported. Peak RSS must stay bounded, and not grow with N beyond the
  in-flight budget (``--max-inflight``; the requests over it get 503).
* **msgpack**: one uncompressed 10 MiB MessagePack array of 10,485,755 empty maps.
* **slowloris**: the server limited to 1,024 open files (soft and hard); 1,500
  connections that send a request head one byte every second, reconnecting when
  closed, while a normal client keeps trying (fresh connection, 30 s timeout, retrying a
  refusal at once); the time until it is first served.
* **samsara** (unauthenticated): ``POST /v1/events`` with 8 MiB of ``[{},{},...]``
  (2,796,201 invalid events): the 400 answer's size (it was one verdict per event).
* **headers** (unauthenticated): 64 requests, each with a distinct 4 MB
  ``Content-Encoding: identity,...`` header (kept by a parse cache, and httptools takes
  heads of any size): each must get 431 without the server's memory growing.

After each attack every event acknowledged with 202 is counted in the store (SQLite, or
a NATS JetStream stream with ``--store nats``): nothing acknowledged may be missing.

    python benchmarks/hostile.py                           # all attacks, SQLite, ~4 min
    python benchmarks/hostile.py --attack gzip --concurrency 1,4,8 --store nats

Bounded: loopback only; each attack stops after its requests or ``--slowloris-seconds``.
"""
from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from load import NatsServer, nats_count  # noqa: E402

TOKEN = "hostile-token"
MiB = 1 << 20
TINY = b'{"a":1}\n'


def gzip_tiny_events(mib: int = 20) -> bytes:
    """``mib`` MiB of ``{"a":1}`` lines, gzip'd (valid trailer), built block by block."""
    block = TINY * (MiB // len(TINY))
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = (c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)) * mib + c.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflated + crc.to_bytes(4, "little")
            + (mib * MiB % (1 << 32)).to_bytes(4, "little"))


def msgpack_empty_maps(size: int = 10 * MiB) -> Tuple[bytes, int]:
    """A MessagePack array32 of empty maps, ``size`` bytes in all; and the map count."""
    n = size - 5
    return b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n, n


class Server:
    """``fastingest serve`` in a process of its own; ``nofile`` caps its open files."""

    def __init__(self, tmp: str, store: str, args: Sequence[str] = (),
                 nofile: Optional[int] = None) -> None:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.store = store
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastingest", "serve", "--port", "0", "--token",
             f"app={TOKEN}", "--store", store, "--log-level", "warning", *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=tmp,
            preexec_fn=limit)
        deadline = time.monotonic() + 30
        while True:
            line = self.proc.stdout.readline()   # type: ignore[union-attr]
            found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                break
            if not line or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start")

    def status(self, field: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(field)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post(port: int, body: bytes, content_type: str, encoding: Optional[str] = None,
         timeout: float = 300) -> Tuple[int, float]:
    """One request on a fresh connection: (status, seconds); status 0 when it failed."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    status, _, took = request(port, "/", headers, body, timeout)
    return status, took


def request(port: int, path: str, headers: Dict[str, str], body: bytes,
            timeout: float = 300) -> Tuple[int, bytes, float]:
    """One POST on a fresh connection: (status, answer, seconds); status 0 when it failed."""
    started = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        conn.close()
        return response.status, answer, time.monotonic() - started
    except (OSError, http.client.HTTPException):
        return 0, b"", time.monotonic() - started


class Small:
    """Small requests, one every ``every`` s, in a thread, from now until :meth:`join`
    (and at least ``count`` of them): their statuses and latencies."""

    def __init__(self, port: int, count: int = 20, every: float = 0.5) -> None:
        self.results: List[Tuple[int, float]] = []
        self.port, self.count, self.every = port, count, every
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while i < self.count or not self._done.is_set():
            self.results.append(post(self.port, b'{"small":%d}\n' % i, "application/x-ndjson",
                                     timeout=60))
            i += 1
            time.sleep(self.every)

    def join(self) -> None:
        """Stop once ``count`` were sent; wait for the last one."""
        self._done.set()
        self.thread.join()

    def worst(self) -> float:
        return max(t for _, t in self.results)

    def summary(self) -> str:
        lat = sorted(t for _, t in self.results)
        ok = sum(s == 202 for s, _ in self.results)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (f"small requests: {ok}/{len(lat)} answered 202, latency p50 "
                f"{lat[len(lat) // 2] * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, "
                f"max {lat[-1] * 1e3:.0f} ms")


def stored(server: Server, tmp: str, stream: Optional[str]) -> int:
    if stream is not None:
        return nats_count(server.store)
    with sqlite3.connect(os.path.join(tmp, "events.db")) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def fresh_store(args: argparse.Namespace, tmp: str, name: str) -> Tuple[str, Optional[str]]:
    if args.nats_url:
        stream = f"HOSTILE_{name.upper()}_{os.getpid()}"
        return f"{args.nats_url}?stream={stream}&prefix=hostile{name}{os.getpid()}", stream
    path = os.path.join(tmp, "events.db")
    for suffix in ("", "-wal", "-shm", "-lock"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return f"sqlite:{path}?synchronous={args.synchronous}", None


# -- the attacks -------------------------------------------------------------------------------

def attack_gzip(args: argparse.Namespace, tmp: str) -> bool:
    body = gzip_tiny_events()
    events = 20 * MiB // len(TINY)
    print(f"\n## gzip: {len(body):,} bytes each, inflating to 20 MiB = {events:,} events "
          f"(--max-inflight {args.max_inflight})")
    ok = True
    for n in args.concurrency:
        store, stream = fresh_store(args, tmp, f"gzip{n}")
        server = Server(tmp, store, ["--max-inflight", str(args.max_inflight),
                                     "--piece-size", args.piece_size])
        try:
            post(server.port, b'{"warm":1}\n', "application/x-ndjson")
            base = server.status("VmRSS")
            results: List[Tuple[int, float]] = []
            threads = [threading.Thread(target=lambda: results.append(
                post(server.port, body, "application/x-ndjson", "gzip"))) for _ in range(n)]
            started = time.monotonic()
            for t in threads:
                t.start()
            small = Small(server.port, every=args.small_every)
            for t in threads:
                t.join()
            small.join()
            took = time.monotonic() - started
            peak = server.status("VmHWM")
            acked = sum(s == 202 for s, _ in results) * events + 1 + \
                sum(s == 202 for s, _ in small.results)
            have = stored(server, tmp, stream)
        finally:
            server.stop()
        statuses: Dict[int, int] = {}
        for s, _ in results:
            statuses[s] = statuses.get(s, 0) + 1
        worst = small.worst()
        good = peak < 512 * MiB and have >= acked
        if n < args.max_inflight:   # else the budget is full: small requests get 503 too
            good = good and worst < 2 and all(s == 202 for s, _ in small.results)
        ok &= good
        print(f"N={n}: statuses {statuses} in {took:.1f} s; peak RSS {peak / MiB:.0f} MiB "
              f"(idle {base / MiB:.0f} MiB); {small.summary()}; stored {have:,} of "
              f"{acked:,} acknowledged — {'ok' if good else 'GOAL MISSED'}")
    return ok


def attack_msgpack(args: argparse.Namespace, tmp: str) -> bool:
    body, n = msgpack_empty_maps()
    print(f"\n## msgpack: {len(body) / MiB:.0f} MiB array of {n:,} empty maps, uncompressed")
    store, stream = fresh_store(args, tmp, "msgpack")
    server = Server(tmp, store)
    try:
        post(server.port, b'{"warm":1}\n', "application/x-ndjson")
        base = server.status("VmRSS")
        small = Small(server.port, every=args.small_every)
        status, took = post(server.port, body, "application/msgpack")
        small.join()
        peak = server.status("VmHWM")
        acked = (n if status == 202 else 0) + 1 + sum(s == 202 for s, _ in small.results)
        have = stored(server, tmp, stream)
    finally:
        server.stop()
    worst = small.worst()
    good = status == 202 and peak < 512 * MiB and have >= acked and worst < 2
    print(f"status {status} in {took:.1f} s; peak RSS {peak / MiB:.0f} MiB (idle "
          f"{base / MiB:.0f} MiB); {small.summary()}; stored {have:,} of {acked:,} "
          f"acknowledged — {'ok' if good else 'GOAL MISSED'}")
    return good


def attack_slowloris(args: argparse.Namespace, tmp: str) -> bool:
    conns = args.slowloris_connections
    print(f"\n## slowloris: {conns} connections trickling request heads, server limited to "
          f"1,024 open files, {args.slowloris_seconds:g} s")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < conns + 100:   # this client holds the attacking connections itself
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, conns + 512), hard))
    store, stream = fresh_store(args, tmp, "slowloris")
    server = Server(tmp, store, nofile=1024)
    stop = threading.Event()
    opened = [0]

    def attacker(share: int) -> None:
        socks: List[Optional[socket.socket]] = [None] * share
        while not stop.is_set():
            for i in range(share):
                sock = socks[i]
                try:
                    if sock is None:
                        sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
                        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
                        opened[0] += 1
                        socks[i] = sock
                    else:
                        sock.sendall(b"X")
                except OSError:
                    if sock is not None:
                        sock.close()
                    socks[i] = None
            stop.wait(1.0)
        for sock in socks:
            if sock is not None:
                sock.close()

    threads = [threading.Thread(target=attacker, args=(conns // 10,), daemon=True)
               for _ in range(10)]
    try:
        for t in threads:
            t.start()
        time.sleep(3)   # the attack is in place
        started = time.monotonic()
        served_after = None
        tries = 0
        while time.monotonic() - started < args.slowloris_seconds:
            tries += 1
            status, _ = post(server.port, b'{"normal":1}\n', "application/x-ndjson", timeout=30)
            if status == 202:
                served_after = time.monotonic() - started
                break
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        have = stored(server, tmp, stream)
    finally:
        stop.set()
        server.stop()
    good = served_after is not None and served_after < 30 and have >= 1
    when = f"{served_after:.1f} s" if served_after is not None else "never"
    print(f"attacking connections opened: {opened[0]:,}; normal client served after {when} "
          f"({tries} tries); stored {have} of 1 acknowledged — {'ok' if good else 'GOAL MISSED'}")
    return good


def attack_samsara(args: argparse.Namespace, tmp: str) -> bool:
    n = (8 * MiB - 2) // 3
    body = b"[" + b"{}," * (n - 1) + b"{}]"
    print(f"\n## samsara: 8 MiB of [{{}},{{}},...] = {n:,} invalid events, unauthenticated")
    store, _ = fresh_store(args, tmp, "samsara")
    server = Server(tmp, store)
    try:
        base = server.status("VmRSS")
        status, answer, took = request(server.port, "/v1/events",
                                       {"Content-Type": "application/json"}, body)
        peak = server.status("VmHWM")
    finally:
        server.stop()
    good = status == 400 and len(answer) < 128 * 1024 and peak < 256 * MiB
    print(f"status {status}, answer {len(answer):,} bytes in {took:.1f} s; peak RSS "
          f"{peak / MiB:.0f} MiB (idle {base / MiB:.0f} MiB) — {'ok' if good else 'GOAL MISSED'}")
    return good


def attack_headers(args: argparse.Namespace, tmp: str) -> bool:
    print("\n## headers: 64 requests with a distinct 4 MB Content-Encoding header each")
    store, _ = fresh_store(args, tmp, "headers")
    server = Server(tmp, store)
    statuses: Dict[int, int] = {}
    try:
        base = server.status("VmRSS")
        for i in range(64):
            value = f"identity{i}," + "identity," * (4 * MiB // 9)
            status, _, _ = request(server.port, "/", {
                "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                "Content-Encoding": value}, b"{}")
            statuses[status] = statuses.get(status, 0) + 1
        peak = server.status("VmHWM")
    finally:
        server.stop()
    good = statuses == {431: 64} and peak - base < 32 * MiB
    print(f"statuses {statuses}; peak RSS {peak / MiB:.0f} MiB (idle {base / MiB:.0f} MiB) "
          f"— {'ok' if good else 'GOAL MISSED'}")
    return good


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attack", default="gzip,msgpack,slowloris,samsara,headers")
    parser.add_argument("--concurrency", default="1,2,4,8",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--max-inflight", type=int, default=64)
    parser.add_argument("--piece-size", default="64KiB",
                        help="the server's --piece-size in the gzip attack (64KiB)")
    parser.add_argument("--small-every", type=float, default=0.5)
    parser.add_argument("--slowloris-connections", type=int, default=1500)
    parser.add_argument("--slowloris-seconds", type=float, default=60)
    parser.add_argument("--synchronous", default="normal")
    parser.add_argument("--store", choices=("sqlite", "nats"), default="sqlite")
    parser.add_argument("--nats", dest="nats_url", default=None,
                        help="a running nats-server (default: one started in a temp dir)")
    args = parser.parse_args(argv)
    print(f"# hostile.py {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, store {args.store}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="fastingest-hostile-") as tmp:
        nats = None
        if args.store == "nats" and args.nats_url is None:
            nats = NatsServer(os.path.join(tmp, "nats"))
            args.nats_url = nats.url
        try:
            for attack in args.attack.split(","):
                ok &= {"gzip": attack_gzip, "msgpack": attack_msgpack,
                       "slowloris": attack_slowloris, "samsara": attack_samsara,
                       "headers": attack_headers}[attack](args, tmp)
        finally:
            if nats is not None:
                nats.stop()
    print("\nall goals met" if ok else "\nsome goals missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
