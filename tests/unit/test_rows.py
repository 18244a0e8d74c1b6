"""The SQLite store's rows from a raw batch (fastingest/rows.py, _rows.pyx) and the NATS
message's times text (timestamps.format_times): both twins give the same answer, the
answer the store and the consumer format define, and the same error for bad input."""
from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings, strategies as st

from helpers import kernel_sets

INT64 = st.integers(-2**63, 2**63 - 1)


def agree(call):
    """Each twin's answer (or exception type and text); they must be equal."""
    answers = []
    for kernels in kernel_sets():
        try:
            answers.append(("ok", call(kernels)))
        except Exception as exc:
            answers.append((type(exc), str(exc)))
    assert all(a == answers[0] for a in answers), answers
    return answers[0]


@settings(max_examples=60)
@given(st.lists(st.tuples(st.text(max_size=8), INT64), max_size=12), INT64, st.booleans())
def test_row_values_interleaves_time_reception_and_text(rows, received, as_array):
    raw = [text.encode("utf-8") for text, _ in rows]
    times = [t for _, t in rows]
    given_times = array("q", times) if as_array else times
    kind, got = agree(lambda k: k.rows.row_values(raw, given_times, received))
    assert kind == "ok"
    assert got[0::3] == times and got[2::3] == [text for text, _ in rows]
    assert got[1::3] == [received] * len(rows)
    assert all(type(x) is int for x in got[0::3]) and all(type(x) is str for x in got[2::3])


@pytest.mark.parametrize("raw, times", [
    ([b"\xff"], array("q", [1])),            # not UTF-8: UnicodeDecodeError
    (["str"], array("q", [1])),              # not bytes: bytes.decode's TypeError
    ([b"{}"], array("q", [1, 2])),           # lengths differ: ValueError
    ([b"{}", b"\xc3"], [1, 2]),              # a list of times, a bad text after a good one
])
def test_row_values_errors_agree(raw, times):
    kind, _ = agree(lambda k: k.rows.row_values(raw, times, 7))
    assert kind != "ok"


@settings(max_examples=60)
@given(st.lists(INT64, max_size=20), st.booleans())
def test_format_times_is_decimal_separated_by_one_space(times, as_array):
    given_times = array("q", times) if as_array else times
    kind, got = agree(lambda k: k.timestamps.format_times(given_times))
    assert kind == "ok"
    assert got == " ".join(str(t) for t in times).encode()
    assert (got.split(b" ") if times else []) == [b"%d" % t for t in times]


@pytest.mark.parametrize("times", [[2**63], [-2**63 - 1], [1.5], ["1"], [None]])
def test_format_times_refuses_what_is_not_int64(times):
    kind, _ = agree(lambda k: k.timestamps.format_times(times))
    assert kind in (OverflowError, TypeError)
