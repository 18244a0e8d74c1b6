"""The distributed store: events published to a NATS JetStream stream.

    fastingest serve --store 'nats://127.0.0.1:4222?stream=FASTINGEST'
    fastingest serve --store 'nats://n1:4222,n2:4222,n3:4222?stream=EVENTS&replicas=3&max_age=30d'

Many ingestion servers (and several workers each) publish into one stream; consumers
read it with any NATS client, or ``fastingest tail --store nats://...``.

A message holds consecutive events of one request (``batch_bytes`` of them, 64 KiB
by default; at most 1000 events; ``batch_bytes=0``: one event per message):

* subject ``<prefix>.<source>`` (``fastingest.app``; characters a subject token cannot
  hold — ``.``, ``*``, ``>``, whitespace, ``%``, anything outside ``[A-Za-z0-9_-]`` —
  are written ``%XX``, their UTF-8 bytes in hex);
* payload: the events as JSON, one per line (``\n`` between them, none after the last;
  each event one line, as SQLite keeps it: the original bytes of a JSON or NDJSON event,
  anything else written by :func:`fastingest.jsonout.dumps`). A message of one event
  is that event's JSON;
* headers ``Fastingest-Time`` (the events' times, in order, separated by one space)
  and ``Fastingest-Received`` (reception time), all int64 ns since the epoch as decimal
  text, ``Fastingest-Source`` (the source name; ``%XX``-encoded beyond printable ASCII
  and for ``%`` itself), and ``Nats-Msg-Id`` (below).

Several events per message: JetStream stores, acknowledges and de-duplicates a message,
and nats-py hands each acknowledgement to Python, so one message per event cost ~11 µs
of server CPU per event and kept the store below SQLite's speed (benchmarks/README.md,
"NATS: events per message").

How a request is kept, all or nothing as far as JetStream allows:

* **Spooled, then published.** ``add`` writes the request's messages to a compact spool
  (:mod:`.natsspool`: the JSON and time of each event, on disk beyond ``spool_bytes``);
  nothing is published before the body was read and accepted, so a request that fails
  to decode publishes nothing, and memory does not grow with the event count.
* **Checked before publishing.** The stream's limits are read when the store opens
  (and again after it is recreated): a request that can never fit whole — an event
  over the stream's ``max_msg_size`` or the server's ``max_payload`` (in a message of
  its own), more messages or bytes than ``max_msgs``, ``max_bytes`` or
  ``max_msgs_per_subject`` allow (counted as JetStream counts: messages) — is refused
  with :class:`~fastingest.server.stores.StoreTooLarge` (413) before anything is sent.
  On a ``discard=new`` stream with such limits, a request that does not fit in the room
  left gets 503 before anything is sent (the stream's state is asked at each commit).
  Never a 202 for events the stream would drop at once.
* **Acknowledged means stored.** ``commit`` publishes in windows of about 256 KiB
  (protocol frames built here: nats-py's ``publish()`` costs ~6 µs per message), with
  at most ``INFLIGHT_BYTES`` per connection published and not yet acknowledged, and
  waits for every one of JetStream's acknowledgements; only then does the server answer
  202. NATS unreachable, an error acknowledgement, or ``ack_timeout`` seconds without
  any progress (no acknowledgement while the request waits for one) →
  :class:`~fastingest.server.stores.StoreError` → 503. Every wait has that deadline.
* **Retries are de-duplicated, and only true retries.** The message id is
  ``<source token>:<key>:<digest>:<index>``: the client's ``Idempotency-Key``, a digest
  of the request (its body as sent, given by the server; else of the events), and the
  position of the message's first event in the request (messages are cut by the events'
  sizes alone, so a retry is cut alike — given the same ``batch_bytes`` and NATS
  message size limit on every server). JetStream drops a message whose id it has seen within
  ``duplicate_window``, so a client that retries a 503 with the same key and body gets
  every event stored once — even when the first attempt was partly or wholly stored
  and only its acknowledgement was lost (JetStream has no multi-message transactions:
  a 503 means "not acknowledged", not "nothing stored"). The same key with another
  body is another request, stored (never silently dropped), so nobody can pre-empt
  another client's key either. After ``duplicate_window`` a retry is stored again.
  Without a key each request gets a random key and the digest ``0`` * 32 (the random
  key names it alone; hashing the events would cost ~0.27 µs each).
* **Reconnects.** The connection reconnects forever (every ``reconnect_wait``
  seconds); while it is down requests fail fast with 503, and when NATS is back
  ingestion resumes on its own. A stream that went missing is created again on
  reconnecting and on the first "no stream" answer to a publish.

The stream is created on start if missing, with ``subjects=[<prefix>.>]`` and the
configured ``retention`` (``limits``, ``interest``, ``workqueue``), ``max_age``,
``max_bytes``, ``max_msgs``, ``max_msg_size``, ``discard`` (``new`` by default: a full
stream refuses rather than evicts), ``replicas``, ``storage`` and ``duplicate_window``;
an existing stream is used as it is (its limits are read and honoured).

Credentials never appear in logs, errors or ``repr``: URLs are printed through
:func:`~fastingest.server.stores.redact_url`. They can stay off the command line:
``FASTINGEST_NATS_USER``/``FASTINGEST_NATS_PASSWORD`` or ``FASTINGEST_NATS_TOKEN``
in the environment, or ``?creds=FILE`` (a NATS ``.creds`` file: JWT and NKey seed) or
``?nkey=FILE`` (an NKey seed) in the URL.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import uuid
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs, quote, unquote

from ...jsonout import dumps_each
from . import Store, StoreError, StoreTooLarge, Transaction, redact, redact_url
from .natspublish import Publisher
from .natsspool import Spool

log = logging.getLogger("fastingest.server")

MSG_ID = "Nats-Msg-Id"
TIME_HEADER = "Fastingest-Time"
RECEIVED_HEADER = "Fastingest-Received"
SOURCE_HEADER = "Fastingest-Source"

RETENTIONS = ("limits", "interest", "workqueue")
STORAGES = ("file", "memory")
DISCARDS = ("new", "old")

#: Environment variables with credentials for servers whose URL has none.
USER_ENV = "FASTINGEST_NATS_USER"
PASSWORD_ENV = "FASTINGEST_NATS_PASSWORD"
TOKEN_ENV = "FASTINGEST_NATS_TOKEN"

#: A request's spool in memory before it goes to a temporary file.
SPOOL_BYTES = 1024 * 1024
#: Payload bytes a message is filled up to with a request's events (``batch_bytes``;
#: benchmarks/README.md, "NATS: events per message").
BATCH_BYTES = 64 * 1024
#: The digest part of the message ids of a request without a client key (its random key
#: alone names it).
NO_DIGEST = "0" * 32
#: Seconds between two attempts to recreate a missing stream.
RECREATE_INTERVAL = 1.0

_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: Client request ids used verbatim in Nats-Msg-Id; anything else is hashed.
_PLAIN_ID = re.compile(r"[!-~]{1,128}")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)\s*(ms|s|m|h|d)?", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: The header block's fixed bytes: "NATS/1.0\r\n", four "Name: " and "\r\n", the blank line.
_HEADER_FIXED = len(b"NATS/1.0\r\nNats-Msg-Id: \r\nFastingest-Time: \r\n"
                    b"Fastingest-Received: \r\nFastingest-Source: \r\n\r\n")
#: JetStream's own bytes per stored message beyond subject, headers and payload
#: (record length, sequence, timestamp, subject and header lengths, hash).
_FILE_OVERHEAD = 22 + 4 + 8
_MEMORY_OVERHEAD = 16


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
        return os.urandom(16).hex()
    if _PLAIN_ID.fullmatch(request_id):
        return request_id
    return "h-" + hashlib.blake2b(request_id.encode("utf-8", "surrogateescape"),
                                  digest_size=16).hexdigest()


class StreamLimits:
    """What the stream holds at most (-1: no limit), read from its configuration."""

    __slots__ = ("max_msg_size", "max_bytes", "max_msgs", "max_msgs_per_subject",
                 "discard_new", "overhead")

    def __init__(self, max_msg_size: int = -1, max_bytes: int = -1, max_msgs: int = -1,
                 max_msgs_per_subject: int = -1, discard_new: bool = False,
                 memory: bool = False) -> None:
        self.max_msg_size = max_msg_size
        self.max_bytes = max_bytes
        self.max_msgs = max_msgs
        self.max_msgs_per_subject = max_msgs_per_subject
        self.discard_new = discard_new
        self.overhead = _MEMORY_OVERHEAD if memory else _FILE_OVERHEAD

    @classmethod
    def of(cls, config: Any) -> "StreamLimits":
        """The limits of a nats-py ``StreamConfig``."""
        def limit(value: Optional[int]) -> int:
            return -1 if value is None or value <= 0 else int(value)
        return cls(limit(config.max_msg_size), limit(config.max_bytes),
                   limit(config.max_msgs), limit(config.max_msgs_per_subject),
                   str(getattr(config.discard, "value", config.discard)) == "new",
                   str(getattr(config.storage, "value", config.storage)) == "memory")

    @property
    def fill_checked(self) -> bool:
        """A full stream refuses messages: check the room left before publishing."""
        return self.discard_new and (self.max_bytes >= 0 or self.max_msgs >= 0)


class NATSStore(Store):
    """Events published to the JetStream stream ``stream``; see the module docstring.

    ``servers``: one URL or several (``nats://host:4222``; a cluster's members, for
    failover; ``nats://user:password@host`` or ``nats://token@host`` for credentials).
    ``prefix``: subjects are ``<prefix>.<source>``. ``retention``, ``max_age`` (seconds,
    0 = forever), ``max_bytes``, ``max_msgs``, ``max_msg_size`` (-1 = unlimited),
    ``discard`` (``new``: a full stream refuses, ``old``: it evicts its oldest),
    ``replicas``, ``storage``, ``duplicate_window`` (seconds): used when the stream is
    created. ``ack_timeout``: seconds a commit may wait without any acknowledgement
    coming. ``connect_timeout``: per connection attempt; ``reconnect_wait``: between
    attempts. ``user``/``password``, ``token``, ``creds`` (a ``.creds`` file) or
    ``nkey`` (an NKey seed file): credentials for servers whose URL has none.
    ``spool_bytes``: a request's events kept in memory before its spool goes to disk.
    ``batch_bytes``: a message's payload is filled with events up to this many bytes (0:
    one event per message); every server sharing a stream should use the same value, so
    that a retry through another one is cut into the same messages.

    Events are kept as JSON text (``raw_json``): the server hands over the original
    bytes of JSON and NDJSON events (``add_raw``), objects are written by
    :func:`fastingest.jsonout.dumps`.
    """

    raw_json = True

    def __init__(self, servers: Union[str, Sequence[str]] = "nats://127.0.0.1:4222", *,
                 stream: str = "FASTINGEST", prefix: str = "fastingest",
                 retention: str = "limits", max_age: float = 0.0, max_bytes: int = -1,
                 max_msgs: int = -1, max_msg_size: int = -1, discard: str = "new",
                 replicas: int = 1, storage: str = "file", duplicate_window: float = 120.0,
                 ack_timeout: float = 5.0, connect_timeout: float = 2.0,
                 reconnect_wait: float = 0.5, user: Optional[str] = None,
                 password: Optional[str] = None, token: Optional[str] = None,
                 creds: Optional[str] = None, nkey: Optional[str] = None,
                 spool_bytes: int = SPOOL_BYTES, batch_bytes: int = BATCH_BYTES) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        if not self.servers:
            raise ValueError("at least one NATS server URL is needed")
        if not _STREAM_NAME.fullmatch(stream):
            raise ValueError(f"stream name {stream!r}: use letters, digits, _ and -")
        if not _TOKEN.fullmatch(prefix):
            raise ValueError(f"subject prefix {prefix!r}: dot-separated tokens of "
                             "letters, digits, _ and -")
        retention, storage, discard = retention.lower(), storage.lower(), discard.lower()
        if retention not in RETENTIONS:
            raise ValueError(f"retention must be one of {', '.join(RETENTIONS)}")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}")
        if discard not in DISCARDS:
            raise ValueError(f"discard must be one of {', '.join(DISCARDS)}")
        if not (replicas >= 1 and max_age >= 0 and duplicate_window > 0 and ack_timeout > 0
                and connect_timeout > 0 and reconnect_wait >= 0 and spool_bytes >= 0
                and batch_bytes >= 0):
            raise ValueError("replicas must be >= 1, durations positive, sizes not negative")
        for name, path in (("creds", creds), ("nkey", nkey)):
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{name} file {path!r} not found")
        self.stream = stream
        self.prefix = prefix
        self.retention = retention
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.max_msgs = max_msgs
        self.max_msg_size = max_msg_size
        self.discard = discard
        self.replicas = replicas
        self.storage = storage
        self.duplicate_window = duplicate_window
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_wait = reconnect_wait
        self.spool_bytes = spool_bytes
        self.batch_bytes = batch_bytes
        self._auth = {key: value for key, value in (
            ("user", user), ("password", password), ("token", token),
            ("user_credentials", creds), ("nkeys_seed", nkey)) if value is not None}
        #: Secrets to scrub from any text logged (beside URLs' user information).
        self._secrets = [s for s in (password, token) if s]
        for server in self.servers:
            info = server.partition("://")[2].partition("@")
            if info[1]:
                self._secrets += [p for p in info[0].partition(":")[::2] if len(p) > 3][-1:]
        self.limits = StreamLimits()   # until the stream is known
        self._nc = None              # nats.aio.client.Client once open
        self._open_lock: Optional[asyncio.Lock] = None
        self._closed = False
        #: Acknowledgements come to <reply_prefix><window token>.
        self.reply_prefix = ""
        self._publisher = Publisher(self)
        self._subjects: Dict[str, str] = {}      # source -> subject
        self._tasks: "set[asyncio.Task[Any]]" = set()
        self._recreated_at = -RECREATE_INTERVAL

    @classmethod
    def from_url(cls, url: str) -> "NATSStore":
        """``nats://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][?stream=S&prefix=P
        &retention=limits&max_age=7d&max_bytes=N&max_msgs=N&max_msg_size=N&discard=new
        &replicas=3&storage=file&duplicate_window=2m&ack_timeout=5s&connect_timeout=2s
        &reconnect_wait=500ms&creds=FILE&nkey=FILE&spool_bytes=N&batch_bytes=N]`` (``tls://`` for
        TLS); credentials also from ``FASTINGEST_NATS_USER``/``_PASSWORD``/``_TOKEN``."""
        scheme, _, rest = url.partition("://")
        hosts, _, query = rest.partition("?")
        servers = [f"{scheme}://{h.strip()}" for h in hosts.split(",") if h.strip()]
        options: Dict[str, object] = {}
        for key, values in parse_qs(query, strict_parsing=bool(query)).items():
            value = unquote(values[-1])
            if key in ("stream", "prefix", "retention", "storage", "discard", "creds", "nkey"):
                options[key] = value
            elif key in ("max_age", "duplicate_window", "ack_timeout", "connect_timeout",
                         "reconnect_wait"):
                options[key] = parse_duration(value)
            elif key in ("max_bytes", "max_msgs", "max_msg_size", "replicas", "spool_bytes",
                         "batch_bytes"):
                options[key] = int(value)
            else:
                raise ValueError(f"unknown nats store option {key!r}")
        for key, name in (("user", USER_ENV), ("password", PASSWORD_ENV), ("token", TOKEN_ENV)):
            if os.environ.get(name):
                options[key] = os.environ[name]
        return cls(servers, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (f"NATSStore({[redact_url(s) for s in self.servers]!r}, "
                f"stream={self.stream!r}, prefix={self.prefix!r})")

    def where(self) -> str:
        """The servers, fit to print (credentials redacted)."""
        return ", ".join(redact_url(s) for s in self.servers)

    def redact(self, text: str) -> str:
        """``text`` without any credential of this store."""
        return redact(text, self._secrets)

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
        return NATSTransaction(self, request_id)

    async def close(self) -> None:
        """Flush what is buffered and close the connection."""
        if self._closed:
            return
        self._closed = True
        nc, self._nc = self._nc, None
        for task in list(self._tasks):
            task.cancel()
        self._publisher.fail_all("the store is closed")
        if nc is not None:
            try:
                await nc.drain()   # delivers pending acks, flushes, closes
            except Exception as exc:
                try:
                    await nc.close()
                except Exception as again:
                    log.warning("NATS store: closing the connection: %s: %s (after %s)",
                                type(again).__name__, self.redact(str(again)),
                                self.redact(str(exc)))

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
            raise StoreError(f"not connected to NATS ({self.where()}): reconnecting")
        return nc

    def connect_options(self) -> Dict[str, Any]:
        """What :func:`nats.connect` gets besides the servers and callbacks."""
        return dict(self._auth, connect_timeout=self.connect_timeout,
                    reconnect_time_wait=self.reconnect_wait)

    async def _connect(self) -> Any:
        import nats
        nc = nats.NATS()  # type: ignore[attr-defined]
        try:
            # A bounded first attempt (every server twice): a server that cannot reach
            # NATS at start fails loudly instead of hanging; once connected it
            # reconnects forever (see below). pending_size=0: nothing is buffered while
            # disconnected, and nats-py never forces a flush (its forced flush swallows
            # cancellation, so a deadline could not hold); INFLIGHT_BYTES bounds what
            # waits in its buffer instead.
            await nc.connect(
                self.servers, name="fastingest", allow_reconnect=True,
                max_reconnect_attempts=1, pending_size=0,
                ping_interval=10, max_outstanding_pings=3,   # a dead peer noticed in ~30 s
                error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected, closed_cb=self._on_closed,
                **self.connect_options())
        except Exception as exc:
            await _close_quietly(nc)
            raise StoreError(f"cannot connect to NATS at {self.where()}: "
                             f"{type(exc).__name__}: {self.redact(str(exc))}") from None
        # Reconnect forever from now on (nats-py reads this option at every attempt):
        # a NATS restart must not need a server restart.
        nc.options["max_reconnect_attempts"] = -1
        try:
            self.reply_prefix = f"_INBOX.{uuid.uuid4().hex}."
            await nc.subscribe(self.reply_prefix + "*", cb=self._on_ack)
            await self._ensure_stream(nc)
        except Exception as exc:
            await _close_quietly(nc)
            raise StoreError(f"NATS JetStream stream {self.stream!r} unusable: "
                             f"{type(exc).__name__}: {self.redact(str(exc))}") from None
        log.info("NATS store: connected to %s, stream %s, subjects %s.>",
                 _host(nc), self.stream, self.prefix)
        return nc

    async def _ensure_stream(self, nc: Any) -> None:
        """Create the stream unless it exists (an existing one is left as it is); read
        its limits."""
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
                max_age=self.max_age, max_bytes=self.max_bytes, max_msgs=self.max_msgs,
                max_msg_size=self.max_msg_size, discard=api.DiscardPolicy(self.discard),
                duplicate_window=self.duplicate_window)
            try:
                info = await js.add_stream(config)
                log.info("NATS store: created stream %s", self.stream)
            except BadRequestError as exc:
                # Another server or worker created it at the same time (with another
                # configuration): use theirs. Anything else (overlapping subjects...)
                # is the error to report.
                try:
                    info = await js.stream_info(self.stream)
                except NotFoundError:
                    raise StoreError(f"creating stream {self.stream!r}: "
                                     f"{exc.description or exc}") from None
        self.limits = StreamLimits.of(info.config)
        wanted = f"{self.prefix}.>"
        subjects = info.config.subjects or []
        if wanted not in subjects:
            log.warning("NATS store: stream %s has subjects %s, not %s: events may not be "
                        "kept (publishes will then fail with 503)",
                        self.stream, subjects, wanted)
        if info.config.no_ack:
            log.warning("NATS store: stream %s acknowledges nothing (no_ack): every "
                        "request will time out", self.stream)

    async def _on_error(self, exc: Exception) -> None:
        # nats-py reports every failed reconnection attempt here: too noisy for warning.
        log.debug("NATS: %s: %s", type(exc).__name__, self.redact(str(exc)))

    async def _on_disconnected(self) -> None:
        if self._closed:
            return
        log.warning("NATS store: connection lost; answering 503 until it is back")
        # Nobody will acknowledge what was in flight: fail those commits now instead of
        # letting each wait for its ack_timeout.
        self._publisher.fail_all("NATS connection lost before every event was acknowledged")

    async def _on_reconnected(self) -> None:
        nc = self._nc
        log.warning("NATS store: reconnected to %s", _host(nc))
        # A NATS node restarted without its storage lost the stream: create it again.
        self.check_stream(force=True)

    async def _on_ack(self, msg: Any) -> None:
        self._publisher.on_ack(msg)

    def check_stream(self, force: bool = False) -> None:
        """Check (and create) the stream in the background, at most once per
        RECREATE_INTERVAL unless ``force``."""
        nc = self._nc
        loop = asyncio.get_running_loop()
        if nc is None or self._closed or not force \
                and loop.time() - self._recreated_at < RECREATE_INTERVAL:
            return
        self._recreated_at = loop.time()
        task = loop.create_task(self._recreate_now(nc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recreate_now(self, nc: Any) -> None:
        try:
            await self._ensure_stream(nc)
        except Exception as exc:
            log.error("NATS store: checking stream %s: %s: %s",
                      self.stream, type(exc).__name__, self.redact(str(exc)))

    async def _on_closed(self) -> None:
        if not self._closed:
            log.error("NATS store: connection closed for good")

    # -- publishing ------------------------------------------------------------------------

    def message_limit(self, nc: Any) -> int:
        """The largest message (headers and payload) the server and stream take."""
        limit = int(nc.max_payload)
        if self.limits.max_msg_size >= 0:
            limit = min(limit, self.limits.max_msg_size)
        return limit

    async def _check_room(self, nc: Any, count: int, stored: int,
                          per_subject: Dict[bytes, int]) -> None:
        """StoreTooLarge if the stream can never hold the request whole; StoreError if
        a stream that refuses when full has no room for it now. ``count``: messages."""
        limits = self.limits
        for what, value, limit in (("messages", count, limits.max_msgs),
                                   ("bytes", stored, limits.max_bytes),
                                   ("messages of one source", max(per_subject.values()),
                                    limits.max_msgs_per_subject)):
            if 0 <= limit < value:
                raise StoreTooLarge(f"the request is {value} {what}, more than stream "
                                    f"{self.stream!r} holds ({limit}): it would not be "
                                    f"kept whole")
        if not limits.fill_checked:
            return
        from nats.js.errors import NotFoundError
        try:
            state = (await nc.jetstream(timeout=self.ack_timeout).stream_info(self.stream)).state
        except NotFoundError:
            self.check_stream()
            raise StoreError(f"stream {self.stream!r} is missing (creating it again)") from None
        except Exception as exc:   # no answer within ack_timeout, connection lost...
            raise StoreError(f"asking stream {self.stream!r} for its room: "
                             f"{type(exc).__name__}: {self.redact(str(exc))}") from None
        if 0 <= limits.max_msgs < state.messages + count \
                or 0 <= limits.max_bytes < state.bytes + stored:
            raise StoreError(f"stream {self.stream!r} is full ({state.messages} events, "
                             f"{state.bytes} bytes; discard=new): the request would not be "
                             "kept whole")

    async def _publish(self, spool: Spool, id_middle: bytes) -> None:
        """Check the stream's room, publish, wait for every acknowledgement."""
        nc = await self._connection()
        await self._check_room(nc, spool.messages, spool.stored_bytes, spool.per_subject)
        await self._publisher.publish(nc, spool, id_middle)

#: Printable ASCII but ``%``: kept as it is in the Fastingest-Source header.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_source(source: str) -> str:
    """``source`` as the Fastingest-Source header value: percent-encoded beyond
    printable ASCII (and ``%`` itself), so any name survives the header."""
    return quote(source, safe=_HEADER_SAFE)


def _headers(msg_id: str, time_ns: Union[int, Sequence[int]], received: bytes,
             source: bytes) -> bytes:
    """A message's header block (what :class:`~.natspublish.Publisher` builds in pieces),
    for one event's time or several."""
    times = [time_ns] if isinstance(time_ns, int) else time_ns
    return (b"NATS/1.0\r\nNats-Msg-Id: %b\r\nFastingest-Time: %b\r\n"
            b"Fastingest-Received: %b\r\nFastingest-Source: %b\r\n\r\n"
            % (msg_id.encode(), b" ".join(b"%d" % t for t in times), received, source))


def _host(nc: Any) -> str:
    """Where ``nc`` is connected, without credentials."""
    url = getattr(nc, "connected_url", None)
    if url is None:
        return "?"
    return f"{url.hostname}:{url.port}" if url.port else str(url.hostname)


async def _close_quietly(nc: Any) -> None:
    try:
        await nc.close()
    except Exception:
        pass


class NATSTransaction(Transaction):
    """The events of one request, spooled as messages, published together at commit."""

    __slots__ = ("_store", "request_key", "_keyed", "_spool", "_digest", "_state")

    _OPEN, _DONE = range(2)

    def __init__(self, store: NATSStore, request_id: Optional[str] = None) -> None:
        self._store = store
        self.request_key = request_key(request_id)
        self._keyed = request_id is not None
        self._spool: Optional[Spool] = None
        self._digest: Optional[bytes] = None   # the request's, from the server
        self._state = self._OPEN

    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Sequence[int],
                  received_ns: int) -> None:
        await self.add_raw(source, dumps_each(events), times_ns, received_ns)

    async def add_raw(self, source: str, raw: Sequence[bytes], times_ns: Sequence[int],
                      received_ns: int) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        store = self._store
        # Fail fast while NATS is down: 503 now, without reading the rest of the body.
        nc = await store._connection()
        if not raw:
            return
        subject_text = store.subject(source)
        subject = subject_text.encode()
        source_value = header_source(source).encode()
        if self._spool is None:
            # Without a client key the ids are random: no digest of the events needed
            # (hashing every event's JSON cost ~0.27 µs an event).
            self._spool = Spool(store.spool_bytes, store.batch_bytes, store.limits.overhead,
                                digest=self._keyed)
        # A message's headers but for its first index and the times: the fixed text,
        # "<token>:<key>:<32 hex>:" ids, the reception time and the source.
        header_base = (_HEADER_FIXED + len(subject_text) - len(store.prefix) - 1
                       + len(self.request_key) + 35 + len(b"%d" % received_ns)
                       + len(source_value))
        limit = store.message_limit(nc)

        def refuse(length: int, size: int) -> None:
            raise StoreTooLarge(
                f"an event of {length} bytes ({size} with its headers) is over the "
                f"largest message NATS takes ({limit} bytes: the server's max_payload or "
                f"stream {store.stream!r}'s max_msg_size)")

        try:
            self._spool.write(subject, source_value, received_ns, raw, times_ns,
                              header_base, limit, refuse)
        except OSError as exc:
            raise StoreError(f"spooling the request: {exc}") from None

    def set_request_digest(self, digest: bytes) -> None:
        self._digest = digest

    async def commit(self) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        self._state = self._DONE
        spool, self._spool = self._spool, None
        if spool is None:
            return
        try:
            try:
                spool.close_message()
            except OSError as exc:
                raise StoreError(f"spooling the request: {exc}") from None
            if self._digest is not None:
                digest = hashlib.blake2b(self._digest, digest_size=16).hexdigest()
            elif self._keyed:
                digest = spool.digest().hex()
            else:   # a random key names the request alone
                digest = NO_DIGEST
            await self._store._publish(spool, f"{self.request_key}:{digest}".encode())
        finally:
            spool.close()

    async def abort(self) -> None:
        self._state = self._DONE
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()


# -- reading: `fastingest tail` ------------------------------------------------------------

async def read_events(store: NATSStore, sources: Sequence[str] = (), since_ns: Optional[int] = None,
                      follow: bool = False) -> AsyncIterator[Tuple[str, int, int, bytes]]:
    """Stored events in stream order as ``(source, time_ns, received_ns, event JSON)``:
    all of them, or those of ``sources``, stored at or after ``since_ns``; with
    ``follow``, then every new one as it arrives (until cancelled). Uses an ordered,
    ephemeral consumer: nothing is acknowledged or removed. A message of several events
    gives each of them (:func:`message_events`)."""
    import datetime

    import nats
    from nats.js import api
    try:
        nc = await nats.connect(store.servers, name="fastingest-tail",
                                max_reconnect_attempts=1, error_cb=store._on_error,
                                **store.connect_options())
    except Exception as exc:
        raise StoreError(f"cannot connect to NATS at {store.where()}: "
                         f"{type(exc).__name__}: {store.redact(str(exc))}") from None
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
                             f"{store.redact(str(exc))}") from None
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
                received = int(headers.get(RECEIVED_HEADER, 0))
                for time_ns, event in message_events(headers, msg.data):
                    yield source, time_ns, received, event
            if not follow and msg.metadata.num_pending == 0:
                return
    finally:
        await nc.close()


def message_events(headers: Dict[str, str], payload: bytes) -> List[Tuple[int, bytes]]:
    """The ``(time_ns, event JSON)`` of each event of one stored message (see the module
    docstring): the payload's lines with the times of ``Fastingest-Time``. A message
    whose lines and times do not pair up (not written by fastingest) is one event."""
    times = headers.get(TIME_HEADER, "0").split(" ")
    events = payload.split(b"\n") if len(times) > 1 else [payload]
    if len(events) != len(times):
        return [(_int(times[0]), payload)]
    return [(_int(t), e) for t, e in zip(times, events)]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


__all__ = ["BATCH_BYTES", "NATSStore", "NATSTransaction", "StreamLimits", "header_source",
           "message_events", "parse_duration", "read_events", "request_key", "subject_token"]
