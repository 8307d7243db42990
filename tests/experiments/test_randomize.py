"""The randomization tests: each condition's data transform, the train-until-fit loop, results.json and the CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlplab import config as configs
from mlplab import corruptions, data
from mlplab.checkpoint import KILL_ENV
from mlplab.cli import build_parser, main
from mlplab.commands.randomize import settings_from
from mlplab.data import Dataset, Split
from mlplab.errors import MlplabError
from mlplab.experiments import conditions
from mlplab.experiments import randomize as rz
from mlplab.experiments.commentary import randomization_commentary
from mlplab.experiments.context import Context
from mlplab.experiments.executors import LocalExecutor, SerialExecutor
from mlplab.experiments.figures import RANDOMIZATION_FIGURES
from mlplab.experiments.randomize_report import randomization_extra
from mlplab.optim import SGD
from mlplab.run import make_model, make_optimizer, make_transform

pytestmark = pytest.mark.usefixtures("one_blas_thread")

ALL = conditions.condition_names()
TINY = rz.Settings(dataset="digits", subset=300, hidden=64, max_steps=30, seed=3)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return data.load("digits")


def many_labels(n: int = 20_000, num_classes: int = 10) -> Dataset:
    """A dataset of n labelled 2-pixel images per split: enough labels to pin corruption rates down to ±1%."""
    rng = np.random.default_rng(7)

    def split() -> Split:
        return Split(rng.integers(0, 255, (n, 2), dtype=np.uint8), rng.integers(0, num_classes, n))

    return Dataset("many", split(), split(), split(), (1, 2), 255.0, num_classes)


def pixel_index(dataset: Dataset) -> Dataset:
    """The dataset with every image replaced by its pixel positions 0, 1, …, d−1: a transform's output then shows
    where each pixel went."""
    index = np.arange(dataset.input_size, dtype=np.uint8)

    def positions(split: Split) -> Split:
        return Split(np.tile(index, (len(split), 1)), split.y)

    return replace(dataset, train=positions(dataset.train), val=positions(dataset.val), test=positions(dataset.test))


# --- label corruption -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8, 1.0])
def test_corruption_changes_labels_at_rate_p_times_nine_tenths_in_train_and_val(p: float) -> None:
    ds = many_labels()
    out = corruptions.corrupt_labels(ds, p, seed=1)
    for name in ("train", "val"):
        changed = np.mean(getattr(out, name).y != getattr(ds, name).y)
        assert changed == pytest.approx(p * 0.9, abs=0.012), name  # ≈ 3.5 standard errors at n = 20,000
    assert np.array_equal(out.test.y, ds.test.y)


def test_random_labels_are_uniform_and_independent_of_the_true_ones() -> None:
    ds = many_labels()
    out = corruptions.corrupt_labels(ds, 1.0, seed=2)
    counts = np.bincount(out.train.y, minlength=10)
    assert counts.min() > 1_800 and counts.max() < 2_200  # n/10 = 2,000, sd ≈ 42
    for label in range(10):  # the new label carries no information about the old one
        assert np.mean(out.train.y[ds.train.y == label] == label) == pytest.approx(0.1, abs=0.03)
    assert out.train.y.dtype == np.int64 and out.train.y.min() >= 0 and out.train.y.max() <= 9


def test_corruption_keeps_images_and_test_split_and_is_deterministic_by_seed(digits: Dataset) -> None:
    out = corruptions.corrupt_labels(digits, 0.5, seed=4)
    assert out.train.x is digits.train.x and out.val.x is digits.val.x
    assert out.test is digits.test
    again = corruptions.corrupt_labels(digits, 0.5, seed=4)
    other = corruptions.corrupt_labels(digits, 0.5, seed=5)
    assert np.array_equal(out.train.y, again.train.y) and np.array_equal(out.val.y, again.val.y)
    assert not np.array_equal(out.train.y, other.train.y)
    assert np.array_equal(corruptions.corrupt_labels(digits, 0.0, seed=4).train.y, digits.train.y)


def test_corruption_levels_are_nested_for_one_seed() -> None:
    ds = many_labels(5_000)
    low, high = corruptions.corrupt_labels(ds, 0.2, seed=9), corruptions.corrupt_labels(ds, 0.6, seed=9)
    changed_low = low.train.y != ds.train.y
    assert changed_low.sum() > 0
    assert np.array_equal(high.train.y[changed_low], low.train.y[changed_low])


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_corruption_outside_zero_one_is_refused(digits: Dataset, p: float) -> None:
    with pytest.raises(MlplabError, match="corruption"):
        corruptions.corrupt_labels(digits, p, seed=0)


# --- pixel conditions -----------------------------------------------------------------------------------------


def test_shuffled_pixels_apply_one_fixed_permutation_to_every_image_of_every_split(digits: Dataset) -> None:
    moved = corruptions.shuffle_pixels(pixel_index(digits), seed=3)
    order = moved.train.x[0].astype(np.int64)
    assert sorted(order) == list(range(64)) and not np.array_equal(order, np.arange(64))
    real = corruptions.shuffle_pixels(digits, seed=3)
    for name in ("train", "val", "test"):
        assert (getattr(moved, name).x == order).all(), name  # every row: the same permutation
        assert np.array_equal(getattr(real, name).x, getattr(digits, name).x[:, order]), name
        assert np.array_equal(getattr(real, name).y, getattr(digits, name).y), name
    assert np.array_equal(corruptions.shuffle_pixels(digits, seed=3).train.x, real.train.x)
    assert not np.array_equal(corruptions.shuffle_pixels(digits, seed=4).train.x, real.train.x)


def test_random_pixels_permute_each_image_on_its_own(digits: Dataset) -> None:
    moved = corruptions.random_pixels(pixel_index(digits), seed=3)
    real = corruptions.random_pixels(digits, seed=3)
    for name in ("train", "val", "test"):
        rows = getattr(moved, name).x
        assert (np.sort(rows, axis=1) == np.arange(64)).all(), name  # each row is a permutation
        assert len(np.unique(rows, axis=0)) == len(rows), name  # and no two images share one
        original = getattr(digits, name)
        assert np.array_equal(np.sort(getattr(real, name).x, axis=1), np.sort(original.x, axis=1)), name
        assert not np.array_equal(getattr(real, name).x, original.x), name
        assert np.array_equal(getattr(real, name).y, original.y), name
    assert np.array_equal(corruptions.random_pixels(digits, seed=3).train.x, real.train.x)


def test_gaussian_images_have_the_training_pixels_mean_and_variance(digits: Dataset) -> None:
    out = corruptions.gaussian_images(digits, seed=3)
    mean, std = digits.train.x.mean(), digits.train.x.std()
    for name in ("train", "val", "test"):
        x, original = getattr(out, name).x, getattr(digits, name)
        assert x.dtype == np.float32 and x.shape == original.x.shape, name
        assert np.array_equal(getattr(out, name).y, original.y), name
    everything = np.concatenate([out.train.x, out.val.x, out.test.x]).astype(np.float64)
    assert everything.mean() == pytest.approx(mean, abs=0.05)  # 115,000 draws: standard error ≈ 0.018
    assert everything.std() == pytest.approx(std, rel=0.01)
    assert np.mean(np.abs(everything - mean) < std) == pytest.approx(0.6827, abs=0.01)  # Gaussian, not clipped
    assert np.array_equal(corruptions.gaussian_images(digits, seed=3).test.x, out.test.x)
    assert not np.array_equal(corruptions.gaussian_images(digits, seed=4).test.x, out.test.x)


@pytest.mark.parametrize("condition", ALL)
def test_every_condition_keeps_the_true_test_labels(digits: Dataset, condition: str) -> None:
    out = conditions.apply_condition(digits, condition, conditions.transform_seed(0, condition))
    assert np.array_equal(out.test.y, digits.test.y)
    assert len(out.train) == len(digits.train) and out.input_size == digits.input_size


def test_condition_names_expand_partial_in_the_papers_order() -> None:
    assert ALL == [
        "true-labels",
        "partial-0.2",
        "partial-0.4",
        "partial-0.6",
        "partial-0.8",
        "random-labels",
        "shuffled-pixels",
        "random-pixels",
        "gaussian",
    ]
    assert conditions.condition_names(["gaussian", "partial"], [0.5, 1, 0.25]) == [
        "partial-0.25",
        "partial-0.5",
        "random-labels",
        "gaussian",
    ]
    assert conditions.condition_names(["random-labels", "partial"], [1.0]) == ["random-labels"]
    assert [conditions.corruption_level(c) for c in ALL[:6]] == [0, 0.2, 0.4, 0.6, 0.8, 1]
    with pytest.raises(MlplabError, match="unknown condition 'noise'"):
        conditions.condition_names(["noise"])
    with pytest.raises(MlplabError, match="unknown condition 'partial-x'"):
        conditions.apply_condition(many_labels(10), "partial-x", seed=0)
    with pytest.raises(MlplabError, match="must lie in"):
        conditions.condition_names(["partial"], [1.2])


# --- results.json's loss curve -------------------------------------------------------------------------------


def test_loss_curve_averages_windows_of_steps() -> None:
    curve = rz.loss_curve([float(v) for v in range(1, 26)], 10)
    assert curve == {"steps": [10, 20, 25], "train_loss": [5.5, 15.5, 23.0]}
    assert rz.loss_curve([], 10) == {"steps": [], "train_loss": []}


# --- one condition, many, results.json ------------------------------------------------------------------------


def test_regularization_and_augmentation_switches_reach_the_network() -> None:
    ds = data.load("digits")
    plain = rz.Settings()
    assert make_model(plain.config(), ds).dropout == 0 and make_optimizer(plain.config()).reg == 0
    assert make_transform(plain.config(), ds, "float32") is None
    regularized = rz.Settings(dropout=0.3, reg=0.01, shift=1, optimizer="sgd")
    assert make_model(regularized.config(), ds).dropout == 0.3
    assert isinstance(make_optimizer(regularized.config()), SGD) and make_optimizer(regularized.config()).reg == 0.01
    assert make_transform(regularized.config(), ds, "float32").shift == 1
    base = rz.run_condition("true-labels", TINY)
    for switch in ({"dropout": 0.5}, {"reg": 0.1}, {"shift": 1}):
        changed = rz.run_condition("true-labels", replace(TINY, **switch))
        assert changed["loss_curve"] != base["loss_curve"], switch


def test_model_cnn_puts_conv_blocks_in_front_of_the_hidden_layer() -> None:
    ds = data.load("digits")
    settings = rz.Settings(model="cnn", conv_channels=(3, 4), hidden=16)
    model = make_model(settings.config(), ds)
    assert type(model).__name__ == "CNN" and model.params["W1"].shape == (25, 3)
    assert model.params["W3"].shape == (2 * 2 * 4, 16)  # 8×8 → pool → 4×4 → pool → 2×2, 4 channels
    assert settings.network == "CNN conv 3-4 (5×5 same, max-pool 2), dense 16 ReLU"
    assert rz.Settings().network == "one-hidden-layer MLP, 1024 ReLU"
    fitted = rz.run_condition("true-labels", replace(TINY, model="cnn", conv_channels=(4, 4), max_steps=60))
    assert fitted["steps"] > 0 and fitted["train_acc"] > 0.5


def test_run_condition_is_deterministic_and_measures_the_label_noise() -> None:
    first = rz.run_condition("partial-0.4", TINY)
    second = rz.run_condition("partial-0.4", TINY)
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert first["labels_changed"] == pytest.approx(0.36, abs=0.09)  # 300 labels
    assert first["corruption"] == 0.4 and first["steps_per_epoch"] == 3


def test_parallel_workers_give_the_serial_numbers() -> None:
    names = ["random-labels", "gaussian"]
    serial = rz.run_conditions(names, TINY)
    with LocalExecutor(2) as executor:
        parallel = rz.run_conditions(names, TINY, executor)
    assert list(parallel) == names
    for name in names:
        for result in (serial[name], parallel[name]):
            result.pop("seconds"), result.pop("provenance")  # when, and with what, not what
        assert parallel[name] == serial[name]


def test_randomize_writes_results_keyed_by_condition_settings_and_figures(tmp_path: Path) -> None:
    seen = []
    results = rz.randomize(ALL, TINY, tmp_path, on_result=lambda r: seen.append(r["condition"]))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved) == list(results) == ALL and sorted(seen) == sorted(ALL)
    for name, entry in saved.items():
        assert entry["condition"] == name
        assert 0 <= entry["train_acc"] <= 1 and 0 <= entry["test_acc"] <= 1
        assert entry["steps_to_fit"] is None or entry["steps_to_fit"] == entry["steps"]
        assert entry["status"] in ("fit", "budget") and entry["steps"] <= TINY.max_steps
        curve = entry["loss_curve"]
        assert len(curve["steps"]) == len(curve["train_loss"]) == math.ceil(entry["steps"] / rz.LOSS_WINDOW)
        assert curve["steps"][-1] == entry["steps"]
        assert entry["fit_checks"]["train_acc"][-1] == entry["train_acc"]
    assert saved["partial-0.6"]["corruption"] == 0.6 and saved["gaussian"]["corruption"] is None
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["settings"]["hidden"] == 64 and settings["dataset"]["train"] == 300
    for figure in RANDOMIZATION_FIGURES:
        assert (tmp_path / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_resumes_and_other_settings_are_refused(tmp_path: Path) -> None:
    first = rz.randomize(["true-labels", "gaussian"], TINY, tmp_path)
    before = (tmp_path / "results.json").read_text()
    again = rz.randomize(["true-labels", "gaussian"], TINY, tmp_path)
    assert again == first  # loaded, not retrained: even the seconds are the same
    with pytest.raises(MlplabError, match="other settings"):
        rz.randomize(["true-labels"], replace(TINY, hidden=32), tmp_path)
    assert (tmp_path / "results.json").read_text() == before


def test_settings_stored_under_the_old_field_names_resume(tmp_path: Path) -> None:
    """settings.json of a run made when `reg` was `weight_decay` and `shift` was `augment`."""
    first = rz.randomize(["true-labels"], TINY, tmp_path)
    saved = json.loads((tmp_path / "settings.json").read_text())
    fields = saved["settings"]
    fields["weight_decay"], fields["augment"] = fields.pop("reg"), fields.pop("shift")
    (tmp_path / "settings.json").write_text(json.dumps(saved))
    assert rz.randomize(["true-labels"], TINY, tmp_path) == first  # recognised: loaded, not retrained
    assert "reg" in json.loads((tmp_path / "settings.json").read_text())["settings"]


def test_a_condition_killed_mid_training_continues_from_its_last_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL while the first condition writes its pass-3 checkpoint: the rerun continues it from pass 2 and
    results.json ends as an uninterrupted run's (but for the seconds), each condition's diagnostics.json and model.npz
    byte for byte. Meanwhile `mlplab inspect` shows the stopped condition's live records."""
    args = ["randomize", "--conditions", "random-labels", "gaussian", "--subset", "200", "--hidden", "64"]
    args += ["--dropout", "0.2", "--augment", "1", "--max-steps", "60", "--batch-size", "32", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "mlplab.cli", *args, "--out", str(out)]
    env = {**os.environ, "MLPLAB_NO_DOWNLOAD": "1", KILL_ENV: "checkpoint:3"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "results.json").exists() and (out / rz.CHECKPOINTS / "random-labels.npz").exists()
    assert not (out / "random-labels" / "diagnostics.json").exists()
    live = json.loads((out / "random-labels" / "diagnostics.live.json").read_text())
    assert [r["epoch"] for r in live["epochs"]] == [0, 1, 2, 3]  # pass 3 measured, its checkpoint never renamed
    capsys.readouterr()
    assert main(["inspect", str(out / "random-labels"), "--out", str(tmp_path / "report")]) == 0
    assert capsys.readouterr().out.startswith(
        "note: no metrics.json yet: the condition is still training (or was stopped) after 3 pass(es); shown as far "
        "as it got, with the weights of its last checkpoint"
    )
    report = (tmp_path / "report" / "report.md").read_text()
    assert "From ../checkpoints/random-labels.npz (after pass 2, the condition running)" in report
    env.pop(KILL_ENV)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    ref, resumed = (json.loads((d / "results.json").read_text()) for d in (tmp_path / "ref", out))
    for results in (ref, resumed):
        for entry in results.values():
            entry.pop("seconds"), entry.pop("provenance", None)
    assert resumed == ref and ref["random-labels"]["epochs"] > 3
    assert not (out / rz.CHECKPOINTS).exists()
    for name in ("random-labels", "gaussian"):
        for file in ("diagnostics.json", "model.npz"):
            assert (out / name / file).read_bytes() == (tmp_path / "ref" / name / file).read_bytes(), (name, file)
        records = json.loads((out / name / "diagnostics.json").read_text())["epochs"]
        assert [r["train_acc"] for r in records] == ref[name]["fit_checks"]["train_acc"]
    assert not (out / "random-labels" / "diagnostics.live.json").exists()


# --- the command ----------------------------------------------------------------------------------------------


def test_cli_end_to_end_on_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["randomize", "--conditions", "true-labels,random-labels", "shuffled-pixels", "--subset", "200"]
    argv += ["--hidden", "64", "--max-steps", "20", "--workers", "1", "--out", str(out)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("randomization tests on digits: 3 conditions")
    assert [line.split()[0] for line in lines[1:4]] == ["true-labels", "random-labels", "shuffled-pixels"]
    assert lines[-1].startswith(f"wrote {out}/results.json")
    assert list(json.loads((out / "results.json").read_text())) == ["true-labels", "random-labels", "shuffled-pixels"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--corruption", "0,half"], "--corruption takes comma-separated numbers"),
        (["--conditions", "noise"], "unknown condition 'noise'"),
        (["--dropout", "1.5"], "--dropout: config key 'dropout'=1.5: must be in [0, 1)"),
        (["--hidden", "0"], "--hidden: config key 'hidden_sizes'=[0]: must be a non-empty list of ints ≥ 1"),
        (["--model", "cnn", "--conv-channels", "8,x"], "--conv-channels takes comma-separated integers"),
        (["--model", "cnn", "--conv-channels", "0"], "--conv-channels: config key 'conv_channels'=[0]"),
        (["--conditions", "partial", "--corruption", ""], "no conditions to run"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/mlplab-data"], "no mnist files in /nonexistent"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["randomize", "--out", str(tmp_path / "x"), "--workers", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("mlplab randomize: error:")
    assert not (tmp_path / "x").exists()


def test_quick_means_a_subset_and_a_step_budget() -> None:
    parse = build_parser().parse_args
    quick = settings_from(parse(["randomize", "--quick", "--out", "x"]))
    assert (quick.subset, quick.max_steps, quick.hidden) == (rz.QUICK["subset"], rz.QUICK["max_steps"], 1024)
    assert settings_from(parse(["randomize", "--quick", "--subset", "100", "--out", "x"])).subset == 100
    full = settings_from(parse(["randomize", "--data-dir", "/data/fashion-mnist", "--out", "x"]))
    assert full.subset is None and full.dataset == "fashion-mnist" and full.max_steps > rz.QUICK["max_steps"]
    assert full.max_steps == rz.Settings().max_steps == 60_000  # the Python API's budget is the command's


def test_reg_and_shift_are_the_configs_keys_and_the_old_flags_point_to_them(capsys) -> None:
    parse = build_parser().parse_args
    settings = settings_from(parse(["randomize", "--reg", "0.01", "--shift", "2", "--out", "x"]))
    assert (settings.reg, settings.shift) == (0.01, 2)
    config = settings.config()
    assert (config["reg"], config["shift"], config["weight_decay"]) == (0.01, 2, 0.0)  # L2, not AdamW's decay
    assert capsys.readouterr().err == ""
    old = settings_from(parse(["randomize", "--weight-decay", "0.01", "--augment", "2", "--out", "x"]))
    assert old == settings
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "mlplab randomize: note: --weight-decay is now --reg (L2 on the weight matrices)",
        "mlplab randomize: note: --augment is now --shift (pixel shifts)",
    ]


# --- mlplab reproduce --with-randomization --------------------------------------------------------------------


def test_reproduce_section_runs_the_quick_tests_on_its_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(rz.QUICK, "max_steps", 20)  # the real quick budget takes minutes
    base = configs.resolve(dataset="digits")
    assert build_parser().parse_args(["reproduce", "--with-randomization"]).with_randomization
    extra = randomization_extra()
    section, summary = extra.build(Context(base, tmp_path, runner=None, executor=SerialExecutor()))
    assert extra.key == "randomization" and summary["dir"] == "randomization"
    assert list(summary["conditions"]) == ALL
    saved = json.loads((tmp_path / "randomization" / "results.json").read_text())
    assert summary["conditions"]["random-labels"]["train_acc"] == saved["random-labels"]["train_acc"]
    assert json.loads((tmp_path / "randomization" / "settings.json").read_text())["settings"]["seed"] == base["seed"]
    assert [row[0] for row in section.tables[0].rows][:2] == ["true-labels", "partial, p = 0.2"]
    assert (
        "1,077 digits training images" in section.intro and "no weight decay, dropout or augmentation" in section.intro
    )
    assert [f.path.name for f in section.figures] == ["loss_vs_steps.png", "steps_to_fit.png", "test_error.png"]
    assert all(f.path.exists() for f in section.figures)


def fake(condition: str, steps_to_fit: int | None, train_acc: float, test_acc: float) -> dict:
    return {
        "condition": condition,
        "corruption": conditions.corruption_level(condition),
        "steps_to_fit": steps_to_fit,
        "steps": steps_to_fit or 4000,
        "status": "fit" if steps_to_fit else "budget",
        "train_acc": train_acc,
        "test_acc": test_acc,
    }


def test_commentary_states_what_the_numbers_show() -> None:
    results = {
        "true-labels": fake("true-labels", 100, 0.995, 0.94),
        "partial-0.5": fake("partial-0.5", 900, 0.992, 0.55),
        "random-labels": fake("random-labels", 800, 0.991, 0.1),
        "shuffled-pixels": fake("shuffled-pixels", 100, 0.995, 0.93),
        "gaussian": fake("gaussian", 200, 0.999, 0.09),
    }
    lines = randomization_commentary(results)
    assert lines[0].startswith("With random labels the network fits the training set (99.10% training accuracy, 800")
    assert "8.0× the steps of the true labels" in lines[0] and "chance level being 10.00%" in lines[0]
    assert "test error grows from 6.00% to 90.00%" in lines[1] and "at or below 0.90%" in lines[1]
    assert "not strictly in order" in lines[2]
    assert "Shuffled pixels: 100 steps and 93.00%" in lines[3]
    assert "gaussian 200 steps (test 9.00%)" in lines[4] and "sooner than random labels" in lines[4]
    results["random-labels"] = fake("random-labels", None, 0.6, 0.1)
    lines = randomization_commentary(results)
    assert "does not fit the training set (60.00% training accuracy, no fit in 4,000 steps)" in lines[0]
    assert "slower" not in lines[0] and not any("sooner" in line for line in lines)


# --- the headline claim on real data --------------------------------------------------------------------------


@pytest.mark.mnist
def test_mlp_memorizes_random_mnist_labels_and_tests_at_chance(mnist_dir: Path) -> None:
    settings = rz.Settings(dataset="mnist", data_dir=str(mnist_dir), subset=1_000, max_steps=1_500)
    random = rz.run_condition("random-labels", settings)
    assert random["status"] == "fit" and random["train_acc"] >= 0.99
    assert random["test_acc"] <= 0.15
    true = rz.run_condition("true-labels", settings)
    assert true["steps_to_fit"] < random["steps_to_fit"] and true["test_acc"] > 0.85
