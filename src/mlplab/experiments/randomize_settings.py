"""What a randomization experiment is run with: the data, network, optimizer and stopping rule, checked by the
config's rules. No numerics here, so the command line can offer these choices and defaults without loading any."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplab import config as configs
from mlplab.errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
"""The two of `choices.OPTIMIZERS` the tests are run with (Adam, or SGD with momentum SGD_MOMENTUM)."""
MODELS = ("mlp", "cnn")
CNN_CHANNELS = (16, 32)
"""The CNN of `--model cnn`: two 5×5 conv blocks (zero-padded to keep the size) of these widths, each max-pooled
2×2, then the hidden layer."""
DEFAULT_LR = {"adam": 0.002, "sgd": 0.05}
SGD_MOMENTUM = 0.9
RENAMED = {"weight_decay": "reg", "augment": "shift"}
"""Settings fields' old names (settings.json of runs made before): weight_decay was the L2 term, now `reg`."""
MAX_STEPS = 60_000
QUICK: dict[str, int] = {"subset": 5000, "max_steps": 4000}
"""What --quick changes: a subset of the training images and a step budget that fits them all in minutes."""


@dataclass(frozen=True)
class Settings:
    """The data, network, optimizer and stopping rule shared by every condition (no regularization by default).

    A field that is a training-config key has its name and meaning (`reg` is L2 on the weight matrices, `shift`
    the pixel shifts); `hidden`, `lr` and `conv_channels` become hidden_sizes=[hidden], learning_rate and
    conv_channels (`_config_keys`). settings.json written before the renames (weight_decay for reg, augment for
    shift) is read under the new names (`RENAMED`).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    subset: int | None = None
    model: str = "mlp"
    conv_channels: tuple[int, ...] = CNN_CHANNELS
    hidden: int = 1024
    optimizer: str = "adam"
    lr: float | None = None
    batch_size: int = 128
    max_steps: int = MAX_STEPS
    target_acc: float = 0.99
    reg: float = 0.0
    dropout: float = 0.0
    shift: int = 0
    seed: int = 0
    dtype: str = "float32"

    @property
    def network(self) -> str:
        """The network in words, for titles and the command's first line."""
        if self.model == "cnn":
            convs = "-".join(map(str, self.conv_channels))
            return f"CNN conv {convs} (5×5 same, max-pool 2), dense {self.hidden} ReLU"
        return f"one-hidden-layer MLP, {self.hidden} ReLU"

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def _config_keys(self) -> dict[str, tuple[str, Any]]:
        """Each setting that is a training-config key: its flag → (config key, value)."""
        return {
            "dataset": ("dataset", self.dataset),
            "data-dir": ("data_dir", self.data_dir),
            "hidden": ("hidden_sizes", [self.hidden]),
            "conv-channels": ("conv_channels", list(self.conv_channels)),
            "lr": ("learning_rate", self.learning_rate),
            "batch-size": ("batch_size", self.batch_size),
            "reg": ("reg", self.reg),
            "dropout": ("dropout", self.dropout),
            "shift": ("shift", self.shift),
            "seed": ("seed", self.seed),
            "dtype": ("dtype", self.dtype),
        }

    def check(self) -> Settings:
        """Raise MlplabError naming the first invalid value (by its command-line flag); return self.

        The settings a training config also has are checked by the config's own rules.
        """
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}")
        for flag, (key, value) in self._config_keys().items():
            try:
                configs.check({key: value})
            except ConfigError as exc:
                raise ConfigError(f"--{flag}: {exc}") from None
        rules = [
            (self.subset is None or self.subset >= 1, "--subset must be ≥ 1"),
            (self.max_steps >= 1, "--max-steps must be ≥ 1"),
            (0 < self.target_acc <= 1, "--target-acc must lie in (0, 1]"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(message)
        return self

    def config(self) -> dict[str, Any]:
        """The training config of every condition: a one-hidden-layer ReLU MLP (or that layer behind the CNN's
        conv blocks) with He init, Adam, or SGD with momentum 0.9, and `reg` as their L2 term on the weight
        matrices."""
        keys = dict(self._config_keys().values())
        momentum = SGD_MOMENTUM if self.optimizer == "sgd" else 0.0
        cnn: dict[str, Any] = {"type": "CNN", "kernel_size": 5, "conv_padding": "same", "pool": 2}
        network = cnn if self.model == "cnn" else {}
        return configs.resolve(
            **{"type": "MLP", **network},
            activation="relu",
            init="he",
            optimizer=self.optimizer,
            momentum=momentum,
            **keys,
        )
