"""The checkpoint benchmark row: both turns timed every round, the overhead computed from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import checkpoint

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_quick_run_times_both_turns_and_writes_the_row(tmp_path: Path) -> None:
    assert checkpoint.main(["--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "checkpoint_quick.json").read_text())
    plain, saved = results["rounds"]["epoch"], results["rounds"]["epoch + checkpoint"]
    assert len(plain) == len(saved) == 1 and plain[0] > 0 and saved[0] > 0
    assert results["overhead"] == pytest.approx(saved[0] / plain[0] - 1)
    assert results["save_share"] == pytest.approx(results["save_seconds"] / plain[0]) and results["save_seconds"] > 0
    # parameters, Adam's two moments and the best snapshot of a 784-1024-10 MLP in float32, at least
    assert results["checkpoint_bytes"] > 4 * 4 * (784 * 1024 + 1024 * 10)
    row = (tmp_path / "checkpoint_quick.md").read_text().splitlines()[-1]
    assert row.startswith("| checkpoint after each epoch") and row.endswith("| ≤ 3% |")
