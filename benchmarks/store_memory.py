"""Peak memory of one big store transaction: does it grow with the event count?

The server hands a store bounded batches (one piece of decompressed body each, handled
before the next is decoded), so what a request costs beyond its batch is the store's own
doing. This script feeds one transaction ``--events`` tiny events (``{"a":1}``, the worst
case: the most rows per byte of body) in batches of ``--batch`` (the events of one 256 KiB
piece of NDJSON body), commits, checks the count stored, and reports:

* ``tracemalloc peak``: Python allocations during the transaction (the batch excluded: it
  is built once, before, and reused);
* ``VmHWM growth``: the process's peak resident set during the transaction above its peak
  before (includes SQLite's and the OS's buffers), from a second, untraced run.

Each measurement runs in a fresh process. NATS: a nats-server started in a temp dir on a
free loopback port (``--nats URL`` to use another), one fresh stream per run.

    python benchmarks/store_memory.py                          # both stores, 2.6 M events
    python benchmarks/store_memory.py --stores sqlite --events 260000

Bounded: a few runs of one transaction each; loopback only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Dict, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vm_hwm() -> int:
    """This process's peak resident set (bytes)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def transaction(store_url: str, events: int, batch: int, traced: bool) -> Dict[str, float]:
    """One transaction of ``events`` events into a fresh store; the figures."""
    import tracemalloc

    from fastingest.server.stores import store_from_url
    store = store_from_url(store_url)
    await store.open()
    one = [{"a": 1} for _ in range(batch)]
    times = [1_700_000_000_000_000_000 + i for i in range(batch)]
    # Warm up (statement cache, connection buffers) outside the measurement.
    tx = store.begin("warm-up")
    await tx.add("bench", one[:10], times[:10], 0)
    await tx.commit()
    hwm_before = vm_hwm()
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    tx = store.begin(uuid.uuid4().hex)
    left = events
    while left:
        n = min(batch, left)
        await tx.add("bench", one[:n] if n < batch else one, times[:n] if n < batch else times,
                     1_700_000_000_000_000_000)
        left -= n
    await tx.commit()
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    hwm_after = vm_hwm()
    await store.close()
    return {"seconds": elapsed, "tracemalloc_peak": peak,
            "hwm_growth": max(0, hwm_after - hwm_before), "hwm": hwm_after}


def count_stored(store_url: str, kind: str) -> int:
    if kind == "sqlite":
        import sqlite3
        path = store_url.partition(":")[2].partition("?")[0]
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0] - 10   # warm-up

    async def info() -> int:
        import nats
        url, _, query = store_url.partition("?")
        stream = dict(p.split("=") for p in query.split("&"))["stream"]
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages - 10   # warm-up
        finally:
            await nc.close()
    return asyncio.run(info())


def child(argv: list) -> None:
    """``store_memory.py _child URL EVENTS BATCH TRACED``: one measurement, JSON on stdout."""
    url, events, batch, traced = argv[0], int(argv[1]), int(argv[2]), argv[3] == "1"
    print(json.dumps(asyncio.run(transaction(url, events, batch, traced))))


def measure(url: str, kind: str, events: int, batch: int, traced: bool) -> Dict[str, float]:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, __file__, "_child", url, str(events), str(batch),
                          "1" if traced else "0"], env=env, capture_output=True,
                         text=True, timeout=1800)
    if out.returncode:
        sys.exit(f"{kind} run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    stored = count_stored(url, kind)
    assert stored == events, f"{kind}: {stored} of {events} events stored"
    return result


def start_nats(tmp: str) -> "tuple[subprocess.Popen[str], str]":
    import socket
    binary = shutil.which("nats-server", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if binary is None:
        sys.exit("nats-server not found (apt-get install nats-server), or pass --nats URL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Server is ready" in line:
            break
    else:
        sys.exit("nats-server did not start")
    return proc, f"nats://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,nats")
    parser.add_argument("--events", type=int, default=2_600_000)
    parser.add_argument("--batch", type=int, default=32768,
                        help="events per add() (256 KiB of 8-byte NDJSON lines)")
    parser.add_argument("--nats", help="a running nats-server with JetStream")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="store-memory-")
    nats_proc: Optional[subprocess.Popen[str]] = None
    nats_url = args.nats
    try:
        print(f"{args.events:,} events of {{\"a\":1}} in batches of {args.batch:,}")
        print("| store | events | tracemalloc peak | VmHWM growth | seconds (untraced) |")
        print("|---|---:|---:|---:|---:|")
        for kind in args.stores.split(","):
            rows = []
            for traced in (True, False):
                if kind == "sqlite":
                    url = f"sqlite:{tmp}/{uuid.uuid4().hex}.db"
                else:
                    if nats_url is None:
                        nats_proc, nats_url = start_nats(os.path.join(tmp, "nats"))
                    name = uuid.uuid4().hex[:12]
                    url = f"{nats_url}?stream=M{name}&prefix=m{name}"
                rows.append(measure(url, kind, args.events, args.batch, traced))
            traced_run, plain = rows
            print(f"| {kind} | {args.events:,} | {traced_run['tracemalloc_peak'] / 2**20:.1f} MiB "
                  f"| {plain['hwm_growth'] / 2**20:.1f} MiB | {plain['seconds']:.1f} |", flush=True)
    finally:
        if nats_proc is not None:
            nats_proc.terminate()
            nats_proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2:])
    else:
        main()
