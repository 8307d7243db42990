"""Drawing an autodiff graph: Graphviz DOT text of the nodes under a root, and a PNG through Graphviz's `dot`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from mlplab.autodiff import Value, brief, topological_order


def to_dot(root: Value) -> str:
    """Graphviz DOT text of the graph under root: one box per node with its op, value and grad."""
    order = topological_order(root)
    ids = {node: f"n{i}" for i, node in enumerate(order)}
    lines = ["digraph autodiff {", "  rankdir=LR;", '  node [shape=box, fontname="monospace"];']
    for node in order:
        name = node.op or "input"
        parts = [f"{node.label}: {name}" if node.label else name, f"value {brief(node.data)}"]
        parts.append(f"grad {brief(node.grad)}")
        if node.tangent is not None:
            parts.append(f"tangent {brief(node.tangent)}")
        text = "\\n".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)
        lines.append(f'  {ids[node]} [label="{text}"];')
    lines += [f"  {ids[p]} -> {ids[node]};" for node in order for p in node.parents]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(root: Value, path: str | Path) -> Path:
    """Write the graph under root as a PNG using Graphviz's ``dot``; RuntimeError if it is missing."""
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            "Graphviz is not installed: no 'dot' executable on PATH. Install graphviz "
            "(e.g. `apt-get install graphviz`) or render the text from to_dot() elsewhere."
        )
    path = Path(path)
    done = subprocess.run(
        [exe, "-Tpng", "-o", str(path)], input=to_dot(root), text=True, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"dot failed with exit code {done.returncode}: {done.stderr.strip()}")
    return path
