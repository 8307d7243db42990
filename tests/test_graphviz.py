"""Drawing autodiff graphs: DOT text with each node's op, value and gradient, and PNGs through Graphviz."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import mlplab.autodiff as ad
from mlplab.autodiff import Value
from mlplab.graphviz import render, to_dot


def test_dot_export_shows_ops_values_and_grads() -> None:
    x = Value(np.array([0.5, -1.25]), label="x")
    y = (ad.exp(x) * 3.0).sum()
    y.backward()
    dot = to_dot(y)
    assert dot.startswith("digraph") and dot.count("->") == 4
    for text in ("x: input", "exp", "*", "sum", "const", "value 3", "(2,) [0.5, -1.25]", "grad 1"):
        assert text in dot, text
    assert f"value {y.item():.4g}" in dot


def test_render_without_graphviz_raises(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz"):
        render(Value(1.0) * 2.0, tmp_path / "g.png")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed")
def test_render_writes_png(tmp_path) -> None:
    path = render(ad.sin(Value(1.0)), tmp_path / "g.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
