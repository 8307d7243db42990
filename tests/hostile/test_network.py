"""Silent or slow servers: Dask schedulers that never speak, dataset mirrors that stall or trickle.

Each case runs the real `mlplab` command as a user would (see tests/hostile/harness.py); `python -m tests.hostile`
prints every case's outcome as a table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.harness import CASES, FAST, Result, case, cases_in, mlplab, run_case, silent_listener, slow_mirror

DASK = ("sweep", "learning_rate", "0.1", *FAST)


@case("hang", "Dask scheduler address that accepts and never speaks")
def _(tmp: Path) -> str:
    with silent_listener() as port:
        result = mlplab(*DASK, "--dask-scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp / "s"),
                        env={"MLPLAB_CONNECT_TIMEOUT": "3"}, timeout=60)  # fmt: skip
    return result.refused("cannot reach the Dask scheduler", "3 s")


@case("hang", "Dask tls:// address without certificates")
def _(tmp: Path) -> str:
    with silent_listener() as port:
        result = mlplab(*DASK, "--dask-scheduler", f"tls://127.0.0.1:{port}", "--out", str(tmp / "s"), timeout=60)
    outcome = result.refused("cannot reach the Dask scheduler")
    assert result.seconds < 30
    return outcome


@case("hang", "Dask foo://bar:1 address")
def _(tmp: Path) -> str:
    result = mlplab(*DASK, "--dask-scheduler", "foo://bar:1", "--out", str(tmp / "s"), timeout=60)
    outcome = result.refused("unknown address scheme 'foo'")
    assert result.seconds < 30
    return outcome


def download_from(tmp: Path, trickle: bool) -> Result:
    """`train --dataset mnist` with no files anywhere, a 2 s download timeout and a slow mirror tried first."""
    env = {"MLPLAB_NO_DOWNLOAD": "0", "MLPLAB_CACHE": str(tmp / "cache"), "MLPLAB_DOWNLOAD_TIMEOUT": "2"}
    with slow_mirror(trickle) as url:
        result = mlplab("train", *FAST, "--dataset", "mnist", "--out", str(tmp / "o"),
                        env={**env, "MLPLAB_DATA": "", "MLPLAB_MIRROR": url}, timeout=90)  # fmt: skip
    assert not [p for p in (tmp / "cache").rglob("*") if p.is_file()], "a partial download was left in the cache"
    return result


@case("hang", "dataset download from a mirror that stalls")
def _(tmp: Path) -> str:
    return download_from(tmp, trickle=False).refused("no data for 2 s")


@case("hang", "dataset download from a mirror that trickles")
def _(tmp: Path) -> str:
    return download_from(tmp, trickle=True).refused("not finished after 2 s")


@pytest.mark.slow
@pytest.mark.parametrize("name", cases_in(__name__), ids=lambda name: f"{CASES[name][0]}-{name}")
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    run_case(name, tmp_path)
