"""The distributed store: events published to a NATS JetStream stream.

    fastingest serve --store 'nats://127.0.0.1:4222?stream=FASTINGEST'
    fastingest serve --store 'nats://n1:4222,n2:4222,n3:4222?stream=EVENTS&replicas=3&max_age=30d'

Many ingestion servers (and several workers each) publish into one stream; consumers
read it with any NATS client, or ``fastingest tail --store nats://...``.

Every event is one message:

* subject ``<prefix>.<source>`` (``fastingest.app``; characters a subject token cannot
  hold — ``.``, ``*``, ``>``, whitespace, ``%``, anything outside ``[A-Za-z0-9_-]`` —
  are written ``%XX``, their UTF-8 bytes in hex);
* payload: the event as JSON (:func:`fastingest.jsonout.dumps`, as SQLite keeps it);
* headers ``Fastingest-Time`` (event time) and ``Fastingest-Received`` (reception
  time), both int64 ns since the epoch as decimal text, ``Fastingest-Source`` (the
  source name; ``%XX``-encoded beyond printable ASCII and for ``%`` itself), and
  ``Nats-Msg-Id: <source token>:<request id>:<event index>``.

How a request is kept, all or nothing as far as JetStream allows:

* **Buffered, then published.** ``add`` keeps the request's messages in memory (at
  most the body limit, 20 MiB by default); nothing is published before the body was
  read and accepted, so a request that fails to decode publishes nothing.
* **Acknowledged means stored.** ``commit`` publishes every message at once (one
  write to the socket, no round trip per event: the protocol frames are built here,
  which costs a fraction of nats-py's per-message ``publish``) and waits for all of
  JetStream's acknowledgements; only then does the server answer 202. NATS unreachable, an error
  acknowledgement or none within ``ack_timeout`` → :class:`StoreError` → 503.
* **Retries are de-duplicated.** JetStream drops a message whose ``Nats-Msg-Id`` it
  has seen within ``duplicate_window``. The request id is the client's
  ``Idempotency-Key`` (or ``X-Request-Id``) header, so a client that retries a 503
  with the same key gets every event stored exactly once — even when the first attempt
  was partly or wholly stored and only its acknowledgement was lost (JetStream has no
  multi-message transactions: a 503 means "not acknowledged", not "nothing stored").
  Without such a header each request gets a random id, and a retry is a new request.
* **Reconnects.** The connection reconnects forever (every ``reconnect_wait``
  seconds); while it is down requests fail fast with 503, and when NATS is back
  ingestion resumes on its own (the stream is created again if it went missing).

The stream is created on start if missing, with ``subjects=[<prefix>.>]`` and the
configured ``retention`` (``limits``, ``interest``, ``workqueue``), ``max_age``,
``max_bytes``, ``replicas``, ``storage`` and ``duplicate_window``; an existing stream
is used as it is. NATS's ``max_payload`` (1 MiB by default) must exceed the largest
event (``--max-event``) plus its headers, else such requests get 503.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import re
import sys
import uuid
from typing import (Any, AsyncIterator, Awaitable, Dict, List, Optional, Sequence, Tuple,
                    Union)
from urllib.parse import parse_qs, quote, unquote

from ...jsonout import dumps
from . import Store, StoreError, Transaction

log = logging.getLogger("fastingest.server")

MSG_ID = "Nats-Msg-Id"
TIME_HEADER = "Fastingest-Time"
RECEIVED_HEADER = "Fastingest-Received"
SOURCE_HEADER = "Fastingest-Source"

RETENTIONS = ("limits", "interest", "workqueue")
STORAGES = ("file", "memory")

_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Client request ids used verbatim in Nats-Msg-Id; anything else is hashed.
_PLAIN_ID = re.compile(r"[!-~]{1,128}")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*(ms|s|m|h|d)?", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def subject_token(source: str) -> str:
    """``source`` as one subject token: ``[A-Za-z0-9_-]`` kept, every other byte of its
    UTF-8 form written ``%XX``, so any source name maps to a distinct, valid token."""
    if _SAFE.fullmatch(source):
        return source
    out = []
    for ch in source:
        if _SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out) or "%"   # the empty source still needs a token


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``7d``, ``500ms`` → seconds (ValueError if not)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 2h, 7d)")
    return float(match.group(1)) * _SECONDS[(match.group(2) or "s").lower()]


def request_key(request_id: Optional[str]) -> str:
    """The request part of ``Nats-Msg-Id``: a short printable client id as it is, any
    other one hashed, and a random one when the client gave none."""
    if request_id is None:
        return uuid.uuid4().hex
    if _PLAIN_ID.fullmatch(request_id):
        return request_id
    return "h-" + hashlib.blake2b(request_id.encode("utf-8", "surrogateescape"),
                                  digest_size=16).hexdigest()


class _Acks:
    """The acknowledgements one commit still waits for; ``future`` settles once."""

    __slots__ = ("future", "left")

    def __init__(self, future: "asyncio.Future[Any]", left: int) -> None:
        self.future = future
        self.left = left

    def ack(self) -> None:
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(None)

    def fail(self, message: str) -> None:
        if not self.future.done():
            self.future.set_exception(StoreError(message))


class NATSStore(Store):
    """Events published to the JetStream stream ``stream``; see the module docstring.

    ``servers``: one URL or several (``nats://host:4222``; a cluster's members, for
    failover). ``prefix``: subjects are ``<prefix>.<source>``. ``retention``,
    ``max_age`` (seconds, 0 = forever), ``max_bytes`` (-1 = unlimited), ``replicas``,
    ``storage``, ``duplicate_window`` (seconds): used when the stream is created.
    ``ack_timeout``: seconds a commit may take to send its events and get every
    acknowledgement.
    ``connect_timeout``: per connection attempt; ``reconnect_wait``: between attempts.
    """

    def __init__(self, servers: Union[str, Sequence[str]] = "nats://127.0.0.1:4222", *,
                 stream: str = "FASTINGEST", prefix: str = "fastingest",
                 retention: str = "limits", max_age: float = 0.0, max_bytes: int = -1,
                 replicas: int = 1, storage: str = "file", duplicate_window: float = 120.0,
                 ack_timeout: float = 5.0, connect_timeout: float = 2.0,
                 reconnect_wait: float = 0.5) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        if not self.servers:
            raise ValueError("at least one NATS server URL is needed")
        if not _STREAM_NAME.fullmatch(stream):
            raise ValueError(f"stream name {stream!r}: use letters, digits, _ and -")
        if not _TOKEN.fullmatch(prefix):
            raise ValueError(f"subject prefix {prefix!r}: dot-separated tokens of "
                             "letters, digits, _ and -")
        retention, storage = retention.lower(), storage.lower()
        if retention not in RETENTIONS:
            raise ValueError(f"retention must be one of {', '.join(RETENTIONS)}")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}")
        if not (replicas >= 1 and max_age >= 0 and duplicate_window > 0 and ack_timeout > 0
                and connect_timeout > 0 and reconnect_wait >= 0):
            raise ValueError("replicas must be >= 1, durations positive")
        self.stream = stream
        self.prefix = prefix
        self.retention = retention
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.replicas = replicas
        self.storage = storage
        self.duplicate_window = duplicate_window
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_wait = reconnect_wait
        self._nc = None              # nats.aio.client.Client once open
        self._open_lock: Optional[asyncio.Lock] = None
        self._closed = False
        self._reply_prefix = ""
        self._tokens = itertools.count(1)
        self._waiting: Dict[str, _Acks] = {}    # reply token -> the commit it belongs to
        self._subjects: Dict[str, str] = {}      # source -> subject
        self._tasks: "set[asyncio.Task[Any]]" = set()

    @classmethod
    def from_url(cls, url: str) -> "NATSStore":
        """``nats://HOST:PORT[,HOST:PORT...][?stream=S&prefix=P&retention=limits&max_age=7d
        &max_bytes=N&replicas=3&storage=file&duplicate_window=2m&ack_timeout=5s
        &connect_timeout=2s&reconnect_wait=500ms]`` (``tls://`` for TLS)."""
        scheme, _, rest = url.partition("://")
        hosts, _, query = rest.partition("?")
        servers = [f"{scheme}://{h.strip()}" for h in hosts.split(",") if h.strip()]
        options: Dict[str, object] = {}
        for key, values in parse_qs(query, strict_parsing=bool(query)).items():
            value = unquote(values[-1])
            if key in ("stream", "prefix", "retention", "storage"):
                options[key] = value
            elif key in ("max_age", "duplicate_window", "ack_timeout", "connect_timeout",
                         "reconnect_wait"):
                options[key] = parse_duration(value)
            elif key in ("max_bytes", "replicas"):
                options[key] = int(value)
            else:
                raise ValueError(f"unknown nats store option {key!r}")
        return cls(servers, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"NATSStore({self.servers!r}, stream={self.stream!r}, prefix={self.prefix!r})"

    def subject(self, source: str) -> str:
        """The subject of ``source``'s events."""
        subject = self._subjects.get(source)
        if subject is None:
            subject = self._subjects[source] = f"{self.prefix}.{subject_token(source)}"
        return subject

    # -- Store -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (StoreError if no server answers) and create the stream if missing."""
        await self._connection()

    def begin(self, request_id: Optional[str] = None) -> "NATSTransaction":
        if self._closed:
            raise StoreError("the store is closed")
        return NATSTransaction(self, request_key(request_id))

    async def close(self) -> None:
        """Flush what is buffered and close the connection."""
        if self._closed:
            return
        self._closed = True
        nc, self._nc = self._nc, None
        for task in list(self._tasks):
            task.cancel()
        if nc is not None:
            try:
                await nc.drain()   # delivers pending acks, flushes, closes
            except Exception:
                await nc.close()
        for acks in set(self._waiting.values()):
            acks.fail("the store is closed")
        self._waiting.clear()

    # -- connection ----------------------------------------------------------------------

    async def _connection(self) -> Any:
        """The connected client; opens it on first use. StoreError while NATS is down."""
        nc = self._nc
        if nc is None:
            if self._closed:
                raise StoreError("the store is closed")
            if self._open_lock is None:
                self._open_lock = asyncio.Lock()
            async with self._open_lock:
                if self._nc is None:
                    self._nc = await self._connect()
            nc = self._nc
        if not nc.is_connected:  # type: ignore[attr-defined]
            raise StoreError(f"not connected to NATS ({', '.join(self.servers)}): "
                             "reconnecting")
        return nc

    async def _connect(self) -> Any:
        import nats
        nc = nats.NATS()  # type: ignore[attr-defined]
        try:
            # A bounded first attempt (every server twice): a server that cannot reach
            # NATS at start fails loudly instead of hanging; once connected it
            # reconnects forever (see below).
            await nc.connect(
                self.servers, name="fastingest", allow_reconnect=True,
                max_reconnect_attempts=1, reconnect_time_wait=self.reconnect_wait,  # type: ignore[arg-type]
                connect_timeout=self.connect_timeout,  # type: ignore[arg-type]
                ping_interval=10, max_outstanding_pings=3,   # a dead peer noticed in ~30 s
                error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected, closed_cb=self._on_closed)
        except Exception as exc:
            try:
                await nc.close()
            except Exception:
                pass
            raise StoreError(f"cannot connect to NATS at {', '.join(self.servers)}: "
                             f"{type(exc).__name__}: {exc}") from exc
        # Reconnect forever from now on (nats-py reads this option at every attempt):
        # a NATS restart must not need a server restart.
        nc.options["max_reconnect_attempts"] = -1
        try:
            self._reply_prefix = f"_INBOX.{uuid.uuid4().hex}."
            await nc.subscribe(self._reply_prefix + "*", cb=self._on_ack)
            await self._ensure_stream(nc)
        except Exception as exc:
            await nc.close()
            raise StoreError(f"NATS JetStream stream {self.stream!r} unusable: "
                             f"{type(exc).__name__}: {exc}") from exc
        log.info("NATS store: connected to %s, stream %s, subjects %s.>",
                 nc.connected_url.netloc if nc.connected_url else self.servers[0],
                 self.stream, self.prefix)
        return nc

    async def _ensure_stream(self, nc: Any) -> None:
        """Create the stream unless it exists (an existing one is left as it is)."""
        from nats.js import api
        from nats.js.errors import BadRequestError, NotFoundError
        js = nc.jetstream(timeout=max(self.ack_timeout, 5.0))
        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            config = api.StreamConfig(
                name=self.stream, subjects=[f"{self.prefix}.>"],
                retention=api.RetentionPolicy(self.retention),
                storage=api.StorageType(self.storage), num_replicas=self.replicas,
                max_age=self.max_age, max_bytes=self.max_bytes,
                duplicate_window=self.duplicate_window)
            try:
                await js.add_stream(config)
                log.info("NATS store: created stream %s", self.stream)
                return
            except BadRequestError:
                # Another server or worker created it at the same time: use theirs.
                info = await js.stream_info(self.stream)
        wanted = f"{self.prefix}.>"
        subjects = info.config.subjects or []
        if wanted not in subjects:
            log.warning("NATS store: stream %s has subjects %s, not %s: events may not be "
                        "kept (publishes will then fail with 503)",
                        self.stream, subjects, wanted)

    async def _on_error(self, exc: Exception) -> None:
        # nats-py reports every failed reconnection attempt here: too noisy for warning.
        log.debug("NATS: %s: %s", type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        if self._closed:
            return
        log.warning("NATS store: connection lost; answering 503 until it is back")
        # Nobody will acknowledge what was in flight: fail those commits now instead of
        # letting each wait for its ack_timeout.
        for acks in set(self._waiting.values()):
            acks.fail("NATS connection lost before every event was acknowledged")
        self._waiting.clear()

    async def _on_reconnected(self) -> None:
        nc = self._nc
        log.warning("NATS store: reconnected to %s",
                    nc.connected_url.netloc if nc is not None and nc.connected_url else "?")
        if nc is not None:
            # A NATS node restarted without its storage lost the stream: create it again.
            task = asyncio.get_running_loop().create_task(self._recreate(nc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _recreate(self, nc: Any) -> None:
        try:
            await self._ensure_stream(nc)
        except Exception as exc:
            log.error("NATS store: checking stream %s after reconnecting: %s: %s",
                      self.stream, type(exc).__name__, exc)

    async def _on_closed(self) -> None:
        if not self._closed:
            log.error("NATS store: connection closed for good")

    async def _on_ack(self, msg: Any) -> None:
        """JetStream's answer to one publish (the reply subject names it)."""
        acks = self._waiting.pop(msg.subject[len(self._reply_prefix):], None)
        if acks is None:
            return   # the commit already failed or timed out
        data = msg.data
        if data.startswith(b'{"stream"'):   # {"stream":..,"seq":..[,"duplicate":true]}
            acks.ack()
            return
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            acks.fail(f"no JetStream stream takes subject {msg.subject!r} "
                      f"(is stream {self.stream!r} there?)")
            return
        try:
            import orjson
            answer = orjson.loads(data)
        except Exception:
            answer = None
        if isinstance(answer, dict) and "error" not in answer and "seq" in answer:
            acks.ack()
        else:
            error = answer.get("error") if isinstance(answer, dict) else None
            acks.fail(f"JetStream refused an event: {error or data[:200]!r}")

    # -- publishing ------------------------------------------------------------------------

    async def _publish(self, messages: List["_Message"]) -> None:
        """Publish every message, wait for every acknowledgement; StoreError if not."""
        nc = await self._connection()
        limit = nc.max_payload
        loop = asyncio.get_running_loop()
        acks = _Acks(loop.create_future(), len(messages))
        waiting, prefix = self._waiting, self._reply_prefix.encode()
        tokens: List[bytes] = []
        try:
            frames = []
            for subject, headers, payload in messages:
                if len(headers) + len(payload) > limit:
                    raise StoreError(f"an event of {len(payload)} bytes is over the NATS "
                                     f"server's max_payload ({limit}): raise max_payload "
                                     "or lower --max-event")
                token = b"%d" % next(self._tokens)
                tokens.append(token)
                frames.append(b"HPUB %b %b%b %d %d\r\n%b%b\r\n" % (
                    subject, prefix, token, len(headers), len(headers) + len(payload),
                    headers, payload))
            for token in tokens:
                waiting[token.decode()] = acks
            if not nc.is_connected:   # lost while building: feed no reconnect buffer
                raise StoreError("NATS connection lost while publishing")
            # One deadline for sending and for the acknowledgements: a big request
            # waits for nats-py's flusher, which a lost connection may never run again.
            await _wait(self._send(nc, frames, messages, tokens, prefix, acks.future),
                        self.ack_timeout)
        except asyncio.TimeoutError:
            raise StoreError(f"JetStream did not acknowledge {acks.left} of "
                             f"{len(messages)} events within {self.ack_timeout:g} s") from None
        except StoreError:
            raise
        except Exception as exc:   # nats errors: connection closed, outbound buffer full...
            raise StoreError(f"publishing to NATS: {type(exc).__name__}: {exc}") from exc
        finally:
            for token in tokens:
                waiting.pop(token.decode(), None)
            if not acks.future.done():
                acks.future.cancel()
            elif not acks.future.cancelled():
                acks.future.exception()   # retrieved: no "never retrieved" warning


    @staticmethod
    async def _send(nc: Any, frames: List[bytes], messages: List["_Message"],
                    tokens: List[bytes], prefix: bytes, acked: "asyncio.Future[None]") -> None:
        send = getattr(nc, "_send_command", None)
        if send is not None:
            # The request's messages go out as one write: nats-py's publish() costs
            # ~6 µs per message (header validation and encoding); these frames are the
            # same protocol bytes, built once.
            await send(b"".join(frames))
            await nc._flush_pending()
        else:   # pragma: no cover - a nats-py without the internals used above
            for (subject, headers, payload), token in zip(messages, tokens):
                await nc.publish(subject.decode(), payload, reply=(prefix + token).decode(),
                                 headers=_header_dict(headers))
        await acked


#: One message: subject, header block (``NATS/1.0`` ... blank line), payload — bytes.
_Message = Tuple[bytes, bytes, bytes]

#: Printable ASCII but ``%``: kept as it is in the Fastingest-Source header.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_source(source: str) -> str:
    """``source`` as the Fastingest-Source header value: percent-encoded beyond
    printable ASCII (and ``%`` itself), so any name survives the header."""
    return quote(source, safe=_HEADER_SAFE)


def _headers(msg_id: str, time_ns: int, received: bytes, source: bytes) -> bytes:
    return (b"NATS/1.0\r\nNats-Msg-Id: %b\r\nFastingest-Time: %d\r\n"
            b"Fastingest-Received: %b\r\nFastingest-Source: %b\r\n\r\n"
            % (msg_id.encode(), time_ns, received, source))


def _header_dict(block: bytes) -> Dict[str, str]:
    out = {}
    for line in block.decode().split("\r\n")[1:]:
        if line:
            key, _, value = line.partition(": ")
            out[key] = value
    return out


if sys.version_info >= (3, 11):
    async def _wait(work: Awaitable[None], timeout: float) -> None:
        """``await work``, or TimeoutError after ``timeout`` seconds (work cancelled)."""
        async with asyncio.timeout(timeout):
            await work
else:   # pragma: no cover
    async def _wait(work: Awaitable[None], timeout: float) -> None:
        await asyncio.wait_for(work, timeout)


class NATSTransaction(Transaction):
    """The messages of one request, published together at commit."""

    __slots__ = ("_store", "request_key", "_messages", "_state")

    _OPEN, _DONE = range(2)

    def __init__(self, store: NATSStore, request_key: str) -> None:
        self._store = store
        self.request_key = request_key
        self._messages: List[_Message] = []
        self._state = self._OPEN

    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Sequence[int],
                  received_ns: int) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        # Fail fast while NATS is down: 503 now, without reading the rest of the body.
        await self._store._connection()
        subject = self._store.subject(source).encode()
        received = b"%d" % received_ns
        source_value = header_source(source).encode()
        base = f"{subject_token(source)}:{self.request_key}:"
        messages = self._messages
        index = len(messages)
        for event, time_ns in zip(events, times_ns):
            messages.append((subject, _headers(base + str(index), time_ns, received,
                                               source_value), dumps(event)))
            index += 1

    async def commit(self) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        self._state = self._DONE
        messages, self._messages = self._messages, []
        if messages:
            await self._store._publish(messages)

    async def abort(self) -> None:
        self._state = self._DONE
        self._messages = []


# -- reading: `fastingest tail` ------------------------------------------------------------

async def read_events(store: NATSStore, sources: Sequence[str] = (), since_ns: Optional[int] = None,
                      follow: bool = False) -> AsyncIterator[Tuple[str, int, int, bytes]]:
    """Stored events in stream order as ``(source, time_ns, received_ns, event JSON)``:
    all of them, or those of ``sources``, stored at or after ``since_ns``; with
    ``follow``, then every new one as it arrives (until cancelled). Uses an ordered,
    ephemeral consumer: nothing is acknowledged or removed."""
    import datetime

    import nats
    from nats.js import api
    try:
        nc = await nats.connect(store.servers, name="fastingest-tail",
                                connect_timeout=store.connect_timeout,
                                max_reconnect_attempts=1,
                                reconnect_time_wait=store.reconnect_wait,
                                error_cb=store._on_error)
    except Exception as exc:
        raise StoreError(f"cannot connect to NATS at {', '.join(store.servers)}: "
                         f"{type(exc).__name__}: {exc}") from exc
    if follow:   # connected once: from now on ride out NATS restarts (as the store does)
        nc.options["max_reconnect_attempts"] = -1
    try:
        js = nc.jetstream()
        wanted = set(sources)
        # One source: the server filters; several: one consumer, filtered here (a
        # consumer with several filter subjects needs NATS 2.10).
        subject = store.subject(sources[0]) if len(wanted) == 1 else f"{store.prefix}.>"
        config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
        if since_ns is not None:
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.datetime.fromtimestamp(since_ns / 1e9,
                                                               datetime.timezone.utc))
        try:
            sub = await js.subscribe(subject, stream=store.stream, ordered_consumer=True,
                                     config=config)
        except Exception as exc:
            raise StoreError(f"reading stream {store.stream!r}: {type(exc).__name__}: "
                             f"{exc}") from exc
        info = await sub.consumer_info()
        if not follow and info.num_pending == 0 and info.delivered.consumer_seq == 0:  # type: ignore[union-attr]
            return   # nothing stored (that matches)
        while True:
            try:
                msg = await sub.next_msg(timeout=None if follow else 30)
            except nats.errors.TimeoutError:
                raise StoreError("NATS stopped delivering the stream") from None
            headers = msg.headers or {}
            source = unquote(headers.get(SOURCE_HEADER, msg.subject[len(store.prefix) + 1:]))
            if not wanted or source in wanted:
                yield (source, int(headers.get(TIME_HEADER, 0)),
                       int(headers.get(RECEIVED_HEADER, 0)), msg.data)
            if not follow and msg.metadata.num_pending == 0:
                return
    finally:
        await nc.close()


__all__ = ["NATSStore", "NATSTransaction", "header_source", "parse_duration", "read_events",
           "request_key", "subject_token"]
