"""`mlplab reproduce`: the whole course writeup (default run, two sweeps, tuning table, theory) and its report."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlplab import config as configs
from mlplab.commands.common import (
    add_config_arguments,
    add_executor_arguments,
    condition_line,
    executor_from,
    finished_line,
    reused_line,
)
from mlplab.files import claim_output
from mlplab.report import difference, percent, points


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("reproduce", help="run the writeup's experiments and write report.md / report.html")
    add_config_arguments(parser)
    add_executor_arguments(parser)
    parser.add_argument("--out", default="runs/reproduce", help="output directory (default: runs/reproduce)")
    parser.add_argument(
        "--with-randomization", action="store_true", help="add the randomization tests (mlplab randomize --quick)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab.experiments.randomize_report import randomization_extra
    from mlplab.experiments.reproduce import dataset_settings, reproduce
    from mlplab.experiments.store import finished_run_dirs

    config = configs.resolve(args.config, args.overrides, dataset=args.dataset, data_dir=args.data_dir)
    chosen = set(configs.read_yaml(args.config) if args.config else {}) | set(configs.parse_overrides(args.overrides))
    base, adapted = dataset_settings(config, chosen)
    print(f"reproducing the writeup with {base['type']} on {base['dataset']} into {args.out}", flush=True)
    if adapted:
        settings = ", ".join(f"{k}={v}" for k, v in adapted.items())
        print(
            f"settings for {base['dataset']}: {settings} instead of the assignment's (made for MNIST, they leave this "
            "small training set at chance); --set or --config to choose others",
            flush=True,
        )
    if line := reused_line(finished_run_dirs(Path(args.out) / "runs"), "run", args.out):
        print(line, flush=True)
    extras = [randomization_extra(lambda r: print(condition_line(r), flush=True))] if args.with_randomization else []
    claim_output(args.out)
    with executor_from(args) as executor:
        results = reproduce(
            base,
            args.out,
            executor,
            extras,
            on_saved=lambda n, m: print(finished_line(n, m), flush=True),
            adapted=adapted,
        )
    print()
    for key, title in (("learning_rate_sweep", "learning rate"), ("reg_sweep", "reg")):
        cells = "  ".join(f"{v}: {percent(r['val_acc'])}/{percent(r['test_acc'])}" for v, r in results[key].items())
        print(f"{title:>13} sweep (val/test)  {cells}")
    columns = results["tuning"]
    default, last = columns["Default"], list(columns.values())[-1]
    print(f"{'tuning':>13}  " + "  ".join(f"{name}: {c['change'] or 'default'}" for name, c in columns.items()))
    print(
        f"{'':>13}  test {percent(default['test_acc'])} → {percent(last['test_acc'])} "
        f"({points(difference(last['test_acc'], default['test_acc']))})"
    )
    out = Path(args.out)
    print(f"\nwrote {out}/report.md, {out}/report.html and {out}/results.json in {results['seconds']:.0f} s")
    return 0
