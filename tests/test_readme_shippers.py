"""The README's shipper-protocol examples, run as written against a live server (only
the address is changed to the test server's): each Python example and curl line must
succeed and store its events."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from servers import Serve

ROOT = Path(__file__).resolve().parent.parent


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Shipper protocols", 1)[1].split("\n## ", 1)[0]


def _blocks(kind: str):
    return re.findall(rf"```{kind}\n(.*?)```", _section(), re.S)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("readme")
    with Serve(["--token", "app=s3cret", "--store", f"sqlite:{tmp / 'events.db'}",
                "--log-level", "warning"], cwd=tmp) as srv:
        srv.db = tmp / "events.db"
        yield srv


def _count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def _local(code: str, port: int) -> str:
    return code.replace("127.0.0.1:9000", f"127.0.0.1:{port}").replace("port=9000", f"port={port}")


@pytest.mark.parametrize("index", range(4))
def test_python_examples_run_as_written(server, index):
    blocks = _blocks("python")
    assert len(blocks) == 4
    before = _count(server.db)
    proc = subprocess.run([sys.executable, "-c", _local(blocks[index], server.port)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Exception" not in proc.stdout and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert _count(server.db) > before


def test_curl_examples_run_as_written(server):
    (block,) = [b for b in _blocks("sh") if "collector" in b]
    proc = subprocess.run(["bash", "-c", _local(block, server.port)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count('{"text":"Success","code":0}') == 2, proc.stdout
