"""The conditions of the randomization tests by name: which corruption each applies, at which level, with which
seed, and in which order they run and are reported."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from mlplab.errors import MlplabError

if TYPE_CHECKING:
    from mlplab.data import Dataset

LABEL_CONDITIONS = ("true-labels", "random-labels")
IMAGE_CONDITIONS = ("shuffled-pixels", "random-pixels", "gaussian")
CONDITIONS = ("true-labels", "random-labels", "partial", "shuffled-pixels", "random-pixels", "gaussian")
"""What --conditions accepts; "partial" stands for one `partial-p` run per corruption level p."""
DEFAULT_CORRUPTION = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
PARTIAL = "partial-"


def corruption_level(condition: str) -> float | None:
    """The label-corruption level of a condition (true-labels 0, random-labels 1, partial-p p), else None."""
    if condition == "true-labels":
        return 0.0
    if condition == "random-labels":
        return 1.0
    if condition.startswith(PARTIAL):
        try:
            return float(condition.removeprefix(PARTIAL))
        except ValueError:
            return None
    return None


def apply_condition(dataset: Dataset, condition: str, seed: int) -> Dataset:
    """The dataset as seen under `condition` (a name from `condition_names`)."""
    from mlplab import corruptions  # numpy: applying a condition needs it, naming one (the command line) does not

    image_corruptions = {
        "shuffled-pixels": corruptions.shuffle_pixels,
        "random-pixels": corruptions.random_pixels,
        "gaussian": corruptions.gaussian_images,
    }
    if condition in image_corruptions:
        return image_corruptions[condition](dataset, seed)
    level = corruption_level(condition)
    if level is None:
        raise MlplabError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    return dataset if level == 0.0 else corruptions.corrupt_labels(dataset, level, seed)


def condition_names(
    conditions: Iterable[str] = CONDITIONS, corruption: Iterable[float] = DEFAULT_CORRUPTION
) -> list[str]:
    """The runs, in the paper's order: "partial" expands to one run per level (0 is true-labels, 1 random-labels)."""
    conditions, levels = list(conditions), sorted(set(corruption))
    for name in conditions:
        if name not in CONDITIONS:
            raise MlplabError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
    for p in levels:
        if not 0.0 <= p <= 1.0:
            raise MlplabError(f"corruption levels must lie in [0, 1], got {p:g}")
    wanted = set(conditions)
    by_level = []
    if "partial" in wanted:
        by_level = ["true-labels" if p == 0 else "random-labels" if p == 1 else f"{PARTIAL}{p:g}" for p in levels]
    label_runs = sorted(
        {*(c for c in conditions if c in LABEL_CONDITIONS), *by_level}, key=lambda c: corruption_level(c) or 0.0
    )
    return label_runs + [c for c in IMAGE_CONDITIONS if c in wanted]


def transform_seed(seed: int, condition: str) -> int:
    """The data-transform seed: one for all label conditions (so corruption is nested), one per image condition."""
    kind = "labels" if corruption_level(condition) is not None else condition
    return seed * 1_000_003 + zlib.crc32(kind.encode())


def pretty(condition: str) -> str:
    """A condition as tables and legends name it: "partial, p = 0.2" for partial-0.2."""
    return f"partial, p = {corruption_level(condition):g}" if condition.startswith(PARTIAL) else condition


Results = Mapping[str, Mapping[str, Any]]
"""results.json of a randomization run: one entry per condition."""


def label_conditions(results: Results) -> list[Mapping[str, Any]]:
    """The label conditions' entries, in order of their corruption level."""
    return sorted((r for r in results.values() if r["corruption"] is not None), key=lambda r: r["corruption"])
