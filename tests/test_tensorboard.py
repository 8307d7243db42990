"""`--tensorboard DIR`: event files read back with TensorBoard's own reader hold metrics.json's numbers, each run of
a sweep, study or randomization test is its own TensorBoard run, a real `tensorboard` serves them over HTTP, and
a missing tensorboardX is one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplab.cli import main

pytest.importorskip("tensorboardX", reason="TensorBoard logging needs mlplab[tensorboard]")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason="reading events back needs TensorBoard"
)

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "digits.yaml")
CURVES = {"loss/train": "train_loss", "loss/val": "val_loss", "accuracy/train": "train_acc", "accuracy/val": "val_acc"}


def events(logdir: Path) -> Any:
    """Everything TensorBoard's own reader finds in one run directory."""
    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}
    )
    accumulator.Reload()
    return accumulator


def scalars(accumulator: Any, tag: str) -> tuple[list[int], list[float]]:
    series = accumulator.Scalars(tag)
    return [e.step for e in series], [e.value for e in series]


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def train(out: Path, board: Path, *sets: str) -> int:
    args = ["train", "--config", CONFIG, "--set", "threads=1", "--set", "epochs=3", *sets]
    return main([*args, "--tensorboard", str(board), "--out", str(out)])


def test_train_logs_metrics_histograms_tiles_and_hparams(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert train(tmp_path / "run", tmp_path / "tb") == 0
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in capsys.readouterr().out
    metrics = read(tmp_path / "run" / "metrics.json")
    seen = events(tmp_path / "tb")

    for tag, key in CURVES.items():
        steps, values = scalars(seen, tag)
        assert steps == [1, 2, 3]
        np.testing.assert_allclose(values, metrics[key], rtol=1e-6)  # stored as float32
    assert scalars(seen, "learning_rate")[1] == pytest.approx(metrics["lr"])
    assert metrics["val_acc"][-1] > 0.5  # it learned: the numbers compared are not a flat line at chance

    params, layers = ["W1", "b1", "W2", "b2"], ["dense_1", "sigmoid_1", "dense_2"]
    expected = {f"{kind}/{n}" for kind in ("weights", "gradients") for n in params}
    assert set(seen.Tags()["histograms"]) == expected | {f"activations/{n}" for n in layers}
    for tag in seen.Tags()["histograms"]:
        assert [h.step for h in seen.Histograms(tag)] == [0, 1, 2, 3]  # 0: the initialization, before any step

    # The histograms are the diagnostics' snapshots: their sums agree with diagnostics.json's statistics.
    records = read(tmp_path / "run" / "diagnostics.json")["epochs"]
    for step, record in enumerate(records):
        hidden = seen.Histograms("activations/sigmoid_1")[step].histogram_value
        probe = hidden.num / 128  # 128 hidden units per probe sample
        assert probe == min(512, 360)  # the probe: the first 512 validation samples, of digits' 360
        assert hidden.sum / hidden.num == pytest.approx(record["layers"]["sigmoid_1"]["mean"], rel=1e-4, abs=1e-7)
        w1 = seen.Histograms("weights/W1")[step].histogram_value
        assert np.sqrt(w1.sum_squares) == pytest.approx(record["params"]["W1"]["norm"], rel=1e-5)
        g1 = seen.Histograms("gradients/W1")[step].histogram_value
        assert np.sqrt(g1.sum_squares) == pytest.approx(record["params"]["W1"]["grad_norm"], rel=1e-4)
    first = seen.Histograms("weights/W1")[0].histogram_value
    assert first.num == 64 * 128 and first.min < 0 < first.max

    tiles = seen.Images("first_layer")
    assert [t.step for t in tiles] == [0, 1, 2, 3]
    assert tiles[0].width == tiles[0].height >= 8 * 28  # 64 of the 128 hidden units, 8×8 digits enlarged

    assert scalars(seen, "hparam/test_acc")[1] == pytest.approx([metrics["test_acc"]])
    assert scalars(seen, "hparam/best_val_acc")[1] == pytest.approx([metrics["best_val_acc"]])
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = seen.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["learning_rate"].number_value == metrics["config"]["learning_rate"]
    assert start.hparams["type"].string_value == "TwoLayerNet"
    assert "tensorboard" not in start.hparams and "tensorboard" not in metrics["config"]


def test_without_diagnostics_the_weights_come_from_the_model(tmp_path: Path) -> None:
    assert train(tmp_path / "run", tmp_path / "tb", "--set", "diagnostics=false") == 0
    seen = events(tmp_path / "tb")
    assert not (tmp_path / "run" / "diagnostics.json").exists()
    assert set(seen.Tags()["histograms"]) == {f"weights/{name}" for name in ("W1", "b1", "W2", "b2")}
    for tag in seen.Tags()["histograms"]:
        assert [h.step for h in seen.Histograms(tag)] == [0, 1, 2, 3]
    assert [t.step for t in seen.Images("first_layer")] == [0, 1, 2, 3]
    with_diagnostics = tmp_path / "measured"
    assert train(with_diagnostics / "run", with_diagnostics / "tb") == 0  # the same run, measured
    measured = events(with_diagnostics / "tb")
    for step in range(4):  # training's numbers are the same, so are the weights at every epoch
        a = seen.Histograms("weights/W1")[step].histogram_value
        b = measured.Histograms("weights/W1")[step].histogram_value
        assert (a.num, a.min, a.max) == (b.num, b.min, b.max) and a.sum_squares == pytest.approx(b.sum_squares)


def test_a_diverged_run_logs_only_finite_numbers(tmp_path: Path) -> None:
    args = ["train", "--set", "learning_rate=1e4", "--set", "epochs=5", "--set", "threads=1"]
    assert main([*args, "--tensorboard", str(tmp_path / "tb"), "--out", str(tmp_path / "run")]) == 1
    metrics = read(tmp_path / "run" / "metrics.json")
    seen = events(tmp_path / "tb")
    assert metrics["status"] == "diverged" and metrics["epochs_done"] >= 1
    for tag in seen.Tags()["scalars"]:
        assert all(np.isfinite(scalars(seen, tag)[1]))
    values = scalars(seen, "loss/train")[1]
    assert values == pytest.approx([v for v in metrics["train_loss"] if v is not None], rel=1e-6)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    args = ["sweep", "learning_rate", "0.05", "0.5", "--config", CONFIG, "--set", "epochs=2", "--workers", "1"]
    assert main([*args, "--tensorboard", str(out / "tb"), "--out", str(out / "sweep")]) == 0
    return out


def test_a_sweep_logs_each_run_in_its_own_directory(sweep: Path) -> None:
    assert sorted(p.name for p in (sweep / "tb").iterdir()) == ["learning_rate=0.05", "learning_rate=0.5"]
    for name in ("learning_rate=0.05", "learning_rate=0.5"):
        metrics = read(sweep / "sweep" / "runs" / name / "metrics.json")
        steps, values = scalars(events(sweep / "tb" / name), "accuracy/val")
        assert steps == [1, 2]
        np.testing.assert_allclose(values, metrics["val_acc"], rtol=1e-6)


def test_logging_elsewhere_keeps_a_sweep_resumable(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    args = ["sweep", "learning_rate", "0.05", "0.5", "--config", CONFIG, "--set", "epochs=2", "--workers", "1"]
    assert main([*args, "--tensorboard", str(sweep / "tb-other"), "--out", str(sweep / "sweep")]) == 0
    assert "2 finished runs reused" in capsys.readouterr().out  # the log directory is not part of a run's config
    assert not (sweep / "tb-other").exists()  # nothing trained again, so nothing logged


def test_tune_and_randomize_log_each_trial_and_condition(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.5, log: true}\n")
    args = ["tune", "--config", CONFIG, "--set", "epochs=2", "--space", str(space), "--trials", "2"]
    args += ["--sampler", "random", "--workers", "1", "--tensorboard", str(tmp_path / "tb-tune")]
    assert main([*args, "--out", str(tmp_path / "tune")]) == 0
    assert sorted(p.name for p in (tmp_path / "tb-tune").iterdir()) == ["trial-0000", "trial-0001"]
    for trial in ("trial-0000", "trial-0001"):
        metrics = read(tmp_path / "tune" / "trials" / trial / "metrics.json")
        np.testing.assert_allclose(scalars(events(tmp_path / "tb-tune" / trial), "loss/val")[1], metrics["val_loss"])

    args = ["randomize", "--conditions", "true-labels", "random-labels", "--subset", "300", "--hidden", "32"]
    args += ["--max-steps", "60", "--workers", "1", "--tensorboard", str(tmp_path / "tb-rand")]
    assert main([*args, "--out", str(tmp_path / "randomize")]) == 0
    results = read(tmp_path / "randomize" / "results.json")
    assert sorted(p.name for p in (tmp_path / "tb-rand").iterdir()) == ["random-labels", "true-labels"]
    for condition, result in results.items():
        steps, values = scalars(events(tmp_path / "tb-rand" / condition), "accuracy/train")
        assert steps == result["fit_checks"]["steps"] and steps[0] == 0  # the check before any step included
        np.testing.assert_allclose(values, result["fit_checks"]["train_acc"], rtol=1e-6)


def test_without_tensorboardx_it_is_one_line_before_any_training(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['tensorboardX'] = None; from mlplab.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", hide, "train", "--tensorboard", str(tmp_path / "tb"), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "mlplab train: error: TensorBoard logging needs tensorboardX, which is not installed: "
        "pip install 'mlplab[tensorboard]'"
    ]
    assert result.stdout == "" and not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


# ---------------------------------------------------------------- a real TensorBoard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


TENSORBOARD = shutil.which("tensorboard") or (
    str(Path(sys.executable).with_name("tensorboard"))
    if Path(sys.executable).with_name("tensorboard").exists()
    else None
)


@pytest.mark.skipif(TENSORBOARD is None, reason="no tensorboard command here (pip install 'mlplab[tensorboard]')")
def test_a_real_tensorboard_serves_each_runs_scalars(sweep: Path, tmp_path: Path) -> None:
    port = free_port()
    assert TENSORBOARD is not None
    command = [TENSORBOARD, "--logdir", str(sweep / "tb"), "--host", "127.0.0.1", "--port", str(port)]
    with open(tmp_path / "tensorboard.log", "wb") as log:
        server = subprocess.Popen(
            [*command, "--load_fast", "false", "--reload_interval", "1"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # its own process group: killed whole in the finally, no orphan
        )
    base = f"http://127.0.0.1:{port}"
    runs = ["learning_rate=0.05", "learning_rate=0.5"]
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited: {(tmp_path / 'tensorboard.log').read_text()[-2000:]}")
            try:
                if sorted(get_json(f"{base}/data/runs")) == runs:
                    break
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "TensorBoard did not list both runs within 120 s"
            time.sleep(0.5)
        for run in runs:
            query = urllib.parse.urlencode({"run": run, "tag": "accuracy/val"})
            series = get_json(f"{base}/data/plugin/scalars/scalars?{query}")
            metrics = read(sweep / "sweep" / "runs" / run / "metrics.json")
            assert [step for _, step, _ in series] == [1, 2]
            np.testing.assert_allclose([value for _, _, value in series], metrics["val_acc"], rtol=1e-6)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_a_resumed_run_replaces_what_an_interrupted_attempt_logged_after_its_checkpoint(tmp_path: Path) -> None:
    from mlplab.models import TwoLayerNet
    from mlplab.tensorboard import TensorBoardLog
    from mlplab.training import History

    def history(losses: list[float]) -> History:
        return History(train_loss=losses, train_acc=[0.5] * len(losses), val_loss=losses, val_acc=[0.5] * len(losses))

    model = TwoLayerNet(input_size=64, hidden_size=8)
    first = TensorBoardLog(tmp_path, model, {"type": "TwoLayerNet"}, (8, 8))
    for epoch in (1, 2, 3):  # killed after epoch 3 was logged but before its checkpoint: resumed after epoch 2
        first.epoch(epoch, history([2.0, 1.5, 1.25][:epoch]))
    first.writer.close()  # killed: no hyper-parameters, what was flushed stays
    resumed = TensorBoardLog(tmp_path, model, {"type": "TwoLayerNet"}, (8, 8))
    for epoch in (3, 4):
        resumed.epoch(epoch, history([2.0, 1.5, 1.0, 0.75][:epoch]))
    resumed.close()
    seen = events(tmp_path)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2  # in one second, and neither overwrote the other
    assert scalars(seen, "loss/train") == ([1, 2, 3, 4], [2.0, 1.5, 1.0, 0.75])  # epoch 3 once, the resumed one's
    assert [h.step for h in seen.Histograms("weights/W1")] == [0, 1, 2, 3, 4]


@pytest.mark.slow  # two interpreters: about 6 s under load
def test_a_run_killed_and_resumed_logs_each_epoch_once(tmp_path: Path) -> None:
    from mlplab.checkpoint import KILL_ENV

    args = ["train", "--config", CONFIG, "--set", "epochs=4", "--set", "threads=1", "--out", str(tmp_path / "run")]
    command = [sys.executable, "-c", "import sys; from mlplab.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    command += ["--tensorboard", str(tmp_path / "tb")]
    # Killed as it saves epoch 3's checkpoint: epoch 3 is already logged, the checkpoint holds epoch 2.
    killed = subprocess.run(command, env={**os.environ, KILL_ENV: "checkpoint:3"}, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0 and "resuming after epoch 2/4" in resumed.stdout, resumed.stderr
    metrics = read(tmp_path / "run" / "metrics.json")
    seen = events(tmp_path / "tb")
    for tag, key in CURVES.items():
        steps, values = scalars(seen, tag)
        assert steps == [1, 2, 3, 4]  # epoch 3 once: the interrupted attempt's was purged
        np.testing.assert_allclose(values, metrics[key], rtol=1e-6)
    assert [h.step for h in seen.Histograms("weights/W1")] == [0, 1, 2, 3, 4]
