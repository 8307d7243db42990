"""The names a config key may take, one tuple per concept: the vocabulary `config` checks and `mlplab keys` shows.

Each concept's module takes its names from here and implements them (data: DATASETS, layers.dense: INITS,
layers.activation: ACTIVATIONS, models.cnn: CONV_PADDINGS, optim: OPTIMIZERS, schedules: SCHEDULES). The tuples
live apart from those modules because every one of them imports NumPy (and data/, layers/ and models/ import their
whole package), while `mlplab.config`, `mlplab keys` and `--help` must start without numerics. This module imports
nothing.
"""

DATASETS = ("digits", "mnist", "fashion-mnist")
"""digits: scikit-learn's bundled 8×8 digits; mnist and fashion-mnist: the 28×28 IDX files."""

DTYPES = ("float32", "float64")

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softsign")

INITS = ("he", "xavier", "assignment")
"""he: N(0, 2/fan_in); xavier: N(0, 2/(fan_in + fan_out)); assignment: 0.001·N(0, 1)."""

CONV_PADDINGS = ("valid", "same", "circular")
"""valid: no padding; same: k//2 zeros on each side (the same size for odd k); circular: k//2 wrapped around."""

OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw")
"""sgd (with `momentum`, classical), nesterov (SGD with Nesterov momentum), adam, adamw (decoupled weight decay)."""

SCHEDULES = ("none", "step", "cosine")

NORMALIZATIONS = ("none", "standardize")


def one_of(names: tuple[str, ...]) -> str:
    """The choices in words: "a, b or c"."""
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
