"""The diagnostics cost benchmark runs end to end on tiny data and reports both shapes, side by side."""

from __future__ import annotations

import pytest
from benchmarks.suite import workload

from benchmarks import diagnostics


@pytest.mark.slow
def test_quick_run_measures_both_shapes_in_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    results = diagnostics.measure_cost(workload(True, None), rounds=2)
    assert set(results) == {"two_layer", "recipe"}
    for r in results.values():
        assert len(r["rounds"]["plain"]) == len(r["rounds"]["diagnostics"]) == 2 and r["probe_size"] == 512
        assert r["epoch_seconds"]["plain"] > 0 and r["measurement_share"] > 0
    table = diagnostics.markdown(results, "synthetic")
    assert table.count("| two_layer (batch 64, probe 512) |") == 1 and "| recipe (batch 128, probe 512) |" in table
