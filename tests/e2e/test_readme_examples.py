"""The README's examples, pasted into a fresh shell after its first command.

Blocks opt in with an HTML comment on the line before their fence (the convention is in
the README's Development section): ``run`` blocks run with bash in a scratch directory
(``.venv`` links to this test's venv; no variable of this process leaks in) against a
server started as the README's first line says; ``output`` and ``server-log`` blocks say
what must come out; a ``serve`` block starts another server for the blocks after it.
Every port the README names is mapped to a free one, so parallel runs never collide.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

from servers import Lines, free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
KINDS = ("run", "output", "server-log", "serve")
MARKED = re.compile(r"^<!-- readme-test: ([\w-]+) -->\n```(\w*)\n(.*?)^```", re.M | re.S)
PORT = re.compile(r"(?<=127\.0\.0\.1:)(\d{2,5})\b|(?<=localhost:)(\d{2,5})\b|(?<=--port )(\d{2,5})\b")
BANNER = r" on (https?)://127\.0\.0\.1:(\d+)"


class Block(NamedTuple):
    kind: str
    text: str
    line: int   # of the fence, in README.md


def marked_blocks(text: str) -> List[Block]:
    return [Block(m.group(1), m.group(3), text.count("\n", 0, m.start()) + 2)
            for m in MARKED.finditer(text)]


def first_command(text: str) -> str:
    """The server command of the README's first line (after its installs)."""
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()[0].split("&&")[-1].strip()


def ellipsis_match(expected: str, got: str) -> bool:
    """doctest's ELLIPSIS: ``...`` matches anything; a line of ``...`` any lines."""
    pattern = ""
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in line.split("...")) + r"[ \t]*\n"
    return re.fullmatch(pattern, _normal(got)) is not None


def _normal(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text if text.endswith("\n") or not text else text + "\n"


class Ports:
    """README port → a free port of this machine, the same one every time it is named."""

    def __init__(self) -> None:
        self.map: Dict[str, str] = {}

    def __call__(self, code: str) -> str:
        def swap(m: "re.Match[str]") -> str:
            port = m.group(0)
            return self.map.setdefault(port, str(free_port()))
        return PORT.sub(swap, code)


def fresh_env(home: Path) -> Dict[str, str]:
    """A new login's environment: no venv on the PATH, no fastingest variables. curl
    shows no progress meter, as on the terminal the examples are pasted into (it shows
    one only when its output is not a terminal, as here)."""
    (home / ".curlrc").write_text("--no-progress-meter\n")
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
            "PYTHONDONTWRITEBYTECODE": "1"}


class Server:
    """A shell running a server command (and the lines before it), in its own session."""

    def __init__(self, script: str, cwd: Path, env: Dict[str, str]) -> None:
        self.proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.out, self.err = Lines(self.proc.stdout), Lines(self.proc.stderr)
        try:
            self.out.wait_for(BANNER, timeout=60)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        """Everything the server wrote on stderr so far."""
        while not self.err.lines.empty():
            self.err.seen.append(self.err.lines.get())
        return "".join(self.err.seen)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _on_port(command: str) -> str:
    """A serve command with its port said (the default, 9000, if it names none)."""
    return command if "--port" in command else f"{command} --port 9000"


def _venv() -> Path:
    venv = Path(sys.prefix)
    if not (venv / "bin" / "fastingest").exists():
        pytest.skip(f"no fastingest command in {venv}/bin: run from the project's venv")
    return venv


def _log_has(log: str, expected: str) -> bool:
    """Each expected line matches a log line, in order."""
    lines = _normal(log).splitlines()
    i = 0
    for want in expected.rstrip("\n").split("\n"):
        while i < len(lines) and not ellipsis_match(want, lines[i]):
            i += 1
        if i == len(lines):
            return False
        i += 1
    return True


def test_readme_examples_run_as_pasted(tmp_path):
    text = README.read_text()
    blocks = marked_blocks(text)
    for tool in ("curl", "gzip", "sqlite3", "openssl"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is missing: the README examples need it (.ci/run installs it)")
            pytest.skip(f"{tool} is not installed")
    (tmp_path / ".venv").symlink_to(_venv())
    env = fresh_env(tmp_path)
    ports = Ports()
    server: Optional[Server] = Server(ports(f"exec {_on_port(first_command(text))}"),
                                      tmp_path, env)
    last_output: Optional[str] = None
    try:
        for block in blocks:
            where = f"README.md line {block.line} ({block.kind})"
            if block.kind == "serve":
                assert server is not None
                server.stop()
                *setup, serve = block.text.rstrip("\n").split("\n")
                script = "\n".join(setup + [f"exec {_on_port(serve)}"])
                server = Server(ports(script), tmp_path, env)
                last_output = None
            elif block.kind == "run":
                proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", ports(block.text)],
                                      cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, timeout=120)
                assert proc.returncode == 0, f"{where}: exit status {proc.returncode}:\n{proc.stdout}"
                last_output = proc.stdout
            elif block.kind == "output":
                assert last_output is not None, f"{where}: no run block before it"
                assert ellipsis_match(block.text, last_output), \
                    f"{where}: expected\n{block.text}\ngot\n{last_output}"
                last_output = None
            elif block.kind == "server-log":
                assert server is not None
                deadline = time.monotonic() + 10
                while not _log_has(server.log(), block.text) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert _log_has(server.log(), block.text), \
                    f"{where}: expected in the server's log\n{block.text}\ngot\n{server.log()}"
    finally:
        if server is not None:
            server.stop()


def test_readme_markers_are_known_and_in_place():
    """A misspelt marker would silently skip its block: every marker is one of KINDS
    and sits right before a fence; output blocks follow a run block."""
    text = README.read_text()
    markers = re.findall(r"^<!-- readme-test: ([\w-]+) -->", text, re.M)
    blocks = marked_blocks(text)
    assert len(markers) == len(blocks), "a readme-test marker is not right before a fence"
    assert set(markers) <= set(KINDS), set(markers) - set(KINDS)
    previous = None
    for block in blocks:
        if block.kind == "output":
            assert previous == "run", f"README.md line {block.line}: output after {previous}"
        previous = block.kind
    assert sum(b.kind == "run" for b in blocks) >= 7


def test_shell_blocks_call_the_venv():
    """Pasted into a fresh shell, a bare `fastingest`, `pip` or `python` is not the
    project's (no venv is activated there)."""
    text = README.read_text()
    bare = re.compile(r"(?:^|[|;&(]\s*|\$\()\s*(fastingest|pip|python)\s")
    for match in re.finditer(r"```sh\n(.*?)```", text, re.S):
        for line in match.group(1).splitlines():
            found = bare.search(line.split("#", 1)[0])
            assert found is None, f"bare {found.group(1)!r} in README: {line!r}"


def test_first_command_pins_a_token():
    command = first_command(README.read_text())
    assert command.startswith(".venv/bin/fastingest serve")
    assert re.search(r"--token \w+=(\S+)", command)


def test_ellipsis_matching():
    assert ellipsis_match("a\n...\nc\n", "a\nb\nb\nc\n")
    assert ellipsis_match("a\n...\nc\n", "a\nc\n")
    assert ellipsis_match("x=... y=2\n", "x=13 y=2\n")
    assert not ellipsis_match("a\nc\n", "a\nb\nc\n")
    assert not ellipsis_match("x=... y=2\n", "x=13 y=3\n")
    assert ellipsis_match("HTTP/1.1 202 Accepted\n...\n", "HTTP/1.1 202 Accepted\r\ndate: x\r\n\r\n")
