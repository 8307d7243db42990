"""`mlplab export`: a saved model as an ONNX file any ONNX runtime can run."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="write a saved model as ONNX: float32 raw pixels [N, inputs] → class probabilities [N, 10]",
        description="Write a model.npz as an ONNX file built node by node from its parameters. The graph takes "
        "float32 pixels [N, 784] (or [N, 64] for a digits model) in the dataset's raw range, 0–255 (0–16 for "
        "digits), scales them itself and returns class probabilities [N, 10].",
    )
    parser.add_argument("model", help="a model.npz written by mlplab train")
    parser.add_argument("out", help="the .onnx file to write")
    parser.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from mlplab.export import export_file

    out = export_file(args.model, args.out)
    print(f"wrote {out} (input 'pixels', output 'probabilities')")
    return 0
