"""The course writeup in one call: the default run, the learning-rate and regularization sweeps, a greedy
tuning table, the theory checks, and a report with data-driven commentary.

Every run goes through one Runner, so identical configs (the default, lr 0.1 in the lr sweep, reg 0.001 in the reg
sweep) run once, each result is saved the moment it arrives, and a rerun with the same output directory redoes
nothing finished. More sections plug in through `Extra` (e.g. the randomization tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlplab import theory
from mlplab.experiments.commentary import tuning_commentary
from mlplab.experiments.context import Context, Extra, change_text, label
from mlplab.experiments.executors import Executor, Runner, check_dataset_reachable
from mlplab.experiments.figures import accuracy_overlay
from mlplab.experiments.store import RunStore, summarize
from mlplab.experiments.sweep import SweepResult, accuracy_table, sweep_section
from mlplab.files import write_json
from mlplab.provenance import provenance
from mlplab.report import Figure, Section, Table, difference, percent, points, write_html, write_markdown

# The writeup's defaults are the assignment's, made for MNIST's 48,000 training images. The 1,077 8×8 digits give
# them 170 steps in 10 epochs, too few to leave the tiny initial weights: 11 of 12 runs would sit at chance. There,
# smaller batches, momentum and more epochs; the sweeps and the tuning table then vary the same keys as on MNIST.
DATASET_SETTINGS: dict[str, dict[str, Any]] = {"digits": {"batch_size": 16, "momentum": 0.9, "epochs": 20}}
LR_VALUES = (1.0, 0.1, 0.05, 0.01)
REG_VALUES = (1.0, 0.1, 0.01, 0.001, 0.0001)
REG_SWEEP_LR = 0.1
# Tuning candidates besides the sweeps' winners: each is tried alone on the default first.
FIXED_CANDIDATES: tuple[dict[str, Any], ...] = ({"momentum": 0.9}, {"batch_size": 32})
# Twice the epochs doubles the cost of every run stacked on it, so it is tried once, last, on top of the rest.
LONGER = 2


def relative_run(ctx: Context, overrides: dict[str, Any]) -> str:
    return ctx.run_dir(overrides).relative_to(ctx.out).as_posix()


def entry(ctx: Context, overrides: dict[str, Any]) -> dict[str, Any]:
    """A run as results.json records it: accuracies, curves, status and where its files are."""
    return {**summarize(ctx.metrics(overrides)), "run": relative_run(ctx, overrides)}


def dataset_settings(config: dict[str, Any], chosen: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The base config with the dataset's writeup settings for the keys the user did not choose, and those used."""
    used = {k: v for k, v in DATASET_SETTINGS.get(config["dataset"], {}).items() if k not in chosen}
    return {**config, **used}, used


def sweep_overrides(key: str, values: Sequence[Any], fixed: dict[str, Any] | None = None) -> dict[str, dict]:
    return {label(v): {**(fixed or {}), key: v} for v in values}


def reproduce(
    base: dict[str, Any],
    out: str | Path,
    executor: Executor,
    extras: Sequence[Extra] = (),
    on_saved: Callable[[str, dict[str, Any]], None] | None = None,
    adapted: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the whole writeup into `out`; returns the content of results.json.

    `adapted` names the dataset settings (see `dataset_settings`) that `base` holds instead of the assignment's.
    """
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_dataset_reachable(base)
    ctx = Context(base, out, Runner(executor, RunStore(out / "runs"), on_saved), executor)
    lr_runs = sweep_overrides("learning_rate", LR_VALUES)
    reg_runs = sweep_overrides("reg", REG_VALUES, {"learning_rate": REG_SWEEP_LR})
    for overrides in [{}, *lr_runs.values(), *reg_runs.values(), *FIXED_CANDIDATES]:
        ctx.request(overrides)  # everything known up front goes to the workers now
    checks = theory_section(ctx)  # computed here while the workers train
    sections = [
        default_section(ctx),
        sweep_report(ctx, "learning_rate_sweep", "learning_rate", lr_runs, "Learning rate"),
        sweep_report(ctx, "reg_sweep", "reg", reg_runs, "Regularization", f"at learning rate {label(REG_SWEEP_LR)}"),
        tuning_section(ctx, lr_runs, reg_runs),
        checks,
    ]
    for extra in extras:
        section, results = extra.build(ctx)
        ctx.results[extra.key] = results
        sections.append(section)
    seconds = time.perf_counter() - start
    ctx.results = {
        "dataset": ctx.metrics({})["dataset"],
        "base_config": base,
        "dataset_settings": adapted or {},
        **ctx.results,
        "seconds": seconds,
        "provenance": provenance(),
    }
    write_json(out / "results.json", ctx.results)
    title = f"Reproducing the course experiments on {base['dataset']}"
    preamble = preamble_text(ctx, seconds, adapted or {})
    write_markdown(out / "report.md", title, sections, preamble)
    write_html(out / "report.html", title, sections, preamble)
    return ctx.results


def preamble_text(ctx: Context, seconds: float, adapted: dict[str, Any]) -> str:
    data = ctx.metrics({})["dataset"]
    b = ctx.base
    why = (
        f" ({change_text(adapted)} for {data['name']}: the assignment's settings, made for MNIST, leave this small "
        "training set at chance)"
        if adapted
        else ""
    )
    return (
        f"{b['type']} on {data['name']} ({data['train']:,} training / {data['val']:,} validation / "
        f"{data['test']:,} test images). Defaults: learning rate {label(b['learning_rate'])}, reg {label(b['reg'])}, "
        f"batch {b['batch_size']}, {b['epochs']} epochs, hidden sizes {b['hidden_sizes']}, momentum "
        f"{label(b['momentum'])}, seed {b['seed']}{why}. Every accuracy is that of the best-by-validation epoch's "
        f"model (the one tested); training accuracy is the running mean over that epoch. Choices are made on "
        f"validation accuracy only. {runs_text(ctx, seconds)}"
    )


def runs_text(ctx: Context, seconds: float) -> str:
    """How much training the report rests on and what this invocation did."""
    runner = ctx.runner
    training = sum(m.get("total_seconds") or 0.0 for m in runner.finished.values())
    reused = len(runner.reused)
    again = f", {reused} of them reused from an earlier invocation in this directory" if reused else ""
    return (
        f"{len(runner.finished)} distinct runs ({training:.0f} s of training in total{again}); this invocation "
        f"took {seconds:.0f} s with {ctx.executor.slots} worker(s)."
    )


def default_section(ctx: Context) -> Section:
    ctx.results["default"] = entry(ctx, {})
    metrics = ctx.metrics({})
    s = summarize(metrics)
    table = accuracy_table("Default", {ctx.base["type"]: metrics})
    if s["val_acc"] is None:
        lines = ["The default run diverged (the loss became NaN/inf) during its first epoch: it has no accuracy."]
    else:
        lines = [
            f"The default run reaches {percent(s['val_acc'])} on validation at epoch {s['best_epoch']} of "
            f"{s['epochs_done']} and {percent(s['test_acc'])} on test."
        ]
        if s["status"] != "ok":
            lines.append(f"It stopped early with status {s['status']}; those numbers are of its best epoch before.")
    curve = s["curves"]["val_acc"]
    if len(curve) >= 3 and s["best_epoch"] == len(curve) and curve[-1] - curve[-3] > 0.002:
        lines.append("Validation accuracy was still rising at the last epoch: the default stops too early.")
    figure = ctx.run_dir({}) / "curves.png"
    figures = [Figure(figure, "Loss and accuracy per epoch of the default run.")] if figure.exists() else []
    return Section("Default run", "The assignment's default settings, trained once.", [table], lines, figures)


def sweep_report(
    ctx: Context, key: str, swept: str, runs: dict[str, dict[str, Any]], name: str, detail: str = ""
) -> Section:
    ctx.results[key] = {v: entry(ctx, o) for v, o in runs.items()}
    result = SweepResult(
        swept,
        {v: ctx.metrics(o) for v, o in runs.items()},
        {v: ctx.run_dir(o) for v, o in runs.items()},
        ctx.out,
    )
    intro = f"One run per {swept} value{' ' + detail if detail else ''}; everything else at the default."
    return sweep_section(result, f"{name} sweep", intro, overlay=f"{key}.png")


def tuning_candidates(ctx: Context, lr_runs: dict, reg_runs: dict) -> list[dict[str, Any]]:
    """The sweeps' winners (by validation accuracy) plus the fixed candidates, minus any that change nothing."""

    def winner(runs: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
        best = max(runs.values(), key=lambda o: summarize(ctx.metrics(o))["val_acc"] or -1.0)
        return {key: best[key]}

    candidates = [winner(lr_runs, "learning_rate"), winner(reg_runs, "reg"), *FIXED_CANDIDATES]
    return [c for c in candidates if any(ctx.base.get(k) != v for k, v in c.items())]


def tuning_section(ctx: Context, lr_runs: dict, reg_runs: dict) -> Section:
    """Greedy forward selection on validation accuracy: each candidate alone first, then stacked in order of
    its own gain, then twice the epochs; each kept only if it raises validation accuracy over the column before."""
    default = summarize(ctx.metrics({}))

    def better(value: float | None, than: float | None) -> bool:
        return value is not None and (than is None or value > than)

    alone = {
        change_text(c): (c, summarize(ctx.metrics(c))["val_acc"]) for c in tuning_candidates(ctx, lr_runs, reg_runs)
    }
    order = [c for c, val in sorted(alone.values(), key=lambda cv: -(cv[1] or 0.0)) if better(val, default["val_acc"])]
    order.append({"epochs": LONGER * ctx.base["epochs"]})
    current: dict[str, Any] = {}
    columns = [{"name": "Default", "change": None, "overrides": {}, **default}]
    tried = [
        {"change": text, "val_acc": val, "kept": False, "against": default["val_acc"], "alone": True}
        for text, (_, val) in alone.items()
        if not better(val, default["val_acc"])
    ]
    for candidate in order:  # one run at a time: each depends on whether the one before was kept
        stacked = {**current, **candidate}
        s = summarize(ctx.metrics(stacked))
        against = columns[-1]["val_acc"]
        kept = better(s["val_acc"], against)
        tried.append(
            {
                "change": change_text(candidate),
                "val_acc": s["val_acc"],
                "kept": kept,
                "against": against,
                "alone": False,
            }
        )
        if kept:
            current = stacked
            name = f"Exp{len(columns)}"
            columns.append({"name": name, "change": change_text(candidate), "overrides": dict(stacked), **s})
    table = Table(
        ["", *(c["name"] for c in columns)],
        [
            ["Change", "assignment defaults", *(f"+ {c['change']}" for c in columns[1:])],
            ["Training accuracy", *(percent(c["train_acc"]) for c in columns)],
            ["Validation accuracy", *(percent(c["val_acc"]) for c in columns)],
            ["Test accuracy", *(percent(c["test_acc"]) for c in columns)],
            [
                "Improvement over default (test)",
                "—",
                *(points(difference(c["test_acc"], default["test_acc"])) for c in columns[1:]),
            ],
        ],
    )
    ctx.results["tuning"] = {
        c["name"]: {k: v for k, v in c.items() if k != "name"} | {"run": relative_run(ctx, c["overrides"])}
        for c in columns
    }
    ctx.results["tuning_search"] = tried
    figures = []
    series = {c["name"] + (f": + {c['change']}" if c["change"] else ""): c["curves"]["val_acc"] for c in columns}
    overlay = ctx.out / "tuning.png"
    accuracy_overlay(series, overlay, "Validation accuracy per epoch of each tuning step")
    figures.append(Figure(overlay, "Validation accuracy per epoch, one line per column of the tuning table."))
    last = ctx.run_dir(columns[-1]["overrides"]) / "curves.png"
    if len(columns) > 1 and last.exists():
        figures.append(Figure(last, f"Loss and accuracy per epoch of {columns[-1]['name']}, the tuned model."))
    intro = (
        "Candidate changes: the learning-rate and regularization sweeps' winners (by validation accuracy), "
        "momentum 0.9 and batch size 32. Each is first run alone on the default; those that help are stacked in "
        f"order of their own gain, then {LONGER}× the epochs is tried last (it doubles the cost of every run after "
        "it). A change becomes a column only if it raises validation accuracy over the column before."
    )
    return Section("Tuning", intro, [table], tuning_commentary(columns, tried), figures)


def theory_section(ctx: Context) -> Section:
    """The problem set's claims, checked numerically, as one table."""
    claims = theory.run_all()
    ctx.results["theory"] = [asdict(c) for c in claims]
    lines = [f"{sum(c.passed for c in claims)} of {len(claims)} checks pass."]
    failed = [str(c.number) for c in claims if not c.passed]
    if failed:
        lines.append(f"Failing: {', '.join(failed)}.")
    intro = "The problem set's claims, each checked numerically (`mlplab theory`)."
    return Section("Theory checks", intro, [Table(list(theory.COLUMNS), theory.rows(claims))], lines, [])
