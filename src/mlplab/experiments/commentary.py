"""What the numbers show, in sentences generated from the results: winners, margins, trends, failures."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from mlplab.experiments.conditions import Results, label_conditions
from mlplab.experiments.store import summarize
from mlplab.report import difference, percent, points

CHANCE = 0.1  # every dataset here has ten balanced classes
FLAT = 0.002  # accuracy changes below 0.2 points count as no change
OVERFIT_GAP = 0.02


def _number(label: str) -> float | None:
    try:
        return float(label)
    except ValueError:
        return None


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sweep_commentary(key: str, runs: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences about a one-key sweep: the winner and its margin, the trend, the weakest, failures, gaps."""
    runs_summary = {label: summarize(m) for label, m in runs.items()}
    scored = {label: s for label, s in runs_summary.items() if s["val_acc"] is not None}
    lines: list[str] = []
    if not scored:
        return [f"Every {key} value diverged before finishing an epoch: there is no accuracy to compare."]
    ranked = sorted(scored, key=lambda label: scored[label]["val_acc"], reverse=True)
    best = ranked[0]
    top = scored[best]
    spread = top["val_acc"] - scored[ranked[-1]]["val_acc"]
    if len(ranked) > 1 and spread < FLAT:
        chance = ", chance level: none of these runs learned" if top["val_acc"] < CHANCE + 0.05 else ""
        lines.append(f"Every {key} value reaches the same validation accuracy, {percent(top['val_acc'])}{chance}.")
        return lines + _failures(key, runs_summary)
    if len(ranked) > 1:
        second = ranked[1]
        margin = top["val_acc"] - scored[second]["val_acc"]
        lead = (
            f"ties with {key} = {second}"
            if margin < FLAT
            else f"{100 * margin:.2f} points ahead of {key} = {second} ({percent(scored[second]['val_acc'])})"
        )
        lines.append(
            f"**{key} = {best}** gives the best validation accuracy, {percent(top['val_acc'])}, {lead}; "
            f"its test accuracy is {percent(top['test_acc'])}."
        )
    else:
        lines.append(
            f"{key} = {best} reaches {percent(top['val_acc'])} on validation, {percent(top['test_acc'])} on test."
        )
    lines += _trend(key, scored)
    if len(ranked) > 2:
        low = scored[ranked[-1]]["val_acc"]
        weakest = [label for label in ranked[1:] if scored[label]["val_acc"] - low < FLAT]
        names = f"{key} = {_join(sorted(weakest, key=ranked.index))}"
        level = (
            ", chance level"
            if low < CHANCE + 0.02
            else (f", barely above chance ({percent(CHANCE)})" if low < CHANCE + 0.05 else "")
        )
        verb = "reaches only" if len(weakest) == 1 else "all stay at"
        lines.append(f"The weakest, {names}, {verb} {percent(low)} on validation{level}.")
    test_ranked = sorted(scored, key=lambda label: scored[label]["test_acc"] or 0.0, reverse=True)
    if len(ranked) > 1 and test_ranked[0] != best:
        test_lead = (scored[test_ranked[0]]["test_acc"] or 0.0) - (top["test_acc"] or 0.0)
        lines.append(
            f"On the test set {key} = {test_ranked[0]} would rank first (by {points(test_lead)}); "
            "the choice above is made on validation only."
        )
    lines += _failures(key, runs_summary)
    lines += _still_improving(key, scored)
    lines += _gaps(key, scored)
    return lines


def _trend(key: str, scored: dict[str, dict[str, Any]]) -> list[str]:
    """Monotonic or peaked, when the values are numbers."""
    numeric = {label: _number(label) for label in scored}
    if len(scored) < 3 or any(v is None for v in numeric.values()):
        return []
    order = sorted(scored, key=lambda label: numeric[label])  # type: ignore[arg-type, return-value]
    accs = [scored[label]["val_acc"] for label in order]
    steps = [b - a for a, b in pairwise(accs)]
    if all(s > FLAT for s in steps):
        return [f"Validation accuracy rises with every increase of {key} over this range."]
    if all(s < -FLAT for s in steps):
        return [f"Validation accuracy falls with every increase of {key} over this range."]
    peak = max(range(len(accs)), key=accs.__getitem__)
    if 0 < peak < len(accs) - 1:
        return [f"Validation accuracy peaks at {key} = {order[peak]} and is lower on both sides of it."]
    return []


def _failures(key: str, summaries: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for label, s in summaries.items():
        if s["status"] == "diverged":
            when = (
                f"after {s['epochs_done']} epoch(s); its best snapshot before that reached {percent(s['val_acc'])}"
                if s["val_acc"] is not None
                else "during its first epoch, so it has no accuracy"
            )
            lines.append(f"{key} = {label} diverged (the loss became NaN/inf) {when}.")
    return lines


def _still_improving(key: str, scored: dict[str, dict[str, Any]]) -> list[str]:
    rising = [
        label
        for label, s in scored.items()
        if s["best_epoch"] == s["epochs_done"] >= 3 and s["curves"]["val_acc"][-1] - s["curves"]["val_acc"][-3] > FLAT
    ]
    if not rising:
        return []
    names = f"{key} = {_join(rising)}"
    return [
        f"{names} {'was' if len(rising) == 1 else 'were'} still improving at the last epoch: more epochs would help."
    ]


def _gaps(key: str, scored: dict[str, dict[str, Any]]) -> list[str]:
    """Overfitting shows as training accuracy well above validation accuracy."""
    gaps = {label: s["train_acc"] - s["val_acc"] for label, s in scored.items() if s["train_acc"] is not None}
    if not gaps:
        return []
    widest = max(gaps, key=gaps.__getitem__)
    if gaps[widest] > OVERFIT_GAP:
        return [
            f"{key} = {widest} has the widest gap between training and validation accuracy "
            f"({points(gaps[widest])}), the clearest sign of overfitting here."
        ]
    if gaps[widest] > 0:
        return [
            f"No {key} value overfits: training accuracy exceeds validation accuracy by at most "
            f"{100 * gaps[widest]:.2f} points ({key} = {widest})."
        ]
    return [
        f"Validation accuracy is at or above training accuracy for every {key} (training accuracy is averaged "
        "over an epoch while the weights still improve): no sign of overfitting."
    ]


def tuning_commentary(columns: list[dict[str, Any]], tried: list[dict[str, Any]]) -> list[str]:
    """Sentences about the greedy tuning: what each kept change bought, what was dropped, the total gain."""
    first, last = columns[0], columns[-1]
    lines = []
    if len(columns) == 1:
        lines.append("No candidate change raised validation accuracy over the default; the default stands.")
    for previous, column in pairwise(columns):
        lines.append(
            f"{column['name']} adds **{column['change']}**: validation {percent(previous['val_acc'])} → "
            f"{percent(column['val_acc'])} ({points(difference(column['val_acc'], previous['val_acc']))})."
        )

    def listing(trials: list[dict[str, Any]]) -> str:
        return "; ".join(
            f"{t['change']} ({'diverged' if t['val_acc'] is None else percent(t['val_acc'])} "
            f"vs {percent(t['against'])})"
            for t in trials
        )

    alone = [t for t in tried if not t["kept"] and t.get("alone")]
    stacked = [t for t in tried if not t["kept"] and not t.get("alone")]
    if alone:
        lines.append(f"Left out because alone it did not beat the default on validation: {listing(alone)}.")
    if stacked:
        lines.append(f"Helped alone but dropped once stacked, as validation did not improve: {listing(stacked)}.")
    if len(columns) > 1:
        lines.append(
            f"Altogether test accuracy goes from {percent(first['test_acc'])} to {percent(last['test_acc'])} "
            f"({points(difference(last['test_acc'], first['test_acc']))}); "
            "every choice was made on validation accuracy."
        )
    return lines


def randomization_commentary(results: Results, num_classes: int = 10) -> list[str]:
    """What the numbers show, sentence by sentence; only claims the numbers support."""
    lines = []
    true, random = results.get("true-labels"), results.get("random-labels")

    def steps(r: Mapping[str, Any]) -> str:
        return f"{r['steps_to_fit']:,} steps" if r["steps_to_fit"] is not None else f"no fit in {r['steps']:,} steps"

    if random is not None:
        fit = random["steps_to_fit"] is not None
        line = (
            f"With random labels the network {'fits' if fit else 'does not fit'} the training set "
            f"({percent(random['train_acc'])} training accuracy, {steps(random)}) while its test accuracy is "
            f"{percent(random['test_acc'])}, chance level being {percent(1 / num_classes)}."
        )
        if fit and true is not None and true["steps_to_fit"]:
            line += (
                f" It needs {random['steps_to_fit'] / true['steps_to_fit']:.1f}× the steps of the true labels "
                f"({true['steps_to_fit']:,}): memorizing noise is slower, not impossible."
            )
        lines.append(line)
    by_level = label_conditions(results)
    if len(by_level) >= 2:
        low, high = by_level[0], by_level[-1]
        worst_train = max(1 - r["train_acc"] for r in by_level)
        lines.append(
            f"From corruption {low['corruption']:g} to {high['corruption']:g} the test error grows from "
            f"{percent(1 - low['test_acc'])} to {percent(1 - high['test_acc'])} while the training error stays at or "
            f"below {percent(worst_train)}: the same network, with the same parameter count, generalizes or not "
            "depending only on the labels, so its capacity alone cannot explain why it generalizes on true labels."
        )
        fit_steps = [r["steps_to_fit"] for r in by_level if r["steps_to_fit"] is not None]
        if len(fit_steps) == len(by_level):
            monotone = all(a <= b for a, b in pairwise(fit_steps))
            lines.append(
                f"Steps to fit go from {fit_steps[0]:,} to {max(fit_steps):,} as the corruption rises"
                + (", never decreasing." if monotone else ", not strictly in order of the corruption level.")
            )
    shuffled = results.get("shuffled-pixels")
    if shuffled is not None and true is not None:
        lines.append(
            f"Shuffled pixels: {steps(shuffled)} and {percent(shuffled['test_acc'])} test accuracy against "
            f"{steps(true)} and {percent(true['test_acc'])} for the original images. A fully connected layer has no "
            "notion of neighbouring pixels: one fixed permutation only reorders the rows of W1, so the MLP (unlike "
            "the paper's convolutional networks) loses nothing."
        )
    noise = [results[c] for c in ("random-pixels", "gaussian") if c in results]
    if noise:
        parts = ", ".join(f"{r['condition']} {steps(r)} (test {percent(r['test_acc'])})" for r in noise)
        line = f"Random inputs: {parts}."
        fast = all(r["steps_to_fit"] for r in noise) and random is not None and random["steps_to_fit"]
        if fast and random is not None and max(r["steps_to_fit"] for r in noise) < random["steps_to_fit"]:
            line += (
                " Noise is memorized sooner than random labels on real images, as in the paper: noise inputs lie far "
                "apart, whereas real images given different random classes still resemble each other."
            )
        lines.append(line)
    return lines
