"""The `mlplab` command end to end: train and evaluate on digits, every bad input as one line and exit 2."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplab import config as configs
from mlplab.cli import main
from mlplab.errors import MlplabError
from mlplab.models import Model, TwoLayerNet
from tests.conftest import IDX_NAMES, ONE_THREAD, WriteIdx

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TIMING_KEYS = ("epoch_seconds", "total_seconds")
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def command(*args: str, python_flags: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, *python_flags, "-m", "mlplab.cli", *args]


def run_cli(*args: str, cwd: Path, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh interpreter (the environment carries MLPLAB_NO_DOWNLOAD and MLPLAB_CACHE)."""
    return subprocess.run(
        command(*args, python_flags=python_flags), cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """mlplab.cli.main in this process: (exit status, stdout, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse's own exits
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def read_metrics(out: Path) -> dict[str, Any]:
    return json.loads((out / "metrics.json").read_text())


def without_timing(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


# ---------------------------------------------------------------- end to end on digits


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`mlplab train --config configs/digits.yaml` run once, as a real subprocess."""
    work = tmp_path_factory.mktemp("digits_run")
    env = {**os.environ, **ONE_THREAD, "MLPLAB_NO_DOWNLOAD": "1", "MLPLAB_CACHE": str(work / "cache")}
    result = subprocess.run(
        command("train", "--config", str(CONFIGS / "digits.yaml"), "--out", "runs/digits"),
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return work / "runs" / "digits", result


def test_train_prints_a_line_per_epoch(digits_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, result = digits_run
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar off a terminal, no warnings
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "TwoLayerNet on digits (1077 train / 360 val / 360 test): lr=0.2 reg=0.001 batch=8 epochs=30 momentum=0.9"
    )
    summary = lines[1:10]  # the network, as model.summary() prints it: 3 layers between rules
    assert summary[3].split() == ["input", "(N,", "64)"] and summary[4].split() == [
        "dense_1",
        "(Dense)",
        "(N,",
        "128)",
        "8,320",
    ]
    assert summary[-1] == "Total params: 9,610"  # 64·128 + 128 + 128·10 + 10
    epoch_lines = [line for line in lines if line.startswith("epoch")]
    assert len(epoch_lines) == 30 and len(lines) == 32 + len(summary)
    metrics = read_metrics(out)
    pattern = re.compile(r"epoch\s+(\d+)/30  train loss (\S+) acc (\S+)  \|  val loss (\S+) acc (\S+)  \|  \S+ s")
    for i, line in enumerate(epoch_lines):
        match = pattern.fullmatch(line)
        assert match, line
        assert int(match[1]) == i + 1
        assert float(match[2]) == round(metrics["train_loss"][i], 4)
        assert float(match[5]) == round(metrics["val_acc"][i], 4)
    assert lines[-1] == (
        f"best val acc {metrics['best_val_acc']:.4f} (epoch {metrics['best_epoch']}); "
        f"test acc of that model {metrics['test_acc']:.4f}; wrote {Path('runs/digits')}/metrics.json, curves.png, "
        "model.npz"
    )


def test_train_writes_metrics_curves_and_model(digits_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = digits_run
    metrics = read_metrics(out)
    assert metrics["status"] == "ok" and metrics["epochs_done"] == 30
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_seconds"):
        assert len(metrics[key]) == 30
    assert metrics["best_val_acc"] == max(metrics["val_acc"])
    assert metrics["best_epoch"] == metrics["val_acc"].index(max(metrics["val_acc"])) + 1
    assert metrics["test_acc"] >= 0.93
    assert metrics["val_acc"][3] > 0.9  # learns from the first epochs, not after several at chance
    assert metrics["dataset"] == {
        "name": "digits",
        "source": "sklearn.datasets.load_digits",
        "train": 1077,
        "val": 360,
        "test": 360,
        "num_classes": 10,
    }
    assert metrics["config"] == configs.applicable(configs.resolve(CONFIGS / "digits.yaml"))
    assert {"hidden_sizes", "momentum"} <= set(metrics["config"])  # what a Two-Layer Net with SGD uses, and only that
    assert not {"activation", "init", "dropout", "beta1", "beta2", "weight_decay"} & set(metrics["config"])
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    model, meta = Model.load(out / "model.npz")
    assert isinstance(model, TwoLayerNet) and model.params["W1"].shape == (64, 128)
    assert meta["dataset"] == "digits" and meta["best_epoch"] == metrics["best_epoch"]
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "diagnostics.json", "metrics.json", "model.npz"]


def test_evaluate_reports_the_saved_best_model(
    digits_run: tuple[Path, subprocess.CompletedProcess[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = digits_run
    metrics = read_metrics(out)
    status, stdout, stderr = call(capsys, "evaluate", str(out / "model.npz"))
    assert status == 0 and stderr == ""
    assert stdout.splitlines() == [
        f"val   loss {metrics['val_loss'][metrics['best_epoch'] - 1]:.4f}  acc {metrics['best_val_acc']:.4f}  "
        "(360 samples)",
        f"test  loss {metrics['test_loss']:.4f}  acc {metrics['test_acc']:.4f}  (360 samples)",
    ]


# ---------------------------------------------------------------- more runs, in this process


def test_same_seed_same_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        status, _, _ = call(
            capsys, "train", "--set", "epochs=3", "--set", f"seed={seed}", "--out", str(tmp_path / name)
        )
        assert status == 0
        runs[name] = without_timing(read_metrics(tmp_path / name))
    assert runs["a"] == runs["b"]
    assert runs["a"]["train_loss"] != runs["c"]["train_loss"]
    a = Model.load(tmp_path / "a" / "model.npz")[0]
    b = Model.load(tmp_path / "b" / "model.npz")[0]
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_sectioned_config_and_set_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(
        "Train:\n  type: SoftmaxRegression\n  batch_size: 50\n  learning_rate: 0.2\n  epochs: 4\n"
        "network:\n  hidden_size: 16\ndata:\n  dataset: digits\n"
    )
    out = tmp_path / "run"
    status, stdout, _ = call(
        capsys, "train", "--config", str(path), "--set", "epochs=2", "--set", "lr=1e-2", "--out", str(out)
    )
    assert status == 0
    assert stdout.startswith(
        "SoftmaxRegression on digits (1077 train / 360 val / 360 test): lr=0.01 reg=0.001 batch=50 epochs=2\n"
    )
    config = read_metrics(out)["config"]
    assert (config["type"], config["epochs"], config["learning_rate"], config["batch_size"]) == (
        "SoftmaxRegression",
        2,
        0.01,
        50,
    )
    assert read_metrics(out)["epochs_done"] == 2


def test_train_and_evaluate_on_idx_files(
    synthetic_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    status, stdout, _ = call(
        capsys,
        "train",
        "--data-dir",
        str(synthetic_mnist),
        "--set",
        "epochs=2",
        "--set",
        "hidden_size=8",
        "--out",
        str(out),
    )
    assert status == 0
    assert stdout.startswith("TwoLayerNet on mnist (80 train / 20 val / 20 test)")
    metrics = read_metrics(out)
    assert metrics["dataset"]["source"] == str(synthetic_mnist)
    status, stdout, _ = call(capsys, "evaluate", str(out / "model.npz"))  # data found through the model's metadata
    assert status == 0
    lines = stdout.splitlines()
    assert lines[1] == f"test  loss {metrics['test_loss']:.4f}  acc {metrics['test_acc']:.4f}  (20 samples)"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = call(capsys)
    assert status == 2 and "train" in stdout and "evaluate" in stdout


# ---------------------------------------------------------------- divergence


def test_divergence_writes_metrics_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, stderr = call(capsys, "train", "--set", "learning_rate=1e6", "--out", "run")
    assert status == 1
    assert stderr.splitlines() == [
        'mlplab train: diverged (loss became NaN/inf) after 0 epoch(s); wrote run/metrics.json with status "diverged"'
    ]
    metrics = read_metrics(tmp_path / "run")
    assert metrics["status"] == "diverged" and metrics["epochs_done"] == 0 and metrics["train_loss"] == []
    assert metrics["test_acc"] is None and metrics["config"]["learning_rate"] == 1e6
    assert not (tmp_path / "run" / "model.npz").exists()  # no epoch finished: no best model to keep


def test_divergence_after_some_epochs_keeps_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    status, stdout, stderr = call(
        capsys, "train", "--set", "learning_rate=1e4", "--set", "epochs=5", "--set", "seed=1024", "--out", str(out)
    )
    metrics = read_metrics(out)
    assert status == 1 and metrics["status"] == "diverged"
    assert 1 <= metrics["epochs_done"] < 5
    assert len(metrics["train_loss"]) == len(metrics["val_acc"]) == metrics["epochs_done"]
    assert stdout.count("\nepoch ") == metrics["epochs_done"]
    assert f"after {metrics['epochs_done']} epoch(s)" in stderr
    assert metrics["test_acc"] is not None  # the best finite snapshot is still tested
    assert (out / "curves.png").is_file()


def test_no_overflow_warning_at_learning_rate_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(
        "train",
        "--set",
        "learning_rate=1",
        "--set",
        "epochs=5",
        "--out",
        "run",
        cwd=tmp_path,
        python_flags=("-W", "error"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, _, stderr = call(capsys, "evaluate", str(tmp_path / "run" / "model.npz"))
    assert status == 0 and stderr == ""


# ---------------------------------------------------------------- bad input: one line, exit 2


def corrupt(directory: Path, role: str, content: bytes) -> Path:
    for old in directory.glob(IDX_NAMES[role] + "*"):
        old.unlink()
    (directory / IDX_NAMES[role]).write_bytes(content)
    return directory


def csv_dir(tmp_path: Path, bad_row: str) -> Path:
    directory = tmp_path / "csv"
    directory.mkdir()
    rows = ["label," + ",".join(f"p{i}" for i in range(4)), "1,0,0,0,0", "2,0,0,0,0", bad_row]
    (directory / "mnist_train.csv").write_text("\n".join(rows) + "\n")
    (directory / "mnist_test.csv").write_text("3,0,0,0,0\n")
    return directory


def saved_digits_model(tmp_path: Path) -> Path:
    path = tmp_path / "digits_model.npz"
    TwoLayerNet(input_size=64, hidden_size=8).save(path, dataset="digits", data_dir=None)
    return path


def wrong_shape_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.npz"
    header = {"format": 1, "model": "TwoLayerNet", "hyper": {"input_size": 64, "hidden_size": 8}, "meta": {}}
    params = TwoLayerNet(input_size=63, hidden_size=8).params
    np.savez(path, __header__=np.array(json.dumps(header)), **{f"param/{k}": v for k, v in params.items()})
    return path


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def bad_input(case: str, tmp_path: Path, write_idx_dataset: WriteIdx) -> list[str]:
    """The arguments of a command that must fail with one line on stderr and exit status 2."""
    if case in ("IDX wrong magic", "IDX short file", "IDX truncated gzip"):
        content = {
            "IDX wrong magic": b"\x01\x02\x08\x03" + bytes(12),
            "IDX short file": bytes([0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 12, 0, 0, 0, 12]) + bytes(500),
            "IDX truncated gzip": gzip.compress(
                bytes([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 12, 0, 0, 0, 12]) + np.random.default_rng(0).bytes(1440)
            )[:-30],
        }[case]
        return ["train", "--data-dir", str(corrupt(write_idx_dataset(), "train_images", content))]
    if case == "CSV wrong row width":
        return ["train", "--data-dir", str(csv_dir(tmp_path, "3,0,0"))]
    if case == "CSV non-numeric":
        return ["train", "--data-dir", str(csv_dir(tmp_path, "3,0,x,0,0"))]
    if case == "missing data dir":
        return ["train", "--data-dir", str(tmp_path / "nowhere")]
    if case == "dataset nowhere offline":
        if Path("/usr/share/datasets/fashion-mnist").is_dir():
            pytest.skip("this machine has /usr/share/datasets/fashion-mnist")
        return ["train", "--dataset", "fashion-mnist"]
    if case == "missing config":
        return ["train", "--config", str(tmp_path / "nope.yaml")]
    if case == "broken YAML":
        return ["train", "--config", str(config_file(tmp_path, "Train:\n  epochs: [3\n"))]
    if case == "unknown key in YAML":
        return ["train", "--config", str(config_file(tmp_path, "Train:\n  learnig_rate: 0.1\n"))]
    if case == "garbage model file":
        (tmp_path / "model.npz").write_bytes(b"\x00garbage" * 10)
        return ["evaluate", str(tmp_path / "model.npz")]
    if case == "wrong-shape model file":
        return ["evaluate", str(wrong_shape_model(tmp_path))]
    if case == "model for other inputs":
        return ["evaluate", str(saved_digits_model(tmp_path)), "--data-dir", str(write_idx_dataset())]
    if case == "missing model file":
        return ["evaluate", str(tmp_path / "none.npz")]
    if case == "out is a file":
        (tmp_path / "taken").write_text("mine")
        return ["train", "--out", str(tmp_path / "taken")]
    overrides = {
        "unknown key": "learning_rat=0.1",
        "lr = 0": "learning_rate=0",
        "lr < 0": "lr=-0.5",
        "batch_size = 0": "batch_size=0",
        "epochs = 0": "epochs=0",
        "unknown model type": "type=ThreeLayerNet",
        "set without =": "epochs",
    }
    return ["train", "--set", overrides[case]]


BAD_INPUTS = {
    "IDX wrong magic": "not an IDX file (bad magic number 01020803)",
    "IDX short file": "truncated: 516 bytes, the header (100, 12, 12) needs 14416",
    "IDX truncated gzip": "truncated or corrupt gzip",
    "CSV wrong row width": "mnist_train.csv: data row 3 has 3 fields, expected 5",
    "CSV non-numeric": "mnist_train.csv: data row 3 has a non-numeric value 'x'",
    "missing data dir": "no mnist files in",
    "dataset nowhere offline": "fashion-mnist not found (looked in",
    "missing config": "nope.yaml: no such config file",
    "broken YAML": "config.yaml: broken YAML at line 3",
    "unknown key in YAML": "unknown config key 'learnig_rate'; did you mean 'learning_rate'?",
    "unknown key": "unknown config key 'learning_rat'; did you mean 'learning_rate'?",
    "lr = 0": "config key 'learning_rate'=0.0: must be > 0",
    "lr < 0": "config key 'learning_rate'=-0.5: must be > 0",
    "batch_size = 0": "config key 'batch_size'=0: must be ≥ 1",
    "epochs = 0": "config key 'epochs'=0: must be ≥ 1",
    "unknown model type": "unknown model type 'ThreeLayerNet'",
    "set without =": "--set 'epochs': expected key=value",
    "garbage model file": "model.npz: not an mlplab model file",
    "wrong-shape model file": "parameter W1 has shape (63, 8), expected (64, 8)",
    "model for other inputs": "digits_model.npz takes 64 inputs but mnist has 144",
    "missing model file": "none.npz: no such model file",
    "out is a file": "cannot create the output directory",
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(
    case: str,
    tmp_path: Path,
    write_idx_dataset: WriteIdx,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLPLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    args = bad_input(case, tmp_path, write_idx_dataset)
    status, stdout, stderr = call(capsys, *args)
    assert status == 2
    assert stderr.count("\n") == 1 and stderr.startswith(f"mlplab {args[0]}: error: "), stderr
    assert BAD_INPUTS[case] in stderr
    assert "error" not in stdout.lower()
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started


@pytest.mark.parametrize(
    "args",
    [["train", "--bogus"], ["train", "--dataset", "cifar"], ["evaluate"], ["fly"]],
    ids=["unknown option", "bad choice", "missing argument", "unknown command"],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, _, stderr = call(capsys, *args)
    assert status == 2
    assert stderr.count("\n") == 1 and "error:" in stderr and "(see mlplab" in stderr


def test_bad_input_leaves_earlier_results_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"earlier": true}\n')
    for args in (["--set", "epochs=0"], ["--data-dir", str(tmp_path / "nowhere")]):
        status, _, _ = call(capsys, "train", *args, "--out", str(out))
        assert status == 2
    assert (out / "metrics.json").read_text() == '{"earlier": true}\n'
    assert [p.name for p in out.iterdir()] == ["metrics.json"]


def test_bad_input_through_the_real_command(tmp_path: Path, write_idx_dataset: WriteIdx) -> None:
    """A fresh interpreter: exit status 2, one line on stderr, no traceback (both commands run side by side)."""
    idx = corrupt(write_idx_dataset(), "train_images", b"\x01\x02\x08\x03")
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    cases = {
        "bad magic number": ["train", "--data-dir", str(idx)],
        "not an mlplab model file": ["evaluate", str(tmp_path / "garbage.npz")],
    }
    procs = {
        message: subprocess.Popen(
            command(*args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for message, args in cases.items()
    }
    for message, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, stderr
        assert "Traceback" not in stderr and stderr.count("\n") == 1 and message in stderr


def test_threads_key_limits_blas_during_the_run(tmp_path: Path) -> None:
    from threadpoolctl import threadpool_info

    from mlplab.run import train_run

    seen: list[int] = []

    def record(epoch: int, history) -> None:
        seen.append(max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"))

    config = configs.resolve(CONFIGS / "digits.yaml", ["epochs=2", "threads=1"])
    metrics, _ = train_run(config, on_epoch=record)
    assert seen == [1, 1] and metrics["config"]["threads"] == 1
    with pytest.raises(MlplabError, match="threads"):
        configs.resolve(None, ["threads=-1"])


def test_header_names_the_mlp_and_its_optimizer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, stdout, _ = call(
        capsys,
        "train",
        "--set",
        "type=MLP",
        "--set",
        "hidden_sizes=[16]",
        "--set",
        "optimizer=adam",
        "--set",
        "learning_rate=0.01",
        "--set",
        "epochs=1",
        "--set",
        "schedule=cosine",
        "--out",
        str(tmp_path / "r"),
    )
    assert status == 0
    assert stdout.splitlines()[0] == (
        "MLP [16] relu on digits (1077 train / 360 val / 360 test): adam lr=0.01 reg=0.001 batch=64 epochs=1 "
        "schedule=cosine"
    )
