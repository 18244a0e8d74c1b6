"""Prometheus metrics of the server, correct across ``--workers``, at ``GET /metrics``.

Every value lives in one anonymous shared memory map made before the workers are
forked: each worker owns one slot (a row of float64 values) and is its only writer,
and whichever worker answers a scrape adds the rows up. So a scrape sees every worker,
a worker that dies and is replaced continues its slot's counters (they never go
back), and a request costs a few stores into memory: no lock, no file, no thread.

Labels come only from the configuration, never from a client: ``protocol`` is one of
the protocols served (``none`` for a path none of them serves), ``source`` one of the
configured sources (``other`` for any other), ``status`` the status fastingest
answered (100-599), ``stage`` ``compressed`` (as received) or ``decompressed``. So the
number of series is bounded by the configuration, whatever clients send.
"""
from __future__ import annotations

import bisect
import mmap
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .. import IMPLEMENTATION, __version__

#: Upper bounds (seconds) of the duration histograms' buckets.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0, 30.0)
#: The exposition format's media type (Prometheus text format 0.0.4).
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
NO_PROTOCOL = "none"
OTHER_SOURCE = "other"
STAGES = ("compressed", "decompressed")
CLOSE_REASONS = ("header_timeout", "evicted", "refused")
_STATUSES = range(100, 600)
_HISTOGRAM = len(DURATION_BUCKETS) + 3   # buckets, +Inf, sum, count


class Layout:
    """Where each value sits in a slot (the same in every process)."""

    def __init__(self, protocols: Sequence[str], sources: Iterable[str]) -> None:
        self.protocols = tuple(dict.fromkeys([*protocols, NO_PROTOCOL]))
        self.sources = tuple(dict.fromkeys([*sorted(set(sources)), OTHER_SOURCE]))
        self.protocol_index = {name: i for i, name in enumerate(self.protocols)}
        self.source_index = {name: i for i, name in enumerate(self.sources)}
        n_p, n_s = len(self.protocols), len(self.sources)
        offset = 0

        def take(n: int) -> int:
            nonlocal offset
            offset += n
            return offset - n

        self.requests = take(n_p * len(_STATUSES))
        self.events = take(n_p * n_s)
        self.bytes = take(n_p * len(STAGES))
        self.duration = take(n_p * _HISTOGRAM)
        self.commit = take(_HISTOGRAM)
        self.in_flight = take(1)
        self.store_errors = take(1)
        self.inflight_refused = take(1)
        self.closed = take(len(CLOSE_REASONS))
        self.size = offset


class Metrics:
    """The counters of one server (all its workers). Make it before forking; each
    worker then calls :meth:`bind` with its slot number (0 <= slot < workers)."""

    def __init__(self, protocols: Sequence[str], sources: Iterable[str], workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.layout = layout = Layout(protocols, sources)
        self.workers = workers
        # MAP_SHARED | MAP_ANONYMOUS: inherited by forked workers, zero-filled
        self._map = mmap.mmap(-1, layout.size * 8 * workers)
        self._all = memoryview(self._map).cast("d")
        self._bounds = list(DURATION_BUCKETS)
        # per protocol, the offsets request() writes at (status offset folded in)
        n_s = len(layout.sources)
        self._offsets: Dict[Optional[str], Tuple[int, int, int, int]] = {
            name: (layout.requests + p * len(_STATUSES) - 100, layout.events + p * n_s,
                   layout.bytes + p * len(STAGES), layout.duration + p * _HISTOGRAM)
            for name, p in layout.protocol_index.items()}
        self._no_protocol = self._offsets[NO_PROTOCOL]
        self._source_index: Dict[Optional[str], int] = {}
        self._source_index.update(layout.source_index)
        self._other_source = layout.source_index[OTHER_SOURCE]
        self.bind(0)

    def bind(self, slot: int) -> None:
        """Write into ``slot`` from now on (a worker's own row); its gauges restart at 0
        (a replaced worker's requests in flight died with it)."""
        if not 0 <= slot < self.workers:
            raise ValueError(f"slot {slot} out of 0..{self.workers - 1}")
        size = self.layout.size
        self._row = self._all[slot * size:(slot + 1) * size]
        self._row[self.layout.in_flight] = 0.0

    # -- recording (the worker's own row only) ----------------------------------------------

    def request(self, protocol: Optional[str], status: int, seconds: float, source: Optional[str]
                = None, events: int = 0, received: int = 0, decoded: Optional[int] = None) -> None:
        """One request answered ``status`` after ``seconds``: ``events`` stored for
        ``source``, ``received`` body bytes as sent, ``decoded`` once decompressed."""
        row = self._row
        requests, events_at, bytes_at, duration = self._offsets.get(protocol, self._no_protocol)
        if 100 <= status < 600:
            row[requests + status] += 1
        if events:
            row[events_at + self._source_index.get(source, self._other_source)] += events
        if received:
            row[bytes_at] += received
        if decoded:
            row[bytes_at + 1] += decoded
        row[duration + bisect.bisect_left(self._bounds, seconds)] += 1
        row[duration + _HISTOGRAM - 2] += seconds
        row[duration + _HISTOGRAM - 1] += 1

    def commit(self, seconds: float) -> None:
        """One store commit took ``seconds``."""
        self._observe(self.layout.commit, seconds)

    def store_error(self) -> None:
        self._row[self.layout.store_errors] += 1

    def inflight_refused(self) -> None:
        """A request answered 503 for the in-flight budget."""
        self._row[self.layout.inflight_refused] += 1

    def set_in_flight(self, n: int) -> None:
        self._row[self.layout.in_flight] = n

    def connection_closed(self, reason: str) -> None:
        """The connection guard closed a connection (one of :data:`CLOSE_REASONS`)."""
        self._row[self.layout.closed + CLOSE_REASONS.index(reason)] += 1

    def _observe(self, base: int, seconds: float) -> None:
        row = self._row
        row[base + bisect.bisect_left(self._bounds, seconds)] += 1
        row[base + _HISTOGRAM - 2] += seconds
        row[base + _HISTOGRAM - 1] += 1

    # -- reading (any process) ------------------------------------------------------------

    def totals(self) -> List[float]:
        """Every value added up over the workers."""
        size = self.layout.size
        rows: List[List[float]] = [
            self._all[w * size:(w + 1) * size].tolist()  # type: ignore[misc]  # "d": floats
            for w in range(self.workers)]
        return rows[0] if len(rows) == 1 else [float(sum(col)) for col in zip(*rows)]

    def render(self) -> bytes:
        """The text exposition of every metric."""
        lay, v = self.layout, self.totals()
        out: List[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")

        def sample(name: str, labels: Dict[str, str], value: float) -> None:
            out.append(f"{name}{_labels(labels)} {_number(value)}\n")

        family("fastingest_build_info", "gauge", "Version and kernels of the running fastingest.")
        sample("fastingest_build_info", {"version": __version__,
                                         "implementation": IMPLEMENTATION}, 1)
        family("fastingest_requests_total", "counter", "Requests answered, by protocol and status.")
        for p, protocol in enumerate(lay.protocols):
            base = lay.requests + p * len(_STATUSES)
            for i, status in enumerate(_STATUSES):
                if v[base + i]:
                    sample("fastingest_requests_total",
                           {"protocol": protocol, "status": str(status)}, v[base + i])
        family("fastingest_events_accepted_total", "counter",
               "Events stored by committed requests, by protocol and source.")
        for p, protocol in enumerate(lay.protocols):
            for s, source in enumerate(lay.sources):
                value = v[lay.events + p * len(lay.sources) + s]
                if value:   # (most protocol/source pairs never occur)
                    sample("fastingest_events_accepted_total",
                           {"protocol": protocol, "source": source}, value)
        family("fastingest_request_bytes_total", "counter",
               "Request body bytes read, as sent (compressed) and once decoded (decompressed).")
        for p, protocol in enumerate(lay.protocols):
            for k, stage in enumerate(STAGES):
                sample("fastingest_request_bytes_total", {"protocol": protocol, "stage": stage},
                       v[lay.bytes + p * 2 + k])
        family("fastingest_request_duration_seconds", "histogram",
               "Time from a request's head to its answer, by protocol.")
        for p, protocol in enumerate(lay.protocols):
            _histogram(out, "fastingest_request_duration_seconds", {"protocol": protocol},
                       v, lay.duration + p * _HISTOGRAM)
        family("fastingest_store_commit_seconds", "histogram",
               "Time a request's store transaction took to commit.")
        _histogram(out, "fastingest_store_commit_seconds", {}, v, lay.commit)
        family("fastingest_requests_in_flight", "gauge",
               "Request bodies being read, decoded or stored now.")
        sample("fastingest_requests_in_flight", {}, v[lay.in_flight])
        family("fastingest_store_errors_total", "counter",
               "Store failures (each answered 503 with Retry-After).")
        sample("fastingest_store_errors_total", {}, v[lay.store_errors])
        family("fastingest_inflight_refused_total", "counter",
               "Requests answered 503 before their body was read: in-flight budget reached.")
        sample("fastingest_inflight_refused_total", {}, v[lay.inflight_refused])
        family("fastingest_connections_closed_total", "counter",
               "Connections closed by the connection guard: request head too slow "
               "(header_timeout), evicted for a new connection, refused at the cap.")
        for k, reason in enumerate(CLOSE_REASONS):
            sample("fastingest_connections_closed_total", {"reason": reason}, v[lay.closed + k])
        return "".join(out).encode()


def _histogram(out: List[str], name: str, labels: Dict[str, str], v: List[float],
               base: int) -> None:
    cumulative = 0.0
    for i, bound in enumerate((*DURATION_BUCKETS, float("inf"))):
        cumulative += v[base + i]
        le = "+Inf" if bound == float("inf") else repr(bound)
        out.append(f"{name}_bucket{_labels({**labels, 'le': le})} {_number(cumulative)}\n")
    out.append(f"{name}_sum{_labels(labels)} {v[base + _HISTOGRAM - 2]!r}\n")
    out.append(f"{name}_count{_labels(labels)} {_number(v[base + _HISTOGRAM - 1])}\n")


def _labels(labels: Dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def sources_of(tokens: Mapping[str, str], *more: str) -> Tuple[str, ...]:
    """The configured sources: those of the tokens, and ``more`` (e.g. Samsara's)."""
    return tuple(sorted({*tokens.values(), *more}))


__all__ = ["CLOSE_REASONS", "CONTENT_TYPE", "DURATION_BUCKETS", "Layout", "Metrics",
           "sources_of"]
