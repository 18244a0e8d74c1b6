"""The embedded default store: one SQLite file in WAL mode, written by one thread.

One table, ``events(source, time_ns, received_ns, event)`` — event time and reception
time as int64 ns, the event as JSON text — with an index on ``(source, time_ns)``::

    sqlite3 fastingest.db "SELECT time_ns, event FROM events WHERE source = 'app'
                           ORDER BY time_ns DESC LIMIT 10"

How it stays fast and safe:

* **Off the event loop.** All SQL runs in one writer thread with its own connection;
  coroutines wait on futures. The ``sqlite3`` module releases the GIL while SQLite
  works, so the loop keeps decoding other requests meanwhile.
* **Group commit.** While the writer commits, new commits queue up; it then writes all
  of them in one transaction (one fsync) and wakes every waiter. Nobody waits for a
  timer: under light load a commit goes alone, under heavy load they share.
* **All or nothing.** A transaction keeps its rows in memory until ``commit``; only
  then does the writer see them. A request larger than ``spill_bytes`` of JSON spills
  its rows, as they arrive, into a per-connection ``TEMP`` staging table, so memory
  stays bounded; commit moves them into ``events`` in the same SQLite transaction as
  everything else, abort deletes them. Readers never see a partial request.
* **Durable acknowledgements.** ``synchronous=FULL`` by default: when ``commit``
  returns, the events survive a power loss. ``synchronous=normal`` (``sqlite:PATH?
  synchronous=normal``) is faster and still loses nothing when the process dies, only
  the last commits when the machine does.
* **Checkpoints off the commit path.** SQLite copies the WAL back into the database
  (a checkpoint, with its own fsyncs) inside whichever commit crosses 1000 pages, and
  that request waits for it. Here the writer turns that off and wakes a checkpointer
  thread (its own connection, ``PASSIVE``: it blocks no reader or writer) every
  ``checkpoint_bytes`` of committed JSON instead (``checkpoint_bytes=0``: SQLite's
  way). Measured at the store (10 concurrent 100-event commits per process, full
  sync): p99 commit latency 24 → 20 ms in one process, 60-140 → 32-45 ms in two.
* **Several processes.** Writers of several processes (``fastingest serve --workers``)
  take turns through a file lock (``PATH-lock``) held only while a group is written:
  the kernel wakes the next one the moment it is free, where SQLite's own busy handler
  sleeps in growing steps of up to 100 ms (two workers under load, p99 latency: 145-240
  ms with SQLite's handler alone, 40-57 ms with the lock). ``busy_timeout`` (5 s)
  bounds that wait and SQLite's, so a writer stuck elsewhere means 503s, not hung
  requests; WAL lets readers run alongside.

If a group fails (disk full, lock timeout), every transaction in it fails with
:class:`~fastingest.server.stores.StoreError` and nothing of the group is kept.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import os
import queue
import sqlite3
import threading
import urllib.parse
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs

from ...jsonout import dumps

try:
    import fcntl
except ImportError:   # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]
from . import Store, StoreError, Transaction

MiB = 1024 * 1024

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    source      TEXT    NOT NULL,
    time_ns     INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    event       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_source_time ON events (source, time_ns);
"""
# Spilled rows of unfinished requests; TEMP is private to the writer's connection.
STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging (
    tx INTEGER NOT NULL, source TEXT NOT NULL, time_ns INTEGER NOT NULL,
    received_ns INTEGER NOT NULL, event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS temp.staging_tx ON staging (tx);
"""
INSERT = "INSERT INTO main.events (source, time_ns, received_ns, event) VALUES "
STAGE = "INSERT INTO temp.staging (source, time_ns, received_ns, event, tx) VALUES "
MOVE = ("INSERT INTO main.events (source, time_ns, received_ns, event) "
        "SELECT source, time_ns, received_ns, event FROM temp.staging WHERE tx = ? ORDER BY rowid")
DROP = "DELETE FROM temp.staging WHERE tx = ?"

SYNCHRONOUS = ("off", "normal", "full", "extra")

#: Rows travel flat: [source, time_ns, received_ns, event, source, ...] (no tuple per row).
FIELDS = 4
#: Rows per multi-row INSERT: one statement with 128 "(?,?,?,?)" costs about 40% less
#: CPU per row than executemany (512 parameters, under SQLite's historical 999 limit).
CHUNK = 128

_COMMIT, _STAGE, _ABORT, _PING = range(4)


class _Op:
    """One request to the writer thread; ``future`` is settled on ``loop``."""

    __slots__ = ("kind", "txid", "rows", "staged", "size", "loop", "future")

    def __init__(self, kind: int, txid: int = 0, rows: Optional[List[object]] = None,
                 staged: bool = False, size: int = 0) -> None:
        self.kind = kind
        self.txid = txid
        self.rows = rows
        self.staged = staged
        self.size = size   # a commit: JSON bytes of the whole transaction
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.future: Optional["asyncio.Future[Any]"] = None


_STOP = _Op(-1)


class SQLiteStore(Store):
    """Events in the SQLite file ``path``; see the module docstring.

    ``synchronous``: ``"full"`` (default; acknowledged means on disk), ``"normal"``,
    ``"off"``, ``"extra"``. ``busy_timeout``: seconds to wait for another process's
    write lock. ``spill_bytes``: JSON bytes a transaction keeps in memory before
    spilling to the staging table. ``max_group_rows``: rows one group commit gathers
    at most before writing (bounds the latency one huge group adds).
    ``checkpoint_bytes``: committed JSON bytes between two background checkpoints
    (0: SQLite checkpoints inside commits, its default).
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, synchronous: str = "full",
                 busy_timeout: float = 5.0, spill_bytes: int = 4 * MiB,
                 max_group_rows: int = 100_000, checkpoint_bytes: int = 4 * MiB) -> None:
        synchronous = synchronous.lower()
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        if spill_bytes < 1 or max_group_rows < 1 or busy_timeout < 0 or checkpoint_bytes < 0:
            raise ValueError("spill_bytes and max_group_rows must be positive, "
                             "busy_timeout and checkpoint_bytes not negative")
        self.path = os.fspath(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.spill_bytes = spill_bytes
        self.max_group_rows = max_group_rows
        # An in-memory or URI database cannot be opened a second time for checkpoints.
        shared = self.path not in ("", ":memory:") and not self.path.startswith("file:")
        self.checkpoint_bytes = checkpoint_bytes if shared else 0
        self._queue: "queue.SimpleQueue[_Op]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._txids = itertools.count(1)
        #: Group commits written and request commits in them (their ratio is the
        #: average group size); updated by the writer thread.
        self.groups_written = 0
        self.commits_written = 0

    @classmethod
    def from_url(cls, rest: str) -> "SQLiteStore":
        """``PATH[?synchronous=normal&busy_timeout=10&spill_bytes=...&checkpoint_bytes=...]``
        (after ``sqlite:``)."""
        path, _, query = rest.partition("?")
        options: Dict[str, object] = {}
        for key, values in parse_qs(query, strict_parsing=bool(query)).items():
            value = values[-1]
            if key == "synchronous":
                options[key] = value
            elif key == "busy_timeout":
                options[key] = float(value)
            elif key in ("spill_bytes", "max_group_rows", "checkpoint_bytes"):
                options[key] = int(value)
            else:
                raise ValueError(f"unknown sqlite store option {key!r}")
        return cls(path, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, synchronous={self.synchronous!r})"

    # -- Store -------------------------------------------------------------------------

    async def open(self) -> None:
        """Start the writer and wait until the file is open and the schema exists."""
        await self._submit(_Op(_PING))

    def begin(self, request_id: Optional[str] = None) -> "SQLiteTransaction":
        # request_id is not used: SQLite keeps no record of past requests (a retried
        # request is stored again); see the NATS store for de-duplicated retries.
        if self._closed:
            raise StoreError("the store is closed")
        return SQLiteTransaction(self, next(self._txids))

    async def close(self) -> None:
        """Write everything already submitted, then stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, thread.join)

    # -- the loop side -------------------------------------------------------------------

    async def _submit(self, op: _Op) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        self._ensure_writer()
        loop = asyncio.get_running_loop()
        op.loop = loop
        op.future = loop.create_future()
        self._queue.put(op)
        await op.future

    def _ensure_writer(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(target=self._writer, name="fastingest-sqlite",
                                              daemon=True)
                    thread.start()
                    self._thread = thread

    # -- the writer thread ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        if self.checkpoint_bytes:   # the checkpointer thread does it, outside commits
            conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.executescript(SCHEMA)
        conn.executescript(STAGING)
        return conn

    def _connect_locked(self, lock: Optional["_WriterLock"]) -> sqlite3.Connection:
        """Connect and set up under the writers' lock: on a fresh file, the first
        ``journal_mode=WAL`` of several processes at once can answer "database is
        locked" at once, without waiting in SQLite's busy handler."""
        if lock is None:
            return self._connect()
        lock.acquire()
        try:
            return self._connect()
        finally:
            lock.release()

    def _writer(self) -> None:
        fatal: Optional[BaseException] = None
        conn = None
        lock = None
        checkpointer: Optional[_Checkpointer] = None
        try:
            lock = _WriterLock.open(self.path, self.busy_timeout)
            conn = self._connect_locked(lock)
            if self.checkpoint_bytes:
                checkpointer = _Checkpointer(self.path, self.busy_timeout)
        except Exception as exc:   # unwritable path, not a database...: every op fails
            fatal = exc
        pending_bytes = 0   # committed since the last checkpoint was asked for
        stopping = False
        while not stopping:
            ops = [self._queue.get()]
            rows = len(ops[0].rows or ()) // FIELDS
            while rows < self.max_group_rows:
                try:
                    op = self._queue.get_nowait()
                except queue.Empty:
                    break
                ops.append(op)
                rows += len(op.rows or ()) // FIELDS
            if _STOP in ops:
                stopping = True
                ops = [op for op in ops if op is not _STOP]
            error = fatal if fatal is not None else self._write(conn, ops, lock)  # type: ignore[arg-type]
            if error is None:
                commits = sum(op.kind == _COMMIT for op in ops)
                if commits:
                    self.groups_written += 1
                    self.commits_written += commits
                    if checkpointer is not None:
                        pending_bytes += sum(op.size for op in ops if op.kind == _COMMIT)
                        if pending_bytes >= self.checkpoint_bytes:
                            pending_bytes = 0
                            checkpointer.wake()
            self._settle(ops, error)
        # Anything submitted while stopping finds a closed store.
        leftovers = []
        while True:
            try:
                leftovers.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._settle([op for op in leftovers if op is not _STOP], StoreError("the store is closed"))
        if checkpointer is not None:
            checkpointer.stop()
        if conn is not None:
            conn.close()   # the last connection to close checkpoints what is left
        if lock is not None:
            lock.close()

    @staticmethod
    def _write(conn: sqlite3.Connection, ops: Sequence[_Op],
               lock: Optional["_WriterLock"] = None) -> Optional[BaseException]:
        """Apply a group of ops in one SQLite transaction; the error if it failed."""
        if all(op.kind == _PING for op in ops):
            return None
        commits = [op for op in ops if op.kind == _COMMIT]
        locked = False
        try:
            if commits and lock is not None:
                lock.acquire()   # OperationalError after busy_timeout
                locked = True
            # IMMEDIATE takes the write lock up front (waiting busy_timeout for other
            # processes) when the main file is written; staging alone needs no lock on it.
            conn.execute("BEGIN IMMEDIATE" if commits else "BEGIN")
            try:
                for op in ops:
                    if op.kind == _STAGE:
                        _insert(conn, STAGE, f"(?, ?, ?, ?, {int(op.txid)})", op.rows)  # type: ignore[arg-type]
                    elif op.kind == _ABORT:
                        conn.execute(DROP, (op.txid,))
                for op in commits:
                    if op.staged:   # a transaction's spilled rows precede its last ones
                        conn.execute(MOVE, (op.txid,))
                        conn.execute(DROP, (op.txid,))
                rows: List[object] = []
                for op in commits:
                    if op.rows:
                        rows += op.rows
                _insert(conn, INSERT, "(?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            return exc
        finally:
            if locked:
                lock.release()  # type: ignore[union-attr]
        return None

    @staticmethod
    def _settle(ops: Sequence[_Op], error: Optional[BaseException]) -> None:
        """Wake the waiters, one thread-safe call per event loop."""
        by_loop: Dict[asyncio.AbstractEventLoop, List["asyncio.Future[Any]"]] = {}
        for op in ops:
            if op.future is not None and op.loop is not None:
                by_loop.setdefault(op.loop, []).append(op.future)
        message = None if error is None else f"{type(error).__name__}: {error}"
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_futures, futures, message, error)
            except RuntimeError:   # the loop is closed: nobody is waiting any more
                pass


class _Checkpointer:
    """A thread with its own connection that runs ``PRAGMA wal_checkpoint(PASSIVE)``
    when woken (several wake-ups while one runs make one more)."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self._conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                                     check_same_thread=False)
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="fastingest-sqlite-checkpoint",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass   # busy (another process checkpoints) or I/O: the next one retries


class _WriterLock:
    """An exclusive lock on ``PATH-lock`` that the writers of every process take
    around a write transaction (see the module docstring).

    Waiting is a blocking ``flock()``: the kernel wakes the waiter the moment the lock
    is released, so two busy processes alternate fairly (polling with short sleeps
    let the releasing process take the lock again before the sleeper woke: p99 150-210
    ms against 40-57 ms blocking, two workers under load). A blocking ``flock()``
    cannot time out, though, and a writer stuck elsewhere must give 503s, not hang
    every request: a helper thread does the blocking wait, the writer waits for it
    at most ``timeout`` seconds, and a lock obtained after the writer gave up is
    released at once.
    """

    __slots__ = ("fd", "timeout", "_requests", "_thread")

    def __init__(self, fd: int, timeout: float) -> None:
        self.fd = fd
        self.timeout = timeout
        self._requests: "queue.SimpleQueue[Optional[_Grant]]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._waiter, name="fastingest-sqlite-lock",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: str, timeout: float) -> Optional["_WriterLock"]:
        """The lock for database ``path``; None where there is nothing to share
        (in-memory or URI databases, no fcntl, an unwritable directory)."""
        if fcntl is None or path in ("", ":memory:") or path.startswith("file:"):
            return None
        try:
            fd = os.open(path + "-lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                         0o644)
        except OSError:
            return None
        return cls(fd, timeout)

    def acquire(self) -> None:
        """Take the lock; OperationalError if another process held it ``timeout`` s."""
        try:   # the common case: nobody else is writing
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        grant = _Grant()
        self._requests.put(grant)
        if grant.event.wait(self.timeout):
            return
        with grant.lock:
            if grant.granted:   # it came just now
                return
            grant.abandoned = True
        raise sqlite3.OperationalError(
            f"database is locked (another process kept writing for {self.timeout:g} s)")

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(self.timeout + 1)
        os.close(self.fd)

    def _waiter(self) -> None:
        while True:
            grant = self._requests.get()
            if grant is None:
                return
            # flock locks belong to the open file, not the thread: the writer thread
            # holds what this thread obtained, and releases it.
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            with grant.lock:
                if grant.abandoned:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                    continue
                grant.granted = True
            grant.event.set()


class _Grant:
    """One wait for the writers' lock, between the writer and the waiter thread."""

    __slots__ = ("event", "lock", "granted", "abandoned")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.lock = threading.Lock()
        self.granted = False
        self.abandoned = False


def _insert(conn: sqlite3.Connection, prefix: str, values: str, rows: List[object]) -> None:
    """Insert flat rows with multi-row statements: CHUNK rows at a time, then the rest
    in power-of-two pieces (so at most a handful of distinct statements get prepared)."""
    n = len(rows) // FIELDS
    pos = 0
    while pos < n:
        left = n - pos
        size = CHUNK if left >= CHUNK else 1 << (left.bit_length() - 1)
        conn.execute(_statement(prefix, values, size), rows[pos * FIELDS:(pos + size) * FIELDS])
        pos += size


@functools.lru_cache(maxsize=64)
def _statement(prefix: str, values: str, size: int) -> str:
    return prefix + ", ".join([values] * size)


def _settle_futures(futures: List["asyncio.Future[Any]"], message: Optional[str],
                    cause: Optional[BaseException]) -> None:
    for future in futures:
        if future.done():   # the waiting request was cancelled
            continue
        if message is None:
            future.set_result(None)
        else:
            exc = StoreError(message)
            exc.__cause__ = cause
            future.set_exception(exc)


class SQLiteTransaction(Transaction):
    """Rows of one request: in memory until ``spill_bytes``, then in the staging table."""

    __slots__ = ("_store", "txid", "_rows", "_size", "_total", "_staged", "_state")

    _OPEN, _COMMITTING, _COMMITTED, _ABORTED = range(4)

    def __init__(self, store: SQLiteStore, txid: int) -> None:
        self._store = store
        self.txid = txid
        self._rows: List[object] = []   # flat: FIELDS items per row
        self._size = 0                  # JSON bytes in _rows
        self._total = 0                 # JSON bytes in the whole transaction
        self._staged = False
        self._state = self._OPEN

    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Sequence[int],
                  received_ns: int) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        rows = self._rows
        size = self._size
        for event, time_ns in zip(events, times_ns):
            text = dumps(event).decode("utf-8")
            size += len(text)
            rows += (source, time_ns, received_ns, text)
        self._total += size - self._size
        self._size = size
        if size >= self._store.spill_bytes:
            self._rows, self._size = [], 0
            self._staged = True   # before awaiting: abort must clean up even if this fails
            await self._store._submit(_Op(_STAGE, self.txid, rows))

    async def commit(self) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        self._state = self._COMMITTING
        rows, self._rows = self._rows, []
        if rows or self._staged:
            await self._store._submit(_Op(_COMMIT, self.txid, rows, self._staged, self._total))
        self._state = self._COMMITTED

    async def abort(self) -> None:
        if self._state in (self._COMMITTED, self._ABORTED):
            return
        self._state = self._ABORTED
        self._rows = []
        if self._staged:
            try:
                await self._store._submit(_Op(_ABORT, self.txid))
            except StoreError:
                # Left-over staging rows live in the writer's TEMP table only: never
                # visible in events, gone when the store closes.
                pass


# -- reading: `fastingest tail` ------------------------------------------------------------

#: Seconds between looks for new rows when following (SQLite tells other processes
#: nothing when a row arrives; ``PRAGMA data_version`` makes each look cheap).
FOLLOW_POLL = 0.25


async def read_events(path: Union[str, "os.PathLike[str]"], sources: Sequence[str] = (),
                      since_ns: Optional[int] = None, follow: bool = False,
                      batch: int = 1000) -> "AsyncIterator[Tuple[str, int, int, bytes]]":
    """Stored events in commit order as ``(source, time_ns, received_ns, event JSON)``:
    all of them, or those of ``sources``, received at or after ``since_ns``; with
    ``follow``, then every new one as it is committed (until cancelled). Opens the
    file read-only; StoreError if it is not there."""
    uri = "file:" + urllib.parse.quote(os.fspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        conn.execute("SELECT 1 FROM events LIMIT 0")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read events from {os.fspath(path)!r}: {exc}") from exc
    where, params = ["rowid > ?"], [0]
    if sources:
        where.append(f"source IN ({', '.join('?' * len(sources))})")
        params += list(sources)  # type: ignore[arg-type]
    if since_ns is not None:
        where.append("received_ns >= ?")
        params.append(since_ns)
    query = (f"SELECT rowid, source, time_ns, received_ns, event FROM events "
             f"WHERE {' AND '.join(where)} ORDER BY rowid LIMIT {int(batch)}")
    try:
        version = None
        while True:
            rows = conn.execute(query, params).fetchall()
            for _, source, time_ns, received_ns, event in rows:
                yield source, time_ns, received_ns, event.encode("utf-8")
            if rows:
                params[0] = rows[-1][0]
                if len(rows) == batch:
                    continue
            if not follow:
                return
            # Wait for another commit: data_version changes when another connection
            # wrote to the file.
            while True:
                current = conn.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version = current
                    break
                await asyncio.sleep(FOLLOW_POLL)
    finally:
        conn.close()


__all__ = ["SQLiteStore", "SQLiteTransaction", "SCHEMA", "read_events"]
