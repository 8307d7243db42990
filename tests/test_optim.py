"""Optimizer steps against values worked out by hand, and how configs choose an optimizer."""

from __future__ import annotations

import numpy as np
import pytest

from mlplab import config as configs
from mlplab.cli import main
from mlplab.errors import ConfigError
from mlplab.models import MLP
from mlplab.optim import SGD, Adam, AdamW, Optimizer
from mlplab.run import make_optimizer


def tiny_model(value: float = 0.0) -> MLP:
    """A 1-input, 1-hidden-unit, 2-class MLP in float64 with every parameter set to `value`."""
    model = MLP(1, [1], num_classes=2, dtype="float64")
    for p in model.params.values():
        p[...] = value
    return model


def run_steps(optimizer: Optimizer, model: MLP, grads: list[float]) -> list[float]:
    """Feed the same gradient value to every parameter, one step per entry; W1 after each step."""
    trail = []
    for g in grads:
        for grad in model.grads.values():
            grad[...] = g
        optimizer.step(model)
        trail.append(float(model.params["W1"][0, 0]))
    return trail


def test_sgd_applies_l2_to_weights_only():
    model = tiny_model(2.0)
    run_steps(SGD(0.1, reg=0.5), model, [1.0])
    assert model.params["W1"][0, 0] == pytest.approx(2.0 - 0.1 * (1.0 + 0.5 * 2.0))  # 1.8
    assert model.params["b1"][0] == pytest.approx(2.0 - 0.1 * 1.0)  # 1.9: biases get no L2


def test_sgd_momentum_by_hand():
    # v1 = −0.1, θ1 = −0.1;  v2 = 0.9·(−0.1) − 0.1 = −0.19, θ2 = −0.29;  v3 = −0.271, θ3 = −0.561
    trail = run_steps(SGD(0.1, momentum=0.9), tiny_model(), [1.0, 1.0, 1.0])
    assert trail == pytest.approx([-0.1, -0.29, -0.561])


def test_nesterov_by_hand():
    # θ ← θ + μv − lr·g with the new v:  θ1 = 0.9·(−0.1) − 0.1 = −0.19;  θ2 = −0.19 + 0.9·(−0.19) − 0.1 = −0.461;
    # θ3 = −0.461 + 0.9·(−0.271) − 0.1 = −0.8049 (PyTorch's form, buf ← μ·buf + g, θ ← θ − lr(g + μ·buf), agrees)
    trail = run_steps(SGD(0.1, momentum=0.9, nesterov=True), tiny_model(), [1.0, 1.0, 1.0])
    assert trail == pytest.approx([-0.19, -0.461, -0.8049])


def test_nesterov_without_momentum_is_plain_sgd():
    assert run_steps(SGD(0.1, nesterov=True), tiny_model(), [1.0, 2.0]) == pytest.approx([-0.1, -0.3])


def test_adam_by_hand():
    # lr 0.01, β 0.9/0.999, θ0 = 1, g = 2, −1, 0.5:
    # t=1: m = 0.2, v = 0.004, m̂ = 2, v̂ = 4 → θ1 = 1 − 0.01·2/(2 + 1e-8) = 0.99000000005
    # t=2: m = 0.08, v = 0.004996, m̂ = 0.08/0.19, v̂ = 0.004996/0.001999 → θ2 = 0.98733662967…
    # t=3: m = 0.122, v = 0.005241004 → θ3 = 0.98393233821…
    trail = run_steps(Adam(0.01), tiny_model(1.0), [2.0, -1.0, 0.5])
    assert trail == pytest.approx([0.99000000005, 0.9873366296702432, 0.9839323382138943], rel=1e-12)


def test_adam_first_step_is_lr_whatever_the_gradient_scale():
    for g in (1e-3, 1.0, 1e3):
        assert run_steps(Adam(0.05), tiny_model(), [g]) == pytest.approx([-0.05], rel=1e-4)


def test_adamw_decay_is_decoupled_and_spares_biases():
    # Zero gradients: Adam's moments stay 0 and its step is 0, so only the decay W ← W(1 − lr·λ) acts.
    model = tiny_model(4.0)
    run_steps(AdamW(0.1, weight_decay=0.5), model, [0.0])
    assert model.params["W1"][0, 0] == pytest.approx(4.0 * (1 - 0.1 * 0.5))  # 3.8
    assert model.params["W2"][0, 0] == pytest.approx(3.8)
    assert model.params["b1"][0] == 4.0 and model.params["b2"][0] == 4.0
    # Coupled L2 in Adam is normalized away: g = reg·W = 2 still moves W by lr, to 3.9.
    coupled = tiny_model(4.0)
    run_steps(Adam(0.1, reg=0.5), coupled, [0.0])
    assert coupled.params["W1"][0, 0] == pytest.approx(3.9, rel=1e-6)
    assert coupled.params["b1"][0] == 4.0


def test_adamw_with_gradients_is_decay_then_adam():
    decayed = tiny_model(1.0)
    run_steps(AdamW(0.01, weight_decay=0.1), decayed, [2.0, -1.0])
    # θ1 = 1·(1 − 0.001) − 0.01·2/(2 + 1e-8);  θ2 = θ1·(1 − 0.001) − 0.01·m̂2/(√v̂2 + 1e-8)
    theta1 = 0.999 - 0.01 * 2 / (2 + 1e-8)
    theta2 = theta1 * 0.999 - (0.99000000005 - 0.9873366296702432)
    assert decayed.params["W1"][0, 0] == pytest.approx(theta2, rel=1e-10)
    assert decayed.params["b1"][0] == pytest.approx(0.9873366296702432, rel=1e-12)  # biases: plain Adam


def test_adam_state_is_per_parameter():
    optimizer = Adam(0.01)
    model = tiny_model()
    run_steps(optimizer, model, [1.0])
    assert set(optimizer.state) == set(model.params) and optimizer.t == 1
    assert optimizer.state["W2"]["m"].shape == (1, 2)


def test_config_picks_the_optimizer():
    default = make_optimizer(configs.resolve())
    assert type(default) is SGD and not default.nesterov and default.momentum == 0.0 and default.reg == 0.001
    nesterov = make_optimizer(configs.resolve(None, ["optimizer=nesterov", "momentum=0.9"]))
    assert type(nesterov) is SGD and nesterov.nesterov and nesterov.momentum == 0.9
    adam = make_optimizer(configs.resolve(None, ["optimizer=adam", "lr=0.001", "reg=0", "beta2=0.99"]))
    assert type(adam) is Adam and (adam.lr, adam.reg, adam.beta1, adam.beta2) == (0.001, 0.0, 0.9, 0.99)
    adamw = make_optimizer(configs.resolve(None, ["optimizer=adamw", "weight_decay=0.05", "reg=0"]))
    assert type(adamw) is AdamW and adamw.weight_decay == 0.05 and adamw.reg == 0.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer=nesterov"], "momentum"),
        (["weight_decay=0.01"], "weight_decay"),
        (["optimizer=adam", "weight_decay=0.01"], "weight_decay"),
    ],
)
def test_inconsistent_optimizer_configs_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_optimizer(configs.resolve(None, overrides))


@pytest.mark.parametrize("bad", ["optimizer=rmsprop", "beta1=1.0", "beta2=-0.1", "weight_decay=-1"])
def test_bad_optimizer_values_are_refused(bad):
    with pytest.raises(ConfigError, match=bad.split("=")[0]):
        configs.resolve(None, [bad])


def test_cli_reports_a_bad_optimizer_config_in_one_line(tmp_path, capsys):
    status = main(["train", "--set", "optimizer=nesterov", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "momentum" in err and "Traceback" not in err


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((6, 5)), np.arange(6) % 3


def test_train_step_of_plain_sgd_is_the_fused_sgd_step() -> None:
    x, y = _batch()
    fused, reference = (MLP(5, [4], num_classes=3, dtype="float64", seed=2) for _ in range(2))
    loss, acc = SGD(lr=0.5, reg=0.1).train_step(fused, x, y)
    with pytest.raises(RuntimeError, match="fused sgd_step"):
        fused.grads["W1"]  # the fused path applied the gradients without keeping them
    assert (loss, acc) == reference.sgd_step(x, y, 0.5, 0.1)
    for name, p in fused.params.items():
        np.testing.assert_array_equal(p, reference.params[name])


def test_train_step_of_momentum_sgd_is_train_batch_then_step() -> None:
    x, y = _batch()
    model, reference = (MLP(5, [4], num_classes=3, dtype="float64", seed=2) for _ in range(2))
    loss, _ = SGD(lr=0.5, momentum=0.9).train_step(model, x, y)
    assert model.grads["W1"].shape == (5, 4)  # readable: the unfused path
    assert loss == reference.train_batch(x, y)[0]
    SGD(lr=0.5, momentum=0.9).step(reference)
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, reference.params[name])


def test_train_step_of_a_subclass_runs_its_own_update_rule() -> None:
    class Clipped(SGD):
        """SGD whose every step is clipped to ±0.01 per coordinate."""

        def update(self, name: str, param: np.ndarray, grad: np.ndarray) -> None:
            param -= np.clip(self.lr * grad, -0.01, 0.01)

    x, y = _batch()
    model = MLP(5, [4], num_classes=3, dtype="float64", seed=2)
    before = model.state()
    Clipped(lr=100.0).train_step(model, x * 100, y)
    moved = max(float(np.abs(p - before[k]).max()) for k, p in model.params.items())
    assert 0.009 < moved <= 0.01 + 1e-15


@pytest.mark.parametrize("optimizer", [SGD(lr=0.1, momentum=0.9), Adam(lr=0.1)])
def test_train_step_skips_the_update_when_the_loss_is_not_finite(optimizer: Optimizer) -> None:
    x, y = _batch()
    model = MLP(5, [4], num_classes=3, dtype="float64", seed=2)
    model.params["W1"][0, 0] = np.nan
    before = model.state()
    loss, _ = optimizer.train_step(model, x, y)
    assert not np.isfinite(loss)
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, before[name])  # equal_nan is the default for assert_array_equal
    assert optimizer.state == {}


def test_an_unknown_optimizer_name_is_refused_not_taken_for_adamw() -> None:
    config = configs.resolve()
    config["optimizer"] = "rmsprop"  # past the config's own check, as a hand-built dict would be
    with pytest.raises(ConfigError, match="unknown optimizer 'rmsprop'; choose one of sgd, nesterov, adam, adamw"):
        make_optimizer(config)


def test_the_registry_builds_each_optimizer_from_its_settings() -> None:
    from mlplab.optim import OPTIMIZERS, build_optimizer

    settings = {"reg": 0.1, "momentum": 0.5, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.2}
    built = {name: build_optimizer(name, 0.3, **settings) for name in OPTIMIZERS}
    assert type(built["sgd"]) is SGD and not built["sgd"].nesterov and built["sgd"].momentum == 0.5
    assert built["nesterov"].nesterov and built["adam"].beta1 == 0.8 and type(built["adam"]) is Adam
    assert isinstance(built["adamw"], AdamW) and built["adamw"].weight_decay == 0.2
    assert all(o.lr == 0.3 and o.reg == 0.1 for o in built.values())
