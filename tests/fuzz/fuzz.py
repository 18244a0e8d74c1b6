"""Run the fastingest fuzz harnesses (``tests/fuzz/harnesses.py``) with atheris.

    python tests/fuzz/fuzz.py NAME [libFuzzer options]     # one harness, until stopped
    python tests/fuzz/fuzz.py --smoke 60                   # every harness, 60 s in all
    python tests/fuzz/fuzz.py --long 3600 --jobs 2         # every harness, 1 h each
    python tests/fuzz/fuzz.py --replay [DIR ...]           # corpus files through the harnesses
    python tests/fuzz/fuzz.py --list

A single-harness run reads the committed seeds (``tests/fuzz/corpus/NAME``) and writes
what it discovers to ``$FUZZ_WORKDIR/NAME`` (default ``/tmp/fastingest-fuzz``); crashes
land in ``$FUZZ_WORKDIR/artifacts/NAME-crash-*``. Pin every one as a named regression
test (``tests/fuzz/test_fuzz.py`` shows how) before deleting it.

``--smoke``/``--long`` run the harnesses one after another in subprocesses and print one
line per harness (executions, seconds, coverage); they exit non-zero on any finding.
Coverage is Python-level (atheris instruments the package, including the pure-Python
twins, whose branches mirror the Cython kernels); for native coverage and ASan on the
compiled kernels see ``tests/fuzz/sanitize.sh``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
WORKDIR = Path(os.environ.get("FUZZ_WORKDIR", "/tmp/fastingest-fuzz"))
sys.path.insert(0, str(HERE))


def names() -> list:
    from harnesses import HARNESSES
    return list(HARNESSES)


def run_one(name: str, argv: list) -> None:
    import atheris

    with atheris.instrument_imports(include=["fastingest"]):
        import fastingest  # noqa: F401  (instrumented before the harnesses import it)
        import fastingest.protocols.betterstack  # noqa: F401
        import fastingest.protocols.samsara  # noqa: F401
        import fastingest.protocols.elasticsearch  # noqa: F401
        import fastingest.protocols.loki  # noqa: F401
        import fastingest.protocols.otlp  # noqa: F401
        import fastingest.protocols.splunk  # noqa: F401
    from harnesses import HARNESSES

    check = HARNESSES[name]
    work = WORKDIR / name
    work.mkdir(parents=True, exist_ok=True)
    artifacts = WORKDIR / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / name
    args = [sys.argv[0], f"-artifact_prefix={artifacts}/{name}-", "-max_len=4096",
            "-timeout=20", "-rss_limit_mb=3072", *argv]
    if not any(not a.startswith("-") for a in argv):
        args += [str(work)] + ([str(seeds)] if seeds.is_dir() else [])
    atheris.Setup(args, check)
    atheris.Fuzz()


STAT = re.compile(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+)")


def fuzz_for(name: str, seconds: float, keep_going: bool) -> Tuple[int, int, float, List[str]]:
    """Fuzz one harness for ``seconds``; with ``keep_going`` restart after a finding until
    the time is up. Returns (executions, coverage, seconds, crash files)."""
    t0 = time.monotonic()
    execs = cov = 0
    crashes: List[str] = []
    artifacts = WORKDIR / "artifacts"
    with open(WORKDIR / f"{name}.log", "w") as log:
        while True:
            remaining = seconds - (time.monotonic() - t0)
            if remaining < 0.5:
                break
            left = max(1, int(round(remaining)))
            before = set(artifacts.glob(f"{name}-*")) if artifacts.is_dir() else set()
            cmd = [sys.executable, str(Path(__file__).resolve()), name,
                   f"-max_total_time={left}", "-print_final_stats=1"]
            try:
                out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     timeout=left + 120).stdout.decode(errors="replace")
            except subprocess.TimeoutExpired as exc:
                out = (exc.stdout or b"").decode(errors="replace") + "\nTIMEOUT (hang?)\n"
                crashes.append(f"{name}: hang")
            log.write(out)
            log.flush()
            found = re.findall(r"stat::number_of_executed_units:\s+(\d+)", out)
            execs += int(found[-1]) if found else 0
            covs = STAT.findall(out)
            cov = max([cov] + [int(c[1]) for c in covs])
            new = sorted(set(artifacts.glob(f"{name}-*")) - before) if artifacts.is_dir() else []
            if new or "Uncaught Python exception" in out or "ERROR: libFuzzer" in out:
                crashes += [str(p) for p in new] or [f"{name}: see {WORKDIR / (name + '.log')}"]
                print(out[-3000:], flush=True)
                if not keep_going:
                    break
    if not execs and not crashes:
        crashes.append(f"{name}: ran no input (see {WORKDIR / (name + '.log')})")
    return execs, cov, time.monotonic() - t0, crashes


def run_all(seconds_each: float, jobs: int = 1, keep_going: bool = False) -> int:
    """Each harness for ``seconds_each`` seconds, ``jobs`` at a time; 1 on any finding."""
    from concurrent.futures import ThreadPoolExecutor

    WORKDIR.mkdir(parents=True, exist_ok=True)
    failed = []
    total_execs = 0
    with ThreadPoolExecutor(jobs) as pool:
        futures = {name: pool.submit(fuzz_for, name, seconds_each, keep_going) for name in names()}
        for name, fut in futures.items():
            execs, cov, took, crashes = fut.result()
            total_execs += execs
            print(f"{name:16s} execs={execs:<9d} time={took:6.1f}s cov={cov:<5d} "
                  f"findings={len(crashes)}", flush=True)
            if crashes:
                failed.append(name)
                for c in crashes:
                    print("   ", c, flush=True)
    print(f"total executions: {total_execs}")
    if failed:
        print("FINDINGS in:", ", ".join(failed), "- artifacts in", WORKDIR / "artifacts")
        return 1
    return 0


def replay(paths: list) -> int:
    """Run files (or every file under directories) through the harness named by the
    directory they sit in (``corpus/NAME/...``, or ``NAME-crash-*`` artifacts)."""
    from harnesses import HARNESSES

    count = 0
    for p in map(Path, paths or [CORPUS]):
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            name = f.parent.name if f.parent.name in HARNESSES else f.name.split("-crash-")[0]
            HARNESSES[name](f.read_bytes())
            count += 1
    print(f"replayed {count} inputs")
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--list":
        print("\n".join(names()))
        return 0
    if argv[0] == "--replay":
        return replay(argv[1:])
    if argv[0] in ("--smoke", "--long"):
        total = float(argv[1]) if len(argv) > 1 else (60 if argv[0] == "--smoke" else 3600)
        jobs = int(argv[argv.index("--jobs") + 1]) if "--jobs" in argv else 1
        each = total / len(names()) * jobs if argv[0] == "--smoke" else total
        return run_all(each, jobs, keep_going=argv[0] == "--long")
    run_one(argv[0], argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
