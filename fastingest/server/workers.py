"""Pre-fork worker processes for ``fastingest serve --workers N`` (Unix).

The parent reserves the port, forks N workers and supervises them. Each worker listens
on its own ``SO_REUSEPORT`` socket (Linux, BSD), so the kernel spreads new connections
evenly over the workers; with one shared listening socket, whichever worker wakes first
accepts a whole burst (measured: 19 of 20 simultaneous connections to one of two
workers), and with keep-alive connections that imbalance lasts. Without
``SO_REUSEPORT`` the workers share the parent's socket.

* each worker builds its own app and store after the fork (its own SQLite writer
  thread and connection, its own NATS connection); nothing with a thread or a socket
  of its own exists in the parent at fork time;
* the parent announces the server (``on_ready``) once every worker listens;
* a worker that fails before it ever listened at start (e.g. the store is unusable)
  stops the whole server with exit status 1; one that dies later (a crash, the OOM
  killer, a ``kill`` of that pid) is replaced, with a growing delay if replacements
  keep dying before they listen;
* SIGTERM or SIGINT to the parent is passed to every worker as SIGTERM: each finishes
  its requests in flight, commits, exits; then the parent exits;
* workers get SIGTERM if the parent dies (Linux ``PR_SET_PDEATHSIG``), so they never
  outlive their supervisor.

The ``/v1/api-status`` flag lives in shared memory created before the fork (see
``cli.py``), so every worker of one server answers alike.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from types import FrameType
from typing import Callable, Dict, List, Optional

log = logging.getLogger("fastingest.server")

_PID = struct.Struct("i")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
_PR_SET_PDEATHSIG = 1

#: A worker's body: called in the child with ``ready`` (call it once listening);
#: returns the exit status.
Target = Callable[[Callable[[], None]], int]


class _Worker:
    __slots__ = ("pid", "slot", "ready", "started")

    def __init__(self, pid: int, slot: int) -> None:
        self.pid = pid
        self.slot = slot
        self.ready = False
        self.started = time.monotonic()


class Supervisor:
    """Runs ``workers`` copies of ``target`` in forked processes; see the module doc.

    Each worker has a slot number, 0 to ``workers - 1``, that its replacement takes
    over (a worker reads its own as ``supervisor.slot``; the metrics keep one row of
    shared memory per slot).
    """

    #: In a worker: its slot number.
    slot = 0

    def __init__(self, workers: int, target: Target, on_ready: Callable[[], None]) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if not hasattr(os, "fork"):
            raise RuntimeError("--workers needs a Unix system (os.fork)")
        self.workers = workers
        self.target = target
        self.on_ready = on_ready
        self._children: Dict[int, _Worker] = {}
        self._stopping = False
        self._announced = False
        self._failures = 0               # replacements in a row that died before listening
        self._respawn_at: List[float] = []
        self._exit_status = 0

    def run(self) -> int:
        """Start the workers and supervise them until they all stopped; exit status."""
        ready_r, self._ready_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        os.set_blocking(ready_r, False)
        saved = {sig: signal.signal(sig, _noop) for sig in _HANDLED}
        saved_wakeup = signal.set_wakeup_fd(wake_w)
        self._pipes = (ready_r, wake_r, wake_w)
        try:
            for _ in range(self.workers):
                self._spawn()
            while self._children or (self._respawn_at and not self._stopping):
                timeout = None
                if self._respawn_at and not self._stopping:
                    timeout = max(0.0, min(self._respawn_at) - time.monotonic())
                readable, _, _ = select.select([ready_r, wake_r], [], [], timeout)
                if wake_r in readable:
                    self._signals(os.read(wake_r, 512))
                if ready_r in readable:
                    self._ready(os.read(ready_r, 4096))
                self._reap()
                now = time.monotonic()
                due = [t for t in self._respawn_at if t <= now]
                if due and not self._stopping:
                    self._respawn_at = [t for t in self._respawn_at if t > now]
                    for _ in due:
                        self._spawn()
        finally:
            signal.set_wakeup_fd(saved_wakeup)
            for sig, handler in saved.items():
                signal.signal(sig, handler)
            for fd in (ready_r, self._ready_w, wake_r, wake_w):
                os.close(fd)
        return self._exit_status

    # -- parent side -------------------------------------------------------------------

    def _spawn(self) -> None:
        parent = os.getpid()
        taken = {worker.slot for worker in self._children.values()}
        slot = min(set(range(self.workers)) - taken)
        pid = os.fork()
        if pid == 0:   # the worker: never returns
            self.slot = slot
            self._child(parent)
        self._children[pid] = _Worker(pid, slot)

    def _signals(self, data: bytes) -> None:
        if any(signum in _STOP_SIGNALS for signum in data) and not self._stopping:
            log.info("fastingest serve: stopping %d workers", len(self._children))
            self._stop()

    def _stop(self) -> None:
        self._stopping = True
        self._respawn_at = []
        for worker in self._children.values():
            _kill(worker.pid, signal.SIGTERM)

    def _ready(self, data: bytes) -> None:
        for (pid,) in _PID.iter_unpack(data[:len(data) - len(data) % _PID.size]):
            worker = self._children.get(pid)
            if worker is not None:
                worker.ready = True
                self._failures = 0
        if not self._announced and not self._stopping and len(self._children) == self.workers \
                and all(w.ready for w in self._children.values()):
            self._announced = True
            self.on_ready()

    def _reap(self) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._children.clear()
                return
            if pid == 0:
                return
            worker = self._children.pop(pid, None)
            if worker is None or self._stopping:
                continue
            how = _describe(status)
            if not self._announced:
                log.error("fastingest serve: worker %d %s before it listened; stopping", pid, how)
                self._exit_status = 1
                self._stop()
                continue
            delay = 0.0
            if not worker.ready:
                self._failures += 1
                delay = min(30.0, 0.5 * 2 ** (self._failures - 1))
            log.warning("fastingest serve: worker %d %s; starting another%s", pid, how,
                        f" in {delay:g} s" if delay else "")
            self._respawn_at.append(time.monotonic() + delay)

    # -- child side --------------------------------------------------------------------

    def _child(self, parent: int) -> None:
        status = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in _HANDLED:
                signal.signal(sig, signal.SIG_DFL)
            ready_r, wake_r, wake_w = self._pipes
            for fd in (ready_r, wake_r, wake_w):
                os.close(fd)
            _die_with(parent)
            ready_w = self._ready_w

            def ready() -> None:
                os.write(ready_w, _PID.pack(os.getpid()))

            status = self.target(ready)
        except BaseException:   # noqa: B902 - a worker reports everything, then exits
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)


def reserve_port(host: str, port: int) -> Optional[socket.socket]:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` but not listening: it holds
    the port (and tells which, for port 0) for the workers' :func:`listen_on` sockets.
    None where the platform has no ``SO_REUSEPORT`` (the workers then share one socket)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return None
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def listen_on(reserved: socket.socket, backlog: int) -> socket.socket:
    """A worker's own listening socket on the reserved address (``SO_REUSEPORT``)."""
    sock = socket.socket(reserved.family, reserved.type, reserved.proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(reserved.getsockname())
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _noop(signum: int, frame: Optional[FrameType]) -> None:
    """Signals are read from the wakeup fd; the handler only has to exist."""


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _die_with(parent: int) -> None:
    """Get SIGTERM when the parent dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)


__all__ = ["Supervisor", "listen_on", "reserve_port"]
