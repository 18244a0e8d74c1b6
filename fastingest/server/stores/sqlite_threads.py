"""The SQLite writer's helper threads: the writers' file lock (a blocking wait that can
time out) and the background checkpointer. See :mod:`.sqlite` for why they exist."""
from __future__ import annotations

import os
import queue
import sqlite3
import threading
from typing import Optional

try:
    import fcntl
except ImportError:   # pragma: no cover - Windows: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]

#: Mode of the files the store creates (the database, hence its -wal and -shm, and the
#: writers' lock): stored events are nobody else's business.
FILE_MODE = 0o600


class Checkpointer:
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


class WriterLock:
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

    The helper waits on a descriptor of its own: ``flock`` locks belong to the open
    file, so on a shared one the helper's late unlock of an abandoned wait would
    release the lock the writer took meanwhile with a non-blocking try.
    """

    __slots__ = ("fd", "wait_fd", "timeout", "_held", "_requests", "_thread")

    def __init__(self, fd: int, wait_fd: int, timeout: float) -> None:
        self.fd = fd
        self.wait_fd = wait_fd
        self.timeout = timeout
        self._held: Optional[int] = None   # the descriptor holding the lock
        self._requests: "queue.SimpleQueue[Optional[_Grant]]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._waiter, name="fastingest-sqlite-lock",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: str, timeout: float) -> Optional["WriterLock"]:
        """The lock for database ``path``; None where there is nothing to share
        (in-memory or URI databases, no fcntl, an unwritable directory)."""
        if fcntl is None or path in ("", ":memory:") or path.startswith("file:"):
            return None
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path + "-lock", flags, FILE_MODE)
        except OSError:
            return None
        try:
            wait_fd = os.open(path + "-lock", flags, FILE_MODE)
        except OSError:
            os.close(fd)
            return None
        return cls(fd, wait_fd, timeout)

    def acquire(self) -> None:
        """Take the lock; OperationalError if another process held it ``timeout`` s."""
        try:   # the common case: nobody else is writing
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._held = self.fd
            return
        except BlockingIOError:
            pass
        grant = _Grant()
        self._requests.put(grant)
        if not grant.event.wait(self.timeout):
            with grant.lock:
                if not grant.granted:
                    grant.abandoned = True
                    raise sqlite3.OperationalError(
                        f"database is locked (another process kept writing for "
                        f"{self.timeout:g} s)")
        self._held = self.wait_fd   # the helper's descriptor holds it for us

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            fcntl.flock(held, fcntl.LOCK_UN)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(self.timeout + 1)
        os.close(self.fd)
        if not self._thread.is_alive():   # else it may still wait on its descriptor
            os.close(self.wait_fd)

    def _waiter(self) -> None:
        while True:
            grant = self._requests.get()
            if grant is None:
                return
            fcntl.flock(self.wait_fd, fcntl.LOCK_EX)
            with grant.lock:
                if grant.abandoned:
                    fcntl.flock(self.wait_fd, fcntl.LOCK_UN)
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


__all__ = ["Checkpointer", "FILE_MODE", "WriterLock"]
