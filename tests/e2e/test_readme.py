"""The README's two commands stay true: CI runs exactly its test command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    serve, tests = _readme_commands()
    assert ".venv/bin/fastingest serve --token " in serve   # a token the examples can use
    assert tests.startswith("python3 -m venv .venv") and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = _readme_commands()
    test_command = tests.split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1].strip() == test_command
    install = tests.split("&&")[1].strip()
    assert any(line.strip().startswith(install) for line in ci)


def test_purepython_env_selects_the_twins():
    env = dict(os.environ, FASTINGEST_PUREPYTHON="1")
    out = subprocess.run([sys.executable, "-c", "import fastingest; print(fastingest.IMPLEMENTATION)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "python"


def test_demo_runs():
    out = subprocess.run([sys.executable, "-m", "fastingest", "demo"], capture_output=True,
                         text=True, check=True, timeout=60)
    assert "My first event" in out.stdout and "406" in out.stdout
