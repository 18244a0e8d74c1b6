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
* **All or nothing, bounded.** A transaction keeps its rows in memory until
  ``commit``; only then does the writer see them. A request of more than ``spill_rows``
  rows or ``spill_bytes`` of JSON spills its rows, as they arrive, into a ``TEMP``
  staging table of its own (private to the writer's connection, no index), so a request
  holds at most that much in memory whatever its event count; commit copies the table
  into ``events`` in the same SQLite transaction as everything else (one scan in rowid
  order), and the request's end drops it whole. Readers never see a partial
  request. Once queued, a commit belongs to the writer: it is written whole or not at
  all, whatever happens to the request that queued it (a cancelled request's
  ``abort`` leaves a queued commit alone; the writer drops the staged rows of a commit
  that failed).
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

Faults:

* If a group fails (disk full, lock timeout), every transaction in it fails with
  :class:`~fastingest.server.stores.StoreError` and nothing of the group is kept. The
  writer thread survives anything a group raises; a connection that failed to open,
  or whose state is unknown after an error, is opened again for the next group (the
  spilled rows of requests in flight are then lost with the old connection's ``TEMP``
  table: those requests fail whole).
* The file deleted or replaced while open (``rm``, ``mv`` over it): SQLite would go on
  writing into the orphaned file, gone at the next start. The writer compares the
  path's inode (and its ``-wal``'s and ``-shm``'s) with the files it has open before and
  after every group: on a mismatch that group fails and so does every later request
  (503) until the server is restarted, which starts a new file. First it checkpoints
  what the WAL holds into the file it has open (a database moved away is complete; one
  whose ``-wal`` alone was deleted loses nothing) and deletes the old ``-wal``/``-shm``
  if they are still at the path: SQLite would apply them to the next database there. It
  never reopens by itself: another process may still have the old files open, and
  mixing generations of them corrupts a database.
* Files are created private: the database (and so its ``-wal`` and ``-shm``, which
  SQLite creates with the database's mode) and ``PATH-lock`` are created ``0600``.
  Existing files keep their mode.
"""
from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import logging
import os
import queue
import sqlite3
import threading
import urllib.parse
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qs

from ... import _kernels
from ...constants import MiB
from ...jsonout import dumps_each

from . import Store, StoreError, Transaction
from .sqlite_threads import FILE_MODE, Checkpointer, WriterLock

log = logging.getLogger("fastingest.server")


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    source      TEXT    NOT NULL,
    time_ns     INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    event       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_source_time ON events (source, time_ns);
"""
# Spilled rows of an unfinished request go to a TEMP table of its own (private to the
# writer's connection, no index): its commit copies it into events in rowid order with
# one table scan, and its end drops the table whole (a shared, indexed staging table
# made every commit an index walk and every end a DELETE of its rows).
CREATE_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS staging_%d (source TEXT NOT NULL, "
                "time_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL, event TEXT NOT NULL)")
INSERT = "main.events"
STAGE = "temp.staging_%d"
MOVE = ("INSERT INTO main.events (source, time_ns, received_ns, event) "
        "SELECT source, time_ns, received_ns, event FROM temp.staging_%d")
DROP = "DROP TABLE IF EXISTS temp.staging_%d"
#: A statement inserts rows of one source: it binds the source once (?1) and each row's
#: time, reception time and event text; the event as str (decoding costs less than
#: SQLite's CAST of a bytes parameter). The rows of all the requests of a group commit
#: go in statements of CHUNK rows (benchmarks/README.md, "SQLite insert path" and
#: "Server throughput, round 2").
INSERT_ROWS = ("INSERT INTO %s (source, time_ns, received_ns, event) "
               "SELECT ?1, column1, column2, column3 FROM (VALUES %s)")
#: The page size of a new file (an existing file keeps its own): 16 KiB pages made the
#: group commit's inserts ~7 % and a spilled request's copy into ``events`` ~35 %
#: cheaper than SQLite's default 4 KiB (benchmarks/README.md, "SQLite insert path").
PAGE_SIZE = 16384

SYNCHRONOUS = ("off", "normal", "full", "extra")

#: The files SQLite keeps beside a database in WAL mode.
WAL_FILES = ("-wal", "-shm")

#: Rows travel as runs: (source, [time_ns, received_ns, event, time_ns, ...]), the rows
#: of one add (no tuple per row; :func:`fastingest.rows.row_values`).
Run = Tuple[str, List[object]]
#: Rows per multi-row INSERT: 331 "(?, ?, ?)" triples and the source, 994 parameters
#: (under SQLite's historical 999 limit). Statements of several hundred rows cost about
#: half the CPU per row of executemany, and a third less than one statement per request
#: and power-of-two piece (round 2).
CHUNK = 331

_COMMIT, _STAGE, _ABORT, _PING = range(4)

#: (st_dev, st_ino) of the database and its WAL files, None for a missing one.
_Identity = Tuple[Optional[Tuple[int, int]], ...]


class _Op:
    """One request to the writer thread; ``future`` (if any) is settled on ``loop``."""

    __slots__ = ("kind", "txid", "rows", "staged", "size", "loop", "future")

    def __init__(self, kind: int, txid: int = 0, rows: Optional[List[Run]] = None,
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

    Events are kept as JSON text (``raw_json``): the server hands over the original
    bytes of JSON and NDJSON events (``add_raw``), objects are written by
    :func:`fastingest.jsonout.dumps`.

    ``synchronous``: ``"full"`` (default; acknowledged means on disk), ``"normal"``,
    ``"off"``, ``"extra"``. ``busy_timeout``: seconds to wait for another process's
    write lock. ``spill_rows`` / ``spill_bytes``: rows / JSON bytes a transaction keeps
    in memory before spilling them to the staging table (whichever comes first).
    ``max_group_rows``: rows one group commit gathers at most before writing (bounds
    the latency one huge group adds). ``checkpoint_bytes``: committed JSON bytes between
    two background checkpoints (0: SQLite checkpoints inside commits, its default).
    """

    raw_json = True

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, synchronous: str = "full",
                 busy_timeout: float = 5.0, spill_bytes: int = 4 * MiB, spill_rows: int = 16384,
                 max_group_rows: int = 100_000, checkpoint_bytes: int = 4 * MiB) -> None:
        synchronous = synchronous.lower()
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        if spill_bytes < 1 or spill_rows < 1 or max_group_rows < 1 or busy_timeout < 0 \
                or checkpoint_bytes < 0:
            raise ValueError("spill_bytes, spill_rows and max_group_rows must be positive, "
                             "busy_timeout and checkpoint_bytes not negative")
        self.path = os.fspath(path)
        if not self.path:
            # SQLite would open a temporary database: every event lost at exit.
            raise ValueError("the SQLite store needs a file path (an empty one opens a "
                             "temporary database, deleted with everything in it at exit)")
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.spill_bytes = spill_bytes
        self.spill_rows = spill_rows
        self.max_group_rows = max_group_rows
        #: A file of our own (not in memory, not a URI): watched, created private,
        #: opened a second time for checkpoints.
        self.is_file = self.path != ":memory:" and not self.path.startswith("file:")
        self.checkpoint_bytes = checkpoint_bytes if self.is_file else 0
        self._queue: "queue.SimpleQueue[_Op]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()
        self._closed = False
        #: Why every request fails from now on (the file was deleted or replaced).
        self._dead: Optional[str] = None
        self._txids = itertools.count(1)
        #: Group commits written and request commits in them (their ratio is the
        #: average group size); updated by the writer thread.
        self.groups_written = 0
        self.commits_written = 0

    @classmethod
    def from_url(cls, rest: str) -> "SQLiteStore":
        """``PATH[?synchronous=normal&busy_timeout=10&spill_bytes=...&spill_rows=...
        &checkpoint_bytes=...]`` (after ``sqlite:``)."""
        path, _, query = rest.partition("?")
        options: Dict[str, object] = {}
        for key, values in parse_qs(query, strict_parsing=bool(query)).items():
            value = values[-1]
            if key == "synchronous":
                options[key] = value
            elif key == "busy_timeout":
                options[key] = float(value)
            elif key in ("spill_bytes", "spill_rows", "max_group_rows", "checkpoint_bytes"):
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

    def _enqueue(self, op: _Op, wait: bool = True) -> "Optional[asyncio.Future[Any]]":
        """Hand ``op`` to the writer (StoreError if the store is closed: then it was not
        queued); with ``wait``, the future it settles."""
        if self._closed:
            raise StoreError("the store is closed")
        self._ensure_writer()
        if wait:
            op.loop = asyncio.get_running_loop()
            op.future = op.loop.create_future()
        self._queue.put(op)
        return op.future

    async def _submit(self, op: _Op) -> None:
        await self._enqueue(op)  # type: ignore[misc]

    def _ensure_writer(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(target=_Writer(self).run,
                                              name="fastingest-sqlite", daemon=True)
                    thread.start()
                    self._thread = thread

    def _connect(self) -> sqlite3.Connection:
        if self.is_file:
            _create_private(self.path)   # before SQLite creates it 0644
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")   # before the file has tables
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            if self.checkpoint_bytes:   # the checkpointer thread does it, outside commits
                conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _settle(ops: Sequence[_Op], error: Optional[BaseException]) -> None:
        """Wake the waiters, one thread-safe call per event loop."""
        by_loop: Dict[asyncio.AbstractEventLoop, List["asyncio.Future[Any]"]] = {}
        for op in ops:
            if op.future is not None and op.loop is not None:
                by_loop.setdefault(op.loop, []).append(op.future)
        message = None if error is None else f"{type(error).__name__}: {error}"
        if isinstance(error, StoreError):
            message = str(error)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_futures, futures, message, error)
            except RuntimeError:   # the loop is closed: nobody is waiting any more
                pass


class _Writer:
    """The writer thread: its connection (opened on demand, and again after a failure),
    the writers' lock, the checkpointer, and the transactions with spilled rows."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn: Optional[sqlite3.Connection] = None
        self.lock: Optional[WriterLock] = None
        self.checkpointer: Optional[Checkpointer] = None
        #: What the connection has open (checked against the path around each group).
        self.identity: Optional[_Identity] = None
        #: txid -> True while all its spilled rows are in this connection's staging
        #: table, False once some are not (a failed spill, a new connection): its
        #: commit then fails whole.
        self.staged: Dict[int, bool] = {}
        self.pending_bytes = 0   # committed since the last checkpoint was asked for
        #: Commits of spilled requests taken from the queue but left for later groups.
        self.backlog: List[_Op] = []

    def run(self) -> None:
        store = self.store
        try:
            self.lock = WriterLock.open(store.path, store.busy_timeout) if store.is_file \
                else None
        except Exception as exc:   # no thread to spare...: SQLite's busy handler alone
            log.warning("SQLite store: no writers' lock for %s: %s", store.path, exc)
        stopping = False
        while not stopping or self.backlog:   # a stop still writes what was queued before it
            ops, self.backlog = self.backlog, []
            if not ops:
                ops = [store._queue.get()]
            rows = sum(_count(op.rows) for op in ops)
            while rows < store.max_group_rows:
                try:
                    op = store._queue.get_nowait()
                except queue.Empty:
                    break
                ops.append(op)
                rows += _count(op.rows)
            if _STOP in ops:
                stopping = True
                ops = [op for op in ops if op is not _STOP]
            try:
                self._group(ops)
            except Exception as exc:   # the thread must not die: these fail, a new connection
                log.error("SQLite store: writer error: %s: %s", type(exc).__name__, exc)
                self._disconnect()
                store._settle(ops, exc)
        # Anything submitted while stopping finds a closed store.
        leftovers = []
        while True:
            try:
                leftovers.append(store._queue.get_nowait())
            except queue.Empty:
                break
        store._settle([op for op in leftovers if op is not _STOP],
                      StoreError("the store is closed"))
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self._disconnect()   # the last connection to close checkpoints what is left
        if self.lock is not None:
            self.lock.close()

    def _group(self, ops: List[_Op]) -> None:
        """Write one group and settle its ops: its commits first, in a transaction of
        their own, so that a request waits for its commit and not for the rows other
        requests spill meanwhile (a transaction of spills and aborts, on the TEMP table
        only: no lock, no fsync); of the commits of spilled requests, only the first. A transaction's spills always precede its commit in
        an earlier group (``add`` waits for them), and its abort follows them."""
        commits = [op for op in ops if op.kind == _COMMIT and not op.staged]
        heavy = [op for op in ops if op.kind == _COMMIT and op.staged]
        rest = [op for op in ops if op.kind != _COMMIT]
        if commits:
            self._part(commits)
        if heavy:
            # A spilled request's commit copies all its rows (~0.6 us each) in one
            # transaction: one at a time, and the commits queued meanwhile go first in
            # the next group, so a small request waits for one big copy at most.
            self._part(heavy[:1])
            self.backlog = heavy[1:]
        if rest:
            self._part(rest)

    def _part(self, ops: List[_Op]) -> None:
        """Write ``ops`` in one SQLite transaction and settle them."""
        store = self.store
        if store._dead is not None:
            store._settle(ops, StoreError(store._dead))
            return
        if self.conn is None:
            try:
                self._connect()
            except Exception as exc:   # the next group tries again
                self._disconnect()
                store._settle(ops, exc)
                return
        lost = [op for op in ops if self._incomplete(op)]
        if lost:   # they fail alone, whole; the rest of the group goes on
            ops = [op for op in ops if op not in lost]
            self._drop([op.txid for op in lost if op.kind == _COMMIT])
            store._settle(lost, StoreError("rows this request spilled were lost (the store's "
                                           "connection was reopened after an error)"))
        error: Optional[BaseException] = self._check_file()
        if error is None and any(op.kind != _PING for op in ops):
            error = _write(self.conn, ops, self.lock)  # type: ignore[arg-type]
            if error is None:
                self._written(ops)
                # Written, but into a file deleted or replaced meanwhile: lost, say so.
                error = self._check_file()
            else:
                self._failed(ops, error)
        store._settle(ops, error)

    def _incomplete(self, op: _Op) -> bool:
        """A spill or commit of a transaction some of whose spilled rows are missing."""
        if op.kind == _COMMIT and op.staged:
            return self.staged.get(op.txid) is not True
        return op.kind == _STAGE and self.staged.get(op.txid) is False

    def _written(self, ops: Sequence[_Op]) -> None:
        commits = 0
        for op in ops:
            if op.kind == _STAGE:
                self.staged.setdefault(op.txid, True)
            elif op.kind in (_COMMIT, _ABORT):
                self.staged.pop(op.txid, None)
                if op.kind == _COMMIT:
                    commits += 1
                    self.pending_bytes += op.size
        if commits:
            self.store.groups_written += 1
            self.store.commits_written += commits
            if self.checkpointer is not None \
                    and self.pending_bytes >= self.store.checkpoint_bytes:
                self.pending_bytes = 0
                self.checkpointer.wake()

    def _failed(self, ops: Sequence[_Op], error: BaseException) -> None:
        """Nothing of the group was kept: spills of it are missing (those transactions
        can no longer commit), failed commits' and aborts' staged rows are dropped."""
        drop = []
        for op in ops:
            if op.kind == _STAGE:
                self.staged[op.txid] = False
            elif op.kind == _ABORT or op.kind == _COMMIT and op.staged:
                drop.append(op.txid)
        if self.conn is not None and self.conn.in_transaction:   # ROLLBACK failed
            self._disconnect()
        elif not isinstance(error, sqlite3.OperationalError):
            # Not busy/full/I/O but e.g. a corrupt or closed connection: start afresh.
            self._disconnect()
        self._drop(drop)

    def _drop(self, txids: Sequence[int]) -> None:
        for txid in txids:
            self.staged.pop(txid, None)
        if not txids or self.conn is None:
            return
        try:
            for txid in txids:
                self.conn.execute(DROP % txid)
        except sqlite3.Error:   # left in TEMP until the connection closes: invisible
            pass

    def _connect(self) -> None:
        store = self.store
        lock = self.lock
        # Set up under the writers' lock: on a fresh file, the first journal_mode=WAL of
        # several processes at once can answer "database is locked" at once, without
        # waiting in SQLite's busy handler.
        if lock is not None:
            lock.acquire()
        try:
            self.conn = store._connect()
            if store.is_file:
                wal = self.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
                self.identity = _identity(store.path, WAL_FILES if wal else ())
                if None in self.identity:
                    raise StoreError(f"{store.path}: a file went missing while opening it")
        finally:
            if lock is not None:
                lock.release()
        # Spilled rows of the old connection (if any) are gone with its TEMP table.
        for txid in self.staged:
            self.staged[txid] = False
        if store.checkpoint_bytes and self.checkpointer is None:
            self.checkpointer = Checkpointer(store.path, store.busy_timeout)

    def _disconnect(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def _check_file(self) -> Optional[StoreError]:
        """None while the path still names the files the connection has open; else the
        store is dead from now on (see the module docstring)."""
        store = self.store
        if self.identity is None:
            return None
        now = _identity(store.path, WAL_FILES[:len(self.identity) - 1])
        if now == self.identity:
            return None
        changed = [store.path + suffix for suffix, a, b
                   in zip(("",) + WAL_FILES, self.identity, now) if a != b]
        store._dead = (f"the SQLite database was deleted or replaced while open "
                       f"({', '.join(changed)}): nothing more is written into the orphaned "
                       f"file; restart the server to start a new one")
        log.error("SQLite store: %s", store._dead)
        if self.checkpointer is not None:   # it would checkpoint with stale WAL files
            self.checkpointer.stop()
            self.checkpointer = None
        self._retire_wal()
        return StoreError(store._dead)

    def _retire_wal(self) -> None:
        """Leave no committed data in the WAL, and no WAL of the old file beside the new
        one: SQLite would apply it to whatever database is at the path next (and it
        neither checkpoints nor deletes the WAL of a moved database on close)."""
        conn, identity, path = self.conn, self.identity, self.store.path
        if conn is not None:
            try:   # into the file we have open: a database moved away is then complete
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error:
                pass
        for suffix, ours in zip(WAL_FILES, identity[1:] if identity else ()):
            if ours is not None and _identity(path + suffix, ())[0] == ours:
                try:
                    os.unlink(path + suffix)
                except OSError:
                    pass


def _write(conn: sqlite3.Connection, ops: Sequence[_Op],
           lock: Optional["WriterLock"] = None) -> Optional[BaseException]:
    """Apply a group of ops in one SQLite transaction; the error if it failed."""
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
                txid = int(op.txid)
                if op.kind == _STAGE:
                    conn.execute(CREATE_STAGE % txid)
                    _insert(conn, STAGE % txid, op.rows)  # type: ignore[arg-type]
                elif op.kind == _ABORT:
                    conn.execute(DROP % txid)
            for op in commits:
                if op.staged:   # a transaction's spilled rows precede its last ones
                    conn.execute(MOVE % op.txid)
                    conn.execute(DROP % op.txid)
            # Every commit's rows together: statements of CHUNK rows across requests.
            _insert(conn, INSERT, [run for op in commits if op.rows for run in op.rows])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass   # the caller sees in_transaction and reconnects
            raise
    except Exception as exc:
        return exc
    finally:
        if locked:
            try:
                lock.release()  # type: ignore[union-attr]
            except OSError:
                pass   # the lock goes with its fd; SQLite's own locks still hold
    return None


def _identity(path: str, suffixes: Sequence[str]) -> _Identity:
    out: List[Optional[Tuple[int, int]]] = []
    for suffix in ("",) + tuple(suffixes):
        try:
            st = os.stat(path + suffix)
            out.append((st.st_dev, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def _create_private(path: str) -> None:
    """Create ``path`` empty with :data:`FILE_MODE` unless it exists (SQLite takes an
    empty file for a new database and gives its -wal and -shm the same mode)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    except OSError:
        return   # SQLite says why (read-only file, missing directory...)
    os.close(fd)


def _insert(conn: sqlite3.Connection, table: str, runs: List[Run]) -> None:
    """Insert runs of rows with multi-row statements, consecutive runs of one source
    together: CHUNK rows at a time, then the rest in power-of-two pieces (so at most a
    handful of distinct statements get prepared)."""
    for source, group in itertools.groupby(runs, key=_source):
        values: List[object] = []
        for _, more in group:
            values += more
        n = len(values) // 3
        pos = 0
        while pos < n:
            left = n - pos
            size = CHUNK if left >= CHUNK else 1 << (left.bit_length() - 1)
            conn.execute(_statement(table, size), [source] + values[3 * pos:3 * (pos + size)])
            pos += size


def _source(run: Run) -> str:
    return run[0]


@functools.lru_cache(maxsize=64)
def _statement(table: str, size: int) -> str:
    return INSERT_ROWS % (table, ", ".join(["(?, ?, ?)"] * size))


def _count(runs: Optional[List[Run]]) -> int:
    """Rows in ``runs``."""
    return sum(len(values) for _, values in runs) // 3 if runs else 0


def _run(source: str, raw: Sequence[bytes], times_ns: Sequence[int], received_ns: int) -> Run:
    """One add's rows: ``[time, reception time, JSON text, time, ...]`` built in one C
    loop (:mod:`fastingest.rows`), no Python-level loop per row."""
    return source, _kernels.active.rows.row_values(raw, times_ns, received_ns)


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
    """Rows of one request: in memory up to ``spill_rows``/``spill_bytes``, the rest in
    the staging table."""

    __slots__ = ("_store", "txid", "_rows", "_count", "_size", "_total", "_staged", "_state")

    _OPEN, _COMMITTING, _COMMITTED, _ABORTED, _FAILED = range(5)

    def __init__(self, store: SQLiteStore, txid: int) -> None:
        self._store = store
        self.txid = txid
        self._rows: List[Run] = []
        self._count = 0                 # rows in _rows
        self._size = 0                  # JSON bytes in _rows
        self._total = 0                 # JSON bytes spilled before _rows
        self._staged = False
        self._state = self._OPEN

    async def add(self, source: str, events: List[Dict[str, Any]], times_ns: Sequence[int],
                  received_ns: int) -> None:
        await self.add_raw(source, dumps_each(events), times_ns, received_ns)

    async def add_raw(self, source: str, raw: Sequence[bytes], times_ns: Sequence[int],
                      received_ns: int) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction is finished")
        store = self._store
        if store._dead is not None:   # fail before reading the rest of the body
            raise StoreError(store._dead)
        n = len(raw)
        if not n:
            return
        if self._count + n < store.spill_rows:
            size = sum(map(len, raw))
            if self._size + size < store.spill_bytes:   # the usual add: no spill
                self._rows.append(_run(source, raw, times_ns, received_ns))
                self._count += n
                self._size += size
                return
        sizes = list(map(len, raw))
        pos = 0
        while pos < n:
            # The rows up to the one that reaches spill_rows or spill_bytes (it included)
            # join the transaction's rows; then they spill, if they reached one.
            end = min(n, pos + store.spill_rows - self._count)
            reach = store.spill_bytes - self._size
            filled = list(itertools.accumulate(sizes[pos:end]))
            cut = bisect.bisect_left(filled, reach)
            if cut < len(filled):
                end = pos + cut + 1
            self._size += filled[end - pos - 1]
            self._rows.append(_run(source, raw[pos:end], times_ns[pos:end], received_ns))
            self._count += end - pos
            pos = end
            if self._size >= store.spill_bytes or self._count >= store.spill_rows:
                rows, self._rows, self._count = self._rows, [], 0
                self._total += self._size
                self._size = 0
                await self._spill(rows)

    async def _spill(self, rows: List[Run]) -> None:
        self._staged = True   # before awaiting: abort must clean up even if this fails
        try:
            await self._store._submit(_Op(_STAGE, self.txid, rows))
        except StoreError:
            self._state = self._FAILED   # some rows are missing: it can never commit
            raise

    async def commit(self) -> None:
        if self._state != self._OPEN:
            raise StoreError("the transaction failed" if self._state == self._FAILED
                             else "the transaction is finished")
        rows, self._rows, self._count = self._rows, [], 0
        self._total += self._size
        self._size = 0
        if rows or self._staged:
            future = self._store._enqueue(
                _Op(_COMMIT, self.txid, rows, self._staged, self._total))
            # Queued: the writer stores all of it or nothing, whatever happens to this
            # request now (a cancelled wait included); abort() leaves it alone.
            self._state = self._COMMITTING
            await future  # type: ignore[misc]
        self._state = self._COMMITTED

    async def abort(self) -> None:
        if self._state in (self._COMMITTING, self._COMMITTED, self._ABORTED):
            return
        self._state = self._ABORTED
        self._rows, self._count = [], 0
        if self._staged:
            try:   # nobody waits for it: the writer drops the rows in turn
                self._store._enqueue(_Op(_ABORT, self.txid), wait=False)
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
