"""Pre-fork worker processes for ``fastingest serve --workers N`` (Unix).

The parent reserves the port, forks N workers and supervises them. Each worker listens
on its own ``SO_REUSEPORT`` socket (Linux, BSD), so the kernel spreads new connections
evenly over the workers; with one shared listening socket, whichever worker wakes first
accepts a whole burst (measured: 19 of 20 simultaneous connections to one of two
workers), and with keep-alive connections that imbalance lasts. Without
``SO_REUSEPORT`` the workers share the parent's socket (see :mod:`.sockets`).

* each worker builds its own app and store after the fork (its own SQLite writer
  thread and connection, its own NATS connection); nothing with a thread or a socket
  of its own exists in the parent at fork time;
* the parent announces the server (``on_ready``) once every worker listens;
* a worker that fails before it ever listened at start (e.g. the store is unusable)
  stops the whole server with exit status 1; one that dies later (a crash, the OOM
  killer, a ``kill`` of that pid) is replaced, with a growing delay if replacements
  keep dying before they listen;
* a worker that does not listen within ``startup_timeout`` seconds of its fork (its
  store's open hangs: an unreachable NATS server that accepts and never answers, a
  lock never released) is killed: at start that stops the server with exit status 1,
  later it counts as a replacement that died before listening;
* a worker that hangs is replaced too: once listening, each worker's event loop sends a
  heartbeat over the ready pipe every ``heartbeat_timeout / 4`` seconds (1 s at most);
  one silent for ``heartbeat_timeout`` seconds (stopped, deadlocked, stuck in a loop
  that never yields) gets SIGKILL and a replacement. With ``SO_REUSEPORT`` the kernel
  keeps giving a hung worker its share of new connections, so waiting for it to die
  would time those clients out;
* SIGTERM or SIGINT to the parent is passed to every worker as SIGTERM: each finishes
  its requests in flight, commits, exits; then the parent exits;
* workers get SIGTERM if the parent dies (Linux ``PR_SET_PDEATHSIG``), so they never
  outlive their supervisor.

The ``/v1/api-status`` flag lives in shared memory created before the fork (see
``cli.py``), so every worker of one server answers alike.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import select
import signal
import struct
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Callable, Dict, List, Optional

log = logging.getLogger("fastingest.server")

_PID = struct.Struct("i")
#: Seconds a listening worker may go without a heartbeat before it is replaced.
HEARTBEAT_TIMEOUT = 10.0
#: Seconds a new worker may take to listen (build its app, open its store).
STARTUP_TIMEOUT = 60.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
_PR_SET_PDEATHSIG = 1

#: A worker's body: called in the child with ``ready`` (call it once listening);
#: returns the exit status.
Target = Callable[[Callable[[], None]], int]


class _Worker:
    __slots__ = ("pid", "slot", "ready", "started", "last_beat", "killed")

    def __init__(self, pid: int, slot: int) -> None:
        self.pid = pid
        self.slot = slot
        self.ready = False
        self.started = time.monotonic()
        self.last_beat = self.started
        self.killed = False   # for a missed heartbeat or a startup that never ended


class Supervisor:
    """Runs ``workers`` copies of ``target`` in forked processes; see the module doc.

    Each worker has a slot number, 0 to ``workers - 1``, that its replacement takes
    over (a worker reads its own as ``supervisor.slot``; the metrics keep one row of
    shared memory per slot).
    """

    #: In a worker: its slot number.
    slot = 0

    def __init__(self, workers: int, target: Target, on_ready: Callable[[], None],
                 heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
                 startup_timeout: float = STARTUP_TIMEOUT) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if not heartbeat_timeout > 0:
            raise ValueError("heartbeat_timeout must be positive")
        if not startup_timeout > 0:
            raise ValueError("startup_timeout must be positive")
        if not hasattr(os, "fork"):
            raise RuntimeError("--workers needs a Unix system (os.fork)")
        self.workers = workers
        self.target = target
        self.on_ready = on_ready
        self.heartbeat_timeout = heartbeat_timeout
        self.startup_timeout = startup_timeout
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
        os.set_blocking(self._ready_w, False)   # a worker never blocks on a full pipe
        saved = {sig: signal.signal(sig, _noop) for sig in _HANDLED}
        saved_wakeup = signal.set_wakeup_fd(wake_w)
        self._pipes = (ready_r, wake_r, wake_w)
        try:
            for _ in range(self.workers):
                self._spawn()
            while self._children or (self._respawn_at and not self._stopping):
                due_at = [self._deadline(w) for w in self._children.values() if not w.killed]
                if self._respawn_at and not self._stopping:
                    due_at += self._respawn_at
                timeout = max(0.0, min(due_at) - time.monotonic()) if due_at else None
                readable, _, _ = select.select([ready_r, wake_r], [], [], timeout)
                if wake_r in readable:
                    self._signals(os.read(wake_r, 512))
                if ready_r in readable:
                    self._ready(os.read(ready_r, 4096))
                self._reap()
                self._kill_silent()
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
        """Ready messages and heartbeats (the same: a worker's pid)."""
        now = time.monotonic()
        for (pid,) in _PID.iter_unpack(data[:len(data) - len(data) % _PID.size]):
            worker = self._children.get(pid)
            if worker is not None:
                worker.last_beat = now
                if not worker.ready:
                    worker.ready = True
                    self._failures = 0
        if not self._announced and not self._stopping and len(self._children) == self.workers \
                and all(w.ready for w in self._children.values()):
            self._announced = True
            self.on_ready()

    def _deadline(self, worker: _Worker) -> float:
        """When ``worker`` is killed unless it beats (listening) or listens (starting)."""
        if worker.ready:
            return worker.last_beat + self.heartbeat_timeout
        return worker.started + self.startup_timeout

    def _kill_silent(self) -> None:
        """SIGKILL workers whose heartbeat stopped or that never listened; reaping
        replaces them (or stops the server, at start)."""
        now = time.monotonic()
        for worker in self._children.values():
            if worker.killed or now <= self._deadline(worker):
                continue
            if worker.ready:
                log.error("fastingest serve: worker %d sent no heartbeat for %.1f s (hung or "
                          "stopped); killing it", worker.pid, now - worker.last_beat)
            else:
                log.error("fastingest serve: worker %d did not listen within %.1f s of its "
                          "start (hung opening its store?); killing it", worker.pid,
                          now - worker.started)
            worker.killed = True
            _kill(worker.pid, signal.SIGKILL)

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
            status = self.target(self._heartbeats(self._ready_w))
        except BaseException:   # noqa: B902 - a worker reports everything, then exits
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)


    def _heartbeats(self, ready_w: int) -> Callable[[], None]:
        """The worker's ``ready``: tells the parent, then keeps telling it from the
        event loop it was called on (a loop that stops running stops the beats)."""
        interval = min(1.0, self.heartbeat_timeout / 4)
        message = _PID.pack(os.getpid())

        def beat() -> None:
            try:
                os.write(ready_w, message)
            except (BlockingIOError, BrokenPipeError):   # pipe full: the next one;
                pass                                     # parent gone: PDEATHSIG follows

        def ready() -> None:
            beat()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:   # not called from a loop: a thread beats instead
                def beating() -> None:
                    while True:
                        time.sleep(interval)
                        beat()
                threading.Thread(target=beating, name="fastingest-heartbeat",
                                 daemon=True).start()
                return

            def tick() -> None:
                beat()
                loop.call_later(interval, tick)

            loop.call_later(interval, tick)

        return ready


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


__all__ = ["HEARTBEAT_TIMEOUT", "Supervisor"]
