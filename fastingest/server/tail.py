"""fastingest tail: print stored events as NDJSON, from SQLite or NATS JetStream.

  fastingest tail                                    # every event in sqlite:fastingest.db
  fastingest tail --store sqlite:events.db --source app --since 10m
  fastingest tail --store 'nats://127.0.0.1:4222?stream=FASTINGEST' --follow
  FASTINGEST_STORE='nats://...' fastingest tail      # the store of fastingest serve

One line per event, in the order the store committed them:

  {"time":"2026-11-23T08:00:00.123000000Z","time_ns":1795420800123000000,
   "received_ns":1795420801000000000,"source":"app","event":{...}}

--since is about reception (when the server stored the event): a duration back
from now (90s, 15m, 2h, 7d) or a time (RFC 3339, or a UNIX epoch in
s/ms/µs/ns). --follow keeps printing new events until SIGINT (Ctrl-C) or SIGTERM,
then exits 0. Reading never changes the store (NATS: an ephemeral ordered consumer,
nothing acknowledged). Exit status: 0, 1 when the store cannot be read, 2 for a bad
option.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from typing import AsyncIterator, BinaryIO, List, Optional, Tuple

import orjson

from ..jsonout import format_ns
from ..timestamps import parse_dt
from .stores import STORE_ENV, StoreError

DEFAULT_STORE = "sqlite:fastingest.db"

Record = Tuple[str, int, int, bytes]


def parse_since(text: str, now_ns: Optional[int] = None) -> int:
    """``--since``: a duration back from now, or a time → int ns (ValueError if neither)."""
    from .stores.nats import parse_duration
    now_ns = time.time_ns() if now_ns is None else now_ns
    if text.strip()[-1:].isalpha():   # a bare number is an epoch, not a duration
        try:
            return now_ns - int(parse_duration(text) * 1e9)
        except ValueError:
            pass
    ns = parse_dt(text.strip())
    if ns is None:
        raise ValueError(f"--since: not a duration (15m, 2h, 7d) or a time (RFC 3339, "
                         f"epoch): {text!r}")
    return ns


def events_from(url: str, sources: List[str], since_ns: Optional[int],
                follow: bool) -> AsyncIterator[Record]:
    """The reader for a store URL (``sqlite:PATH`` or ``nats://...``)."""
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if sep and scheme == "sqlite" and rest:
        from .stores.sqlite import read_events
        return read_events(rest.partition("?")[0], sources, since_ns, follow)
    if sep and scheme in ("nats", "tls") and rest.startswith("//"):
        from .stores.nats import NATSStore
        from .stores.nats import read_events as read_nats
        return read_nats(NATSStore.from_url(url), sources, since_ns, follow)
    raise ValueError(f"unsupported store {url!r}: use sqlite:PATH or nats://HOST:PORT")


def line(source: str, time_ns: int, received_ns: int, event: bytes) -> bytes:
    """One NDJSON output line (the stored event JSON spliced in as it is)."""
    head = orjson.dumps({"time": format_ns(time_ns), "time_ns": time_ns,
                         "received_ns": received_ns, "source": source})
    return head[:-1] + b',"event":' + event + b"}\n"


async def tail(events: AsyncIterator[Record], out: BinaryIO, follow: bool) -> int:
    """Write every record as a line; flush per batch (at once when following)."""
    n = 0
    async for record in events:
        out.write(line(*record))
        n += 1
        if follow or n % 1000 == 0:
            out.flush()
    out.flush()
    return n


async def tail_until_stopped(events: AsyncIterator[Record], out: BinaryIO, follow: bool) -> int:
    """:func:`tail`, ended cleanly by SIGINT or SIGTERM. The handlers are set on the
    loop explicitly: a process started in the background by a non-interactive shell
    inherits SIGINT *ignored*, and Python then installs no KeyboardInterrupt for it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stop_signals = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
            stop_signals.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):   # Windows, not main thread
            pass
    try:
        return await tail(events, out, follow)
    except asyncio.CancelledError:
        out.flush()
        return 0
    finally:
        for sig in stop_signals:
            loop.remove_signal_handler(sig)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``tail`` subcommand to the ``fastingest`` command."""
    p = subparsers.add_parser(
        "tail", help="print stored events as NDJSON (SQLite or NATS JetStream)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default=os.environ.get(STORE_ENV) or DEFAULT_STORE,
                   help=f"sqlite:PATH or nats://HOST:PORT[?stream=NAME&prefix=P] "
                        f"(default ${STORE_ENV}, else {DEFAULT_STORE})")
    p.add_argument("--source", action="append", default=[], metavar="SOURCE",
                   help="only this source's events (repeatable)")
    p.add_argument("--since", metavar="WHEN",
                   help="only events received since: 15m, 2h, 7d, or an RFC 3339 time/epoch")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new events as they are stored")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the events; 0, 1 if the store cannot be read, 2 on bad options."""
    try:
        since = None if args.since is None else parse_since(args.since)
        events = events_from(args.store, args.source, since, args.follow)
    except ValueError as exc:
        sys.stderr.write(f"fastingest tail: {exc}\n")
        return 2
    try:
        asyncio.run(tail_until_stopped(events, sys.stdout.buffer, args.follow))
    except StoreError as exc:
        sys.stderr.write(f"fastingest tail: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:   # `fastingest tail | head`: the reader has what it wanted
        # Point stdout at /dev/null so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


__all__ = ["events_from", "line", "parse_since", "register", "run", "tail", "tail_until_stopped"]
