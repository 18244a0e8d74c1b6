"""Durability under faults, SQLite store and the supervisor (issue 19; 18.7, 18.9; 12).

Every 202 stored, nothing half-stored, whatever fails and when: commits cancelled while
queued, the database file deleted or replaced under a running server, a writer whose
connection failed or whose group raised, the writers' lock abandoned, a worker that
hangs. Real `fastingest serve` processes on 127.0.0.1 and real SQLite files; store-level
tests where a fault needs exact timing.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import sqlite3
import stat
import threading
import time
from collections import Counter

import httpx
import pytest

from fastingest.server import create_app
from fastingest.server.stores import StoreError, store_from_url
from fastingest.server.stores import sqlite as sqlite_module
from fastingest.server.stores.sqlite import SQLiteStore
from fastingest.server.stores.sqlite_threads import WriterLock
from servers import AUTH, TOKEN, Serve, raw_exchange, sqlite_ids, transaction_peak

NDJSON = {**AUTH, "Content-Type": "application/x-ndjson"}


def ndjson(ids) -> bytes:
    return b"".join(b'{"id":"%s"}\n' % i.encode() for i in ids)


def request(body: bytes, headers=NDJSON) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST / HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


def source_counts(db) -> Counter:
    with sqlite3.connect(db) as conn:
        return Counter(dict(conn.execute("SELECT source, count(*) FROM events GROUP BY source")))


# -- 19.1: a queued commit is all or nothing ------------------------------------------------

def test_cancelled_queued_commit_is_written_whole(tmp_path):
    """A spilled commit queued behind a group that waits for the writers' lock, its
    request cancelled (uvicorn's graceful timeout does that) and aborted: once the lock
    is free it is written whole. Before, the abort went into the same group, dropped the
    staged rows first and left the in-memory tail alone: 500 of 28,000 stored."""
    db = tmp_path / "c.db"
    store = SQLiteStore(db, busy_timeout=10, spill_bytes=20_000)

    async def scenario():
        await store.open()
        big = store.begin()
        for start, n in [(k, 2500) for k in range(0, 27_500, 2500)] + [(27_500, 500)]:
            # Each 2,500 spill to the staging table; the last 500 stay in memory.
            await big.add("big", [{"i": i} for i in range(start, start + n)],
                          range(start, start + n), 0)
        fd = os.open(f"{db}-lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)   # another process writing
        small = store.begin()
        await small.add("small", [{"s": 1}], [1], 0)
        waiting = asyncio.ensure_future(small.commit())
        await asyncio.sleep(0.05)   # the commit is queued...
        while not store._queue.empty():   # ...and the writer took it alone (and waits)
            await asyncio.sleep(0.01)
        commit = asyncio.ensure_future(big.commit())   # queued behind it
        await asyncio.sleep(0.05)
        commit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await commit
        # What the server does for a cancelled request, while the other program writes on.
        aborting = asyncio.ensure_future(big.abort())
        await asyncio.sleep(0.05)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        await waiting
        await aborting
        await store.close()

    asyncio.run(scenario())
    assert source_counts(db) == {"small": 1, "big": 28_000}


def test_failed_commit_drops_its_staged_rows_and_stores_nothing(tmp_path):
    """A spilled commit that fails (the writers' lock held past busy_timeout) stores
    nothing; the writer drops its staged rows itself (abort no longer touches a queued
    commit) and later commits go through."""
    db = tmp_path / "f.db"
    store = SQLiteStore(db, busy_timeout=0.2, spill_bytes=5_000)

    async def scenario():
        await store.open()
        tx = store.begin()
        await tx.add("lost", [{"i": n} for n in range(3000)], range(3000), 0)
        fd = os.open(f"{db}-lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match="locked"):
            await tx.commit()
        await tx.abort()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        ok = store.begin()
        await ok.add("kept", [{"i": 1}] * 3000, [1] * 3000, 0)
        await ok.commit()
        await store.close()

    asyncio.run(scenario())
    assert source_counts(db) == {"kept": 3000}


def test_sigterm_cancelling_queued_commits_stores_each_request_whole_or_not(tmp_path):
    """Through the server: a 27,000-event request whose commit waits behind another's
    (the writers' lock held by another program), SIGTERM with --graceful-timeout 1
    cancels both; the lock is freed during shutdown. Each request is stored whole or not
    at all, and the server exits cleanly."""
    db = tmp_path / "events.db"
    args = ["--token", f"app={TOKEN}", "--store", f"sqlite:{db}?busy_timeout=8&spill_bytes=20000",
            "--graceful-timeout", "1", "--log-level", "warning"]
    big = [f"big-{n}" for n in range(27_000)]
    answers = []
    with Serve(args, cwd=tmp_path) as server:
        assert httpx.post(f"{server.url}/", content=ndjson(["first"]), headers=NDJSON,
                          timeout=10).status_code == 202
        fd = os.open(f"{db}-lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            clients = [threading.Thread(target=lambda b=b: answers.append(
                raw_exchange(server.port, request(b), timeout=30)))
                for b in (ndjson(["small"]), ndjson(big))]
            for client in clients:
                client.start()
                time.sleep(0.5)   # in this order: the big commit queues behind the small
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(1.5)   # past the graceful timeout: both requests cancelled
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        assert server.proc.wait(30) in (0, -signal.SIGTERM)
        for client in clients:
            client.join(30)
    assert not any(a.startswith(b"HTTP/1.1 202") for a in answers)   # nobody was told 202
    ids = sqlite_ids(db)
    assert ids["first"] == 1 and ids["small"] in (0, 1)
    assert sum(ids[i] for i in big) in (0, len(big)) and max(ids[i] for i in big) <= 1


# -- 19.2: the database file deleted or replaced --------------------------------------------

def replace_with_other_database(db) -> None:
    other = f"{db}.other"
    with sqlite3.connect(other) as conn:
        conn.executescript(sqlite_module.SCHEMA)
        conn.execute("INSERT INTO events VALUES ('other', 0, 0, '{\"id\":\"other\"}')")
    os.replace(other, db)


@pytest.mark.parametrize("fault", ["rm database", "rm database -wal -shm", "mv another over it"])
def test_deleted_or_replaced_database_answers_503_until_restart(tmp_path, fault):
    db = tmp_path / "events.db"
    args = ["--token", f"app={TOKEN}", "--store", f"sqlite:{db}", "--log-level", "warning"]
    with Serve(args, cwd=tmp_path) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/", content=ndjson(["before"]), headers=NDJSON).status_code == 202
        if fault.startswith("rm"):
            for suffix in ("", "-wal", "-shm") if "-wal" in fault else ("",):
                os.unlink(f"{db}{suffix}")
        else:
            replace_with_other_database(db)
        for n in range(3):   # every request, not just the first
            r = client.post("/", content=ndjson([f"after-{n}"]), headers=NDJSON)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
        server.err.wait_for(r"deleted or replaced while open")
    with Serve(args, cwd=tmp_path) as server:   # a restart starts a new file
        assert httpx.post(f"{server.url}/", content=ndjson(["restarted"]), headers=NDJSON,
                          timeout=30).status_code == 202
    expected = {"restarted": 1} if fault.startswith("rm") else {"other": 1, "restarted": 1}
    assert sqlite_ids(db) == Counter(expected)   # no 503'd event anywhere, nothing lost


def test_store_notices_a_deletion_during_a_commit(tmp_path, monkeypatch):
    """The file deleted while a group is being written: that group's commits went into
    the orphaned file, so they fail (503), and so does everything after."""
    db = tmp_path / "d.db"
    store = SQLiteStore(db)
    real_write = sqlite_module._write

    def write_then_delete(conn, ops, lock=None):
        error = real_write(conn, ops, lock)
        if any(op.kind == sqlite_module._COMMIT for op in ops):
            os.unlink(db)
        return error

    async def scenario():
        await store.open()
        monkeypatch.setattr(sqlite_module, "_write", write_then_delete)
        tx = store.begin()
        await tx.add("s", [{"i": 1}], [1], 0)
        with pytest.raises(StoreError, match="deleted or replaced"):
            await tx.commit()
        monkeypatch.setattr(sqlite_module, "_write", real_write)
        with pytest.raises(StoreError, match="deleted or replaced"):
            await store.begin().add("s", [{"i": 2}], [2], 0)   # fails before reading more
        await store.close()

    asyncio.run(scenario())
    assert not db.exists()


# -- 18.7, 18.9: private files, no temporary database ----------------------------------------

def test_sqlite_files_are_created_private(tmp_path):
    """The database, -wal, -shm and -lock are created 0600 by the store itself, whatever
    the umask allows (library users get it too); an existing file keeps its mode."""
    old = os.umask(0o022)
    try:
        db = tmp_path / "p.db"
        store = SQLiteStore(db)

        async def scenario():
            tx = store.begin()
            await tx.add("s", [{"i": 1}], [1], 0)
            await tx.commit()
            modes = {s: stat.S_IMODE(os.stat(f"{db}{s}").st_mode)
                     for s in ("", "-wal", "-shm", "-lock")}
            await store.close()
            return modes

        assert asyncio.run(scenario()) == {s: 0o600 for s in ("", "-wal", "-shm", "-lock")}
        shared = tmp_path / "shared.db"
        shared.touch(mode=0o640)
        os.chmod(shared, 0o640)
        asyncio.run(SQLiteStore(shared).open())
        assert stat.S_IMODE(os.stat(shared).st_mode) == 0o640
    finally:
        os.umask(old)


def test_empty_sqlite_path_is_refused():
    """`sqlite:?synchronous=full` opened a temporary database: 202s, all lost at exit."""
    for url in ("sqlite:", "sqlite:?synchronous=full"):
        with pytest.raises(ValueError, match="file path"):
            store_from_url(url)
        with pytest.raises(ValueError, match="file path"):
            create_app(tokens={TOKEN: "app"}, store=url)
    with pytest.raises(ValueError, match="file path"):
        SQLiteStore("")


# -- 19.8: the writer reconnects and survives ------------------------------------------------

def test_writer_reconnects_after_a_failed_connect(tmp_path):
    """The directory missing when the store opens: 503s, then (once it exists) the same
    store writes, without a restart."""
    db = tmp_path / "later" / "r.db"
    store = SQLiteStore(db)

    async def scenario():
        with pytest.raises(StoreError):
            await store.open()
        tx = store.begin()
        await tx.add("s", [{"i": 1}], [1], 0)
        with pytest.raises(StoreError):
            await tx.commit()
        db.parent.mkdir()
        tx = store.begin()
        await tx.add("s", [{"i": 2}], [2], 0)
        await tx.commit()
        await store.close()

    asyncio.run(scenario())
    assert [json.loads(e)["i"] for (e,) in sqlite3.connect(db).execute(
        "SELECT event FROM events")] == [2]


def test_writer_survives_an_error_escaping_a_group(tmp_path, monkeypatch):
    """Anything a group raises fails that group's requests only; the writer goes on.
    An error that leaves the connection unknown reopens it, and a request whose spilled
    rows were in the old connection fails whole instead of committing its last part."""
    db = tmp_path / "e.db"
    store = SQLiteStore(db, spill_bytes=2_000)
    real_write = sqlite_module._write
    faults = []

    def faulty_write(conn, ops, lock=None):
        if faults:
            raise_it = faults.pop()
            if raise_it == "raise":
                raise RuntimeError("injected: escaped the group")
            return sqlite3.DatabaseError("injected: connection state unknown")
        return real_write(conn, ops, lock)

    async def commit(source, n):
        tx = store.begin()
        await tx.add(source, [{"i": i} for i in range(n)], range(n), 0)
        await tx.commit()

    async def scenario():
        await store.open()
        monkeypatch.setattr(sqlite_module, "_write", faulty_write)
        faults.append("raise")
        with pytest.raises(StoreError, match="escaped the group"):
            await commit("raised", 1)
        await commit("after-raise", 1)   # the thread is alive
        spilled = store.begin()
        await spilled.add("spilled", [{"i": i, "pad": "x" * 50} for i in range(200)],
                          range(200), 0)   # staged in this connection
        faults.append("reconnect")
        with pytest.raises(StoreError, match="state unknown"):
            await commit("failed", 1)
        with pytest.raises(StoreError, match="spilled were lost"):
            await spilled.commit()
        await spilled.abort()
        await commit("after-reconnect", 300)   # spills and commits in the new connection
        await store.close()

    asyncio.run(scenario())
    assert source_counts(db) == {"after-raise": 1, "after-reconnect": 300}


def test_disk_full_fails_the_group_and_recovers(tmp_path, monkeypatch):
    """SQLITE_FULL (the database at its size limit: what a full disk answers too) fails
    the requests of that group whole, spilled ones included; once there is room the
    same store writes again."""
    db = tmp_path / "full.db"
    store = SQLiteStore(db, spill_bytes=5_000)
    real_write = sqlite_module._write
    limit = {"pages": 0}

    def write_within(conn, ops, lock=None):
        if limit["pages"]:
            conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return real_write(conn, ops, lock)

    async def commit(source, n):
        tx = store.begin()
        await tx.add(source, [{"i": i, "pad": "x" * 200} for i in range(n)], range(n), 0)
        await tx.commit()

    async def scenario():
        await store.open()
        monkeypatch.setattr(sqlite_module, "_write", write_within)
        await commit("before", 10)
        with sqlite3.connect(db) as conn:
            limit["pages"] = conn.execute("PRAGMA page_count").fetchone()[0] + 2
        with pytest.raises(StoreError, match="full"):
            await commit("too-big", 2000)   # spills, then the commit hits the limit
        limit["pages"] = 1_000_000   # room again
        await commit("after", 2000)
        await store.close()

    asyncio.run(scenario())
    assert source_counts(db) == {"before": 10, "after": 2000}


def test_writer_lock_waiter_has_its_own_descriptor(tmp_path):
    """A wait abandoned after busy_timeout, then the lock taken without waiting: the
    helper's late unlock of the abandoned wait must not release it (it did when both
    used one descriptor: flock locks belong to the open file)."""
    path = str(tmp_path / "w.db")
    lock = WriterLock.open(path, timeout=0.2)
    assert lock is not None
    other = os.open(path + "-lock", os.O_RDWR)
    probe = os.open(path + "-lock", os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            lock.acquire()   # abandoned; the helper still waits
        fcntl.flock(other, fcntl.LOCK_UN)
        lock.acquire()
        time.sleep(0.2)   # the helper got the lock after us, saw the abandoned wait
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)   # still ours
        lock.release()
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(probe, fcntl.LOCK_UN)
    finally:
        os.close(other)
        os.close(probe)
        lock.close()


# -- issue 12: a transaction's memory does not grow with its event count ---------------------

def test_sqlite_transaction_memory_is_bounded_by_spill_rows(tmp_path):
    """150,000 tiny events (the most rows per byte) in batches of 10,000: the store's own
    peak stays near spill_rows rows (16,384: about 2.5 MiB), not the event count (it
    was 18 MiB here: every row in memory up to 4 MiB of JSON)."""
    peak = transaction_peak(SQLiteStore(tmp_path / "m.db"), 15)
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert source_counts(tmp_path / "m.db") == {"m": 150_000}


# -- 19.6: a hung worker is replaced ---------------------------------------------------------

def test_hung_worker_is_killed_and_replaced(tmp_path):
    """One of two workers stopped (SIGSTOP): the kernel still hands it new connections.
    Its heartbeats stop, the supervisor kills and replaces it; then every new client is
    served."""
    db = tmp_path / "events.db"
    args = ["--token", f"app={TOKEN}", "--store", f"sqlite:{db}", "--workers", "2",
            "--worker-timeout", "1", "--log-level", "warning"]
    with Serve(args, cwd=tmp_path) as server:
        hung = server.workers()[0]
        os.kill(hung, signal.SIGSTOP)
        server.err.wait_for(rf"worker {hung} sent no heartbeat for 1\.\d s", timeout=10)
        server.err.wait_for(rf"worker {hung} was killed by SIGKILL; starting another")
        ids = [f"w-{n}" for n in range(40)]
        for i in ids:   # a new connection each
            r = httpx.post(f"{server.url}/", content=ndjson([i]), headers=NDJSON, timeout=5)
            assert r.status_code == 202
        assert hung not in server.workers() and len(server.workers()) == 2
    assert sqlite_ids(db) == Counter({i: 1 for i in ids})


# A worker that hangs before it listens (its store's open never returns) is killed after
# the startup timeout: at start the server stops with status 1, later it is replaced.
_HANGING_STARTS = r'''
import logging, os, signal, sys, time
from fastingest.server.workers import Supervisor
logging.basicConfig(level=logging.INFO, format="%(message)s")
marker, plan = sys.argv[1], sys.argv[2]

def target(ready):
    n = len(os.listdir(marker))                  # one worker at a time: its start number
    open(os.path.join(marker, str(os.getpid())), "w").close()
    step = plan[n] if n < len(plan) else "S"
    if step == "H":                              # hangs before it listens
        time.sleep(3600)
    ready()
    if step == "C":                              # listens, then crashes
        time.sleep(0.3)
        return 3
    os.kill(os.getppid(), signal.SIGTERM)        # "S": listens and stops the server
    time.sleep(3600)
    return 0

supervisor = Supervisor(1, target, on_ready=lambda: print("ready", flush=True),
                        heartbeat_timeout=30, startup_timeout=1)
sys.exit(supervisor.run())
'''


@pytest.mark.parametrize("plan, status, starts", [
    ("CH", 0, 3),   # a replacement hangs: killed after 1 s, the next one serves
    ("H", 1, 1),    # the first worker hangs: the server stops with status 1
])
def test_worker_hanging_before_it_listens_is_killed(tmp_path, plan, status, starts):
    import subprocess
    import sys
    marker = tmp_path / "starts"
    marker.mkdir()
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _HANGING_STARTS, str(marker), plan],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == status, done.stderr
    assert len(os.listdir(marker)) == starts
    assert "did not listen within 1." in done.stderr
    assert time.monotonic() - t0 < 20
    for pid in map(int, os.listdir(marker)):   # no worker outlives the supervisor
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
