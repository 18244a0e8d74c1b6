"""fastingest against the fastest peer compositions, in one process, on the same bodies.

    python benchmarks/compare.py                   # full run: writes benchmarks/results/
    python benchmarks/compare.py --quick           # fewer repeats, shorter loops, no files
    python benchmarks/compare.py --only 'ndjson*/10MiB' --sections codec,stream
    python benchmarks/compare.py --list            # the path names

Every peer does the same job as ``fastingest.decode``: decode the body to a list of dicts, turn
each event's ``dt`` into int64 ns (epoch-magnitude rule for ints, ``Timestamp.to_unix_nano()``
for MessagePack timestamps, ``(d - EPOCH) // timedelta(microseconds=1) * 1000`` after
ciso8601 / ``datetime.fromisoformat`` for strings — the exact conversion, which drops the
sub-µs digits of a 9-digit fraction), fall back to the reception time, and check the body and
per-event size limits where that can be done without parsing (NDJSON lines; see the notes).

Method (see benchmarks/README.md, "Codec throughput"):

* one process; contenders of a path run alternately (round-robin, rotated each repeat); the
  minimum of ``--repeats`` (>= 5) timings is reported; ratios are of minimums from this run;
* the garbage collector stays ON. fastingest pauses the cyclic GC while it builds a batch, so
  its young-generation pass runs at the next allocation, after it returned. To keep that cost
  (and any a peer defers) inside the caller's own timing, one timing is ``loops`` calls
  ``r = f(body)`` and then, with the last result still alive, a burst of
  ``gc.get_threshold()[0] + 1`` container allocations (which forces any pending collection);
  the clock stops after the burst, the result is released after the clock. Small bodies loop
  many calls per timing (>= ``--target`` seconds), so per-call overhead is measured too;
* nothing but the bodies (bytes) is alive while timing: generated events are dropped and
  collected first, and matplotlib is imported only after the timings;
* peak memory: ``tracemalloc`` peak above the pre-call level for one call of each contender.
"""
from __future__ import annotations

import argparse
import fnmatch
import gc
import gzip
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ciso8601  # noqa: E402
import msgpack  # noqa: E402
import msgspec  # noqa: E402
import orjson  # noqa: E402

import fastingest  # noqa: E402
import payloads as P  # noqa: E402

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)
MAX_BODY = fastingest.Limits().max_body
MAX_EVENT = fastingest.Limits().max_event
CHUNK = 64 * 1024
HAS_SPLIT = hasattr(fastingest, "split")
RESULTS = os.path.join(HERE, "results")


class TooLarge(Exception):
    """A peer's 413."""


# --------------------------------------------------------------------------------------
# The peers' event-time step: what a user writes after decoding (one pass, locals bound).

def peer_times(events: list, now: int, parse: Callable = ciso8601.parse_rfc3339,
               epoch: datetime = EPOCH, us: timedelta = US, Timestamp: type = msgpack.Timestamp,
               dt_type: type = datetime) -> list:
    out: List[int] = []
    append = out.append
    for e in events:
        v = e.get("dt")  # AttributeError on a non-object element: the peer's 406
        t = type(v)
        if t is str:
            try:
                append((parse(v) - epoch) // us * 1000)
                continue
            except (ValueError, TypeError):
                pass
        elif t is int:
            a = -v if v < 0 else v
            if a < 100_000_000_000:
                append(v * 1_000_000_000)
            elif a < 100_000_000_000_000:
                append(v * 1_000_000)
            elif a < 100_000_000_000_000_000:
                append(v * 1000)
            else:
                append(v)
            continue
        elif t is Timestamp:
            append(v.to_unix_nano())
            continue
        elif t is dt_type:  # msgspec.msgpack turns ext -1 into an aware datetime
            append((v - epoch) // us * 1000)
            continue
        append(now)
    return out


def stdlib_times(events: list, now: int) -> list:
    return peer_times(events, now, parse=datetime.fromisoformat)


def check_lines(body: bytes, max_event: int = MAX_EVENT) -> None:
    """Exact NDJSON per-line size check without touching every line: a line longer than
    ``max_event`` exists iff some window of ``max_event + 1`` bytes starting at a line start
    holds no newline. One ``rfind`` per window: microseconds for 10 MiB."""
    pos, n, rfind = 0, len(body), body.rfind
    while pos + max_event < n:
        j = rfind(b"\n", pos, pos + max_event + 1)
        if j < 0:
            raise TooLarge("event over max_event")
        pos = j + 1


def check_body(body: bytes) -> None:
    if len(body) > MAX_BODY:
        raise TooLarge("body over max_body")


def as_list(doc: Any) -> list:
    return [doc] if type(doc) is dict else doc


# --------------------------------------------------------------------------------------
# Contenders. Each maker gets the payload and returns ``f(body) -> result``.

_msgspec_json = msgspec.json.Decoder()
_msgspec_msgpack = msgspec.msgpack.Decoder()


def _unzip(body: bytes) -> bytes:
    return zlib.decompress(body, wbits=31)


def peer_msgspec_lines(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    check_lines(body)
    events = _msgspec_json.decode_lines(body)
    return events, peer_times(events, now)


def peer_orjson_lines(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    loads, events = orjson.loads, []
    append = events.append
    for line in body.splitlines():
        if len(line) > MAX_EVENT:
            raise TooLarge("event over max_event")
        if line and not line.isspace():
            append(loads(line))
    return events, peer_times(events, now)


def peer_json_lines(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    loads, events = json.loads, []
    append = events.append
    for line in body.splitlines():
        if len(line) > MAX_EVENT:
            raise TooLarge("event over max_event")
        if line and not line.isspace():
            append(loads(line))
    return events, stdlib_times(events, now)


def peer_orjson_array(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    events = as_list(orjson.loads(body))
    return events, peer_times(events, now)


def peer_msgspec_array(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    events = as_list(_msgspec_json.decode(body))
    return events, peer_times(events, now)


def peer_json_array(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    events = as_list(json.loads(body))
    return events, stdlib_times(events, now)


def peer_unpackb(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    events = as_list(msgpack.unpackb(body))  # raw=False, timestamp=0 (Timestamp objects)
    return events, peer_times(events, now)


def peer_msgspec_msgpack(body: bytes, inflate: Optional[Callable] = None) -> tuple:
    now = time.time_ns()
    if inflate is not None:
        body = inflate(body)
    check_body(body)
    events = as_list(_msgspec_msgpack.decode(body))
    return events, peer_times(events, now)


@dataclass
class Contender:
    label: str
    role: str                     # "fastingest" | "peer" | "baseline" | "reference"
    make: Callable[[P.Payload], Callable[[bytes], Any]]
    notes: str = ""               # footnote marks
    goal: bool = False            # the composition the issue's goal compares against


def _fastingest(p: P.Payload) -> Callable[[bytes], Any]:
    decode, ct, enc = fastingest.decode, p.content_type, p.encoding
    if enc is None:
        return lambda body: decode(body, ct)
    return lambda body: decode(body, ct, content_encoding=enc)


def _peer(fn: Callable, inflate: Optional[Callable] = None) -> Callable[[P.Payload], Callable]:
    if inflate is None:
        return lambda p: fn
    return lambda p: (lambda body: fn(body, inflate))


NOTE_NO_SIZE = "a"
NOTE_US = "b"
NOTE_ONESHOT = "c"
NOTE_WINDOW = "d"
NOTES = {
    NOTE_NO_SIZE: "no per-event size check: a JSON array or MessagePack body has no cheap event "
                  "boundaries without parsing it, so this peer does less work than fastingest "
                  "(only the whole-body limit).",
    NOTE_US: "dt to int ns through a datetime: `(d - EPOCH) // timedelta(microseconds=1) * 1000`, "
             "exact to the µs; the sub-µs digits of 9-digit fractions (and of msgspec's "
             "MessagePack timestamps) are lost — fastingest keeps them.",
    NOTE_ONESHOT: "one-shot decompression, no output cap: not safe against a decompression "
                  "bomb (fastingest inflates in capped pieces).",
    NOTE_WINDOW: "per-line size check by one `rfind(b\"\\n\")` per 1 MiB window (exact, a few µs "
                 "per 10 MiB); `decode_lines` itself gives no line lengths.",
}


def contenders_for(p: P.Payload) -> List[Contender]:
    gz = p.encoding == "gzip"
    inflate = _unzip if gz else None
    zl = "zlib.decompress + " if gz else ""
    z1 = NOTE_ONESHOT if gz else ""
    cs = [Contender("fastingest.decode", "fastingest", _fastingest)]
    if p.fmt == "ndjson":
        cs += [
            Contender(f"{zl}msgspec decode_lines + ciso8601", "peer",
                      _peer(peer_msgspec_lines, inflate), NOTE_WINDOW + NOTE_US + z1, goal=True),
            Contender(f"{zl}orjson per line + ciso8601", "peer",
                      _peer(peer_orjson_lines, inflate), NOTE_US + z1),
        ]
        if gz:
            cs.append(Contender("gzip.decompress + msgspec decode_lines + ciso8601", "peer",
                                _peer(peer_msgspec_lines, gzip.decompress),
                                NOTE_WINDOW + NOTE_US + z1))
        cs.append(Contender(f"{'gzip.decompress + ' if gz else ''}json per line + fromisoformat",
                            "baseline", _peer(peer_json_lines, gzip.decompress if gz else None),
                            NOTE_US + z1))
    elif p.fmt == "json":
        cs += [
            Contender(f"{zl}orjson.loads + ciso8601", "peer", _peer(peer_orjson_array, inflate),
                      NOTE_NO_SIZE + NOTE_US + z1, goal=True),
            Contender(f"{zl}msgspec.json + ciso8601", "peer", _peer(peer_msgspec_array, inflate),
                      NOTE_NO_SIZE + NOTE_US + z1),
        ]
        if gz:
            cs.append(Contender("gzip.decompress + orjson.loads + ciso8601", "peer",
                                _peer(peer_orjson_array, gzip.decompress),
                                NOTE_NO_SIZE + NOTE_US + z1))
        cs.append(Contender(f"{'gzip.decompress + ' if gz else ''}json.loads + fromisoformat",
                            "baseline", _peer(peer_json_array, gzip.decompress if gz else None),
                            NOTE_NO_SIZE + NOTE_US + z1))
    else:
        cs += [
            Contender(f"{zl}msgpack.unpackb + conversion", "peer", _peer(peer_unpackb, inflate),
                      NOTE_NO_SIZE + NOTE_US + z1, goal=True),
            Contender(f"{zl}msgspec.msgpack + conversion", "peer",
                      _peer(peer_msgspec_msgpack, inflate), NOTE_NO_SIZE + NOTE_US + z1),
        ]
        if gz:
            cs.append(Contender("gzip.decompress + msgpack.unpackb + conversion", "peer",
                                _peer(peer_unpackb, gzip.decompress),
                                NOTE_NO_SIZE + NOTE_US + z1))
    return cs


# --------------------------------------------------------------------------------------
# Paths

PRIMARY_DT = {"ndjson": "rfc3339", "json": "rfc3339", "msgpack": "timestamp"}


def codec_paths() -> List[str]:
    names = []
    for fmt in P.FORMATS:
        for enc in P.ENCODINGS:
            for size in P.SIZES:
                names.append(P.payload_name(fmt, PRIMARY_DT[fmt], size, enc))
        for dt in ("rfc3339", "epoch_ms"):
            if dt != PRIMARY_DT[fmt]:
                names.append(P.payload_name(fmt, dt, "10MiB"))
    return names


def stream_paths() -> List[str]:
    return [P.payload_name(fmt, PRIMARY_DT[fmt], "10MiB", enc)
            for enc in P.ENCODINGS for fmt in P.FORMATS]


def split_paths() -> List[str]:
    return [P.payload_name(fmt, PRIMARY_DT[fmt], size)
            for fmt in P.FORMATS for size in ("100", "10MiB")]


# --------------------------------------------------------------------------------------
# Timing

def _burst(n: int) -> None:
    junk = [[] for _ in range(n)]
    del junk


CLOCKS = {"cpu": time.process_time_ns, "wall": time.perf_counter_ns}
CLOCK = ["cpu"]


def time_one(fn: Callable, body: Any, loops: int, burst: int) -> float:
    """Seconds per call: ``loops`` calls, then the GC burst with the last result alive."""
    clock = CLOCKS[CLOCK[0]]
    r = None
    t0 = clock()
    for _ in range(loops):
        r = fn(body)
    _burst(burst)
    t1 = clock()
    del r
    return (t1 - t0) / 1e9 / loops


def calibrate(fn: Callable, body: Any, target: float, burst: int) -> int:
    single = min(time_one(fn, body, 1, burst) for _ in range(3))
    return max(1, int(target / max(single, 1e-7)))


def race(fns: List[Callable], body: Any, repeats: int, target: float,
         loops: Optional[int] = None) -> Tuple[List[float], int]:
    """Minimum seconds per call of each of ``fns`` on ``body``, run alternately."""
    burst = gc.get_threshold()[0] + 1
    for fn in fns:  # warm up (and fail early)
        fn(body)
    if loops is None:
        loops = calibrate(fns[0], body, target, burst)
    best = [float("inf")] * len(fns)
    for rep in range(repeats):
        order = list(range(len(fns)))
        k = rep % len(fns)
        order = order[k:] + order[:k]
        for i in order:
            best[i] = min(best[i], time_one(fns[i], body, loops, burst))
    return best, loops


def peak_bytes(fn: Callable, body: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        r = fn(body)
        peak = tracemalloc.get_traced_memory()[1] - base
        del r
    finally:
        tracemalloc.stop()
    return peak


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def rss_child(body_file: str, name: str, index: int) -> None:
    """In a fresh process: the resident-memory high-water mark one call adds (KiB).

    tracemalloc counts every byte requested, touched or not (orjson asks for a worst-case
    parse buffer of several times the input and touches a fraction of it), and misses memory
    allocated outside Python's allocators; the kernel's count of resident pages does
    neither. /proc/self/clear_refs "5" resets VmHWM just before the call."""
    p = P.stub(name)
    with open(body_file, "rb") as f:
        body = f.read()
    fn = contenders_for(p)[index].make(p)
    fn(P.payload(p.fmt, p.dt, "1", p.encoding).body)  # warm up code paths, not memory
    P._base_events.cache_clear()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    r = fn(body)
    peak = _status_kib("VmHWM")
    del r
    print(peak - before)


def peak_rss(p: P.Payload, index: int, tmpdir: str) -> Optional[int]:
    path = os.path.join(tmpdir, "body.bin")
    if not os.path.exists(path) or os.path.getsize(path) != len(p.body):
        with open(path, "wb") as f:
            f.write(p.body)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", path,
                          p.name, str(index)], capture_output=True, text=True)
    try:
        return int(out.stdout.strip().splitlines()[-1]) * 1024
    except (ValueError, IndexError):
        print(f"  rss child failed for {p.name} #{index}: {out.stderr[-300:]}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------------------
# Results

@dataclass
class Row:
    path: str
    label: str
    role: str
    notes: str
    goal: bool
    seconds: Optional[float]
    loops: int
    raw_size: int
    n_events: int
    peak: Optional[int] = None
    rss: Optional[int] = None
    error: Optional[str] = None

    @property
    def mbps(self) -> float:
        return self.raw_size / self.seconds / 1e6

    @property
    def eps(self) -> float:
        return self.n_events / self.seconds


@dataclass
class Report:
    codec: List[Row] = field(default_factory=list)
    split: List[Row] = field(default_factory=list)
    stream: List[Row] = field(default_factory=list)
    goals: List["Goal"] = field(default_factory=list)
    repeats: int = 0
    info: Dict[str, str] = field(default_factory=dict)
    argv: List[str] = field(default_factory=list)
    target: float = 0.0
    clock: str = "cpu"
    heap: int = 0

    def to_json(self) -> str:
        rows = {k: [r.__dict__ for r in getattr(self, k)] for k in ("codec", "split", "stream")}
        return json.dumps({"info": self.info, "argv": self.argv, "repeats": self.repeats,
                           "target": self.target, "clock": self.clock, "heap": self.heap,
                           **rows},
                          indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Report":
        d = json.loads(text)
        rep = cls(repeats=d["repeats"], info=d["info"], argv=d["argv"], target=d["target"],
                  clock=d.get("clock", "cpu"), heap=d.get("heap", 0))
        for k in ("codec", "split", "stream"):
            getattr(rep, k).extend(Row(**r) for r in d[k])
        return rep


def run_codec(names: List[str], args, report: Report) -> None:
    for name in names:
        p = P.parse_name(name)
        cs = contenders_for(p)
        fns, ok = [], []
        for c in cs:
            fn = c.make(p)
            try:
                fn(p.body)
            except Exception as exc:  # a broken contender is reported, not fatal
                report.codec.append(Row(name, c.label, c.role, c.notes, c.goal, None, 0,
                                        p.raw_size, p.n_events, error=repr(exc)[:120]))
                continue
            fns.append(fn)
            ok.append(c)
        times, loops = race(fns, p.body, args.repeats, args.target)
        rows = [Row(name, c.label, c.role, c.notes, c.goal, t, loops, p.raw_size, p.n_events)
                for c, t in zip(ok, times)]
        if args.memory:
            for row, fn in zip(rows, fns):
                row.peak = peak_bytes(fn, p.body)
        if args.rss and p.size == "10MiB":
            with tempfile.TemporaryDirectory() as tmp:
                for row, c in zip(rows, ok):
                    row.rss = peak_rss(p, cs.index(c), tmp)
        report.codec.extend(rows)
        _progress(rows)


def run_split(names: List[str], args, report: Report) -> None:
    for name in names:
        p = P.parse_name(name)
        ct = p.content_type
        entries: List[Tuple[str, str, Callable]] = []
        if HAS_SPLIT:
            entries.append(("fastingest.split", "fastingest", lambda b: fastingest.split(b, ct)))
        entries.append(("fastingest.decode", "reference", lambda b: fastingest.decode(b, ct)))
        if p.fmt == "ndjson":
            entries.append(('bytes.count(b"\\n")', "reference", lambda b: b.count(b"\n")))
            entries.append(("bytes.splitlines()", "reference", lambda b: b.splitlines()))
        fns = [e[2] for e in entries]
        times, loops = race(fns, p.body, args.repeats, args.target)
        rows = [Row(name, lab, role, "", False, t, loops, p.raw_size, p.n_events)
                for (lab, role, _), t in zip(entries, times)]
        if args.memory:
            for row, fn in zip(rows, fns):
                row.peak = peak_bytes(fn, p.body)
        report.split.extend(rows)
        _progress(rows)


def _stream(ct: str, enc: Optional[str]) -> Callable[[List[bytes]], Any]:
    """Feed every chunk, keeping every batch (the same objects as a whole decode)."""
    def run(chunks: List[bytes]) -> list:
        d = fastingest.StreamDecoder(ct, content_encoding=enc)
        out = [d.feed(c) for c in chunks]
        out.append(d.close())
        return out
    return run


def _stream_dropping(ct: str, enc: Optional[str]) -> Callable[[List[bytes]], Any]:
    """Feed every chunk, dropping each batch once counted (a server storing as it goes)."""
    def run(chunks: List[bytes]) -> int:
        d = fastingest.StreamDecoder(ct, content_encoding=enc)
        n = 0
        for c in chunks:
            n += len(d.feed(c).events)
        return n + len(d.close().events)
    return run


def _gc_off(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` with the cyclic GC off during the call: the decoder's own work. The
    young pass over the new objects still runs in the timing (the burst after it)."""
    def run(arg: Any) -> Any:
        gc.disable()
        try:
            return fn(arg)
        finally:
            gc.enable()
    return run


#: Stream contenders: (label, role, whole-body reference role). GC "on" rows keep the
#: consumer's heap in play; "GC off" rows isolate what the decoders themselves do.
STREAM_ROWS = [
    ("fastingest.decode (whole body)", "reference", ""),
    (f"StreamDecoder, {CHUNK // 1024} KiB chunks, every batch kept", "fastingest", "reference"),
    (f"StreamDecoder, {CHUNK // 1024} KiB chunks, each batch dropped", "fastingest-drop",
     "reference"),
    ("fastingest.decode (whole body), GC off", "reference-gcoff", ""),
    (f"StreamDecoder, {CHUNK // 1024} KiB chunks, every batch kept, GC off", "fastingest-gcoff",
     "reference-gcoff"),
]


STREAM_REFERENCE = {role: ref for _, role, ref in STREAM_ROWS if ref}


def run_stream(names: List[str], args, report: Report) -> None:
    for name in names:
        p = P.parse_name(name)
        ct, enc, body = p.content_type, p.encoding, p.body
        # Chunks arrive as bytes objects (as from a socket); slicing happens before the clock.
        chunks = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]
        whole = _fastingest(p)
        stream = _stream(ct, enc)
        fns = [(whole, body), (stream, chunks), (_stream_dropping(ct, enc), chunks),
               (_gc_off(whole), body), (_gc_off(stream), chunks)]
        # Different inputs (body vs chunk list): race each on its own input, alternating.
        burst = gc.get_threshold()[0] + 1
        for fn, arg in fns:
            fn(arg)
        loops = calibrate(whole, body, args.target, burst)
        best = [float("inf")] * len(fns)
        for rep in range(args.repeats):
            order = list(range(len(fns)))
            k = rep % len(fns)
            for i in order[k:] + order[:k]:
                fn, arg = fns[i]
                best[i] = min(best[i], time_one(fn, arg, loops, burst))
        rows = [Row(name, label, role, "", False, t, loops, p.raw_size, p.n_events)
                for (label, role, _), t in zip(STREAM_ROWS, best)]
        if args.memory:
            rows[0].peak = peak_bytes(whole, body)
            rows[1].peak = peak_bytes(stream, chunks)
        report.stream.extend(rows)
        _progress(rows)


def _progress(rows: List[Row]) -> None:
    for r in rows:
        if r.seconds is None:
            print(f"  {r.path:28} {r.label:52} ERROR {r.error}", file=sys.stderr)
        else:
            print(f"  {r.path:28} {r.label:52} {r.seconds * 1e6:12.1f} µs  {r.mbps:8.1f} MB/s",
                  file=sys.stderr)


# --------------------------------------------------------------------------------------
# Goals (issue 6, issue 5)

def _by_path(rows: List[Row]) -> Dict[str, List[Row]]:
    out: Dict[str, List[Row]] = {}
    for r in rows:
        out.setdefault(r.path, []).append(r)
    return out


def _fast(rows: List[Row], role: str = "fastingest") -> Optional[Row]:
    for r in rows:
        if r.role == role and r.seconds is not None:
            return r
    return None


@dataclass
class Goal:
    goal: str          # the goal as the issue states it
    path: str
    versus: str        # what fastingest is compared with
    value: float       # measured (a speed ratio, a fraction, or peer peak / fastingest peak)
    target: float
    unit: str = "x"    # "x": ratio; "%": fraction of the reference speed; "mem": peak ratio

    @property
    def ok(self) -> bool:
        return self.value >= self.target

    @property
    def margin(self) -> str:
        """How far above (+) or below (-) the target, relative to it."""
        return f"{(self.value / self.target - 1) * 100:+.0f}%"


GOAL_BIG = {"ndjson": ("NDJSON >= 1.3x msgspec decode_lines + ciso8601", 1.3),
            "json": ("JSON array >= 1.1x orjson.loads + ciso8601", 1.1),
            "msgpack": ("MessagePack >= 1.1x msgpack.unpackb + conversion", 1.1)}
#: Issue 14's goals (codec speed, round 2): (path, the compared peer's label prefix,
#: target ratio). The first row of a path names its goal peer's target (the chart's tick).
GOAL_ISSUE14 = [
    ("ndjson/rfc3339/10MiB", "msgspec decode_lines", 2.0),
    ("json/rfc3339/10MiB", "orjson.loads", 2.0),
    ("json/rfc3339/10MiB", "msgspec.json", 2.0),
    ("msgpack/timestamp/10MiB", "msgpack.unpackb", 2.0),
    ("msgpack/timestamp/10MiB", "msgspec.msgpack", 1.3),
    ("json.gz/rfc3339/10MiB", "zlib.decompress + orjson.loads", 2.0),
    ("ndjson/rfc3339/100", "msgspec decode_lines", 1.6),
    ("msgpack/timestamp/100", "msgspec.msgpack", 1.3),
    ("json/rfc3339/1", "orjson.loads", 1.3),
    ("msgpack/timestamp/1", "msgpack.unpackb", 1.3),
    ("ndjson.gz/rfc3339/100", "zlib.decompress + msgspec decode_lines", 1.2),
]
#: Issue 14's split() goals on ndjson/rfc3339/10MiB: x decode, fraction of bytes.count.
GOAL_ISSUE14_SPLIT = (6.0, 0.25)
GOAL_ORDER = ["issue 14", "NDJSON", "JSON array", "MessagePack", "gzip JSON", "gzip (issue 5)",
              "1- and 100-event", "split() NDJSON vs decode", "split() NDJSON vs bytes.count",
              "StreamDecoder", "Peak memory"]


def evaluate_goals(report: Report) -> None:
    goals = report.goals
    for path, rows in _by_path(report.codec).items():
        fi = _fast(rows)
        peer = next((r for r in rows if r.goal and r.seconds is not None), None)
        if fi is None or peer is None:
            continue
        p = P.parse_name(path)
        ratio = peer.seconds / fi.seconds
        if p.size != "10MiB":
            goals.append(Goal("1- and 100-event bodies >= 1.0x the same composition", path,
                              peer.label, ratio, 1.0))
        elif p.encoding == "gzip":
            if p.fmt == "json":
                goals.append(Goal("gzip JSON >= 1.1x zlib + orjson + ciso8601", path,
                                  peer.label, ratio, 1.1))
            goals.append(Goal("gzip (issue 5): gzip'd bodies >= 1.0x zlib.decompress + the "
                              "format's orjson/msgpack composition", path, peer.label, ratio, 1.0))
        else:
            text, target = GOAL_BIG[p.fmt]
            goals.append(Goal(text, path, peer.label, ratio, target))
        if p.size == "10MiB" and fi.peak is not None and peer.peak is not None:
            goals.append(Goal("Peak memory of decode <= the peer composition's (tracemalloc)",
                              path, peer.label, peer.peak / fi.peak if fi.peak else float("inf"),
                              1.0, unit="mem"))
        if p.size == "10MiB" and fi.rss and peer.rss:
            goals.append(Goal("Peak memory of decode <= the peer composition's (resident, "
                              "fresh process)", path, peer.label, peer.rss / fi.rss, 1.0,
                              unit="mem"))
    codec = _by_path(report.codec)
    for path, prefix, target in GOAL_ISSUE14:
        fi = _fast(codec.get(path, []))
        peer = next((r for r in codec.get(path, [])
                     if r.label.startswith(prefix) and r.seconds is not None), None)
        if fi is not None and peer is not None:
            goals.append(Goal(f"issue 14: >= {target}x {prefix}", path, peer.label,
                              peer.seconds / fi.seconds, target))
    for path, rows in _by_path(report.split).items():
        sp = _fast(rows)
        dec = next((r for r in rows if r.label == "fastingest.decode"), None)
        cnt = next((r for r in rows if r.label.startswith("bytes.count")), None)
        if sp is None or dec is None or not path.startswith("ndjson/"):
            continue
        goals.append(Goal("split() NDJSON vs decode: >= 3x fastingest.decode", path,
                          "fastingest.decode", dec.seconds / sp.seconds, 3.0))
        if cnt is not None:
            goals.append(Goal("split() NDJSON vs bytes.count: >= 25% of its speed", path,
                              cnt.label, cnt.seconds / sp.seconds, 0.25, unit="%"))
        if path == "ndjson/rfc3339/10MiB":
            x_decode, of_count = GOAL_ISSUE14_SPLIT
            goals.append(Goal(f"issue 14: split() >= {x_decode}x fastingest.decode", path,
                              "fastingest.decode", dec.seconds / sp.seconds, x_decode))
            if cnt is not None:
                goals.append(Goal(f"issue 14: split() >= {of_count:.0%} of bytes.count", path,
                                  cnt.label, cnt.seconds / sp.seconds, of_count, unit="%"))
    for path, rows in _by_path(report.stream).items():
        for role, what in (("fastingest", ""),
                           ("fastingest-drop", ", each batch dropped"),
                           ("fastingest-gcoff", ", GC off")):
            st = _fast(rows, role)
            ref = _fast(rows, STREAM_REFERENCE[role])
            if st is None or ref is None:
                continue
            goals.append(Goal(f"StreamDecoder (64 KiB chunks{what}) >= 0.95x decode of the "
                              "whole body", path, ref.label, ref.seconds / st.seconds, 0.95))

    def order(g: Goal) -> int:
        for i, prefix in enumerate(GOAL_ORDER):
            if g.goal.startswith(prefix):
                return i
        return len(GOAL_ORDER)
    goals.sort(key=order)  # stable: paths keep their order within a goal


# --------------------------------------------------------------------------------------
# Output

def _fmt_time(s: float) -> str:
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def _fmt_mem(b: Optional[int]) -> str:
    if b is None:
        return ""
    if b >= 1 << 20:
        return f"{b / (1 << 20):.1f} MiB"
    return f"{b / 1024:.1f} KiB"


def _cmd(args: List[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def machine() -> Dict[str, str]:
    model = ""
    for line in _cmd(["lscpu"]).splitlines():
        if line.lower().startswith("model name"):
            model = line.split(":", 1)[1].strip()
    try:
        load = "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "?"
    versions = {}
    for mod in ("orjson", "msgspec", "msgpack", "ciso8601"):
        m = sys.modules.get(mod)
        v = getattr(m, "__version__", None)
        if mod == "msgpack":
            v = ".".join(map(str, msgpack.version))
        versions[mod] = v or "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": _cmd(["nproc"]) or str(os.cpu_count()),
        "cpu": model or platform.processor() or "?",
        "python": f"{platform.python_implementation()} {platform.python_version()} "
                  f"({platform.python_compiler()})",
        "platform": platform.platform(),
        "fastingest": f"{fastingest.__version__} ({fastingest.IMPLEMENTATION})",
        "git": _cmd(["git", "-C", HERE, "rev-parse", "--short", "HEAD"]) + (
            " + uncommitted changes in fastingest/"
            if _cmd(["git", "-C", HERE, "status", "--porcelain", "--", "../fastingest"]) else ""),
        "load": load,
        "peers": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }


def render(report: Report, info: Dict[str, str], args: "Report") -> str:
    out: List[str] = []
    w = out.append
    heap_text = (f"{args.heap:,} extra long-lived dicts in the process" if args.heap else
                 "no other long-lived objects in the process (the peers' best case)")
    w("# fastingest vs peer compositions\n")
    w(f"Measured {info['date']} on `nproc` = {info['nproc']}, {info['cpu']}; "
      f"{info['python']}; {info['platform']}.  ")
    w(f"fastingest {info['fastingest']} at {info['git']}; {info['peers']}; zlib "
      f"{info['zlib']}. Load average at the end: {info['load']}.  ")
    w(f"`python benchmarks/compare.py{' ' + shlex.join(args.argv) if args.argv else ''}`: "
      f"min of {args.repeats} alternating timings "
      f"({'process CPU time, user + sys' if args.clock == 'cpu' else 'wall clock'}), "
      f"GC on (burst after each timing), {heap_text}, "
      f">= {args.target * 1e3:.0f} ms per timing for small bodies. Compare ratios within this "
      f"run only; the machine is shared and noisy.\n")
    if report.goals:
        w("## Goals\n")
        w("Speed ratios are fastingest's speed ÷ the other's (> 1: fastingest faster); margin is "
          "measured ÷ target - 1. Memory rows: the peer's peak ÷ fastingest's (>= 1: fastingest "
          "needs no more), by tracemalloc and by resident pages in a fresh process.\n")
        w("| goal | path | compared with | measured | target | margin | result |")
        w("|---|---|---|---:|---:|---:|:---:|")
        for g in report.goals:
            if g.unit == "%":
                shown, tshown = f"{g.value:.0%}", f">= {g.target:.0%}"
            elif g.unit == "mem":
                shown, tshown = f"{g.value:.2f}x", ">= 1.00x"
            else:
                shown, tshown = f"{g.value:.2f}x", f">= {g.target:.2f}x"
            w(f"| {g.goal} | {g.path} | {g.versus} | {shown} | {tshown} | {g.margin} | "
              f"{'PASS' if g.ok else '**FAIL**'} |")
        npass = sum(1 for g in report.goals if g.ok)
        w(f"\n{npass} of {len(report.goals)} pass.\n")
    if report.codec:
        w("## Decode: events + dt as int ns\n")
        w("MB/s counts decompressed bytes (1 MB = 10^6 bytes). \"fastingest ÷ this\" > 1 means "
          "fastingest is faster. Peak: tracemalloc peak above the pre-call level, one call "
          "(every byte requested from Python's allocators, touched or not). RSS (10 MiB "
          "bodies): resident high-water mark one call adds, in a fresh process (pages "
          "actually touched, any allocator).\n")
        w("| path | contender | time/call | MB/s | events/s | fastingest ÷ this | peak | RSS |")
        w("|---|---|---:|---:|---:|---:|---:|---:|")
        for path, rows in _by_path(report.codec).items():
            fi = _fast(rows)
            peers = [r for r in rows if r.role == "peer" and r.seconds is not None]
            best = min(peers, key=lambda r: r.seconds) if peers else None
            for r in rows:
                label = r.label + (f" <sup>{','.join(r.notes)}</sup>" if r.notes else "")
                if r.goal:
                    label += " (goal peer)"
                if r.seconds is None:
                    w(f"| {path} | {label} | error: {r.error} | | | | | |")
                    continue
                if r.role == "fastingest":
                    ratio = (f"best peer: **{best.seconds / r.seconds:.2f}x**" if best else "")
                else:
                    ratio = f"{r.seconds / fi.seconds:.2f}x" if fi else ""
                name = f"**{label}**" if r.role == "fastingest" else label
                w(f"| {path} | {name} | {_fmt_time(r.seconds)} | {r.mbps:.0f} | "
                  f"{r.eps:,.0f} | {ratio} | {_fmt_mem(r.peak)} | {_fmt_mem(r.rss)} |")
        w("")
        w("Notes:\n")
        for k, text in NOTES.items():
            w(f"- <sup>{k}</sup> {text}")
        w("")
    if report.split or not HAS_SPLIT:
        w("## Raw pass-through: split()\n")
        if not HAS_SPLIT:
            w("`fastingest.split` is not in this build (`hasattr(fastingest, \"split\")` is "
              "False): its rows are skipped; the references below are what it will be compared "
              "with.\n")
        if report.split:
            w("| path | contender | time/call | MB/s | events/s | split ÷ this | peak |")
            w("|---|---|---:|---:|---:|---:|---:|")
            for path, rows in _by_path(report.split).items():
                sp = _fast(rows)
                for r in rows:
                    ratio = f"{r.seconds / sp.seconds:.2f}x" if sp and r is not sp else ""
                    name = f"**{r.label}**" if r.role == "fastingest" else r.label
                    w(f"| {path} | {name} | {_fmt_time(r.seconds)} | {r.mbps:.0f} | "
                      f"{r.eps:,.0f} | {ratio} | {_fmt_mem(r.peak)} |")
            w("")
    if report.stream:
        w(f"## Streaming: StreamDecoder ({CHUNK // 1024} KiB chunks) vs decode\n")
        w("Gzip'd paths feed 64 KiB chunks of the compressed body.\n")
        w("| path | contender | time/call | MB/s | events/s | stream ÷ whole (speed) | peak |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for path, rows in _by_path(report.stream).items():
            for r in rows:
                ref = _fast(rows, STREAM_REFERENCE.get(r.role, "")) if r.seconds else None
                ratio = f"{ref.seconds / r.seconds:.2f}x" if ref else ""
                w(f"| {path} | {r.label} | {_fmt_time(r.seconds)} | {r.mbps:.0f} | "
                  f"{r.eps:,.0f} | {ratio} | {_fmt_mem(r.peak)} |")
        w("")
    return "\n".join(out) + "\n"


def chart(report: Report, info: Dict[str, str], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = _by_path(report.codec)
    goal_peer = {n: next((r.label for r in rows if r.goal), None) for n, rows in by.items()}
    # the tick: the latest goal against the path's goal peer (issue 14's where it has one)
    target = {g.path: g.target for g in report.goals
              if g.unit == "x" and g.versus == goal_peer.get(g.path) and "Stream" not in g.goal
              and "issue 5" not in g.goal and not g.goal.startswith("issue 14")}
    target.update({g.path: g.target for g in report.goals
                   if g.goal.startswith("issue 14") and g.versus == goal_peer.get(g.path)})
    names, best_ratio, goal_ratio = [], [], []
    for name, rows in by.items():
        fi = _fast(rows)
        peers = [r for r in rows if r.role == "peer" and r.seconds is not None]
        gp = next((r for r in peers if r.goal), None)
        if fi is None or gp is None:
            continue
        names.append(name)
        best_ratio.append(min(r.seconds for r in peers) / fi.seconds)
        goal_ratio.append(gp.seconds / fi.seconds)
    big = [n for n in by if n.endswith("/10MiB")]

    fig, axes = plt.subplots(1, 2, figsize=(16, max(7.0, 0.42 * len(names) + 2.5)),
                             gridspec_kw={"width_ratios": [1, 1.2]})
    ax = axes[0]
    y = list(range(len(names)))[::-1]
    colors = ["#2a9d8f" if g >= target.get(n, 1.0) else "#e76f51"
              for n, g in zip(names, goal_ratio)]
    ax.barh([v + 0.2 for v in y], goal_ratio, height=0.4, color=colors)
    ax.barh([v - 0.2 for v in y], best_ratio, height=0.4, color="#8d99ae")
    for v, n, g, b in zip(y, names, goal_ratio, best_ratio):
        ax.text(g + 0.01, v + 0.2, f"{g:.2f}", va="center", fontsize=7)
        ax.text(b + 0.01, v - 0.2, f"{b:.2f}", va="center", fontsize=7, color="#555")
        t = target.get(n)
        if t:
            ax.plot([t, t], [v - 0.45, v + 0.45], color="black", lw=1.6)
    ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlim(0, max(goal_ratio + best_ratio + [1.4]) * 1.12)
    ax.set_xlabel("fastingest speed ÷ peer speed")
    ax.set_title("decode + dt → int ns: fastingest vs the goal peer (green: goal met, red: not)\n"
                 "and vs the fastest peer (grey); black tick: the goal", fontsize=9)

    ax = axes[1]
    role_color = {"fastingest": "#264653", "goal": "#f4a261", "peer": "#8ab17d",
                  "baseline": "#cccccc"}
    ticks, ticklabels, pos = [], [], 0.0
    for n in reversed(big):
        rows = [r for r in by[n] if r.seconds is not None]
        start = pos
        for r in reversed(rows):
            role = "goal" if r.goal else r.role
            ax.barh(pos, r.mbps, height=0.8, color=role_color.get(role, "#cccccc"))
            ax.text(r.mbps + 1, pos, f"{r.mbps:.0f}  {_short(r.label)}", va="center",
                    fontsize=6.5)
            pos += 1
        ticks.append((start + pos - 1) / 2)
        ticklabels.append(n)
        pos += 0.8
    ax.set_yticks(ticks)
    ax.set_yticklabels(ticklabels, fontsize=8)
    top = max((r.mbps for n in big for r in by[n] if r.seconds is not None), default=1)
    ax.set_xlim(0, top * 1.9)
    ax.set_xlabel("MB/s of decompressed body (higher is better)")
    ax.set_title("10 MiB bodies: throughput of every contender", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in role_color.values()]
    ax.legend(handles, ["fastingest.decode", "goal peer", "other peer", "stdlib baseline"],
              fontsize=7, loc="lower right")
    fig.suptitle(f"fastingest {info['fastingest']} vs peer compositions — {info['date']} — "
                 f"nproc {info['nproc']}, {info['cpu']}, Python {platform.python_version()} — "
                 f"min of {report_repeats(report)} alternating runs, GC on", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_repeats(report: Report) -> str:
    return str(report.repeats)


def _short(label: str) -> str:
    for pre in ("zlib.decompress + ", "gzip.decompress + "):
        if label.startswith(pre):
            return ("gzip.decompress + " if pre.startswith("gzip") else "zlib + ") + label[len(pre):]
    return label


# --------------------------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--quick", action="store_true",
                    help="5 repeats, 10 ms timings, no tracemalloc, no files unless --write")
    ap.add_argument("--repeats", type=int, default=None, help="timings per contender (>= 5)")
    ap.add_argument("--target", type=float, default=None,
                    help="seconds per timing for small bodies (loops of calls)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: process CPU time, user + sys (default; not charged for other "
                         "jobs' time slices on a shared machine); wall: perf_counter")
    ap.add_argument("--heap", type=int, default=0, metavar="N",
                    help="keep N extra small dicts alive while timing, like a server process's "
                         "long-lived objects (default 0: a bare process, the peers' best case; "
                         "their cyclic GC passes traverse the whole heap, fastingest's do not)")
    ap.add_argument("--only", default="",
                    help="comma-separated globs over path names, e.g. 'ndjson*/10MiB,json/*'")
    ap.add_argument("--sections", default="codec,split,stream",
                    help="any of codec,split,stream (comma-separated)")
    ap.add_argument("--no-memory", dest="memory", action="store_false", default=None,
                    help="skip the tracemalloc peaks")
    ap.add_argument("--memory", dest="memory", action="store_true",
                    help="measure the tracemalloc peaks (default unless --quick)")
    ap.add_argument("--rss", dest="rss", action="store_true", default=None,
                    help="measure the resident peaks (default unless --quick)")
    ap.add_argument("--no-rss", dest="rss", action="store_false",
                    help="skip the resident-memory peaks (a fresh process per 10 MiB contender)")
    ap.add_argument("--rss-child", nargs=3, metavar=("BODY_FILE", "PATH", "INDEX"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--write", action="store_true", default=None,
                    help="write results/compare.md and compare.png (default unless --quick)")
    ap.add_argument("--no-write", dest="write", action="store_false")
    ap.add_argument("--out", default=RESULTS, help="directory for the result files")
    ap.add_argument("--name", default="compare",
                    help="base name of the result files: NAME.md, NAME.json, NAME.png")
    ap.add_argument("--list", action="store_true", help="print the path names and exit")
    ap.add_argument("--from-json", metavar="FILE",
                    help="re-render the table and chart from a compare.json, measuring nothing")
    args = ap.parse_args(argv)
    args.argv = argv
    if args.repeats is None:
        args.repeats = 5 if args.quick else 9
    if args.repeats < 5:
        ap.error("--repeats must be >= 5")
    if args.target is None:
        args.target = 0.01 if args.quick else 0.05
    CLOCK[0] = args.clock
    if args.rss_child:
        rss_child(args.rss_child[0], args.rss_child[1], int(args.rss_child[2]))
        return 0
    if args.memory is None:
        args.memory = not args.quick
    if args.rss is None:
        args.rss = not args.quick and os.path.exists("/proc/self/clear_refs")
    if args.write is None:
        args.write = not args.quick
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    globs = [g.strip() for g in args.only.split(",") if g.strip()]

    def pick(names: List[str]) -> List[str]:
        return [n for n in names if not globs or any(fnmatch.fnmatch(n, g) for g in globs)]

    todo = {
        "codec": pick(codec_paths()) if "codec" in sections else [],
        "split": pick(split_paths()) if "split" in sections else [],
        "stream": pick(stream_paths()) if "stream" in sections else [],
    }
    if args.list:
        for sec, names in todo.items():
            for n in names:
                print(f"{sec:7} {n}")
        return 0

    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            report = Report.from_json(f.read())
        evaluate_goals(report)
        return _emit(report, args)

    # Build every body first, then drop the generated events: only bytes stay alive.
    t = time.perf_counter()
    for names in todo.values():
        for n in names:
            P.parse_name(n)
    P._base_events.cache_clear()
    heap = [{"id": i, "name": "x"} for i in range(args.heap)]  # alive until the timings end
    gc.collect()
    print(f"payloads built in {time.perf_counter() - t:.1f} s; fastingest "
          f"{fastingest.__version__} ({fastingest.IMPLEMENTATION}); split "
          f"{'present' if HAS_SPLIT else 'absent (rows skipped)'}", file=sys.stderr)

    report = Report(repeats=args.repeats, argv=list(argv), target=args.target,
                    clock=args.clock, heap=args.heap)
    run_codec(todo["codec"], args, report)
    run_split(todo["split"], args, report)
    run_stream(todo["stream"], args, report)
    del heap
    evaluate_goals(report)
    report.info = machine()
    return _emit(report, args)


def _emit(report: Report, args) -> int:
    text = render(report, report.info, report)
    print(text)
    if args.write:
        os.makedirs(args.out, exist_ok=True)
        base = os.path.join(args.out, args.name)
        with open(base + ".md", "w", encoding="utf-8") as f:
            f.write(text)
        with open(base + ".json", "w", encoding="utf-8") as f:
            f.write(report.to_json() + "\n")
        if report.codec:
            chart(report, report.info, base + ".png")
        print(f"wrote {base}.md, .json and .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
