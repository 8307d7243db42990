"""The diagnostics cost benchmark runs end to end on tiny data and reports every shape (or the ones asked for), side by
side."""

from __future__ import annotations

import pytest
from benchmarks.suite import workload

from benchmarks import diagnostics


@pytest.mark.slow
def test_quick_run_measures_every_shape_in_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    results = diagnostics.measure_cost(workload(True, None), rounds=2)
    assert set(results) == {"two_layer", "recipe", "randomize_quick"}
    for r in results.values():
        assert len(r["rounds"]["plain"]) == len(r["rounds"]["diagnostics"]) == 2 and r["probe_size"] == 512
        assert r["epoch_seconds"]["plain"] > 0 and r["measurement_share"] > 0
    table = diagnostics.markdown(results, "synthetic")
    assert table.count("| two_layer (2,048 train, batch 64, probe 512) |") == 1
    assert "| recipe (2,048 train, batch 128, probe 512) |" in table
    assert "| randomize_quick (2,048 train, batch 128, probe 512) |" in table  # the quick subset of 5,000, or all
    assert set(diagnostics.measure_cost(workload(True, None), rounds=1, only=["recipe"])) == {"recipe"}
