"""The randomization tests measured from inside: training's numbers unchanged by the measurement."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mlplab.diagnostics import Diagnostics
from mlplab.experiments import randomize as rz
from mlplab.experiments.conditions import apply_condition, transform_seed
from mlplab.models import Model
from mlplab.run import make_model, make_optimizer, make_transform
from mlplab.training import Memorization, fit_until_memorized

pytestmark = pytest.mark.usefixtures("one_blas_thread")

TINY = rz.Settings(dataset="digits", subset=300, hidden=64, max_steps=30, seed=3)
"""3 steps a pass: the budget of 30 ends in pass 10."""


def test_the_measurement_changes_none_of_the_numbers() -> None:
    """fit_until_memorized with and without diagnostics, with dropout and shifts drawing from their streams and a
    budget that ends mid-pass: the same step losses, fit checks, test and parameters."""
    settings = replace(TINY, dropout=0.3, shift=1, max_steps=25)
    config = settings.config()
    seen = apply_condition(rz.load_dataset(settings), "partial-0.4", transform_seed(settings.seed, "partial-0.4"))

    def train(diagnostics: Diagnostics | None) -> tuple[Memorization, Model]:
        model = make_model(config, seen)
        run = fit_until_memorized(
            model,
            make_optimizer(config),
            seen,
            batch_size=settings.batch_size,
            max_steps=settings.max_steps,
            seed=settings.seed,
            transform=make_transform(config, seen, "float32"),
            diagnostics=diagnostics,
        )
        return run, model

    diagnostics = Diagnostics()
    (plain, plain_model), (measured, measured_model) = train(None), train(diagnostics)
    assert len(plain.step_loss) == 25 and plain.status == "budget"
    assert measured.step_loss == plain.step_loss
    assert (measured.check_acc, measured.check_loss) == (plain.check_acc, plain.check_loss)
    assert (measured.test_acc, measured.test_loss) == (plain.test_acc, plain.test_loss)
    for name, p in plain_model.params.items():
        np.testing.assert_array_equal(measured_model.params[name], p)
    assert [r["epoch"] for r in diagnostics.records] == list(range(plain.epochs + 1))
    assert diagnostics.records[-1]["params"]["W1"]["step_update_ratio"] is not None  # the budget's last step, mid-pass
