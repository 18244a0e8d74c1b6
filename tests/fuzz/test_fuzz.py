"""The fuzz harnesses under pytest: the seed corpus replayed on every run, every finding
of the fuzzers pinned as a named regression, and the 60-second smoke run in CI.

The smoke run (every harness, ``FASTINGEST_FUZZ_SECONDS`` in all, default 60) runs when
``CI`` or ``FASTINGEST_FUZZ_SECONDS`` is set and atheris is installed (the ``[fuzz]``
extra, part of ``[test]`` on Linux x86-64).
"""
from __future__ import annotations

import base64
import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harnesses import HARNESSES, Options, check_body, encode_input

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


def _corpus():
    for folder in sorted(CORPUS.iterdir()):
        for f in sorted(folder.iterdir()):
            yield pytest.param(folder.name, f, id=f"{folder.name}/{f.name}")


def test_every_harness_has_seeds():
    assert {p.name for p in CORPUS.iterdir()} == set(HARNESSES)
    for name in HARNESSES:
        assert len(list((CORPUS / name).iterdir())) >= 5, name


@pytest.mark.parametrize("name,path", list(_corpus()))
def test_corpus_replays_clean(name, path):
    HARNESSES[name](path.read_bytes())


def test_harnesses_survive_trivial_inputs():
    for name, check in HARNESSES.items():
        for data in (b"", b"\x00", b"\xff", b"\xff" * 40, bytes(range(256))):
            check(data)


# -- findings of the fuzzers, pinned ------------------------------------------------------

def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_corrupt_gzip_after_bad_json_is_rejected_whatever_the_chunking():
    """decode_gzip (first smoke run): a gzip stream whose first inflated bytes are
    already invalid JSON and whose later deflate data is corrupt. Fed whole, zlib meets
    the corruption in the same call that inflates the bad JSON (400); in small chunks the
    bad JSON is framed first (406). Both are rejections; which one is documented as
    chunking-dependent for corrupt compressed data (README, "Hostile input")."""
    data = _b64("AAMDAB0ACgAfiwgAAAAAAAIDi65WSlSyNKzVqVZKUrJSMlLSUUopATEMjIx1DSx0DSwVDMytD"
                "IytjA20DQ6oDOxrlZz+CnWrTTQAAAA=")
    HARNESSES["decode_gzip"](data)
    opts = Options(data, "application/json")
    got = check_body(opts.body, "application/json", "gzip", opts, stream=False)
    assert got[0] == "error" and got[2] in (400, 406)


def test_corrupt_raw_deflate_after_non_object_line_is_rejected_whatever_the_chunking():
    """decode_deflate: the same chunking dependence for raw deflate and NDJSON."""
    HARNESSES["decode_deflate"](_b64(
        "IAMDAAkACgCrTS0uTkxPVbJSclTSUUopATKMDIyMdQ0sdA0sFQzMrQyMrYwNtA0MrAwMlGq5qpE0OEE4QTUY"
        "mpkbmVgamJtaGhoZ13IBAA=="))


def test_zstd_oversized_block_and_bad_frame_parameter_are_both_400():
    """decode_zstd: two corrupt frames; which corruption is noticed first depends on the
    chunking ("block larger than 128 KiB" vs zstd's "Unsupported frame parameter"): a 400
    either way."""
    HARNESSES["decode_zstd"](_b64(
        "IAMDCQAACgAotS/9aQmn4Skd8ipcEuo4zf/+wHHxm0f6VDzh/bxmEgc2AAMDAAkACgAotS/9IDShAQBbe7xeCiI="))


def test_corrupt_brotli_after_leading_garbage_is_rejected_whatever_the_chunking():
    """decode_br: brotli that inflates a little (not JSON) before its decoder fails."""
    HARNESSES["decode_br"](_b64(
        "AAMDAAkACgCLGYBbAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAeyJhIjoxfQAALHsiYiI6"
        "IjIiLCJkdCI6IjowMCJ9CnsibWVz/////////wYiLCJkdCI6MDgz"))


def test_valid_gzip_gives_the_same_answer_for_every_chunking():
    """The guarantee that does hold for compressed bodies: valid compressed data gives
    exactly the uncompressed body's answer, however it is cut."""
    body = b'{"a":1}\n{"b":tru}\n' * 3
    packed = gzip.compress(body)
    for cut in range(0, len(packed) + 1, 3):
        data = encode_input(packed, 8 | (1 << 5), (cut, cut + 1))
        HARNESSES["decode_gzip"](data)


# -- the smoke run --------------------------------------------------------------------------

def _smoke_seconds():
    value = os.environ.get("FASTINGEST_FUZZ_SECONDS")
    if value:
        return float(value)
    return 60.0 if os.environ.get("CI") else None


@pytest.mark.skipif(_smoke_seconds() is None, reason="set CI or FASTINGEST_FUZZ_SECONDS for the fuzz smoke run")
def test_fuzz_smoke(tmp_path):
    pytest.importorskip("atheris")
    env = dict(os.environ, FUZZ_WORKDIR=str(tmp_path))
    seconds = _smoke_seconds()
    proc = subprocess.run([sys.executable, str(HERE / "fuzz.py"), "--smoke", str(seconds)],
                          env=env, capture_output=True, text=True, timeout=seconds + 300)
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "total executions:" in proc.stdout


def test_hec_object_over_max_event_is_413_before_a_later_syntax_error():
    """hec (first run): an object whose syntax error lies past max_event bytes was a
    code 6 fed whole and a 413 fed byte by byte. Only an object's first max_event bytes
    are judged now: the size limit, crossed first, answers in every chunking."""
    HARNESSES["hec"](b'\x01\x07{"event": "a", "time": 1796544182.426\xb4505}'
                     b'{"event": {"x": 1}, "fields": {"f": "v"}} {"event": "b"}')


def test_bulk_bad_action_line_before_an_oversized_line_wins_whatever_the_chunking():
    """bulk (first run): a malformed action line followed by a line over max_event was
    the 413 fed whole (the scanner's fatal fault discarded the line faults before it)
    and the 400 byte by byte. The lines before a fatal fault are judged first now."""
    HARNESSES["bulk"](b'\x01\t{\xffindex":{"_indep":"#ogs","_id":"x"}}\n{"@tim\n'
                      b'{"@timestamp":"2026-12-06T088Z","m\n{"@timestamp":"2026-12-06T08:02:58Z",'
                      b'"m"d":"2"}}\n{"update":{]_id":"0"}}')


def test_hec_event_without_event_key_before_a_syntax_error_answers_first():
    """hec (second run): the first object lacks "event" (code 12), the third is not
    JSON (code 6). Fed whole, framing met the syntax error before the first object was
    checked; now the objects before a framing fault are checked first."""
    HARNESSES["hec"](b'\x00\x14{"evae":"tn ", "time": 1796544182.4264505}'
                     b'{"event": {"x": 1}, "fields": {"f": "v"}} {"": "a", "b"}')


def test_hec_raw_line_of_max_event_bytes_before_crlf_is_accepted_in_any_chunking():
    """hec (45 s run): a raw line of exactly max_event bytes ended by "\\r\\n" was taken
    whole but a 413 fed byte by byte (the unfinished line, its "\\r" included, was one
    byte over). A trailing "\\r" may now wait for its "\\n"."""
    HARNESSES["hec"](b'\xdd\xf5\x82hree0on\xdb\r\nl\x97\x9a\xf5ne0on\xdb\r\n\x91\xf5\x9al\x97'
                     b'\x8bo\xdde\xf5n\x91\x8b\xdd\xf5\x82he0o\xff\xff\x00\x00\r\nlon\xdb\r\n'
                     b'l\x97\x9a\xf5ree')
