"""Real processes for the scale-out tests: nats-server with JetStream, `fastingest serve`
(one or several workers), a load of concurrent clients, and readers of what got stored.

Everything listens on 127.0.0.1 only, on ports the OS picked, in temporary directories.
Readiness is always a real signal (a log line that is printed once the process
listens), never a sleep.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- nats-server ---------------------------------------------------------------------------

def nats_server_binary() -> Optional[str]:
    """The nats-server executable (Debian puts it in /usr/sbin), or None."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("nats-server", path=path)


def require_nats_server() -> str:
    """The binary; skip without it locally, fail without it in CI (CI must run these)."""
    binary = nats_server_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("nats-server is not installed but CI is set: the NATS tests must "
                        "run in CI (.ci/run installs it with apt-get install nats-server)")
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lines:
    """Lines of a subprocess stream, read by a thread, awaited by pattern."""

    def __init__(self, stream) -> None:
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.seen: List[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)
        self.lines.put("")   # EOF

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{pattern!r} did not come within {timeout} s: "
                                     f"{''.join(self.seen[-30:])}") from None
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
            if line == "":
                raise AssertionError(f"{pattern!r} never came: {''.join(self.seen[-30:])}")


class NatsServer:
    """``nats-server -js -a 127.0.0.1 -p PORT -sd DIR``: start, stop, restart (same port
    and storage), pause (SIGSTOP: connected, but nothing answers) and resume."""

    def __init__(self, binary: str, store_dir, args: Sequence[str] = ()) -> None:
        self.binary = binary
        self.store_dir = str(store_dir)
        self.args = list(args)   # e.g. --user/--pass
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "NatsServer":
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.store_dir,
             *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = Lines(self.proc.stderr)
        try:
            self.log.wait_for(r"Server is ready", timeout=20)
        except AssertionError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)   # in case it was paused
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


def stream_messages(url: str, stream: str) -> List[Tuple[str, Dict[str, str], bytes]]:
    """Every message of ``stream`` as (subject, headers, payload), in stream order."""
    import nats

    async def read() -> List[Tuple[str, Dict[str, str], bytes]]:
        nc = await nats.connect(url, max_reconnect_attempts=1)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            out: List[Tuple[str, Dict[str, str], bytes]] = []
            if info.state.messages == 0:
                return out
            sub = await js.subscribe(">", stream=stream, ordered_consumer=True)
            while True:
                msg = await sub.next_msg(timeout=10)
                out.append((msg.subject, dict(msg.headers or {}), msg.data))
                if msg.metadata.num_pending == 0:
                    return out
        finally:
            await nc.close()

    return asyncio.run(read())


def stream_events(url: str, stream: str) -> List[Tuple[str, Dict[str, str], bytes]]:
    """Every event of ``stream`` as (subject, headers, event JSON), in stream order: a
    message holds one or more (``stores.nats.message_events``); each event gets its
    message's headers with ``Fastingest-Time`` its own time."""
    from fastingest.server.stores.nats import TIME_HEADER, message_events
    out: List[Tuple[str, Dict[str, str], bytes]] = []
    for subject, headers, data in stream_messages(url, stream):
        for time_ns, event in message_events(headers, data):
            out.append((subject, {**headers, TIME_HEADER: str(time_ns)}, event))
    return out


# -- fastingest serve ------------------------------------------------------------------------

class Serve:
    """``python -m fastingest serve --port 0 ...`` in its own session (so that the test
    can SIGKILL the whole server: supervisor and workers); ready on its banner."""

    def __init__(self, args: Sequence[str], cwd, env: Optional[Dict[str, str]] = None) -> None:
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastingest", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
            start_new_session=True)
        self.out, self.err = Lines(self.proc.stdout), Lines(self.proc.stderr)

    def __enter__(self) -> "Serve":
        try:
            banner = self.out.wait_for(r" on (https?://(?:127\.0\.0\.1|\[::1\])):(\d+)")
        except BaseException:
            self.kill()
            raise
        self.port = int(banner.group(2))
        self.url = f"{banner.group(1)}:{self.port}"
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 30) -> Optional[int]:
        """SIGTERM, wait; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL every process of the server at once (supervisor and workers)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def workers(self) -> List[int]:
        """The worker pids (children of the supervisor)."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return [int(p) for p in f.read().split()]


# -- load ------------------------------------------------------------------------------------

TOKEN = "scale-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class Load:
    """``clients`` threads posting batches of ``events`` events with unique ids until
    stopped; ``acked`` holds the ids of every event whose request got 202.

    Requests alternate Better Stack (``dt`` = ``1700000000 + n`` s) and Samsara
    (``timestamp`` = ``1700000000000 + n`` ms), so each event's stored time is known.
    A failed request (connection refused, reset...) is retried on a fresh connection
    and never counted.
    """

    def __init__(self, url: str, clients: int = 8, events: int = 5) -> None:
        self.url, self.clients, self.events = url, clients, events
        self.acked: List[str] = []
        self.statuses: Counter = Counter()
        self.failures = 0
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(c,), daemon=True)
                         for c in range(clients)]

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def wait_acked(self, n: int, timeout: float = 30) -> None:
        """Until at least ``n`` requests were acknowledged."""
        with self._lock:
            done = self._lock.wait_for(lambda: self.statuses[202] >= n, timeout)
        assert done, f"only {self.statuses} after {timeout} s"

    def _client(self, c: int) -> None:
        client = httpx.Client(base_url=self.url, timeout=30)
        n = 0
        while not self._stop.is_set():
            ids = [f"c{c}-{n}-{k}" for k in range(self.events)]
            if n % 2:
                body = json.dumps([{"id": i, "dt": 1700000000 + n} for i in ids])
                path, headers = "/", AUTH
            else:
                body = json.dumps([{"id": i, "timestamp": 1700000000000 + n, "sourceId": "s",
                                    "eventName": "e"} for i in ids])
                path, headers = "/v1/events", {"Content-Type": "application/json",
                                               "X-Samsara-publishedTimestamp": "1"}
            try:
                status = client.post(path, content=body, headers=headers).status_code
            except httpx.HTTPError:
                with self._lock:
                    self.failures += 1
                client.close()
                client = httpx.Client(base_url=self.url, timeout=30)
                continue
            finally:
                n += 1
            with self._lock:
                self.statuses[status] += 1
                if status == 202:
                    self.acked += ids
                    self._lock.notify_all()
        client.close()


def event_time_ns(event_id: str, event: dict) -> int:
    """The stored time a Load event must have."""
    if "dt" in event:
        return event["dt"] * 10**9
    return event["timestamp"] * 10**6


def sqlite_ids(db) -> Counter:
    """How many times each event id is in the SQLite file."""
    with sqlite3.connect(db) as conn:
        return Counter(r[0] for r in conn.execute(
            "SELECT json_extract(event, '$.id') FROM events"))


def sqlite_writer(path: str, name: str, barrier) -> None:
    """A process of its own writing 30 commits of 10 rows under ``name`` (for tests
    of several writer processes; the barrier starts them together)."""
    from fastingest.server.stores.sqlite import SQLiteStore
    store = SQLiteStore(path)

    async def go() -> None:
        barrier.wait()   # every process opens the fresh file at once
        await store.open()
        for i in range(30):
            tx = store.begin()
            await tx.add(name, [{"i": i}] * 10, [i] * 10, 0)
            await tx.commit()
        await store.close()

    asyncio.run(go())


def transaction_peak(store, batches: int, batch: int = 10_000) -> int:
    """The tracemalloc peak (bytes) of one transaction of ``batches`` x ``batch`` tiny
    events (``{"a": 1}``, the most events per byte) into ``store``, which is opened and
    closed around it; the batch is built before, as the codec hands it over."""
    import tracemalloc
    events, times = [{"a": 1}] * batch, [1] * batch

    async def run() -> int:
        await store.open()
        tracemalloc.start()
        try:
            tx = store.begin()
            for _ in range(batches):
                await tx.add("m", events, times, 0)
            await tx.commit()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await store.close()

    return asyncio.run(run())


def assert_acked_present_once(acked: Sequence[str], stored: Counter) -> None:
    """Every acknowledged event stored exactly once."""
    missing = [i for i in acked if stored[i] == 0]
    twice = [i for i in acked if stored[i] > 1]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    assert not twice, f"{len(twice)} acknowledged events stored twice, e.g. {twice[:5]}"


def raw_exchange(port: int, data: bytes, wait: Optional[Callable[[socket.socket], None]] = None,
                 timeout: float = 20, host: str = "127.0.0.1",
                 source: Optional[str] = None) -> bytes:
    """Send ``data`` on a fresh connection to ``host`` (from the local address
    ``source``: any 127.x works on Linux), optionally do ``wait(sock)``, then read
    until the server closes or a whole response came; what the server sent."""
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=None if source is None else (source, 0)) as sock:
        sock.sendall(data)
        if wait is not None:
            wait(sock)
        got = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return got
            got += chunk
            head, sep, body = got.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                return got
