"""gradcheck: finite differences agree with every model's backward pass, and catch a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab import data, gradcheck
from mlplab.cli import main
from mlplab.models import SoftmaxRegression, TwoLayerNet
from mlplab.training import batches


@pytest.fixture(scope="module")
def batch() -> tuple[np.ndarray, np.ndarray]:
    ds = data.load("digits")
    x, y = next(batches(ds.train, 12, ds.pixel_max, "float64"))
    return x.copy(), y.copy()


def randomized(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(0, 0.5, p.shape)
    return model


class WrongBiasGradient(TwoLayerNet):
    """A TwoLayerNet whose b1 gradient forgets the sigmoid's slope."""

    def train_batch(self, x, y):
        out = super().train_batch(x, y)
        b1 = self.grads["b1"]
        b1 *= 1.5
        return out


@pytest.mark.parametrize("reg", [0.0, 0.05])
def test_assignment_models_pass(batch, reg):
    x, y = batch
    for model in (SoftmaxRegression(64, dtype="float64"), TwoLayerNet(64, 24, dtype="float64")):
        results = gradcheck.check_gradients(randomized(model), x, y, reg=reg)
        assert [r.name for r in results] == list(model.params)
        assert max(r.worst_relative_error for r in results) < 1e-6


def test_wrong_gradient_is_caught(batch):
    x, y = batch
    model = randomized(WrongBiasGradient(64, 24, dtype="float64"))
    results = {r.name: r for r in gradcheck.check_gradients(model, x, y)}
    assert results["b1"].worst_relative_error > 0.1
    assert results["W1"].worst_relative_error < 1e-6


def test_check_leaves_parameters_unchanged(batch):
    x, y = batch
    model = randomized(TwoLayerNet(64, 8, dtype="float64"))
    before = model.state()
    gradcheck.check_gradients(model, x, y, reg=0.01)
    for name, value in before.items():
        np.testing.assert_array_equal(model.params[name], value)


def test_dropout_is_refused(batch):
    from mlplab.models import MLP

    with pytest.raises(ValueError, match="without dropout"):
        gradcheck.check_gradients(MLP(64, [8], dropout=0.2, dtype="float64"), *batch)


def test_float32_is_refused(batch):
    with pytest.raises(ValueError, match="float64"):
        gradcheck.check_gradients(TwoLayerNet(64, 8), *batch)


def test_sampling_covers_small_and_samples_large():
    rng = np.random.default_rng(0)
    assert len(gradcheck.sample_coords((3, 4), 40, rng)) == 12
    coords = gradcheck.sample_coords((100, 100), 40, rng)
    assert len(set(coords)) == 40 and all(0 <= i < 100 and 0 <= j < 100 for i, j in coords)


@pytest.mark.parametrize(
    "args",
    [
        ["softmax"],
        ["two_layer"],
        ["mlp"],
        ["mlp", "--activation", "relu"],
        ["mlp", "--activation", "softsign"],
        ["cnn"],
        ["cnn", "--conv-padding", "same", "--kernel-size", "2", "--activation", "tanh"],
        ["cnn", "--conv-padding", "valid", "--kernel-size", "2", "--conv-channels", "4,5"],
    ],
)
def test_cli_gradcheck(args, capsys):
    assert main(["gradcheck", "--model", *args]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "worst relative error" in line]
    assert lines and all(line.endswith("PASS") for line in lines)


def test_cli_gradcheck_fails_on_impossible_tolerance(capsys):
    assert main(["gradcheck", "--model", "two_layer", "--tolerance", "0"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_theory_writes_markdown(tmp_path, capsys):
    table = tmp_path / "theory.md"
    assert main(["theory", "--markdown", str(table)]) == 0
    out = capsys.readouterr().out
    assert "15/15 claims pass" in out
    assert out.count("PASS") >= 14
    assert len([row for row in table.read_text().splitlines() if row.startswith("|")]) == 17


def test_checks_are_made_at_a_seeded_random_point() -> None:
    model = gradcheck.move_to_random_point(TwoLayerNet(64, 32, 10, seed=0, dtype="float64"), seed=5)
    again = gradcheck.move_to_random_point(TwoLayerNet(64, 32, 10, seed=1, dtype="float64"), seed=5)
    for name, p in model.params.items():
        assert np.array_equal(p, again.params[name])  # the seed alone decides the point
    weights = np.concatenate([p.ravel() for p in model.params.values()])
    assert abs(weights.std() - gradcheck.RANDOM_POINT_STD) < 0.02 and abs(weights.mean()) < 0.02
