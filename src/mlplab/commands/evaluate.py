"""`mlplab evaluate`: a saved model's loss and accuracy on the validation and test splits of its data, and what
it gets wrong (--report)."""

from __future__ import annotations

import argparse

from mlplab.commands.common import add_data_arguments


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="loss and accuracy of a saved model on validation and test")
    ev.add_argument("model", help="a model.npz written by mlplab train")
    add_data_arguments(ev, "the one the model was trained on")
    ev.add_argument(
        "--report",
        metavar="DIR",
        help="also write what the model gets wrong on the test set into DIR: confusion matrix (PNG, Markdown), "
        "per-class precision/recall/accuracy, the most confident mistakes, report.md and report.html (default: off)",
    )
    ev.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab.evaluation import dataset_for, score_splits, write_report
    from mlplab.models import Model

    model, meta = Model.load(args.model)
    dataset = dataset_for(model, meta, args.dataset, args.data_dir, what=args.model)
    for split, (loss, acc, n) in score_splits(model, dataset).items():
        print(f"{split:<5} loss {loss:.4f}  acc {acc:.4f}  ({n} samples)")
    if args.report:
        page = write_report(model, meta, dataset, args.report, model_path=args.model)
        print(f"wrote {page}, report.md, confusion.png, confusion.md, mistakes.png and evaluation.json")
    return 0
