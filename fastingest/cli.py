"""The ``fastingest`` command: ``demo``, ``decode``, ``tail`` (and ``serve`` with the server extra)."""
from __future__ import annotations

import argparse
import gzip
import sys
from typing import Any, BinaryIO, Callable, List, Optional, TextIO, cast

import msgpack

from . import IMPLEMENTATION, __version__
from .batch import Batch
from .errors import IngestError
from .jsonout import dumps, format_ns
from .stream import StreamDecoder

CHUNK = 64 * 1024


def _print_batch(batch: Batch, out: BinaryIO) -> None:
    lines = batch.lines if batch.lines is not None else [None] * len(batch)
    for event, t, off, line in zip(batch.events, batch.times_ns, batch.offsets, lines):
        record = {"time_ns": t, "time": format_ns(t), "offset": off, "event": event}
        if line is not None:
            record["line"] = line
        out.write(dumps(record) + b"\n")
    for err in batch.errors:
        sys.stderr.write(f"line {err.line} (byte {err.offset}): {err.detail}\n")


def decode_stream(src: BinaryIO, content_type: str, content_encoding: Optional[str],
                  out: BinaryIO, errors: str = "raise", err: Optional[TextIO] = None) -> int:
    """Stream ``src`` through a StreamDecoder, printing events as NDJSON; 0 or 1."""
    try:
        decoder = StreamDecoder(content_type, content_encoding=content_encoding, errors=errors)
        while True:
            chunk = src.read(CHUNK)
            if not chunk:
                break
            _print_batch(cast(Batch, decoder.feed(chunk)), out)
        _print_batch(cast(Batch, decoder.close()), out)
    except IngestError as exc:
        out.flush()
        (err or sys.stderr).write(f"{exc.status} {exc}\n")
        return 1
    return 0


def _demo() -> int:
    out = sys.stdout.buffer
    samples = [
        ("application/json", None,
         b'{"message":"My first event","nested":{"values":123}}'),
        ("application/x-ndjson", None,
         b'{"message":"A","dt":"2022-12-31T13:45:59.123456Z"}\n'
         b'{"message":"B","dt":1672490759123}\n{"message":"C","dt":"not a time"}\n'),
        ("application/msgpack", "gzip",
         gzip.compress(msgpack.packb([{"message": "A"}, {"message": "B", "dt": 1672490759}]))),
        ("application/json", None, b'[{"message":"ok"}, {"message": tru}]'),
    ]
    print(f"fastingest {__version__} ({IMPLEMENTATION} kernels)")
    for ctype, encoding, body in samples:
        print(f"\n# {ctype}{' + ' + encoding if encoding else ''}, {len(body)} bytes")
        sys.stdout.flush()
        decode_stream(_Bytes(body), ctype, encoding, out, err=sys.stdout)  # type: ignore[arg-type]
        sys.stdout.flush()
    return 0


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int) -> bytes:
        head, self._data = self._data[:n], self._data[n:]
        return head


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fastingest", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fastingest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="decode a few sample bodies and print the result")
    p = sub.add_parser("decode", help="decode a body file, print its events and times as NDJSON")
    p.add_argument("file", help="body file, or - for standard input")
    p.add_argument("--content-type", "-t", required=True)
    p.add_argument("--content-encoding", "-e", default=None)
    p.add_argument("--collect", action="store_true",
                   help="NDJSON: keep good lines, report bad ones on stderr")
    register_serve: Optional[Callable[[Any], None]]
    try:
        from .server.cli import register as register_serve
    except ImportError:   # the [server] extra is not installed
        register_serve = None
    if register_serve is not None:
        register_serve(sub)
    else:
        sub.add_parser("serve", help="run the ingestion server (needs: pip install 'fastingest[server]')")
    from .server.tail import register as register_tail   # sqlite3 only; nats-py when used
    register_tail(sub)
    args = parser.parse_args(argv)
    if hasattr(args, "run"):
        status: int = args.run(args)
        return status
    if args.command == "serve":
        parser.error("the server needs its extra: pip install 'fastingest[server]'")
    if args.command == "demo":
        return _demo()
    if args.command == "decode":
        try:
            src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
        except OSError as exc:
            parser.error(str(exc))
        with src:
            try:
                return decode_stream(src, args.content_type, args.content_encoding, sys.stdout.buffer,
                                     "collect" if args.collect else "raise")
            except ValueError as exc:
                parser.error(str(exc))
    return 2
