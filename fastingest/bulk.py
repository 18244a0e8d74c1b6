"""Elasticsearch ``_bulk`` bodies: action/source line pairs, on the NDJSON scanner.

Grammar (ES ``BulkRequestParser``; PROTOCOLS.md §2)::

    body   = *( action-line [source-line] )   ; a source line after index/create/update
    action = {"<op>": {meta}}                 ; op: index | create | update | delete

Lines end in ``\\n`` (a ``\\r`` before it is dropped) and the body must end in one.
The body streams through the bounded decoder and the NDJSON scanner in its collecting
mode, so a bad line is reported with its number instead of ending the scan: a bad
*action* line rejects the whole request (:class:`BulkSyntaxError`, ES's
``illegal_argument_exception`` texts with the 1-based line number), a bad *source* line
only its own item (``Action.error``). Memory: one piece of decompressed body, the
current line and the actions of one piece.

Event time: ``@timestamp`` as ES's default ``strict_date_optional_time||epoch_millis``
reads it (ISO 8601 to the nanosecond; a number or a numeric string is epoch
milliseconds, fraction allowed); missing or unparseable: the reception time.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

from . import _kernels
from .compression import DEFAULT_PIECE, open_decoder
from .constants import BytesLike
from .errors import EXPECTED_OBJECT, DATA_AFTER_EVENT, IngestError
from .formats import KIND_NDJSON
from .limits import Limits
from .shipping import decimal_to_ns, number_to_ns


OPS = ("index", "create", "update", "delete")
#: Action metadata keys ES accepts (any other is a 400).
META_KEYS = frozenset((
    "_index", "_id", "routing", "op_type", "version", "version_type", "if_seq_no",
    "if_primary_term", "retry_on_conflict", "pipeline", "_source", "require_alias",
    "require_data_stream", "list_executed_pipelines", "dynamic_templates"))

ILLEGAL_ARGUMENT = "illegal_argument_exception"
NO_NEWLINE = "The bulk request must be terminated by a newline [\\n]"

_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_FIRST_TOKEN = {0x22: "VALUE_STRING", 0x5B: "START_ARRAY", 0x74: "VALUE_BOOLEAN",
                0x66: "VALUE_BOOLEAN", 0x6E: "VALUE_NULL", 0x2D: "VALUE_NUMBER"}
_FIRST_TOKEN.update({c: "VALUE_NUMBER" for c in range(0x30, 0x3A)})


class BulkSyntaxError(IngestError):
    """A whole-request ``_bulk`` error: 400 with ES's exception ``type`` and ``message``
    as its ``reason``."""

    status = 400

    def __init__(self, reason: str, type_: str = ILLEGAL_ARGUMENT, *, line: Optional[int] = None,
                 offset: Optional[int] = None, status: int = 400) -> None:
        super().__init__(reason, detail=reason, line=line, offset=offset, status=status)
        self.type = type_


class Action(NamedTuple):
    """One action of the body: ``op`` (``index`` with ``op_type: create`` is ``create``),
    its metadata, its 1-based line, and for index/create the source (None when the
    source line was bad: ``error`` says why, ES's ``document_parsing_exception``)."""

    op: str
    meta: Dict[str, Any]
    line: int
    source: Optional[Dict[str, Any]]
    time_ns: int
    error: Optional[str]


def token_name(value: Any) -> str:
    """The Jackson token name ES prints for a JSON value."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_NUMBER"


def timestamp_ns(value: Any) -> Optional[int]:
    """``@timestamp`` as ES reads it by default, to int64 ns, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return number_to_ns(value, 6)
    if isinstance(value, str):
        if (len(value) < 10 or value[4] != "-") and _NUMBER.fullmatch(value):   # not a date
            return decimal_to_ns(value, 6)
        ns: Optional[int] = _kernels.active.parse_dt(value)
        return ns
    return None


def malformed(line: int, what: str) -> BulkSyntaxError:
    return BulkSyntaxError(f"Malformed action/metadata line [{line}], {what}", line=line)


def parse_action(event: Dict[str, Any], line: int) -> Tuple[str, Dict[str, Any]]:
    """``(op, meta)`` of an action line, or the BulkSyntaxError ES 9 answers."""
    if not event:
        raise malformed(line, "expected FIELD_NAME but found [END_OBJECT]")
    items = iter(event.items())
    op, meta = next(items)
    if op not in OPS:
        raise malformed(line, "expected field [create], [delete], [index] or [update] but "
                              f"found [{op}]")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise malformed(line, f"expected START_OBJECT or END_OBJECT but found "
                              f"[{token_name(meta)}]")
    for key, value in meta.items():
        if key not in META_KEYS:
            raise BulkSyntaxError(
                f"Action/metadata line [{line}] contains an unknown parameter [{key}]", line=line)
        if isinstance(value, (dict, list)) and key != "dynamic_templates":
            raise malformed(line, f"expected a simple value for field [{key}] but found "
                                  f"[{token_name(value)}]")
    if len(event) > 1:
        raise malformed(line, "expected END_OBJECT but found [FIELD_NAME]")
    if op == "index" and str(meta.get("op_type", "")).lower() == "create":
        op = "create"
    return op, meta


class _Line(NamedTuple):
    line: int
    event: Optional[Dict[str, Any]]
    error: Optional[str]       # the scanner's reason when the line is bad
    first: Optional[int]       # the bad line's first byte, when known


class BulkReader:
    """Stream one ``_bulk`` body: ``feed(chunk)`` / ``close()`` yield, per piece of
    decompressed body, the actions it completed, in order; IngestError for
    whole-request faults (consume each iterator before the next call)."""

    def __init__(self, content_encoding: Union[str, bytes, None], limits: Limits,
                 received_ns: int, piece_size: int = DEFAULT_PIECE) -> None:
        self.limits = limits
        self.received_ns = received_ns
        self._body = open_decoder(content_encoding, limits, piece_size=piece_size)
        kernels = _kernels.active
        self._take = kernels.build.take
        self._scanner = kernels.framing.NdjsonScanner(limits.max_event, limits.max_depth, True)
        self._pieces: List[Tuple[int, BytesLike]] = []   # the last two (base, piece)
        self._produced = 0
        self._last_byte = -1
        self._pending: Optional[_Line] = None    # the latest line: its verdict may change
        self._action: Optional[Tuple[str, Dict[str, Any], int]] = None   # awaiting a source
        self.actions = 0
        self.lines = 0

    def feed(self, chunk: BytesLike) -> Iterator[List[Action]]:
        """The actions completed by each piece of decompressed body the chunk holds."""
        for piece in self._body.feed(chunk):
            out: List[Action] = []
            self._piece(piece, out)
            yield out

    def close(self) -> Iterator[List[Action]]:
        """The rest of the actions; the whole-request faults found at the end."""
        for piece in self._body.close():
            out: List[Action] = []
            self._piece(piece, out)
            yield out
        out = []
        self._lines(self._scanner.finish(), out)
        if self._pending is not None:
            self._line(self._pending, out)
            self._pending = None
        if self._produced == 0:
            raise BulkSyntaxError("request body is required", "parse_exception")
        if self._last_byte != 0x0A:
            raise BulkSyntaxError(NO_NEWLINE)
        if self._action is not None:
            op, meta, line = self._action
            self._action = None
            self._missing_source(op, line)
        if not self.actions:
            raise BulkSyntaxError("Validation Failed: 1: no requests added;",
                                  "action_request_validation_exception")
        yield out

    # -- lines ------------------------------------------------------------------------

    def _piece(self, piece: BytesLike, out: List[Action]) -> None:
        n = len(piece)
        if not n:
            return
        self._pieces = self._pieces[-1:] + [(self._produced, piece)]
        self._produced += n
        self._last_byte = piece[n - 1]
        self._lines(self._scanner.feed(piece), out)

    def _byte_at(self, offset: int) -> Optional[int]:
        for base, piece in self._pieces:
            if base <= offset < base + len(piece):
                return int(piece[offset - base])
        return None

    def _lines(self, frames: Any, out: List[Action]) -> None:
        # A fatal fault (a size limit) comes after these lines: they are judged first, so
        # that the first fault in body order answers whatever the chunking.
        fatal = frames.error
        frames.error = None
        events, _times, _offsets, lines, errors = self._take(
            frames, KIND_NDJSON, self.limits.max_depth, self.received_ns, True, False)
        if not errors and events:   # the common case: every line is an object
            if self._pending is not None:
                self._line(self._pending, out)
            last = len(events) - 1
            for k in range(last):
                self._line_parts(lines[k], events[k], None, None, out)
            self._pending = _Line(lines[last], events[last], None, None)
            errors = []
            events = []
        found: Dict[int, _Line] = {}
        for event, line in zip(events, lines):
            found[line] = _Line(line, event, None, None)
        for err in errors:   # a bad line (also one whose event was built: data after it)
            found[err.line] = _Line(err.line, None, err.detail, self._byte_at(err.offset))
        for number in sorted(found):
            entry = found[number]
            pending = self._pending
            if pending is not None and pending.line == number:
                if entry.error is None:
                    continue   # already known; an error for the same line wins
                self._pending = entry
                continue
            if pending is not None:
                self._line(pending, out)
            self._pending = entry
        if fatal is not None:
            pending = self._pending
            if pending is not None and (fatal.line is None or pending.line < fatal.line):
                self._pending = None
                self._line(pending, out)
            raise fatal

    def _line(self, entry: _Line, out: List[Action]) -> None:
        self._line_parts(entry.line, entry.event, entry.error, entry.first, out)

    def _line_parts(self, number: int, event: Optional[Dict[str, Any]], error: Optional[str],
                    first: Optional[int], out: List[Action]) -> None:
        """One line whose verdict is final: an action, or the source of the one before."""
        self.lines = number
        action = self._action
        if action is not None:
            op, meta, line = action
            self._action = None
            if number != line + 1:   # the source line was blank
                self._missing_source(op, line)
            elif op == "update":
                return   # the update body is consumed; nothing is stored for it
            else:
                out.append(self._source(op, meta, line, number, event, error))
                return
        self._action_line(number, event, error, first, out)

    def _action_line(self, number: int, event: Optional[Dict[str, Any]], error: Optional[str],
                     first: Optional[int], out: List[Action]) -> None:
        if error is not None:
            if error == DATA_AFTER_EVENT:
                raise malformed(number, "unexpected data after the closing brace")
            token = _FIRST_TOKEN.get(first or -1) if error == EXPECTED_OBJECT else None
            if token is None:
                raise BulkSyntaxError(
                    f"Failed to parse action/metadata line [{number}]: {error}",
                    "x_content_parse_exception", line=number)
            raise malformed(number, f"expected START_OBJECT but found [{token}]")
        assert event is not None
        op, meta = parse_action(event, number)
        self.actions += 1
        if op == "delete":
            out.append(Action(op, meta, number, None, self.received_ns, None))
        else:
            self._action = (op, meta, number)
            if op == "update":
                out.append(Action(op, meta, number, None, self.received_ns, None))

    def _source(self, op: str, meta: Dict[str, Any], line: int, number: int,
                source: Optional[Dict[str, Any]], error: Optional[str]) -> Action:
        if error is not None:
            return Action(op, meta, line, None, self.received_ns,
                          f"[{number}:1] failed to parse: {error}")
        assert source is not None
        stamp = source.get("@timestamp")
        ns = timestamp_ns(stamp) if stamp is not None else None
        return Action(op, meta, line, source, self.received_ns if ns is None else ns, None)

    def _missing_source(self, op: str, line: int) -> None:
        if op != "update" and op != "delete":
            raise BulkSyntaxError("Validation Failed: 1: source is missing;",
                                  "action_request_validation_exception", line=line)


__all__ = ["Action", "BulkReader", "BulkSyntaxError", "META_KEYS", "NO_NEWLINE", "OPS",
           "parse_action", "timestamp_ns", "token_name"]
