"""A store's rows built from a raw batch (the pure twin): the SQLite store's statement
parameters for one run of events, without a Python-level loop per row.

``fastingest._rows`` is the compiled twin (same names, same answers); it writes the
list in one C loop, with no intermediate lists (benchmarks/README.md, "Server
throughput, round 2").
"""
from __future__ import annotations

from typing import List, Sequence

__all__ = ["row_values"]


def row_values(raw: Sequence[bytes], times_ns: Sequence[int], received_ns: int, /
               ) -> List[object]:
    """``[times_ns[0], received_ns, raw[0] as str, times_ns[1], received_ns, ...]``: each
    event's time, the reception time and its JSON text (UTF-8, decoded strictly), the
    values of its row but the source. ValueError if the lengths differ."""
    n = len(raw)
    if len(times_ns) != n:
        raise ValueError(f"{n} events but {len(times_ns)} times")
    values: List[object] = [received_ns] * (3 * n)
    values[0::3] = times_ns
    values[2::3] = map(bytes.decode, raw)
    return values
