"""The fastingest command: demo, decode, tail (and serve with the server extra).

Exit status of every command: 0 done (also when the reader of the output went away,
as in "fastingest decode big.ndjson | head -1"), 1 the input or the store was refused
(decode: the body is invalid; serve: the server could not start; tail: the store cannot
be read), 2 a usage error (bad or missing option, unreadable file), 130 interrupted
(Ctrl-C).
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
from typing import Any, BinaryIO, Callable, Iterable, List, Optional, TextIO, Tuple

import msgpack

from . import IMPLEMENTATION, __version__
from .batch import Batch
from .compression import sniff_encoding
from .errors import IngestError
from .formats import MEDIA_TYPES
from .jsonout import dumps, format_ns
from .limits import DEFAULT_LIMITS, Limits
from .stream import StreamDecoder

CHUNK = 64 * 1024

#: Exit statuses (the module docstring says when).
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: File name suffixes that say a body's format and coding (fastingest decode).
TYPE_SUFFIXES = {".json": "application/json", ".ndjson": "application/x-ndjson",
                 ".jsonl": "application/x-ndjson", ".msgpack": "application/msgpack",
                 ".mpk": "application/msgpack", ".mp": "application/msgpack"}
ENCODING_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd",
                     ".br": "br", ".zz": "deflate", ".deflate": "deflate"}

DECODE_DESCRIPTION = """\
Decode one request body as the server would, printing one NDJSON line per event:
its time (int64 ns and RFC 3339), its byte offset in the decoded body, its NDJSON
line and the event itself. An invalid body prints the events before the fault, then
the server's status and the reason on stderr, and exits with status 1.

  fastingest decode events.ndjson                  # format from the name
  fastingest decode -t application/json body.bin
  fastingest decode events.ndjson.gz               # gzip from the name or the bytes
  curl -s https://example.com/body | fastingest decode -t application/x-ndjson -

The coding is found from the body's first bytes (gzip, zstd and zlib deflate carry a
signature) or the file name (.gz, .zst, .br, .zz), and said on stderr; -e names it
(-e identity: decode the bytes as they are). Brotli has no signature: name it.
"""


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
                  out: BinaryIO, errors: str = "raise", err: Optional[TextIO] = None,
                  limits: Limits = DEFAULT_LIMITS, first: bytes = b"") -> int:
    """Stream ``first`` then ``src`` through a StreamDecoder, printing events as NDJSON,
    one batch (one piece of decoded body) at a time: memory stays bounded whatever
    the body inflates to. 0, or 1 after printing the error."""
    try:
        decoder = StreamDecoder(content_type, content_encoding=content_encoding,
                                errors=errors, limits=limits)
        chunk = first or src.read(CHUNK)
        while chunk:
            _print_all(decoder.feed_batches(chunk), out)
            chunk = src.read(CHUNK)
        _print_all(decoder.close_batches(), out)
    except IngestError as exc:
        out.flush()
        (err or sys.stderr).write(f"{exc.status} {exc}\n")
        return EXIT_REFUSED
    return EXIT_OK


def _print_all(batches: Iterable[Any], out: BinaryIO) -> None:
    for batch in batches:
        _print_batch(batch, out)


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
    return EXIT_OK


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, n: int) -> bytes:
        head, self._data = self._data[:n], self._data[n:]
        return head


def _size(text: str) -> int:
    from .server.cli import parse_size   # one parser for serve and decode
    return parse_size(text)


def _suffixes(path: str) -> List[str]:
    """Lower-cased name suffixes, last first: ``a.ndjson.gz`` → [".gz", ".ndjson"]."""
    name = os.path.basename(path).lower()
    parts = name.split(".")[1:]
    return ["." + p for p in reversed(parts)]


def guess_from_name(path: str) -> Tuple[Optional[str], Optional[str]]:
    """(content type, content coding) that a file name says, each None when it does not."""
    suffixes = _suffixes(path)
    encoding = ENCODING_SUFFIXES.get(suffixes[0]) if suffixes else None
    rest = suffixes[1:] if encoding else suffixes
    ctype = TYPE_SUFFIXES.get(rest[0]) if rest else None
    return ctype, encoding


def _decode(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.decode_parser
    named_type, named_encoding = (None, None) if args.file == "-" else guess_from_name(args.file)
    content_type = args.content_type or named_type
    if content_type is None:
        parser.error(f"cannot tell the body's format from {args.file!r}: pass -t with one of "
                     f"{', '.join(MEDIA_TYPES)}")
    try:
        src = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    except OSError as exc:
        parser.error(str(exc))
    limits = Limits(max_body=args.max_body, max_compressed=args.max_compressed,
                    max_event=args.max_event)
    with src:
        first = src.read(CHUNK)
        sniffed = sniff_encoding(first)
        encoding = args.content_encoding
        if encoding is None:
            encoding = sniffed or named_encoding
            if encoding is not None:
                how = "its first bytes" if sniffed else "its name"
                sys.stderr.write(f"fastingest decode: decoding as Content-Encoding: {encoding} "
                                 f"(from {how}; -e identity decodes the bytes as they are)\n")
        try:
            status = decode_stream(src, content_type, encoding, sys.stdout.buffer,
                                   "collect" if args.collect else "raise", limits=limits,
                                   first=first)
        except ValueError as exc:
            parser.error(str(exc))
    if status and sniffed and encoding in (None, "identity"):
        sys.stderr.write(f"this looks {sniffed}'d: pass -e {sniffed}\n")
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastingest", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastingest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="decode a few sample bodies and print the result",
                   description="Decode a few sample bodies (JSON, NDJSON, gzip'd MessagePack, "
                               "an invalid one) and print the events and the error.")
    p = sub.add_parser("decode", help="decode a body file, print its events and times as NDJSON",
                       description=DECODE_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="the body file, or - for standard input")
    p.add_argument("--content-type", "-t", metavar="TYPE",
                   help=f"the body's media type: {', '.join(MEDIA_TYPES)} (parameters such as "
                        "charset ignored); default: from the file name (.json, .ndjson, "
                        ".jsonl, .msgpack)")
    p.add_argument("--content-encoding", "-e", metavar="CODING",
                   help="the body's Content-Encoding: gzip, deflate, zstd, br, identity, or a "
                        "list as in the header (gzip, br); default: from the first bytes or "
                        "the file name")
    p.add_argument("--collect", action="store_true",
                   help="NDJSON: print the good lines and report each bad one on stderr, "
                        "instead of stopping at the first")
    p.add_argument("--max-body", type=_size, default=DEFAULT_LIMITS.max_body, metavar="SIZE",
                   help="decoded body limit, as the server's (default 20MiB)")
    p.add_argument("--max-compressed", type=_size, default=DEFAULT_LIMITS.max_compressed,
                   metavar="SIZE", help="compressed body limit (default 10MiB)")
    p.add_argument("--max-event", type=_size, default=DEFAULT_LIMITS.max_event,
                   metavar="SIZE", help="one event's limit (default 1MiB)")
    p.set_defaults(decode_parser=p)
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
    return parser


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if hasattr(args, "run"):
        status: int = args.run(args)
        return status
    if args.command == "serve":
        parser.error("the server needs its extra: pip install 'fastingest[server]'")
    if args.command == "demo":
        return _demo()
    return _decode(args)


def main(argv: Optional[List[str]] = None) -> int:
    """The ``fastingest`` command; returns its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status = _run(parser, args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`| head -1`): like coreutils, end without a word. Point
        # stdout at /dev/null so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
