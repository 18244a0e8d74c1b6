"""Publishing a NATS transaction: windows of messages, a per-connection budget of bytes
in flight, JetStream's acknowledgements, and a deadline on every wait.

A commit reads its spool (:mod:`.natsspool`: the request's messages, each one or more
events) in order and builds their headers and protocol frames as it goes, in windows of
about ``WINDOW_BYTES``; each window has its own reply subject, to which JetStream
acknowledges every message of it. Before a window is sent, the bytes of
all windows sent on the connection and not yet acknowledged must leave room for it
within ``INFLIGHT_BYTES``: that bounds the memory of publishing whatever the request
size, and what may still land in the stream after a request failed. Acknowledgements
free the room as they come, so windows are pipelined; one window alone always fits.

Every wait (room in the budget, the last acknowledgements) ends after ``ack_timeout``
seconds without progress — no acknowledgement coming at all — with a ``StoreError``; a
disconnection or an error acknowledgement ends it at once. Nothing in here waits on
nats-py's forced flush (it swallows cancellation, so no deadline around it can hold):
the connection is made with ``pending_size=0`` (see ``NATSStore._connect``), and the
frames are handed to nats-py's buffer and flusher without waiting for them, as its own
``publish()`` does.
"""
from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set

from . import StoreError, StoreTooLarge
from .natsspool import Spool

if TYPE_CHECKING:   # pragma: no cover
    from .nats import NATSStore

#: Protocol frames written to the connection at once.
WINDOW_BYTES = 256 * 1024
#: Bytes published and not yet acknowledged, per connection: bounds the memory of
#: publishing, and what can still reach the stream after a request failed.
INFLIGHT_BYTES = 4 * 1024 * 1024
#: JetStream's error code for a message over the stream's max_msg_size.
TOO_LARGE_CODE = 10054
#: A protocol frame's bytes beyond subject, reply, headers and payload (an upper bound).
FRAME_OVERHEAD = 40

class _Commit:
    """One commit's progress: messages sent and acknowledged, its failure, the waits."""

    __slots__ = ("sent", "acked", "last_progress", "error", "windows", "wakeup")

    def __init__(self, now: float) -> None:
        self.sent = 0
        self.acked = 0
        self.last_progress = now    # last acknowledgement or send
        self.error: Optional[StoreError] = None
        self.windows: Set[str] = set()   # reply tokens still waited for
        self.wakeup: "Optional[asyncio.Future[None]]" = None

    def wake(self) -> None:
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    def fail(self, error: StoreError) -> None:
        if self.error is None:
            self.error = error
        self.wake()


class _Window:
    """Messages sent together: acknowledged one by one to one reply subject."""

    __slots__ = ("commit", "token", "left", "size")

    def __init__(self, commit: _Commit, token: str, count: int, size: int) -> None:
        self.commit = commit
        self.token = token   # of its reply subject
        self.left = count
        self.size = size     # bytes reserved in the in-flight budget


class Publisher:
    """The publishing state of one store's connection; see the module docstring."""

    def __init__(self, store: "NATSStore") -> None:
        self.store = store
        self.inflight = 0          # bytes sent and not yet acknowledged
        self._tokens = itertools.count(1)
        self._waiting: Dict[str, _Window] = {}   # reply token -> its window
        self._commits: Set[_Commit] = set()
        self._progress = 0.0       # loop time of the last acknowledgement
        self._room: "Optional[asyncio.Future[None]]" = None   # set when bytes are freed

    def fail_all(self, message: str) -> None:
        """Fail every commit in progress (the connection is lost, the store closed)."""
        for commit in list(self._commits):
            commit.fail(StoreError(message))

    async def publish(self, nc: Any, spool: Spool, id_middle: bytes) -> None:
        """Publish every message of ``spool`` on ``nc`` and wait for every
        acknowledgement; StoreError (StoreTooLarge) if not. ``id_middle`` is
        ``<key>:<digest>`` of the message ids."""
        store = self.store
        loop = asyncio.get_running_loop()
        commit = _Commit(loop.time())
        self._commits.add(commit)
        reply_prefix = store.reply_prefix.encode()
        cut = len(store.prefix) + 1   # subject -> its token
        # The protocol frames publish() would write, built here once per message
        # (nats-py's publish() costs ~6 µs per message); messages for publish() where
        # nats-py lacks the internals used (see _send).
        frames = getattr(nc, "_send_command", None) is not None \
            and getattr(nc, "_flush_queue", None) is not None
        last_subject: Optional[bytes] = None
        last_source: Optional[bytes] = None
        last_received = 0
        id_prefix = tail = b""
        try:
            token = str(next(self._tokens))
            reply = reply_prefix + token.encode()
            window: List[Any] = []
            size = 0
            for subject, source_value, received_ns, times, payload, index, _ in spool.records():
                if subject != last_subject:
                    last_subject = subject
                    id_prefix = b"%b:%b:" % (subject[cut:], id_middle)
                if source_value != last_source or received_ns != last_received:
                    last_source, last_received = source_value, received_ns
                    tail = (b"Fastingest-Received: %d\r\nFastingest-Source: %b\r\n\r\n"
                            % (received_ns, source_value))
                header = (b"NATS/1.0\r\nNats-Msg-Id: %b%d\r\nFastingest-Time: %b\r\n%b"
                          % (id_prefix, index, times, tail))
                if frames:
                    frame = b"HPUB %b %b %d %d\r\n%b%b\r\n" % (
                        subject, reply, len(header), len(header) + len(payload), header, payload)
                    window.append(frame)
                    size += len(frame)
                else:   # pragma: no cover - see _send
                    window.append((subject, header, payload))
                    size += len(subject) + len(header) + len(payload) + FRAME_OVERHEAD
                if size >= WINDOW_BYTES:
                    await self._send(nc, commit, token, window, size)
                    token = str(next(self._tokens))
                    reply = reply_prefix + token.encode()
                    window, size = [], 0
            if window:
                await self._send(nc, commit, token, window, size)
            await self._wait_acks(commit)
        except StoreError:
            raise
        except OSError as exc:   # the spool file
            raise StoreError(f"reading the request's spool: {exc}") from None
        except Exception as exc:   # nats errors: connection closed...
            raise StoreError(f"publishing to NATS: {type(exc).__name__}: "
                             f"{store.redact(str(exc))}") from None
        finally:
            self._commits.discard(commit)
            for token in list(commit.windows):
                self._end_window(self._waiting[token])

    def on_ack(self, msg: Any) -> None:
        """JetStream's answer to one publish (the reply subject names its window)."""
        store = self.store
        window = self._waiting.get(msg.subject[len(store.reply_prefix):])
        if window is None:
            return   # the commit already failed or timed out
        commit = window.commit
        data = msg.data
        if data.startswith(b'{"stream"'):   # {"stream":..,"seq":..[,"duplicate":true]}
            self._acked(window)
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            # No responders: no stream takes the subject (deleted, or never matched).
            commit.fail(StoreError(f"no JetStream stream takes the request's subjects (is "
                                   f"stream {store.stream!r} there?)"))
            store.check_stream()
            return
        try:
            import orjson
            answer = orjson.loads(data)
        except Exception:
            answer = None
        if isinstance(answer, dict) and "error" not in answer and "seq" in answer:
            self._acked(window)
            return
        error = answer.get("error") if isinstance(answer, dict) else None
        text = f"JetStream refused an event: {error or data[:200]!r}"
        if isinstance(error, dict) and error.get("err_code") == TOO_LARGE_CODE:
            commit.fail(StoreTooLarge(text))
        else:
            commit.fail(StoreError(text))
        store.check_stream()   # its limits may have changed: read them again

    def _acked(self, window: _Window) -> None:
        commit = window.commit
        self._progress = commit.last_progress = asyncio.get_running_loop().time()
        commit.acked += 1
        window.left -= 1
        if window.left == 0:
            self._end_window(window)
        if commit.acked == commit.sent:
            commit.wake()

    def _end_window(self, window: _Window) -> None:
        """The window needs no more acknowledgements: free its bytes."""
        self._waiting.pop(window.token, None)
        window.commit.windows.discard(window.token)
        self.inflight -= window.size
        window.size = 0
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    async def _send(self, nc: Any, commit: _Commit, token: str, window: List[Any],
                    size: int) -> None:
        """Send one window (frames, or messages) once the in-flight budget has room."""
        await self._reserve(commit, size)
        self._waiting[token] = _Window(commit, token, len(window), size)
        commit.windows.add(token)
        if commit.error is not None:
            raise commit.error
        if not nc.is_connected:   # lost meanwhile: feed no reconnect buffer
            raise StoreError("NATS connection lost while publishing")
        commit.sent += len(window)
        commit.last_progress = asyncio.get_running_loop().time()
        if window and isinstance(window[0], bytes):
            # Neither call waits: nats-py's buffer has no limit (pending_size=0) and its
            # flusher is only kicked when idle, as publish() does it.
            await nc._send_command(b"".join(window))
            if nc._flush_queue.empty():
                await nc._flush_pending()
        else:   # pragma: no cover - a nats-py without the internals used above
            reply = f"{self.store.reply_prefix}{token}"
            for subject, header, payload in window:
                await nc.publish(subject.decode(), payload, reply=reply,
                                 headers=header_dict(header))

    async def _reserve(self, commit: _Commit, size: int) -> None:
        """Wait until ``size`` more bytes fit in the in-flight budget (one window always
        fits an empty budget); StoreError after ``ack_timeout`` without progress."""
        loop = asyncio.get_running_loop()
        timeout = self.store.ack_timeout
        started = loop.time()
        while self.inflight and self.inflight + size > INFLIGHT_BYTES:
            if commit.error is not None:
                raise commit.error
            left = max(started, self._progress) + timeout - loop.time()
            if left <= 0:
                raise StoreError(f"JetStream acknowledged nothing for {timeout:g} s "
                                 f"({commit.acked} of this request's {commit.sent} events "
                                 "sent so far were)")
            if self._room is None:
                self._room = loop.create_future()
            commit.wakeup = loop.create_future()
            await asyncio.wait([self._room, commit.wakeup], timeout=left,
                               return_when=asyncio.FIRST_COMPLETED)
        self.inflight += size

    async def _wait_acks(self, commit: _Commit) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.store.ack_timeout
        while commit.acked < commit.sent and commit.error is None:
            left = commit.last_progress + timeout - loop.time()
            if left <= 0:
                raise StoreError(f"JetStream did not acknowledge {commit.sent - commit.acked} "
                                 f"of {commit.sent} events within {timeout:g} s")
            # The commit's own future, awaited with a timer (asyncio.wait costs several
            # times more, once per request).
            wakeup = commit.wakeup = loop.create_future()
            timer = loop.call_later(left, _release, wakeup)
            try:
                await wakeup
            finally:
                timer.cancel()
        if commit.error is not None:
            raise commit.error


def _release(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def header_dict(block: bytes) -> Dict[str, str]:
    """A header block (``NATS/1.0\\r\\nName: value\\r\\n...``) as a dict."""
    out = {}
    for line in block.decode().split("\r\n")[1:]:
        if line:
            key, _, value = line.partition(": ")
            out[key] = value
    return out


__all__ = ["FRAME_OVERHEAD", "INFLIGHT_BYTES", "Publisher", "TOO_LARGE_CODE", "WINDOW_BYTES",
           "header_dict"]
