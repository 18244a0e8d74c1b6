"""Raw events as the JSON text a store keeps: no objects built.

A raw batch (:func:`fastingest.split`, ``StreamDecoder(raw=True)``) holds each event's
original bytes. A store that keeps JSON text takes them as they are, with two
exceptions, both cheap:

* JSON and NDJSON events are kept as sent, except that a line break between tokens
  (CR or LF, which JSON allows as whitespace; inside a string it must be escaped) is
  written as a space, so that every stored event is one line: NDJSON output
  (``fastingest tail``) and NATS messages of several events rely on it. Keys, values,
  spacing and number spelling are otherwise the client's (``1.50`` stays ``1.50``,
  a repeated key stays repeated: readers take the last one, as the codec does).
* MessagePack events are transcoded to JSON (:mod:`fastingest.transcode`), exactly as
  :func:`fastingest.jsonout.dumps` writes the decoded event.
"""
from __future__ import annotations

from typing import Callable, List

from . import _kernels
from .constants import KIND_MSGPACK

__all__ = ["json_text", "one_line"]

_BREAKS = bytes.maketrans(b"\r\n", b"  ")


def one_line(raw: List[bytes]) -> List[bytes]:
    """``raw`` (valid JSON texts) with every CR and LF byte written as a space; the list
    itself when none has one (the usual case: one scan of the whole batch)."""
    joined = b"".join(raw)
    if b"\n" not in joined and b"\r" not in joined:
        return raw
    return [text.translate(_BREAKS) if b"\n" in text or b"\r" in text else text
            for text in raw]


def _transcoded(raw: List[bytes]) -> List[bytes]:
    out: List[bytes] = _kernels.active.transcode.events_to_json(raw)
    return out


def json_text(kind: int) -> Callable[[List[bytes]], List[bytes]]:
    """What turns a raw batch of body format ``kind`` into the JSON text to store."""
    return _transcoded if kind == KIND_MSGPACK else one_line
