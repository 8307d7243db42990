"""The benchmark suite's quick mode runs end to end and writes complete, consistent JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import suite
from mlplab import config as configs
from mlplab.models import TwoLayerNet


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert suite.main(["--quick", "--out", str(out)]) == 0
    return json.loads((out / "quick.json").read_text()), (out / "quick.md").read_text()


def synthetic(n: int = 256, seed: int = 3):
    from mlplab.data import Dataset, Split

    rng = np.random.default_rng(seed)
    split = Split(rng.integers(0, 256, (n, 784), dtype=np.uint8), rng.integers(0, 10, n))
    return Dataset("synthetic", split, split, split, (28, 28), 255.0, source="random")


def test_the_contenders_train_the_configured_default():
    # The timed step is `mlplab train`'s default run: the suite's constants are configs/two_layer.yaml's.
    default = configs.resolve(Path(suite.REPO) / "configs" / "two_layer.yaml")
    assert (default["learning_rate"], default["reg"]) == (suite.LR, suite.REG)
    assert (default["batch_size"], default["hidden_size"], default["momentum"]) == (64, 128, 0.0)


def test_pytorch_contender_computes_the_same_training_as_mlplab():
    # A ratio of times only means something if both sides do the same work: same network, mean cross-entropy,
    # L2 on weight matrices only and plain SGD. From the same parameters, full-batch epochs (so the shuffling
    # does not matter) must land on the same parameters.
    torch = pytest.importorskip("torch")
    ds = synthetic()
    model = TwoLayerNet(784, 16, 10, seed=0)
    for i, p in enumerate(model.params.values()):  # weights large enough for the L2 term to show
        p[...] = np.random.default_rng(i).normal(0.0, 0.1, p.shape)
    net = suite.torch_net(16, start=model)
    start = {name: p.copy() for name, p in model.params.items()}
    ours, theirs = suite.mlplab_epoch(ds, 16, len(ds.train), model), suite.torch_epoch(ds, 16, len(ds.train), 1, net)
    for _ in range(20):
        ours()
        theirs()
    trained = {"W1": net[0].weight.T, "b1": net[0].bias, "W2": net[2].weight.T, "b2": net[2].bias}
    for name, p in model.params.items():
        with torch.no_grad():
            np.testing.assert_allclose(trained[name].numpy(), p, rtol=1e-4, atol=1e-6, err_msg=name)
        moved = np.abs(p - start[name]).max()
        assert moved > 20 * (1e-6 + 1e-4 * np.abs(p).max()), name  # it trained, far beyond the tolerance


def test_floor_epoch_is_two_gemms_per_step(monkeypatch):
    calls = []
    monkeypatch.setattr(suite, "gemm", lambda a, b, out: calls.append((a.shape, b.shape, out.shape)))
    suite.floor_epoch(1000, 128, 64)()
    assert len(calls) == 2 * 16  # ⌈1000 / 64⌉ steps
    assert set(calls) == {((64, 784), (784, 128), (64, 128)), ((784, 64), (64, 128), (784, 128))}


def test_every_measure_is_present_and_positive(quick_results):
    results, _ = quick_results
    assert results["machine"]["quick"] is True
    assert results["epoch_seconds"]["mlplab"] > 0 and results["epoch_seconds"]["sklearn"] > 0
    assert results["floor"]["epoch_seconds"] > 0
    rounds = results["rounds"]
    assert len(rounds["mlplab"]) == len(rounds["floor"]) == len(rounds["sklearn"]) == 1
    assert results["epoch_seconds"]["mlplab"] == rounds["mlplab"][0]
    assert results["floor"]["efficiency"] == pytest.approx(rounds["floor"][0] / rounds["mlplab"][0])
    assert results["eval"]["samples"] == 1024 and results["eval"]["seconds"] > 0
    assert 20 < results["memory"]["peak_rss_mb"] < 4000
    assert results["gemm_roof_gflops"] > 0
    sweep = results["sweep"]
    assert sweep["runs"] == 4 and sweep["dataset"] == "digits"
    assert sweep["speedup"] == pytest.approx(sweep["seconds_1_worker"] / sweep["seconds_2_workers"])
    assert sweep["rounds"] == {"1": [sweep["seconds_1_worker"]], "2": [sweep["seconds_2_workers"]]}


def test_torch_ratio_matches_its_times(quick_results):
    results, _ = quick_results
    torch_seconds = results["epoch_seconds"]["torch"]
    if torch_seconds is None:
        assert results["ratios"]["mlplab_over_torch"] is None
    else:
        assert results["ratios"]["mlplab_over_torch"] == pytest.approx(
            results["rounds"]["mlplab"][0] / results["rounds"]["torch"][0]
        )


def test_scaling_table_covers_widths_and_batches(quick_results):
    results, markdown = quick_results
    pairs = {(s["hidden"], s["batch"]) for s in results["scaling"]}
    assert {(64, 64), (256, 64), (128, 16), (128, 256)} <= pairs
    for row in results["scaling"]:
        assert row["gflops"] == pytest.approx(
            suite.step_flops(row["batch"], row["hidden"]) * -(-2048 // row["batch"]) / row["epoch_seconds"] / 1e9
        )
    assert markdown.count("\n| ") >= 10 + len(results["scaling"])
    assert "floor efficiency" in markdown and "mlplab / PyTorch" in markdown


def test_ratios_are_medians_of_each_rounds_ratio():
    # Rounds where the machine slowed for everyone give the same ratio as the others; a ratio of medians would not.
    times = {"a": [1.0, 2.0, 4.0], "b": [2.0, 4.0, 4.0]}
    assert suite.round_ratios(times, "a", "b") == [0.5, 0.5, 1.0]
    assert suite.round_ratio(times, "a", "b") == 0.5


def test_side_by_side_times_every_contender_each_round():
    calls = []
    times = suite.side_by_side({"x": lambda: calls.append("x"), "y": lambda: calls.append("y")}, rounds=3, pause=0)
    assert calls == ["x", "y"] + ["x", "y"] * 3  # a warm-up each, then turns
    assert [len(t) for t in times.values()] == [3, 3] and all(t >= 0 for t in times["x"] + times["y"])


def test_side_by_side_times_a_turn_of_several_calls_after_one_warm_up_call():
    calls = []
    times = suite.side_by_side({"x": lambda: calls.append("x")}, rounds=2, pause=0, calls=5)
    assert len(calls) == 1 + 2 * 5 and len(times["x"]) == 2


def test_step_flops_counts_the_three_big_products():
    # forward x·W1 and h·W2, backward hᵀδ, δ·W2ᵀ and xᵀδ: 2·B·(2·784·H + 3·H·10)
    assert suite.step_flops(64, 128) == 2 * 64 * (2 * 784 * 128 + 3 * 128 * 10)


def test_the_inlined_step_trains_exactly_like_mlplab():
    # The headroom benchmark is only meaningful if its hand-inlined step computes what mlplab's step computes.
    from benchmarks.headroom import inlined_epoch

    ds = synthetic()
    params: dict = {}
    inlined_epoch(ds, 16, 32, params)()
    model = TwoLayerNet(784, 16, 10, seed=0)
    suite.mlplab_epoch(ds, 16, 32, model)()
    for name, p in model.params.items():
        np.testing.assert_allclose(params[name], p, rtol=1e-5, atol=1e-8)  # bit-equal here: ×0.5 is exact
    assert not np.allclose(params["W1"], TwoLayerNet(784, 16, 10, seed=0).params["W1"])  # it did train


def test_the_recipes_shape_is_timed_side_by_side(quick_results):
    results, markdown = quick_results
    recipes = results["recipes"]
    assert recipes["workload"] == {"hidden": 1024, "batch": 128, "optimizer": "adam lr 0.001"}
    rounds = recipes["rounds"]
    assert {"mlplab", "floor"} <= set(rounds) and all(len(t) == 1 for t in rounds.values())
    assert recipes["floor"]["efficiency"] == pytest.approx(rounds["floor"][0] / rounds["mlplab"][0])
    for name in ("torch", "jax"):
        ratio = recipes["ratios"][f"mlplab_over_{name}"]
        assert (ratio is None) == (name not in rounds)
        if ratio is not None:
            assert ratio == pytest.approx(rounds["mlplab"][0] / rounds[name][0])
    assert "The recipes' shape" in markdown and "mlplab / JAX" in markdown


def test_the_jax_contender_trains():
    pytest.importorskip("jax")
    from benchmarks.contenders import jax_epoch

    ds = synthetic()
    for activation, optimizer in (("sigmoid", "sgd"), ("relu", "adam")):
        epoch = jax_epoch(ds, 16, 32, activation, optimizer, 0.5 if optimizer == "sgd" else 0.01, 0.001)
        assert epoch is not None
        losses = [epoch() for _ in range(5)]
        assert all(np.isfinite(losses)) and losses[0] > 2.0  # a real cross-entropy, at chance or above at first
        assert losses[-1] < losses[0] - 0.1  # it learns (random labels: by memorizing 256 images)
