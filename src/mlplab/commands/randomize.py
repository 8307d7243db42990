"""`mlplab randomize`: the randomization tests of Zhang et al. (2017) with a one-hidden-layer MLP or a CNN."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mlplab.commands.common import (
    add_data_arguments,
    add_executor_arguments,
    condition_line,
    executor_from,
    reused_line,
)
from mlplab.config import infer_dataset
from mlplab.errors import MlplabError
from mlplab.experiments.conditions import CONDITIONS, DEFAULT_CORRUPTION, condition_names
from mlplab.experiments.randomize_settings import MODELS, OPTIMIZERS, QUICK, Settings
from mlplab.files import claim_output


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "randomize",
        help="train until an MLP or CNN fits true, partially or fully random labels, shuffled or random pixels, noise",
        description="Zhang et al. (2017), 'Understanding deep learning requires rethinking generalization': a "
        "network without regularization is trained on each condition until it fits its training set (accuracy "
        "≥ --target-acc on the whole, corrupted, training split) or the step budget runs out.",
    )
    add_data_arguments(parser, "digits, or what --data-dir holds")
    parser.add_argument(
        "--conditions",
        nargs="+",
        default=list(CONDITIONS),
        metavar="NAME",
        help=f"any of {', '.join(CONDITIONS)} (space or comma separated; default: all); "
        "partial means one run per --corruption level",
    )
    parser.add_argument(
        "--corruption",
        default=",".join(f"{p:g}" for p in DEFAULT_CORRUPTION),
        metavar="P,P,…",
        help="label-corruption levels for partial (0 is true-labels, 1 random-labels; default: %(default)s)",
    )
    parser.add_argument("--subset", type=int, help="train on the first N training images (default: all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['subset']:,} training images and a {QUICK['max_steps']:,}-step budget per condition",
    )
    parser.add_argument(
        "--model",
        choices=MODELS,
        default=Settings.model,
        help="mlp: one hidden layer; cnn: two 5×5 same-padded conv blocks (--conv-channels), max-pooled, then that "
        "hidden layer (default: %(default)s)",
    )
    parser.add_argument(
        "--conv-channels",
        default=",".join(map(str, Settings.conv_channels)),
        metavar="C,C",
        help="the CNN's filters per conv block (default: %(default)s)",
    )
    parser.add_argument("--hidden", type=int, default=Settings.hidden, help="hidden units (default: %(default)s)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=Settings.optimizer, help="default: %(default)s")
    parser.add_argument("--lr", type=float, help="learning rate (default: 0.002 for adam, 0.05 for sgd)")
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size, help="default: %(default)s")
    parser.add_argument(
        "--max-steps",
        type=int,
        help=f"step budget per condition (default: {Settings.max_steps:,}; {QUICK['max_steps']:,} with --quick)",
    )
    parser.add_argument(
        "--target-acc", type=float, default=Settings.target_acc, help="training accuracy that counts as fit"
    )
    parser.add_argument(
        "--reg", type=float, default=0.0, help="L2 on the weight matrices, the config key reg (default: 0)"
    )
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout on the hidden layer (default: 0)")
    parser.add_argument(
        "--shift", type=int, default=0, metavar="PIXELS", help="shift training images by up to PIXELS (default: 0)"
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        dest="old_weight_decay",
        help="old name of --reg, still read (the config key weight_decay is AdamW's decoupled decay, not L2)",
    )
    parser.add_argument("--augment", type=int, dest="old_augment", metavar="PIXELS", help="old name of --shift")
    parser.add_argument("--seed", type=int, default=Settings.seed, help="default: %(default)s")
    add_executor_arguments(parser)
    parser.add_argument(
        "--out", default="runs/randomize", help="output directory (default: runs/randomize); rerun with it to resume"
    )
    parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> Settings:
    """The command line as experiment settings."""
    for flag, value in (("--subset", args.subset), ("--max-steps", args.max_steps)):
        if value is not None and value < 1:
            raise MlplabError(f"{flag} must be ≥ 1, got {value}")
    dataset = args.dataset or (infer_dataset(args.data_dir) if args.data_dir else "digits")
    reg, shift = args.reg, args.shift
    if args.old_weight_decay is not None:
        print("mlplab randomize: note: --weight-decay is now --reg (L2 on the weight matrices)", file=sys.stderr)
        reg = args.old_weight_decay
    if args.old_augment is not None:
        print("mlplab randomize: note: --augment is now --shift (pixel shifts)", file=sys.stderr)
        shift = args.old_augment
    quick = QUICK if args.quick else {}
    return Settings(
        dataset=dataset,
        data_dir=args.data_dir,
        subset=args.subset or quick.get("subset"),
        model=args.model,
        conv_channels=parse_channels(args.conv_channels),
        hidden=args.hidden,
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        max_steps=args.max_steps or quick.get("max_steps", Settings.max_steps),
        target_acc=args.target_acc,
        reg=reg,
        dropout=args.dropout,
        shift=shift,
        seed=args.seed,
    ).check()


def parse_channels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise MlplabError(f"--conv-channels takes comma-separated integers, got {text!r}") from None


def parse_levels(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise MlplabError(f"--corruption takes comma-separated numbers in [0, 1], got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from mlplab.experiments.figures import RANDOMIZATION_FIGURES
    from mlplab.experiments.randomize import randomize
    from mlplab.experiments.store import finished_conditions

    settings = settings_from(args)
    names = [n.strip() for text in args.conditions for n in text.split(",") if n.strip()]
    conditions = condition_names(names, parse_levels(args.corruption))
    if not conditions:
        raise MlplabError("no conditions to run: --conditions partial needs at least one --corruption level")
    print(
        f"randomization tests on {settings.dataset}: {len(conditions)} conditions, {settings.network}, "
        f"{settings.optimizer} lr {settings.learning_rate:g}, batch {settings.batch_size}, "
        f"budget {settings.max_steps:,} steps, fit = train acc ≥ {settings.target_acc:.0%}",
        flush=True,
    )
    start = time.perf_counter()
    claim_output(args.out)
    if line := reused_line(finished_conditions(Path(args.out), conditions), "condition", args.out):
        print(line, flush=True)
    with executor_from(args) as executor:
        randomize(conditions, settings, args.out, executor, on_result=lambda r: print(condition_line(r), flush=True))
    out = Path(args.out)
    print(
        f"wrote {out}/results.json, {out}/settings.json, {', '.join(f'{out}/{f}' for f in RANDOMIZATION_FIGURES)} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0
