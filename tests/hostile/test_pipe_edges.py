"""A reader that closes early: every command's output into a real pipe whose reading end is already closed (what
`mlplab theory | head -1` becomes once head has its line) ends quietly with status 141, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.harness import BLAS, assert_no_orphans

ROOT = Path(__file__).resolve().parents[2]
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as the shell reports for `yes | head -1`


def into_closed_pipe(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Exit status and stderr of `mlplab args` whose stdout is a pipe nobody reads any more."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, **BLAS, "PYTHONPATH": str(ROOT / "src")}
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlplab.cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=timeout)
    assert time.monotonic() - start < timeout
    assert_no_orphans(proc.pid)
    return proc.returncode, err.decode()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [("theory",), ("keys",), ("gradcheck", "--model", "softmax", "--batch", "2")],
    ids=lambda a: " ".join(a),
)
def test_closed_reader_ends_quietly_with_141(args: tuple[str, ...]) -> None:
    code, err = into_closed_pipe(*args)
    assert code == EXIT_BROKEN_PIPE, (code, err[-1500:])
    assert err == "", err[-1500:]


@pytest.mark.slow
def test_head_reading_one_line_of_a_long_output(tmp_path: Path) -> None:
    """A real `| head -1` in a shell with pipefail: the command's status is 141 and head printed one line."""
    script = f"set -o pipefail; {sys.executable} -m mlplab.cli theory | head -1; echo status=${{PIPESTATUS[0]}}"
    env = {**os.environ, **BLAS, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[1] in ("status=0", f"status={EXIT_BROKEN_PIPE}"), done.stdout
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


@pytest.mark.slow
def test_help_into_a_closed_pipe_is_quiet() -> None:
    code, err = into_closed_pipe("--help")
    assert code in (0, EXIT_BROKEN_PIPE) and err == "", (code, err)
