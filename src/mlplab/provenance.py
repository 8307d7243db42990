"""What produced a result: mlplab's version (and git commit, when run from a checkout), Python and the numeric
libraries, the BLAS with its thread count, the CPU, and the command line. Recorded in every metrics.json,
results.json and report (never part of a run's config: a rerun elsewhere is the same run), and by `mlplab --version`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlplab import __version__

GIT_TIMEOUT = 2.0  # seconds per git call: a hung or slow git never holds a run up for longer
LIBRARIES = ("numpy", "scipy", "numba")
MAX_COMMAND = 1000  # characters of the command line kept


def provenance() -> dict[str, Any]:
    """What is producing results in this process right now (the BLAS threads as currently limited)."""
    return {**_fixed(), "blas": blas()}


@functools.cache
def _fixed() -> dict[str, Any]:
    """The parts that cannot change while the process runs, found once."""
    return {
        "mlplab": __version__,
        "git": git_state(Path(__file__).resolve().parents[2]),
        "python": platform.python_version(),
        **{name: _version(name) for name in LIBRARIES},
        "cpu": cpu_model(),
        "command": command_line(),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state(root: Path) -> dict[str, Any] | None:
    """{"commit", "dirty"} of the checkout mlplab runs from; None when it is not one, or git is absent or stuck.

    "dirty" (tracked files changed) is None when git could not tell in time.
    """
    if not (root / ".git").exists() or not (root / "src" / "mlplab").is_dir():
        return None  # an installed mlplab: no checkout of its own
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None or len(commit) < 40:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _git(root: Path, *args: str) -> str | None:
    """git's output, or None when git is missing, fails, or takes longer than GIT_TIMEOUT."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}  # read only: no index lock taken
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_model() -> str:
    """The processor's name as the system gives it (Linux: /proc/cpuinfo), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def command_line() -> str:
    """The command that started this process, as typed (`mlplab …` for the console script or `python -m mlplab`)."""
    argv = sys.argv or [""]
    program = Path(argv[0]).name
    if program in ("mlplab", "cli.py", "__main__.py") or argv[0] == "-m":
        text = shlex.join(["mlplab", *argv[1:]])
    else:
        text = shlex.join(["python", *argv]) if argv[0] else "python"
    return text if len(text) <= MAX_COMMAND else text[: MAX_COMMAND - 1] + "…"


def blas() -> list[dict[str, Any]]:
    """Each BLAS library NumPy loaded: its name, version and the threads it uses now (threadpoolctl)."""
    import numpy  # noqa: F401 - loads the BLAS, which threadpoolctl can only see once loaded
    from threadpoolctl import threadpool_info

    return [
        {"library": pool.get("internal_api"), "version": pool.get("version"), "threads": pool.get("num_threads")}
        for pool in threadpool_info()
        if pool.get("user_api") == "blas"
    ]


def short(record: dict[str, Any] | None = None) -> str:
    """`mlplab --version`'s lines: version and commit, the libraries, the BLAS, the CPU."""
    record = record or provenance()
    git = record["git"]
    where = ""
    if git is not None:
        where = f" (git {git['commit'][:10]}{', modified' if git['dirty'] else ''})"
    libraries = ", ".join(f"{name} {record[name]}" for name in ("numpy", "scipy", "numba") if record.get(name))
    blas_text = "; ".join(
        f"{b['library']} {b['version'] or ''} ({b['threads']} thread{'s' if b['threads'] != 1 else ''})".replace(
            "  ", " "
        )
        for b in record["blas"]
    )
    return "\n".join(
        [
            f"mlplab {record['mlplab']}{where}",
            f"Python {record['python']}, {libraries}",
            f"BLAS: {blas_text or 'none found'}",
            f"CPU: {record['cpu']}",
        ]
    )
