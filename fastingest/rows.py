"""A store's rows built from a raw batch (the pure twin): the SQLite store's statement
parameters for one run of events, without a Python-level loop per row.

``fastingest._rows`` is the compiled twin (same names, same answers); it writes the
list in one C loop, with no intermediate lists (benchmarks/README.md, "Server
throughput, round 2").
"""
from __future__ import annotations

from typing import List, Sequence

__all__ = ["time_text_pairs"]


def time_text_pairs(raw: Sequence[bytes], times_ns: Sequence[int], /) -> List[object]:
    """``[times_ns[0], raw[0] as str, times_ns[1], raw[1] as str, ...]``: each event's
    time and its JSON text (UTF-8, decoded strictly). ValueError if the lengths differ."""
    n = len(raw)
    if len(times_ns) != n:
        raise ValueError(f"{n} events but {len(times_ns)} times")
    pairs: List[object] = [None] * (2 * n)
    pairs[0::2] = times_ns
    pairs[1::2] = map(bytes.decode, raw)
    return pairs
