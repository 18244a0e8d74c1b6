"""Loki push bodies in JSON (v1 and v0 shapes) and the stream selector text, to events.

JSON v1 (``pkg/loghttp``)::

    {"streams": [{"stream": {"app": "web"}, "values": [["<ns>", "<line>", {"k": "v"}]]}]}

``<ns>`` is a JSON string of decimal int64 nanoseconds (a number is a 400), the line a
string, the optional third element a flat object of strings (structured metadata);
elements past the third are ignored. A number or boolean label value is kept as its
text (``5`` is ``"5"``); ``null`` entries and ``"values": null`` are skipped.

JSON v0 (``/api/prom/push``, python-logging-loki's default)::

    {"streams": [{"labels": "{app=\\"web\\"}", "entries": [{"ts": "<RFC 3339>", "line": "..."}]}]}

Both shapes are accepted on both paths (real Loki answers a v0 body on the v1 path with
400; accepting it is what makes python-logging-loki's default work). The protobuf
``PushRequest`` is walked by :mod:`fastingest.protobuf`; the selector text of its
streams (and of v0) is read by :func:`parse_labels`.

Every fault is an :class:`~fastingest.errors.IngestError` whose ``message`` is the text
Loki answers (``status`` 400, or 422 for a body with no stream).
"""
from __future__ import annotations

import functools
import re
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from . import _kernels
from .errors import IngestError
from .jsondoc import Document, last
from .shipping import BatchReader, Record, ns_in_range

_Buffer = Union[bytes, bytearray]

#: Levels of a Loki JSON document above an entry's structured metadata object.
DOCUMENT_DEPTH = 6

NO_LABELS = "error at least one label pair is required per stream"
#: Loki's ``max_structured_metadata_size`` (64 KB): an entry's metadata object, at most.
MAX_METADATA = 64 * 1024
_VALUE_SHAPE = 'entry: expected ["<timestamp ns>", "<line>"(, {metadata})]'
NO_STREAMS = "error at least one valid stream is required for ingestion"

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)', re.S)
_GO_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", "'": "'", '"': '"'}


def bad_request(message: str, status: int = 400) -> IngestError:
    """Loki's answer for a bad push: ``message`` is the exact text."""
    return IngestError(message, status=status, detail=message)


def _unescape(text: str) -> str:
    def one(m: "re.Match[str]") -> str:
        simple, x, u, big_u, octal = m.groups()
        if simple is not None:
            return _SIMPLE[simple]
        code = int(x or u or big_u, 16) if octal is None else int(octal, 8)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ValueError("invalid escape")
        return chr(code)

    out = _GO_ESCAPE.sub(one, text)
    if "\\" in _GO_ESCAPE.sub("", text):
        raise ValueError("invalid escape")
    return out


#: Selectors up to this long are cached (a stream's labels repeat request after request);
#: longer ones are parsed each time, so the cache holds at most 4096 x 1 KiB.
CACHED_SELECTOR = 1024


@functools.lru_cache(maxsize=4096)
def _parse_labels_cached(text: str) -> Tuple[Tuple[str, str], ...]:
    return _parse_labels(text)


def _parse_labels(text: str) -> Tuple[Tuple[str, str], ...]:
    body = text.strip()
    if not body.startswith("{") or not body.endswith("}"):
        raise bad_request(f"couldn't parse labels: expected a selector {{name=\"value\", ...}}, "
                          f"got {_clip(text)!r}")
    inner = body[1:-1]
    pairs: Dict[str, str] = {}
    pos = 0
    while inner[pos:].strip():
        m = _PAIR.match(inner, pos)
        if m is None:
            raise bad_request(f"couldn't parse labels: syntax error at column {pos + 2} "
                              f"of {_clip(text)!r}")
        name, raw, comma = m.groups()
        try:
            value = _unescape(raw)
        except ValueError:
            raise bad_request(f"couldn't parse labels: invalid escape in the value of "
                              f"{name!r}") from None
        if name in pairs:
            raise bad_request(f"stream '{text}' has duplicate label name: '{name}'")
        pairs[name] = value
        pos = m.end()
        if not comma and inner[pos:].strip():
            raise bad_request(f"couldn't parse labels: expected ',' at column {pos + 2} "
                              f"of {_clip(text)!r}")
    if not pairs:
        raise bad_request(NO_LABELS)
    return tuple(pairs.items())


def parse_labels(text: str) -> Dict[str, str]:
    """A stream selector ``{name="value", ...}`` (Go string escapes in values) to a new
    dict; IngestError (400) when malformed, empty or with a duplicate name."""
    return dict(_parse_labels_cached(text) if len(text) <= CACHED_SELECTOR
                else _parse_labels(text))


def render_labels(labels: Dict[str, str]) -> str:
    """Labels as Loki prints a stream: ``{a="1", b="2"}``, sorted by name."""
    inner = ", ".join(f'{name}="{_go_quote(labels[name])}"' for name in sorted(labels))
    return "{" + inner + "}"


def _go_quote(value: str) -> str:
    return (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\t", "\\t").replace("\r", "\\r"))


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n] + "..."


def labels_too_long(size: int, max_line: int) -> IngestError:
    """400 for a stream selector over ``max_line`` bytes (it is kept in every event)."""
    return bad_request(f"stream labels of {size} bytes exceed the limit of {max_line} bytes")


def line_too_long(stream: str, size: int, max_line: int) -> IngestError:
    """Loki's 400 for a line over ``max_line`` bytes in the stream printed as ``stream``."""
    return bad_request(f"max entry size '{max_line}' bytes exceeded for stream '{stream}' "
                       f"while adding an entry with length '{size}' bytes")


class LokiJson(BatchReader):
    """The entries of one Loki JSON push body (v1 or v0 streams), in order.

    ``streams`` counts the streams seen (a body with none is Loki's 422).
    """

    def __init__(self, body: _Buffer, received_ns: int, max_line: int, max_depth: int) -> None:
        self._doc = Document(body, max_depth, DOCUMENT_DEPTH)
        self._received_ns = received_ns
        self._max_line = max_line
        self.streams = 0
        super().__init__(self._walk())

    def _walk(self) -> Iterator[Record]:
        doc = self._doc
        a, _ = last(doc.members(doc.root), "streams")
        if a < 0 or doc.is_null(a):
            return
        for s, _e in doc.elements(a):
            if doc.is_null(s):
                continue
            self.streams += 1
            yield from self._stream(doc.members(s))

    def _stream(self, members: List[Tuple[str, int, int]]) -> Iterator[Record]:
        doc = self._doc
        a, b = last(members, "stream")
        la, lb = last(members, "labels")
        for start, stop in ((a, b), (la, lb)):
            if stop - start > self._max_line:
                raise labels_too_long(stop - start, self._max_line)
        if a >= 0 and not doc.is_null(a):
            labels = self._label_object(a)
        else:
            text = doc.load(la, lb) if la >= 0 else ""
            if not isinstance(text, str):
                raise bad_request("labels: expected a string")
            labels = parse_labels(text)
        if not labels:
            raise bad_request(NO_LABELS)
        shown: List[str] = []   # the stream as Loki prints it, made when first needed
        va, _ = last(members, "values")
        if va >= 0 and not doc.is_null(va):
            for s, e in doc.elements(va):
                if not doc.is_null(s):
                    yield self._value(s, e, labels, shown)
        ea, _ = last(members, "entries")
        if ea >= 0 and not doc.is_null(ea):
            for s, e in doc.elements(ea):
                if not doc.is_null(s):
                    yield self._entry(s, e, labels, shown)

    def _label_object(self, a: int) -> Dict[str, str]:
        doc = self._doc
        labels: Dict[str, str] = {}
        for name, s, e in doc.members(a):
            if not _NAME.fullmatch(name):
                raise bad_request(f"couldn't parse labels: invalid label name {_clip(name)!r}")
            c = doc.buf[s]
            if c == 0x22:   # '"'
                labels[name] = doc.load(s, e)
            elif c == 0x7B or c == 0x5B:   # '{' '['
                raise bad_request(f"labels: the value of {name!r} must be a string")
            elif not doc.is_null(s):
                labels[name] = doc.text(s, e)   # numbers and booleans as written
        return labels

    def _check_line(self, line: Any, size: int, labels: Dict[str, str],
                    shown: List[str]) -> str:
        """``line`` must be a string of at most ``max_line`` UTF-8 bytes; ``size`` is an
        upper bound of that (its characters, or its JSON text) that spares encoding it."""
        if line is not None and not isinstance(line, str):
            raise bad_request("entry line: expected a string")
        if size > self._max_line:
            encoded = self._max_line + 1 if line is None else \
                len(line.encode("utf-8", "surrogatepass"))
            if encoded > self._max_line:
                if not shown:
                    shown.append(render_labels(labels))
                raise line_too_long(shown[0], size if line is None else encoded, self._max_line)
        assert line is not None
        return line

    def _value(self, a: int, b: int, labels: Dict[str, str], shown: List[str]) -> Record:
        doc = self._doc
        if doc.buf[a] != 0x5B:   # '['
            raise bad_request(_VALUE_SHAPE)
        if b - a <= self._max_line + MAX_METADATA:
            value = doc.load(a, b)   # small enough to build whole: one call
            if len(value) < 2:
                raise bad_request(_VALUE_SHAPE)
            stamp, line = value[0], value[1]
            metadata = value[2] if len(value) > 2 else None
            # an upper bound of its UTF-8 size (isascii() is a flag, not a scan)
            size = (len(line) if line.isascii() else 4 * len(line)) if isinstance(line, str) else 0
        else:   # a long line or large metadata: judge the parts before building them
            spans = list(doc.elements(a))
            if len(spans) < 2:
                raise bad_request(_VALUE_SHAPE)
            stamp = doc.load(*spans[0])
            line_a, line_b = spans[1]
            size = line_b - line_a - 2
            # escapes make the text at most 6x the string: measure the string unless even
            # that cannot fit
            line = None if size > 6 * self._max_line else doc.load(line_a, line_b)
            metadata = None
            if len(spans) > 2:
                meta_a, meta_b = spans[2]
                if meta_b - meta_a > MAX_METADATA:
                    raise bad_request(f"structured metadata of {meta_b - meta_a} bytes exceeds "
                                      f"the limit of {MAX_METADATA} bytes")
                metadata = doc.load(meta_a, meta_b)
        ns = _ns_string(stamp)
        if ns is None:
            raise bad_request(f"entry timestamp: expected a string of decimal nanoseconds, "
                              f"got {_clip(repr(stamp))}")
        line = self._check_line(line, size, labels, shown)
        event: Dict[str, Any] = {"line": line, "labels": labels}
        if metadata is not None:
            if not isinstance(metadata, dict) or \
                    not all(isinstance(v, str) for v in metadata.values()):
                raise bad_request("structured metadata: expected an object of strings")
            if metadata:
                event["structured_metadata"] = metadata
        return event, ns or self._received_ns, b - a

    def _entry(self, a: int, b: int, labels: Dict[str, str], shown: List[str]) -> Record:
        doc = self._doc
        members = doc.members(a)
        ts_a, ts_b = last(members, "ts", "timestamp")
        stamp = doc.load(ts_a, ts_b) if ts_a >= 0 else None
        ns = _kernels.active.parse_dt(stamp) if isinstance(stamp, str) else None
        if ns is None:
            raise bad_request("entry ts: expected an RFC 3339 time")
        line_a, line_b = last(members, "line")
        if line_a < 0:
            raise bad_request("entry line: expected a string")
        size = line_b - line_a - 2
        line = self._check_line(None if size > 6 * self._max_line else doc.load(line_a, line_b),
                                size, labels, shown)
        return {"line": line, "labels": labels}, ns or self._received_ns, b - a


_NS = re.compile(r"[+-]?[0-9]+")


def _ns_string(value: Any) -> Optional[int]:
    """A v1 timestamp: a string of decimal int64 nanoseconds (0 is a valid answer)."""
    if not isinstance(value, str) or not _NS.fullmatch(value):
        return None
    return ns_in_range(int(value))


__all__ = ["LokiJson", "NO_LABELS", "NO_STREAMS", "bad_request", "labels_too_long", "line_too_long",
           "parse_labels", "render_labels"]
