"""The SQLite store's insert path, variant by variant: CPU per row.

What one group commit of the SQLite store's writer does, at the SQL level: insert the
rows of the requests queued meanwhile (``--group`` rows, 20 requests of 100 events by
default) into ``events`` with its ``(source, time_ns)`` index, and commit; and the copy
of a spilled request's staging table into ``events`` (``--move``). Each variant gets a
fresh file (WAL, ``--synchronous``), the same rows (log events like benchmarks/load.py's,
event times increasing as a live stream's do), and is timed in process CPU time,
variants alternating, best of ``--repeats``.

    python benchmarks/sqlite_insert.py                  # ~1 min
    python benchmarks/sqlite_insert.py --rows 400000 --group 2000 --repeats 5
    python benchmarks/sqlite_insert.py --group-commit --repeats 5   # round 2, ~30 s

``--group-commit`` compares the store's own insert path (``sqlite._run`` and
``sqlite._insert``: a group's requests together in statements of ``CHUNK`` rows) with
round 1's (each request's rows decoded in Python and inserted in power-of-two pieces of
at most 496 (time, event) pairs: 64 + 32 + 4 statements for 100 events), both from the
split of load.py's requests (``--group`` / 100 requests per group commit), the event
text decoded inside the timing.

Variants: the statement (multi-row ``INSERT ... VALUES (...), (...)`` of CHUNK rows from
one flat parameter list, as the store did; the same with the source and reception time
bound once per statement, ``SELECT ?1, column1, ?2, column2 FROM (VALUES (?, ?), ...)``,
as the store does now; or ``executemany`` with a tuple per row),
how the event travels (``str``, or the JSON ``bytes`` the raw path has, kept as TEXT by
``CAST(? AS TEXT)``), the page size and the page cache.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from fastingest.server.stores.sqlite import SCHEMA  # noqa: E402

FIELDS = 4


def make_rows(n: int, start_ns: int = 1_795_435_200_000_000_000) -> List[bytes]:
    """n events of ≈ 206 bytes of JSON (benchmarks/load.py's), as bytes."""
    out = []
    for i in range(n):
        out.append(json.dumps({
            "dt": f"2026-11-23T08:00:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
            "level": ("info", "warn", "error")[i % 3],
            "message": f"GET /api/items/{i % 16000} 200 in {i % 97}ms",
            "host": f"web-{i % 8}", "request_id": f"{i % 16:04x}{i:08x}-5f1d-4c3a-9e7b",
            "user": {"id": 1000 + i % 100, "plan": "pro" if i % 5 else "free"},
            "tags": ["http", "api"]}, separators=(",", ":")).encode())
    return out


class Variant:
    """One way of inserting: the statement, the event's type, the pragmas."""

    def __init__(self, name: str, chunk: int = 128, text: bool = False, many: bool = False,
                 page_size: int = 4096, cache_kib: int = 2000, shared: bool = False,
                 decode: bool = False) -> None:
        self.name, self.chunk, self.text, self.many = name, chunk, text, many
        self.page_size, self.cache_kib, self.shared = page_size, cache_kib, shared
        self.decode = decode   # the JSON bytes made str in Python, inside the timing

    def open(self, path: str, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA page_size={self.page_size}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA cache_size=-{self.cache_kib}")
        conn.executescript(SCHEMA)
        return conn

    def insert(self, conn: sqlite3.Connection, rows: List[object]) -> None:
        if self.decode:
            rows = rows[:]
            rows[3::FIELDS] = map(bytes.decode, rows[3::FIELDS])  # type: ignore[arg-type]
        value = "(?, ?, ?, ?)" if self.text or self.decode else "(?, ?, ?, CAST(? AS TEXT))"
        if self.shared:   # source and reception time bound once per statement
            n = len(rows) // FIELDS
            times, events = rows[1::FIELDS], rows[3::FIELDS]
            pos = 0
            while pos < n:
                left = n - pos
                size = self.chunk if left >= self.chunk else 1 << (left.bit_length() - 1)
                params: List[object] = [rows[pos * FIELDS], rows[pos * FIELDS + 2]]
                pairs: List[object] = [None] * (2 * size)
                pairs[0::2] = times[pos:pos + size]
                pairs[1::2] = events[pos:pos + size]
                event = "column2" if self.decode else "CAST(column2 AS TEXT)"
                conn.execute(f"INSERT INTO events SELECT ?1, column1, ?2, {event} "
                             "FROM (VALUES " + ", ".join(["(?, ?)"] * size) + ")",
                             params + pairs)
                pos += size
            return
        if self.many:
            conn.executemany("INSERT INTO events VALUES " + value,
                             zip(rows[0::4], rows[1::4], rows[2::4], rows[3::4]))
            return
        n = len(rows) // FIELDS
        pos = 0
        while pos < n:
            left = n - pos
            size = self.chunk if left >= self.chunk else 1 << (left.bit_length() - 1)
            conn.execute("INSERT INTO events VALUES " + ", ".join([value] * size),
                         rows[pos * FIELDS:(pos + size) * FIELDS])
            pos += size


VARIANTS = [
    Variant("before: str, 128-row INSERT, 4 KiB pages, 2 MB cache", text=True),
    Variant("bytes + CAST, 128-row INSERT"),
    Variant("bytes + CAST, executemany of row tuples", many=True),
    Variant("bytes + CAST, 1024-row INSERT", chunk=1024),
    Variant("bytes + CAST, 1024-row INSERT, source + received bound once", chunk=1024,
            shared=True),
    Variant("bytes + CAST, 128-row INSERT, 64 MB cache", cache_kib=65536),
    Variant("bytes + CAST, 128-row INSERT, 8 KiB pages", page_size=8192),
    Variant("bytes + CAST, 128-row INSERT, 16 KiB pages", page_size=16384),
    Variant("bytes + CAST, 1024-row INSERT, bound once, 16 KiB pages", chunk=1024, shared=True,
            page_size=16384),
    Variant("bytes.decode in Python, 128-row INSERT", decode=True),
    Variant("bytes.decode in Python, 128-row INSERT, 16 KiB pages", decode=True,
            page_size=16384),
    Variant("bytes.decode in Python, 1024-row INSERT, bound once, 16 KiB pages", decode=True,
            chunk=1024, shared=True, page_size=16384),
    Variant("now (the store): bytes.decode, 496-row INSERT, bound once, 16 KiB pages",
            decode=True, chunk=496, shared=True, page_size=16384),
]


def group_rows(events: List[bytes], group: int) -> List[List[object]]:
    """The flat rows of each group commit: ``group`` rows, times increasing."""
    out = []
    t0, received = 1_795_435_200_000_000_000, 1_795_435_200_000_000_000
    for g in range(0, len(events), group):
        rows: List[object] = []
        for i in range(g, min(g + group, len(events))):
            rows += ("bench", t0 + i * 1000, received + g, events[i])
        out.append(rows)
    return out


def run_inserts(variant: Variant, groups: List[List[object]], tmp: str,
                synchronous: str) -> float:
    path = os.path.join(tmp, "insert.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = variant.open(path, synchronous)
    if variant.text:
        groups = [[r.decode() if isinstance(r, bytes) else r for r in g] for g in groups]
    started = time.process_time()
    for rows in groups:
        conn.execute("BEGIN IMMEDIATE")
        variant.insert(conn, rows)
        conn.execute("COMMIT")
    took = time.process_time() - started
    conn.close()
    return took


def run_move(variant: Variant, rows: List[object], tmp: str, synchronous: str) -> float:
    """A spilled request's commit: its staging table copied into events."""
    path = os.path.join(tmp, "move.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = variant.open(path, synchronous)
    conn.execute("CREATE TEMP TABLE staging (source TEXT NOT NULL, time_ns INTEGER NOT NULL, "
                 "received_ns INTEGER NOT NULL, event TEXT NOT NULL)")
    conn.execute("BEGIN")
    n = len(rows) // FIELDS
    for pos in range(0, n, variant.chunk):
        part = rows[pos * FIELDS:min(n, pos + variant.chunk) * FIELDS]
        conn.execute("INSERT INTO temp.staging VALUES " + ", ".join(
            ["(?, ?, ?, CAST(? AS TEXT))"] * (len(part) // FIELDS)), part)
    conn.execute("COMMIT")
    started = time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO main.events SELECT * FROM temp.staging")
    conn.execute("COMMIT")
    took = time.process_time() - started
    conn.close()
    return took


def group_commit(args: argparse.Namespace) -> int:
    """Round 1's per-request statements against the store's group-wide ones."""
    import functools

    import fastingest
    from fastingest.server.stores import sqlite as store
    sys.path.insert(0, HERE)
    import profile_request

    per_group = max(1, args.group // 100)
    splits = [fastingest.split(body, "application/json")
              for body in profile_request.bodies(100, "json", args.rows // 100)]
    round1 = ("INSERT INTO main.events (source, time_ns, received_ns, event) "
              "SELECT ?1, column1, ?2, column2 FROM (VALUES %s)")

    @functools.lru_cache(maxsize=None)
    def statement(size: int) -> str:
        return round1 % ", ".join(["(?, ?)"] * size)

    def per_request(conn: sqlite3.Connection, batch: List[Any]) -> None:
        for split in batch:
            n = len(split.raw)
            pairs: List[object] = [None] * (2 * n)
            pairs[0::2] = split.times_ns
            pairs[1::2] = map(bytes.decode, split.raw)
            pos = 0
            while pos < n:
                left = n - pos
                size = 496 if left >= 496 else 1 << (left.bit_length() - 1)
                conn.execute(statement(size), ["app", 1] + pairs[2 * pos:2 * (pos + size)])
                pos += size

    def group_wide(conn: sqlite3.Connection, batch: List[Any]) -> None:
        store._insert(conn, store.INSERT,
                      [store._run("app", s.raw, s.times_ns, 1) for s in batch])

    ways = {"round 1: per request, power-of-two pieces": per_request,
            f"round 2: the group's requests in statements of {store.CHUNK} rows": group_wide}
    results: Dict[str, List[float]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory(prefix="fastingest-sqlite-") as tmp:
        for rep in range(args.repeats):
            for k, (name, insert) in enumerate(ways.items()):   # alternating
                conn = sqlite3.connect(os.path.join(tmp, f"{k}-{rep}.db"), isolation_level=None)
                conn.execute(f"PRAGMA page_size={store.PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={args.synchronous}")
                conn.executescript(SCHEMA)
                t = time.process_time()
                for g in range(0, len(splits), per_group):
                    conn.execute("BEGIN IMMEDIATE")
                    insert(conn, splits[g:g + per_group])
                    conn.execute("COMMIT")
                results[name].append((time.process_time() - t) / (len(splits) * 100) * 1e6)
                conn.close()
    print(f"SQLite {sqlite3.sqlite_version}; {len(splits) * 100:,} rows, {per_group} requests "
          f"of 100 events per group commit, synchronous={args.synchronous}, process CPU")
    print("\n| insert path | µs per row, best | runs |\n|---|---:|---|")
    for name, runs in results.items():
        print(f"| {name} | {min(runs):.3f} | {' / '.join(f'{r:.3f}' for r in runs)} |")
    return 0


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--group", type=int, default=2000, help="rows per group commit (2000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--synchronous", default="normal")
    p.add_argument("--move", type=int, default=1_000_000,
                   help="rows of the staging-table copy (0: skip it)")
    p.add_argument("--tiny", action="store_true", help='events {"a":1} (the bomb\'s)')
    p.add_argument("--group-commit", action="store_true",
                   help="round 1's per-request statements against the store's (see above)")
    args = p.parse_args(argv)
    if not (1000 <= args.rows <= 5_000_000 and 1 <= args.repeats <= 20):
        p.error("keep it bounded: rows 1000-5,000,000, repeats 1-20")
    if args.group_commit:
        return group_commit(args)
    events = [b'{"a":1}'] * args.rows if args.tiny else make_rows(args.rows)
    groups = group_rows(events, args.group)
    print(f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}; {args.rows:,} rows "
          f"of {sum(map(len, events)) / len(events):.0f} B JSON in groups of {args.group}, "
          f"synchronous={args.synchronous}, best of {args.repeats} (process CPU)")
    results: Dict[str, List[float]] = {v.name: [] for v in VARIANTS}
    moves: Dict[str, List[float]] = {v.name: [] for v in VARIANTS}
    move_rows: List[object] = []
    if args.move:
        for i, ev in enumerate(make_rows(min(args.move, 100_000)) * (args.move // 100_000 or 1)):
            move_rows += ("big", 1_795_435_200_000_000_000 + i, 1, b'{"a":1}' if args.tiny else ev)
    with tempfile.TemporaryDirectory(prefix="fastingest-sqlite-") as tmp:
        for _ in range(args.repeats):
            for v in VARIANTS:   # alternate: drift hits all alike
                results[v.name].append(run_inserts(v, groups, tmp, args.synchronous))
                if move_rows:
                    moves[v.name].append(run_move(v, move_rows, tmp, args.synchronous))
    base = min(results[VARIANTS[0].name])
    print("\n| variant | µs per row (group commit) | vs before | µs per row (staging copy) |")
    print("|---|---:|---:|---:|")
    for v in VARIANTS:
        best = min(results[v.name])
        move = f"{min(moves[v.name]) / (len(move_rows) // FIELDS) * 1e6:.3f}" if move_rows else "-"
        print(f"| {v.name} | {best / args.rows * 1e6:.3f} | {base / best:.2f}x | {move} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
