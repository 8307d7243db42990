"""The command line starts light: building its parser, every --help and `mlplab keys` load no numerics (commands
import their modules when they run), so `mlplab --help` answers in about a tenth of a second instead of one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
HEAVY = "{'numpy','numba','matplotlib','optuna','dask','scipy','sklearn','torch'}"
LOADED = f"sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY})"


def python(code: str) -> str:
    """stdout of `python -c code` with this checkout's src first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_building_the_parser_imports_no_numerics() -> None:
    code = f"import sys; from mlplab.cli import build_parser; build_parser(); print({LOADED})"
    assert python(code) == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["keys"], ["theory", "--help"], ["every command", "--help"]])
def test_help_and_keys_import_no_numerics(argv: list[str]) -> None:
    commands = "[a for a in build_parser()._subparsers._group_actions[0].choices]"
    runs = f"[[c, '--help'] for c in {commands}]" if argv[0] == "every command" else repr([argv])
    code = f"""
import contextlib, io, sys
from mlplab.cli import build_parser, main
for argv in {runs}:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    assert code == 0 and len(out.getvalue()) > 100, (argv, code, out.getvalue())
print({LOADED})
"""
    assert python(code) == "[]"
