"""Deterministic request bodies for the codec benchmarks (compare.py, bench_codec.py).

Every body is generated from a seeded ``random.Random``: the same seed gives the same bytes on
every machine and Python version (no hash ordering, no time, no ``os.urandom``). An event is a
realistic log line of about 300 bytes of JSON::

    {"dt": "2026-03-14T09:26:53.589793+05:30", "level": "info",
     "message": "Zahlung für Bestellung 48213 bestätigt", "service": "checkout",
     "host": "web-07",
     "context": {"request": {"id": "9f1c2a…", "method": "POST", "path": "/api/v2/orders/48213",
                             "status": 201, "duration_ms": 12.418},
                 "user": {"id": 730211, "locale": "de-DE"}},
     "tags": ["payments", "eu"], "ok": true}

``dt`` comes in three forms:

* ``rfc3339``: a string with 6 or 9 fraction digits and one of several offsets (``Z``,
  ``+00:00``, ``+02:00``, ``-05:00``, ``+05:30``, ``-08:00``), ``T`` as the separator;
* ``epoch_ms``: an int, milliseconds since the epoch;
* ``timestamp``: a ``msgpack.Timestamp`` (MessagePack ext -1; MessagePack bodies only).

Sizes: ``1`` event (JSON: one object, not an array; MessagePack: one map; NDJSON: one line),
``100`` events, and ``10MiB`` — the same events in every format, as many as make the NDJSON
body reach 10 MiB (the array and MessagePack bodies hold the same events, so events/s compare
across formats; MessagePack is ~20% smaller). Formats: ``ndjson``, ``json`` (array),
``msgpack``; ``gzip`` of any of them (level 6, mtime 0, so the bytes are reproducible).

    python benchmarks/payloads.py          # prints the size table of every payload
"""
from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Dict, List, Optional

import msgpack
import orjson

SEED = 20261123
MiB = 1024 * 1024
BIG = 10 * MiB

FORMATS = ("ndjson", "json", "msgpack")
DT_FORMS = ("rfc3339", "epoch_ms", "timestamp")
SIZES = ("1", "100", "10MiB")
ENCODINGS = (None, "gzip")

CONTENT_TYPES = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "msgpack": "application/msgpack",
}

# 2026-01-01 .. 2026-12-31, so every dt is a plausible "recent" time.
_T0 = 1767225600
_SPAN = 365 * 86400
_OFFSETS = [(0, "Z"), (0, "Z"), (0, "Z"), (0, "+00:00"), (120, "+02:00"), (-300, "-05:00"),
            (330, "+05:30"), (-480, "-08:00")]

_LEVELS = ["info", "info", "info", "info", "debug", "warn", "error"]
_SERVICES = ["checkout", "search", "auth", "billing", "inventory", "notifications", "gateway"]
_METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
_LOCALES = ["de-DE", "fr-FR", "ja-JP", "pt-BR", "en-US", "ru-RU", "en-GB"]
_TAGS = ["payments", "eu", "us", "beta", "canary", "mobile", "web", "batch", "retry", "slow"]
_RESOURCES = ["orders", "users", "carts", "invoices", "products", "sessions"]
# Messages in several scripts: JSON strings with 2-, 3- and 4-byte UTF-8 sequences.
_MESSAGES = [
    "Zahlung für Bestellung {n} bestätigt",
    "Commande {n} expédiée à Genève",
    "注文 {n} を処理しました",
    "Pedido {n} não encontrado no catálogo",
    "Ошибка соединения с базой данных (попытка {n})",
    "cache miss for key user:{n} ✓ refilled",
    "user {n} signed in 😀 via SSO",
    "request {n} completed in time",
    "GET /healthz {n} ok",
    "slow query ({n} ms) on table “orders”",
]


@dataclass(frozen=True)
class Payload:
    """One request body and what a decoder needs to know about it."""

    name: str                 # e.g. "ndjson.gz/rfc3339/10MiB"
    fmt: str                  # "ndjson" | "json" | "msgpack"
    dt: str                   # "rfc3339" | "epoch_ms" | "timestamp"
    size: str                 # "1" | "100" | "10MiB"
    encoding: Optional[str]   # None | "gzip"
    body: bytes               # what arrives on the wire (compressed when encoding)
    raw_size: int             # decompressed size in bytes
    n_events: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


def payload_name(fmt: str, dt: str, size: str, encoding: Optional[str] = None) -> str:
    return f"{fmt}{'.gz' if encoding == 'gzip' else ''}/{dt}/{size}"


def _rfc3339(rnd: random.Random, ns: int) -> str:
    secs, frac = divmod(ns, 10**9)
    minutes, suffix = rnd.choice(_OFFSETS)
    d = datetime.fromtimestamp(secs, timezone(timedelta(minutes=minutes)))
    digits = rnd.choice((6, 9))
    return f"{d:%Y-%m-%dT%H:%M:%S}.{frac:09d}"[: 20 + digits] + suffix


def _event(rnd: random.Random, ns: int) -> Dict[str, Any]:
    n = rnd.randrange(1000, 1_000_000)
    resource = rnd.choice(_RESOURCES)
    return {
        "dt": ns,  # replaced by the chosen dt form in make_events
        "level": rnd.choice(_LEVELS),
        "message": rnd.choice(_MESSAGES).format(n=n),
        "service": rnd.choice(_SERVICES),
        "host": f"web-{rnd.randrange(1, 40):02d}",
        "context": {
            "request": {
                "id": f"{rnd.getrandbits(64):016x}",
                "method": rnd.choice(_METHODS),
                "path": f"/api/v2/{resource}/{n}",
                "status": rnd.choice((200, 200, 200, 201, 204, 304, 404, 500)),
                "duration_ms": round(rnd.lognormvariate(2.5, 1.0), 3),
            },
            "user": {"id": rnd.randrange(1, 2_000_000), "locale": rnd.choice(_LOCALES)},
        },
        "tags": rnd.sample(_TAGS, rnd.randrange(1, 4)),
        "ok": rnd.random() < 0.9,
    }


def _with_dt(events: List[Dict[str, Any]], dt: str, seed: int) -> List[Dict[str, Any]]:
    """Copies of ``events`` whose ``dt`` (int ns) is replaced by the ``dt`` form."""
    rnd = random.Random(seed + 1)  # the dt forms draw from their own stream
    out = []
    for e in events:
        ns = e["dt"]
        if dt == "rfc3339":
            value: Any = _rfc3339(rnd, ns)
        elif dt == "epoch_ms":
            value = ns // 1_000_000
        elif dt == "timestamp":
            value = msgpack.Timestamp.from_unix_nano(ns)
        else:
            raise ValueError(f"unknown dt form {dt!r}")
        copy = dict(e)
        copy["dt"] = value
        out.append(copy)
    return out


@lru_cache(maxsize=None)
def _base_events(n: Optional[int], seed: int) -> tuple:
    """``n`` events (or, with ``n=None``, as many as fill a 10 MiB NDJSON body with
    rfc3339 dt), ``dt`` still an int ns. Sorted by time, as a client's batch would be."""
    rnd = random.Random(seed)
    events = []
    if n is not None:
        for _ in range(n):
            events.append(_event(rnd, (_T0 + rnd.randrange(_SPAN)) * 10**9 + rnd.randrange(10**9)))
    else:
        # Grow until the rfc3339 NDJSON encoding passes BIG; measured on the final form so
        # the size is exact for the reference body.
        rnd_dt = random.Random(seed + 1)
        total = 0
        while total < BIG:
            e = _event(rnd, (_T0 + rnd.randrange(_SPAN)) * 10**9 + rnd.randrange(10**9))
            probe = dict(e)
            probe["dt"] = _rfc3339(rnd_dt, e["dt"])
            total += len(orjson.dumps(probe)) + 1
            events.append(e)
    return tuple(events)


def n_for(size: str) -> Optional[int]:
    return {"1": 1, "100": 100, "10MiB": None}[size]


def make_events(size: str, dt: str, seed: int = SEED) -> List[Dict[str, Any]]:
    """The events of a payload as Python objects (``dt`` in the requested form)."""
    return _with_dt(list(_base_events(n_for(size), seed)), dt, seed)


def encode(events: List[Dict[str, Any]], fmt: str, single: bool = False) -> bytes:
    """``events`` in ``fmt``; ``single`` (one event) sends the bare object/map for json and
    msgpack, as single-event clients do."""
    if fmt == "ndjson":
        return b"".join(orjson.dumps(e) + b"\n" for e in events)
    if fmt == "json":
        return orjson.dumps(events[0] if single else events)
    if fmt == "msgpack":
        return msgpack.packb(events[0] if single else events, use_bin_type=True)
    raise ValueError(f"unknown format {fmt!r}")


@lru_cache(maxsize=None)
def payload(fmt: str, dt: str, size: str, encoding: Optional[str] = None,
            seed: int = SEED) -> Payload:
    """The payload named by its parts (cached: the 10 MiB ones take a second to build)."""
    if dt == "timestamp" and fmt != "msgpack":
        raise ValueError("the msgpack Timestamp dt form exists only in MessagePack bodies")
    events = make_events(size, dt, seed)
    raw = encode(events, fmt, single=(size == "1"))
    body = gzip.compress(raw, compresslevel=6, mtime=0) if encoding == "gzip" else raw
    return Payload(payload_name(fmt, dt, size, encoding), fmt, dt, size, encoding, body,
                   len(raw), len(events))


def stub(name: str) -> Payload:
    """The description of a payload (format, dt, size, encoding) without building its body."""
    fmt_enc, dt, size = name.split("/")
    fmt, _, enc = fmt_enc.partition(".")
    return Payload(name, fmt, dt, size, "gzip" if enc == "gz" else None, b"", 0, 0)


def parse_name(name: str) -> Payload:
    """``payload(...)`` from a name such as ``"msgpack.gz/timestamp/100"``."""
    fmt_enc, dt, size = name.split("/")
    fmt, _, enc = fmt_enc.partition(".")
    return payload(fmt, dt, size, "gzip" if enc == "gz" else None)


def main() -> None:
    print("| payload | events | body bytes | decompressed | bytes/event |")
    print("|---|---:|---:|---:|---:|")
    for fmt in FORMATS:
        for dt in DT_FORMS:
            if dt == "timestamp" and fmt != "msgpack":
                continue
            for size in SIZES:
                for enc in ENCODINGS:
                    p = payload(fmt, dt, size, enc)
                    print(f"| {p.name} | {p.n_events} | {len(p.body)} | {p.raw_size} | "
                          f"{p.raw_size / p.n_events:.0f} |")


if __name__ == "__main__":
    main()
