"""A NATS transaction's messages between ``add`` and ``commit``: compact, and on disk
beyond a threshold, so that a request's memory does not grow with its event count.

Nothing of a request may be published before its body was read and accepted (a decode
error must store nothing), so its events wait somewhere. Kept as ready messages they
cost ~5 KiB of Python objects each (2.6 M tiny events: 13 GB); here they are records
of their messages' bytes: kept as they are while they fit in ``max_memory`` (with
``KEPT_OVERHEAD`` counted per message for its Python objects: the usual request is
published from there, never copied into a file and back), and all of them in an
unlinked temporary file (``tempfile``'s directory: ``$TMPDIR``) once they would not.
``commit`` reads them back in order, a piece at a time, and builds each message's
headers as it publishes.

**Messages.** Consecutive events of one source are packed into one message (the
consumer format: see :mod:`.nats`): its payload the events' JSON, one per line, its
``Fastingest-Time`` header their times, space-separated. A message closes before the
event that would take its payload over ``batch_bytes`` (or its events over
``BATCH_EVENTS``, or the whole message, headers included, over the largest message
NATS takes); ``batch_bytes=0`` makes every event a message of its own. Where messages
begin depends on nothing but the request's events (their sizes and order) and these
limits, never on how the body arrived, so a retried request is cut into the same
messages and JetStream recognises every one of them by its id.

File layout: per message ``<IIqIII>`` (subject length, source header length, reception
time, event count, times text length, payload length), the subject, the source header
value, the times text and the payload. The message being filled is kept in memory as
parts (at most ``batch_bytes`` plus one ``add``'s times text).

The spool also keeps what the commit must check before publishing anything (message
count in all and per subject, the bytes JetStream will count for them) and, when asked
(``digest``), a digest of the events: their subjects and JSON, not their times (an
event without ``dt`` gets the reception time, which differs between retries; its
``dt``, when it has one, is in its JSON).
"""
from __future__ import annotations

import hashlib
import struct
import tempfile
from typing import IO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ... import _kernels

_MESSAGE = struct.Struct("<IIqIII")
_LENGTH = struct.Struct("<I")

#: Bytes read from the spool file at a time when publishing.
READ_SIZE = 256 * 1024
#: Python's own bytes per message kept in memory (tuple, bytes and int objects),
#: counted against ``max_memory`` with the message's bytes.
KEPT_OVERHEAD = 256
#: Most events in one message (bounds the ``Fastingest-Time`` header: ~20 bytes each).
BATCH_EVENTS = 1000

#: One message to publish: subject, source header value, reception time, the events'
#: times (``Fastingest-Time``), payload, the index of its first event in the request,
#: its event count.
Record = Tuple[bytes, bytes, int, bytes, bytes, int, int]


class Spool:
    """The messages of one transaction; see the module docstring.

    ``batch_bytes``: payload bytes a message is filled up to (0: one event per message).
    ``overhead``: JetStream's own bytes per stored message (for :attr:`stored_bytes`).
    ``digest``: keep a digest of the events (:meth:`digest`); a transaction whose
    message ids need none (no client key) saves hashing every event's JSON.
    """

    __slots__ = ("_file", "_kept", "_kept_bytes", "max_memory", "batch_bytes", "overhead",
                 "count", "messages", "json_bytes", "stored_bytes", "per_subject", "_digest",
                 "_key", "_times", "_payload", "_events", "_first", "_room", "_payload_room",
                 "_header")

    def __init__(self, max_memory: int, batch_bytes: int = 0, overhead: int = 0,
                 digest: bool = True) -> None:
        # Closed messages: kept as records while they fit in max_memory (the usual
        # request: no copy into a file and back), then all of them in a temporary file.
        self._file: Optional[IO[bytes]] = None
        self._kept: List[Record] = []
        self._kept_bytes = 0
        self.max_memory = max_memory
        self.batch_bytes = batch_bytes
        self.overhead = overhead
        self.count = 0               # events
        self.messages = 0            # messages closed so far (see close_message)
        self.json_bytes = 0          # the events' JSON
        self.stored_bytes = 0        # what JetStream counts for the closed messages
        self.per_subject: Dict[bytes, int] = {}   # messages
        self._digest = hashlib.blake2b(digest_size=16) if digest else None
        # The message being filled: its (subject, source, received), parts (times
        # texts, each one or more space-separated times; JSON texts), its event count,
        # first index, the room left for its events (cost = time + JSON + 2
        # separators), its header.
        self._key: Optional[Tuple[bytes, bytes, int]] = None
        self._times: List[bytes] = []
        self._payload: List[bytes] = []
        self._events = 0
        self._first = 0
        self._room = 0
        self._payload_room = 0
        self._header = 0

    def write(self, subject: bytes, source_value: bytes, received_ns: int,
              texts: Sequence[bytes], times_ns: Sequence[int], header_base: int, limit: int,
              refuse: Callable[[int, int], None]) -> None:
        """Append the events of one ``add`` (their JSON ``texts``, one line each;
        OSError if the disk is full). ``header_base``: a message's header bytes but for
        its first event's index and the times; ``limit``: the largest message NATS
        takes. ``refuse(json_length, message_size)`` is called (to raise) for an event
        that does not fit in a message of its own."""
        n = len(texts)
        if not n:
            return
        key = (subject, source_value, received_ns)
        stamps = _kernels.active.timestamps.format_times(times_ns)   # space-separated
        batch = self.batch_bytes
        if batch and self._key in (None, key):
            # Whole: when every event fits in the message being filled (or a new one),
            # it takes them all at once — the same cuts as one by one, without a
            # Python loop per event (a request's add usually fits).
            opened = self._key is None
            if opened:
                self._open(key, self.count, header_base, limit)
            json_total = sum(map(len, texts))
            # as one by one: each time's digits + JSON + 2 separators (stamps has n-1 spaces)
            cost = len(stamps) + 1 + json_total + n
            if cost <= self._room and json_total + n <= self._payload_room \
                    and self._events + n <= BATCH_EVENTS:
                self._times.append(stamps)
                self._payload += texts
                self._events += n
                self._room -= cost
                self._payload_room -= json_total + n
                self.json_bytes += json_total
                if self._digest is not None:
                    self._digest.update(_LENGTH.pack(len(subject)) + subject
                                        + b"\n".join(texts) + b"\n")
                self.count += n
                return
            if opened:   # one by one below, each message opened by its first event
                self._key = None
        each = stamps.split(b" ")
        digest = bytearray(_LENGTH.pack(len(subject)))
        digest += subject
        for i in range(n):
            text, stamp = texts[i], each[i]
            cost = len(stamp) + len(text) + 2
            if self._key is not None and (
                    key != self._key or cost > self._room or batch == 0
                    or len(text) + 1 > self._payload_room or self._events >= BATCH_EVENTS):
                self.close_message()
            if self._key is None:   # a new message, first event: it must fit alone
                self._open(key, self.count + i, header_base, limit)
                if cost > self._room:
                    refuse(len(text), self._header + cost - 2)
            self._times.append(stamp)
            self._payload.append(text)
            self._events += 1
            self._room -= cost
            self._payload_room -= len(text) + 1
            self.json_bytes += len(text)
            if self._digest is not None:
                digest += text
                digest += b"\n"   # never inside a stored event: each is one line
        if self._digest is not None:
            self._digest.update(digest)
        self.count += n

    def _open(self, key: Tuple[bytes, bytes, int], first: int, header_base: int,
              limit: int) -> None:
        """Begin a message whose first event is the request's ``first``."""
        self._key = key
        self._first = first
        self._header = header_base + len(b"%d" % first)
        self._room = limit - self._header + 2
        self._payload_room = self.batch_bytes + 1

    def close_message(self) -> None:
        """Close the message being filled (if any): kept, or written to the file."""
        if self._key is None:
            return
        subject, source_value, received_ns = self._key
        times = self._times[0] if len(self._times) == 1 else b" ".join(self._times)
        payload = b"\n".join(self._payload)
        record = (subject, source_value, received_ns, times, payload, self._first,
                  self._events)
        self.messages += 1
        self.stored_bytes += len(subject) + self._header + len(times) + len(payload) + \
            self.overhead
        self.per_subject[subject] = self.per_subject.get(subject, 0) + 1
        self._key = None
        self._times, self._payload, self._events = [], [], 0
        size = len(subject) + len(source_value) + len(times) + len(payload) + KEPT_OVERHEAD
        if self._file is None and self._kept_bytes + size <= self.max_memory:
            self._kept.append(record)
            self._kept_bytes += size
            return
        if self._file is None:   # over max_memory: every message goes to the file
            self._file = tempfile.TemporaryFile()
            kept, self._kept, self._kept_bytes = self._kept, [], 0
            for one in kept:
                self._spill(one)
        self._spill(record)

    def _spill(self, record: Record) -> None:
        subject, source_value, received_ns, times, payload, _, n = record
        assert self._file is not None
        self._file.write(_MESSAGE.pack(len(subject), len(source_value), received_ns, n,
                                       len(times), len(payload)))
        self._file.write(subject + source_value + times + payload)

    def digest(self) -> bytes:
        """The digest of the events written so far (a spool made with ``digest``)."""
        if self._digest is None:
            raise ValueError("this spool keeps no digest")
        return self._digest.digest()

    def records(self) -> Iterator[Record]:
        """Every message, in order (reads the file ``READ_SIZE`` bytes at a time);
        call :meth:`close_message` first."""
        if self._file is None:
            yield from self._kept
            return
        f = self._file
        f.seek(0)
        buf = b""
        pos = 0
        first = 0

        def need(n: int) -> None:
            nonlocal buf, pos
            while len(buf) - pos < n:
                more = f.read(max(READ_SIZE, n))
                if not more:
                    raise OSError("the spool file ended early")
                buf = buf[pos:] + more
                pos = 0

        while True:
            if len(buf) - pos < _MESSAGE.size:
                more = f.read(READ_SIZE)
                if not more and len(buf) == pos:
                    return
                buf = buf[pos:] + more
                pos = 0
            need(_MESSAGE.size)
            subject_len, source_len, received_ns, n, times_len, payload_len = \
                _MESSAGE.unpack_from(buf, pos)
            pos += _MESSAGE.size
            need(subject_len + source_len + times_len + payload_len)
            end = pos + subject_len
            subject = buf[pos:end]
            source_value = buf[end:end + source_len]
            end += source_len
            times = buf[end:end + times_len]
            end += times_len
            payload = buf[end:end + payload_len]
            pos = end + payload_len
            yield subject, source_value, received_ns, times, payload, first, n
            first += n

    def close(self) -> None:
        """Drop the events (the temporary file is deleted)."""
        self._kept = []
        if self._file is not None:
            self._file.close()


__all__ = ["BATCH_EVENTS", "KEPT_OVERHEAD", "READ_SIZE", "Record", "Spool"]
