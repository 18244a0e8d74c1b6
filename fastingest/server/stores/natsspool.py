"""A NATS transaction's events between ``add`` and ``commit``: compact, and on disk
beyond a threshold, so that a request's memory does not grow with its event count.

Nothing of a request may be published before its body was read and accepted (a decode
error must store nothing), so its events wait somewhere. Kept as ready messages they
cost ~5 KiB of Python objects each (2.6 M tiny events: 13 GB); here each is one record
of 12 bytes plus its JSON, in memory up to ``max_memory`` bytes and in an unlinked
temporary file (``tempfile``'s directory: ``$TMPDIR``) beyond. ``commit`` reads them
back in order, a piece at a time, and builds the messages as it publishes them.

Layout: per ``add`` a segment header (``<IIqI``: subject length, source header length,
reception time, event count), the subject and the source header value, then per event
``<qI`` (event time, JSON length) and the JSON.

The spool also keeps what the commit must check before publishing anything (message
count per subject, JSON bytes) and a digest of the events: their subjects and JSON, not
their times (an event without ``dt`` gets the reception time, which differs between
retries; its ``dt``, when it has one, is in its JSON).
"""
from __future__ import annotations

import hashlib
import struct
import tempfile
from typing import Any, Callable, Dict, Iterator, Sequence, Tuple

from ...jsonout import dumps

_SEGMENT = struct.Struct("<IIqI")
_EVENT = struct.Struct("<qI")
_LENGTH = struct.Struct("<I")

#: Bytes read from the spool file at a time when publishing.
READ_SIZE = 256 * 1024

#: One message to build: subject, source header value, reception time, event time,
#: JSON, its index in the request.
Record = Tuple[bytes, bytes, int, int, bytes, int]


class Spool:
    """The events of one transaction; see the module docstring."""

    __slots__ = ("_file", "count", "json_bytes", "per_subject", "_digest")

    def __init__(self, max_memory: int) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=max_memory)
        self.count = 0               # events
        self.json_bytes = 0          # their JSON
        self.per_subject: Dict[bytes, int] = {}
        self._digest = hashlib.blake2b(digest_size=16)

    def write(self, subject: bytes, source_value: bytes, received_ns: int,
              events: Sequence[Dict[str, Any]], times_ns: Sequence[int], longest: int,
              check: Callable[[int, int, bytes], None]) -> None:
        """Append the events of one ``add`` as JSON (OSError if the disk is full);
        ``check(index, time_ns, json)`` vets every event whose JSON is over ``longest``
        bytes (it raises to refuse one)."""
        n = len(events)
        if not n:
            return
        # A bytearray, not a list of parts: each JSON is copied in and dropped at once
        # (orjson hands out bytes that each hold ~4 KiB of memory however short).
        blob = bytearray(_SEGMENT.pack(len(subject), len(source_value), received_ns, n))
        blob += subject
        blob += source_value
        texts = bytearray()   # what the digest covers: subject, then each JSON and "\n"
        texts += _LENGTH.pack(len(subject))
        texts += subject
        pack = _EVENT.pack
        size = 0
        for i, (event, time_ns) in enumerate(zip(events, times_ns)):
            payload = dumps(event)
            length = len(payload)
            if length > longest:
                check(self.count + i, time_ns, payload)
            blob += pack(time_ns, length)
            blob += payload
            texts += payload
            texts += b"\n"   # never inside orjson's output: JSON escapes it
            size += length
        self._file.write(blob)
        self._digest.update(texts)
        self.count += n
        self.json_bytes += size
        self.per_subject[subject] = self.per_subject.get(subject, 0) + n

    def digest(self) -> bytes:
        """The digest of the events written so far."""
        return self._digest.digest()

    def records(self) -> Iterator[Record]:
        """Every event, in order (reads the file ``READ_SIZE`` bytes at a time)."""
        f = self._file
        f.seek(0)
        buf = b""
        pos = 0
        index = 0

        def need(n: int) -> None:
            nonlocal buf, pos
            while len(buf) - pos < n:
                more = f.read(max(READ_SIZE, n))
                if not more:
                    raise OSError("the spool file ended early")
                buf = buf[pos:] + more
                pos = 0

        event_size = _EVENT.size
        while True:
            if len(buf) - pos < _SEGMENT.size:
                more = f.read(READ_SIZE)
                if not more and len(buf) == pos:
                    return
                buf = buf[pos:] + more
                pos = 0
            need(_SEGMENT.size)
            subject_len, source_len, received_ns, n = _SEGMENT.unpack_from(buf, pos)
            pos += _SEGMENT.size
            need(subject_len + source_len)
            subject = buf[pos:pos + subject_len]
            source_value = buf[pos + subject_len:pos + subject_len + source_len]
            pos += subject_len + source_len
            for _ in range(n):
                if len(buf) - pos < event_size:
                    need(event_size)
                time_ns, length = _EVENT.unpack_from(buf, pos)
                pos += event_size
                if len(buf) - pos < length:
                    need(length)
                yield subject, source_value, received_ns, time_ns, buf[pos:pos + length], index
                pos += length
                index += 1

    def close(self) -> None:
        """Drop the events (the temporary file is deleted)."""
        self._file.close()


__all__ = ["READ_SIZE", "Record", "Spool"]
