"""`mlplab tune`: an Optuna study maximizing validation accuracy, pruned, persisted, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mlplab import config as configs
from mlplab.commands.common import (
    add_config_arguments,
    add_executor_arguments,
    add_tensorboard_argument,
    duration,
    executor_from,
)
from mlplab.errors import ConfigError
from mlplab.experiments.search_space import SAMPLERS, load_space
from mlplab.files import claim_output
from mlplab.report import percent

if TYPE_CHECKING:
    import optuna


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("tune", help="Optuna search maximizing validation accuracy, persisted and resumable")
    add_config_arguments(parser)
    add_tensorboard_argument(parser, per_run=True)
    parser.add_argument("--space", required=True, help="search space YAML, e.g. configs/space_two_layer.yaml")
    parser.add_argument("--trials", type=int, required=True, help="finished trials the study should hold")
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="how to pick trials (default: tpe)")
    parser.add_argument("--storage", help="Optuna RDB URL (default: sqlite:///OUT/study.db); share one across machines")
    parser.add_argument("--study-name", default="mlplab", help="study name inside the storage (default: mlplab)")
    parser.add_argument("--no-pruning", action="store_true", help="let every trial run all its epochs")
    add_executor_arguments(parser)
    parser.add_argument("--out", default="runs/tune", help="output directory (default: runs/tune); rerun to resume")
    parser.set_defaults(func=run)


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    from mlplab.experiments.tune import run_info, val_curve

    attrs = run_info(trial)
    state = trial.state.name.lower()
    if state == "pruned":
        state = f"pruned after epoch {attrs.get('epochs_done')}"
    elif attrs.get("status") == "diverged":
        state = "diverged"
    elif attrs.get("status") == "error":
        state = f"failed: {attrs.get('error')}"
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    best_val = max(val_curve(trial).values(), default=None)
    return (
        f"trial {trial.number:>3} [{state}] {params}: val {percent(best_val)}  test {percent(attrs.get('test_acc'))}"
        f"  ({duration(attrs.get('seconds') or 0.0)})"
    )


def waiting_line(running: list[optuna.trial.FrozenTrial]) -> str:
    numbers = ", ".join(f"{t.number} ({t.user_attrs.get('owner', 'unknown')})" for t in running)
    return f"this process's trials are done; waiting for the study's last trials, run elsewhere: {numbers}"


def run(args: argparse.Namespace) -> int:
    import optuna

    from mlplab.experiments.tune import counts, run_info, run_study, top_table

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours to print

    if args.trials < 1:
        raise ConfigError(f"--trials must be ≥ 1, got {args.trials}")
    base = configs.resolve(
        args.config, args.overrides, dataset=args.dataset, data_dir=args.data_dir, tensorboard=args.tensorboard
    )
    space = load_space(args.space)
    pruner = optuna.pruners.NopPruner() if args.no_pruning else None
    claim_output(args.out)
    with executor_from(args) as executor:
        result = run_study(
            base,
            space,
            args.trials,
            args.out,
            executor,
            sampler=args.sampler,
            storage=args.storage,
            study_name=args.study_name,
            pruner=pruner,
            on_trial=lambda t: print(trial_line(t), flush=True),
            on_wait=lambda running: print(waiting_line(running), flush=True),
        )
    n = counts(result.study)
    print(
        f"\nstudy {result.study.study_name!r} in {result.storage}: "
        f"{n['complete']} complete, {n['pruned']} pruned, {n['fail']} failed"
    )
    best = result.best
    if best is None:
        print("no trial completed")
        return 1
    params = ", ".join(f"{k}={v}" for k, v in best.params.items())
    print(
        f"best trial {best.number}: {params}\n"
        f"  validation {percent(best.value)} (the objective), test {percent(run_info(best).get('test_acc'))}"
    )
    print()
    print(top_table(result, space).markdown())
    out = Path(args.out)
    print(f"\nwrote {out}/best.json, top_trials.md, history.png and trials/*/")
    return 0
