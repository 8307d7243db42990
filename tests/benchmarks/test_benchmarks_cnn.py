"""benchmarks.cnn times the same network on both sides: PyTorch's copy computes mlplab's logits, and quick mode runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import cnn
from mlplab import config as configs
from mlplab import data
from mlplab.layers import Conv2D, Dense, Flatten
from mlplab.run import make_model

TINY = ["type=CNN", "conv_channels=[3,4]", "kernel_size=2", "hidden_sizes=[8]", "optimizer=adam", "batch_size=32"]


@pytest.mark.parametrize("padding", ["valid", "same", "circular"])
def test_the_pytorch_network_is_mlplabs_layer_for_layer(padding: str) -> None:
    torch = pytest.importorskip("torch")
    digits = data.load("digits")
    config = configs.resolve(None, [*TINY, f"conv_padding={padding}", "activation=tanh"])
    model = make_model(config, digits)
    net = cnn.torch_network(config, digits.image_shape, digits.num_classes).double()
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    denses = [layer for layer in model.layers if isinstance(layer, Dense)]
    theirs_conv = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    theirs_dense = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert len(convs) == len(theirs_conv) == 2 and len(denses) == len(theirs_dense) == 2
    x = digits.test.x[:20].astype(np.float32) / np.float32(digits.pixel_max)
    scores = model.scores(x)
    _, h, w, c = next(layer for layer in model.layers if isinstance(layer, Flatten)).input_shape
    with torch.no_grad():
        for ours, theirs in zip(convs, theirs_conv, strict=True):
            k, channels = ours.geometry.kernel, ours.geometry.channels
            kernel = ours.W.reshape(k, k, channels, -1).transpose(3, 2, 0, 1)
            theirs.weight.copy_(torch.from_numpy(kernel.copy()))
            theirs.bias.copy_(torch.from_numpy(ours.b))
        # mlplab flattens (h, w, c), PyTorch (c, h, w): reorder the first dense layer's input rows to match.
        first = denses[0].W.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
        theirs_dense[0].weight.copy_(torch.from_numpy(first.T.copy()))
        for ours, theirs in zip(denses, theirs_dense, strict=True):
            if ours is not denses[0]:
                theirs.weight.copy_(torch.from_numpy(ours.W.T.copy()))
            theirs.bias.copy_(torch.from_numpy(ours.b))
        expected = net(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


def test_quick_run_writes_json_and_the_readme_row(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("\n".join(f"{k}: {v}" for k, v in (item.split("=") for item in TINY)) + "\n")
    assert cnn.main(["--quick", "--config", str(config), "--out", str(tmp_path), "--threads", "1"]) == 0
    results = json.loads((tmp_path / "cnn_quick.json").read_text())
    assert results["workload"]["quick"] is True and results["network"]["conv_channels"] == [3, 4]
    assert len(results["rounds"]["mlplab"]) == 1 and results["epoch_seconds"]["mlplab"] > 0
    if results["mlplab_over_torch"] is not None:
        assert results["mlplab_over_torch"] == pytest.approx(
            results["rounds"]["mlplab"][0] / results["rounds"]["torch"][0]
        )
    row = (tmp_path / "cnn_quick.md").read_text()
    assert "| mlplab CNN epoch | PyTorch CPU epoch | mlplab / PyTorch | target |" in row
    assert "conv 3-4 (2×2, valid, pool 2), dense 8" in row
