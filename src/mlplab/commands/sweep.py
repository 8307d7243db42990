"""`mlplab sweep KEY V1 V2 …`: one run per value, in parallel, resumable, with the writeup's table."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlplab.commands.common import (
    add_config_arguments,
    add_executor_arguments,
    executor_from,
    finished_line,
    reused_line,
)
from mlplab.files import claim_output


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("sweep", help="one run per value of a config key; table, curves and overlay plot")
    parser.add_argument("key", help="the config key to vary, e.g. learning_rate")
    parser.add_argument("values", nargs="+", help="the values, e.g. 1 0.1 0.05 0.01")
    add_config_arguments(parser)
    add_executor_arguments(parser)
    parser.add_argument("--out", help="output directory (default: runs/sweep-KEY); rerun with it to resume")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab.experiments.store import finished_run_dirs
    from mlplab.experiments.sweep import run_name, run_sweep, value_configs

    key, configs = value_configs(
        args.key, args.values, args.config, args.overrides, dataset=args.dataset, data_dir=args.data_dir
    )
    out = args.out or f"runs/sweep-{key}"
    claim_output(out)
    names = [run_name(key, label) for label in configs]
    if line := reused_line(finished_run_dirs(Path(out) / "runs", names), "run", out):
        print(line, flush=True)
    with executor_from(args) as executor:
        result = run_sweep(
            key, configs, out, executor, on_saved=lambda name, m: print(finished_line(name, m), flush=True)
        )
    print()
    print(result.table.markdown())
    print(
        f"\nwrote {out}/results.json, table.md, val_acc.png, report.md, report.html and runs/*/ (curves.png per value)"
    )
    return 0
