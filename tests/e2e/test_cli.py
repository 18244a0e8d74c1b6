"""The `fastingest` command as a user meets it: quiet broken pipes, `decode` recognising
compressed input, help for every option in plain text, exit statuses as documented."""
from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import zlib

import brotli
import pytest
import zstandard

from fastingest.cli import _parser, guess_from_name
from fastingest.compression import sniff_encoding

from servers import ROOT

NDJSON = b'{"message":"A","dt":"2023-08-09T07:03:30Z"}\n{"message":"B","dt":1672490759}\n'


def fastingest(*args: str, stdin: bytes = b"", cwd=None, timeout: float = 60):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "fastingest", *args], input=stdin,
                          capture_output=True, timeout=timeout, cwd=cwd, env=env)


def piped_to_head(args, cwd):
    """`fastingest ARGS | head -1`: (fastingest's status, its stderr, head's output)."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    head = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc = subprocess.Popen([sys.executable, "-m", "fastingest", *args], stdout=head.stdin,
                            stderr=subprocess.PIPE, cwd=cwd, env=env)
    head.stdin.close()   # only the two processes hold the pipe
    out = head.stdout.read()
    head.wait(60)
    err = proc.stderr.read()
    return proc.wait(60), err.decode(), out


@pytest.mark.parametrize("command", [["demo"], ["decode", "big.ndjson"],
                                     ["decode", "big.ndjson.gz"]])
def test_a_closed_pipe_ends_quietly(tmp_path, command):
    lines = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * 200) for i in range(40000))
    (tmp_path / "big.ndjson").write_bytes(lines)   # 8.5 MB: far more than a pipe holds
    (tmp_path / "big.ndjson.gz").write_bytes(gzip.compress(lines))
    status, err, out = piped_to_head(command, tmp_path)
    assert out.count(b"\n") == 1
    assert status == 0
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err


@pytest.mark.parametrize("encoding,pack", [
    ("gzip", gzip.compress), ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ("deflate", zlib.compress)])
def test_decode_recognises_compressed_input(tmp_path, encoding, pack):
    path = tmp_path / "body.ndjson"
    path.write_bytes(pack(NDJSON))
    r = fastingest("decode", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(b"\n") == 2 and b'"message":"B"' in r.stdout
    assert f"decoding as Content-Encoding: {encoding} (from its first bytes".encode() in r.stderr
    r = fastingest("decode", "-e", "identity", str(path))   # as the bytes are: refused, hinted
    assert r.returncode == 1
    assert r.stderr.decode().endswith(f"this looks {encoding}'d: pass -e {encoding}\n")
    assert fastingest("decode", "-e", encoding, str(path)).stdout == \
        fastingest("decode", str(path)).stdout


def test_decode_takes_brotli_from_the_name_and_stdin_from_dash(tmp_path):
    (tmp_path / "body.ndjson.br").write_bytes(brotli.compress(NDJSON))
    r = fastingest("decode", str(tmp_path / "body.ndjson.br"))
    assert r.returncode == 0 and b"(from its name" in r.stderr and r.stdout.count(b"\n") == 2
    r = fastingest("decode", "-t", "application/x-ndjson", "-", stdin=gzip.compress(NDJSON))
    assert r.returncode == 0 and r.stdout.count(b"\n") == 2


def test_decode_needs_a_format_it_can_tell(tmp_path):
    (tmp_path / "body.bin").write_bytes(NDJSON)
    r = fastingest("decode", str(tmp_path / "body.bin"))
    assert r.returncode == 2
    assert b"usage: fastingest decode" in r.stderr and b"pass -t" in r.stderr
    assert fastingest("decode", str(tmp_path / "absent.json")).returncode == 2
    assert fastingest("decode", "-t", "text/csv", str(tmp_path / "body.bin")).returncode == 1


def test_decode_limits_are_options(tmp_path):
    (tmp_path / "a.ndjson").write_bytes(NDJSON * 100)
    r = fastingest("decode", "--max-body", "1k", str(tmp_path / "a.ndjson"))
    assert r.returncode == 1 and r.stderr.startswith(b"413 ")
    assert fastingest("decode", "--max-body", "1M", str(tmp_path / "a.ndjson")).returncode == 0


def test_sniff_encoding_and_names():
    assert sniff_encoding(gzip.compress(b"{}")) == "gzip"
    assert sniff_encoding(zstandard.ZstdCompressor().compress(b"{}")) == "zstd"
    assert sniff_encoding(zlib.compress(b"{}")) == "deflate"
    for plain in (b"", b"{", b'[{"a":1}]', b"\x81\xa1a\x01", b"\x91\x80", b"  {}", b"\xef\xbb\xbf{}"):
        assert sniff_encoding(plain) is None, plain
    assert guess_from_name("/x/events.ndjson.gz") == ("application/x-ndjson", "gzip")
    assert guess_from_name("events.JSONL") == ("application/x-ndjson", None)
    assert guess_from_name("body.msgpack.zst") == ("application/msgpack", "zstd")
    assert guess_from_name("body") == (None, None)


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_every_option_has_help_in_plain_text():
    parser = _parser()
    commands = _subparsers(parser)
    assert {"demo", "decode", "serve", "tail"} <= set(commands)
    for name, sub in commands.items():
        for action in sub._actions:
            if action.dest != "help" and not isinstance(action, argparse._SubParsersAction):
                assert action.help, f"fastingest {name} {action.option_strings or action.dest}"
        text = sub.format_help()
        for markup in ("``", ":mod:", ":class:", ":func:", "::\n"):
            assert markup not in text, f"fastingest {name} --help shows {markup!r}"
    assert "``" not in parser.format_help()


def test_serve_exit_status_when_the_store_is_unreachable(tmp_path):
    """NATS unreachable at start: exit status 1 (as documented), with one worker or
    several, and no traceback."""
    pytest.importorskip("nats")
    for workers in ("1", "2"):
        r = fastingest("serve", "--port", "0", "--token", "a=b", "--workers", workers,
                       "--store", "nats://127.0.0.1:1?connect_timeout=1s", cwd=tmp_path,
                       timeout=120)
        assert r.returncode == 1, (workers, r.stderr[-2000:])
        assert b"Traceback" not in r.stderr and b"cannot connect to NATS" in r.stderr


def test_serve_usage_errors_are_exit_status_2(tmp_path):
    assert fastingest("serve", "--token", "no-equals-sign", cwd=tmp_path).returncode == 2
    assert fastingest("serve", "--log-format", "xml", cwd=tmp_path).returncode == 2
