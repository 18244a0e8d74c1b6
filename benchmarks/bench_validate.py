"""Throughput of the grammar validators on realistic log events; run explicitly:

    python benchmarks/bench_validate.py [--events N] [--repeat R]

Events are ~300-byte JSON objects / MessagePack maps (mostly ASCII text, some non-ASCII,
a nested context object, a tag list, numbers).  ``per-event`` calls the validator once per
event the way ``split()`` does (start/end into one body); ``one-call`` validates one object
holding all events, i.e. the kernel without the per-call overhead.  Reports MB/s of the
minimum over R repeats (the machine is noisy), with orjson.loads / msgpack.unpackb on the
same events for scale.
"""
from __future__ import annotations

import argparse
import random
import time

import msgpack
import orjson

from fastingest import validate as py_validate

try:
    from fastingest import _validate as cy_validate
except ImportError:  # pure-Python install
    cy_validate = None

WORDS = ["request", "completed", "user", "login", "failed", "timeout", "cache", "miss", "GET",
         "POST", "/api/v1/items", "status", "retry", "connection", "reset", "by", "peer",
         "Zürich", "café", "naïve", "東京", "ошибка", "🚀", "ok"]


def make_event(rnd: random.Random, i: int) -> dict:
    msg = " ".join(rnd.choice(WORDS[:17]) for _ in range(rnd.randrange(6, 14)))
    if rnd.random() < 0.3:
        msg += " " + rnd.choice(WORDS[17:])
    return {
        "dt": f"2024-05-{1 + i % 28:02d}T12:{i % 60:02d}:{(i * 7) % 60:02d}.{rnd.randrange(10**6):06d}Z",
        "level": rnd.choice(["info", "warn", "error", "debug"]),
        "message": msg,
        "service": "checkout-api",
        "host": f"web-{rnd.randrange(100):02d}.eu-central-1",
        "duration_ms": round(rnd.random() * 1000, 3),
        "status": rnd.choice([200, 201, 204, 400, 404, 500]),
        "bytes": rnd.randrange(10**7),
        "tags": rnd.sample(["prod", "eu", "k8s", "canary", "v2", "beta"], 3),
        "context": {"user": {"id": rnd.randrange(10**9), "name": rnd.choice(["Ana", "Jörg", "李"])},
                    "request_id": f"{rnd.getrandbits(64):016x}", "retry": rnd.random() < 0.1},
    }


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    rnd = random.Random(42)
    events = [make_event(rnd, i) for i in range(args.events)]

    jparts = [orjson.dumps(e) for e in events]
    jbody = b"\n".join(jparts) + b"\n"
    joffs = []
    pos = 0
    for p in jparts:
        joffs.append((pos, pos + len(p)))
        pos += len(p) + 1
    jone = b'{"events":[' + b",".join(jparts) + b"]}"

    mparts = [msgpack.packb(e) for e in events]
    mbody = b"".join(mparts)
    moffs = []
    pos = 0
    for p in mparts:
        moffs.append((pos, pos + len(p)))
        pos += len(p)
    mone = msgpack.packb({"events": events})

    print(f"{args.events} events, JSON {len(jbody) / args.events:.0f} B/event, "
          f"MessagePack {len(mbody) / args.events:.0f} B/event; min of {args.repeat} runs\n")
    mb_json = sum(b - a for a, b in joffs) / 1e6
    mb_mp = len(mbody) / 1e6

    def report(name, fn, mb, repeat=args.repeat):
        t = best(fn, repeat)
        print(f"  {name:<38} {mb / t:9.1f} MB/s   {t / args.events * 1e9:8.0f} ns/event")

    for label, mod in (("cython", cy_validate), ("python", py_validate)):
        if mod is None:
            continue
        rep = args.repeat if label == "cython" else max(3, args.repeat // 5)
        sj, sm = mod.scan_json_object, mod.scan_msgpack_map
        n = len(jbody)

        def json_per_event(sj=sj):
            for a, b in joffs:
                sj(jbody, a, b, 128)

        def json_one(sj=sj):
            sj(jone, 0, len(jone), 128)

        def mp_per_event(sm=sm):
            for a, b in moffs:
                sm(mbody, a, b, 128)

        def mp_one(sm=sm):
            sm(mone, 0, len(mone), 128)

        print(f"{label}:")
        report("scan_json_object per-event", json_per_event, mb_json, rep)
        report("scan_json_object one-call", json_one, len(jone) / 1e6, rep)
        report("scan_msgpack_map per-event", mp_per_event, mb_mp, rep)
        report("scan_msgpack_map one-call", mp_one, len(mone) / 1e6, rep)
        del n

    print("for scale:")
    report("orjson.loads per-event", lambda: [orjson.loads(p) for p in jparts], mb_json)
    report("msgpack.unpackb per-event", lambda: [msgpack.unpackb(p) for p in mparts], mb_mp)
    report("bytes.count(b'\\n') whole body", lambda: jbody.count(b"\n"), len(jbody) / 1e6)


if __name__ == "__main__":
    main()
