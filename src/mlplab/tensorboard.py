"""A live view of training in TensorBoard: a run's scalars, histograms, first-layer weights and hyper-parameters
written as event files while it trains (through tensorboardX, imported only when a run asks for it).

Event files are TensorBoard's own append-only log, read by TensorBoard as they grow; they are the one output not
written through `mlplab.files` (an atomic rename would hide the live view until the run ends).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlplab.errors import MlplabError
from mlplab.files import make_dir
from mlplab.layers import Conv2D, Dense
from mlplab.models import Model
from mlplab.training import History

if TYPE_CHECKING:
    from mlplab.training import Memorization

INSTALL = "TensorBoard logging needs tensorboardX, which is not installed: pip install 'mlplab[tensorboard]'"
MAX_TILES = 64  # first-layer units drawn: an 8×8 grid stays readable
HISTOGRAM_BINS = 30
WRITERS = itertools.count()
MIN_TILE_SIDE = 28  # pixels: 8×8 digit tiles and 5×5 filters are enlarged to at least this
SCALARS = {
    "loss/train": "train_loss",
    "loss/val": "val_loss",
    "accuracy/train": "train_acc",
    "accuracy/val": "val_acc",
    "learning_rate": "lr",
    "seconds_per_epoch": "epoch_seconds",
}
HPARAM_METRICS = {
    "hparam/best_val_acc": "best_val_acc",
    "hparam/test_acc": "test_acc",
    "hparam/epochs_done": "epochs_done",
    "hparam/steps_to_fit": "steps_to_fit",
}
"""The final metrics the HPARAMS tab shows beside each run's config (own tags: the per-epoch scalars differ)."""


def require() -> None:
    """Raise one line naming the extra to install when tensorboardX is missing."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise MlplabError(INSTALL) from None


def first_layer(model: Model, image_shape: tuple[int, ...] | None) -> tuple[str, tuple[int, int]] | None:
    """The first layer's weight matrix name and the shape of one unit's tile: a dense unit's incoming weights as
    an input image, a convolution's filter as k×k; None when neither can be drawn."""
    layer = next((layer for layer in model.layers if layer.params), None)
    if isinstance(layer, Conv2D):
        k = layer.geometry.kernel
        return "W1", (k, k)
    if isinstance(layer, Dense) and image_shape is not None and len(image_shape) >= 2:
        h, w = int(image_shape[0]), int(image_shape[1])
        if h * w == model.params["W1"].shape[0]:
            return "W1", (h, w)
    return None


def weight_tiles(weights: np.ndarray, tile: tuple[int, int], limit: int = MAX_TILES) -> np.ndarray:
    """The first `limit` columns of `weights` (one per unit; a filter's channels averaged) as tiles in a grid:
    a (H, W) image in [0, 1], each tile scaled by its own largest |weight| so that 0 is mid-grey."""
    h, w = tile
    columns = weights.reshape(h * w, -1, weights.shape[-1]).mean(axis=1)  # (k·k·C, F) → channel mean per pixel
    n = min(columns.shape[1], limit)
    across = math.ceil(math.sqrt(n))
    down = math.ceil(n / across)
    grid = np.ones((down * (h + 1) + 1, across * (w + 1) + 1), np.float32)
    for i in range(n):
        unit = np.nan_to_num(columns[:, i].astype(np.float64).reshape(h, w), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(np.abs(unit).max())
        row, col = divmod(i, across)
        top, left = 1 + row * (h + 1), 1 + col * (w + 1)
        grid[top : top + h, left : left + w] = 0.5 + 0.5 * unit / peak if peak > 0 else 0.5
    scale = max(1, -(-MIN_TILE_SIDE // max(h, w)))
    return np.kron(grid, np.ones((scale, scale), np.float32))


def hparam_value(value: Any) -> bool | int | float | str:
    """A config value as the HPARAMS tab takes it: numbers, booleans and text (a list becomes its text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return "none" if value is None else str(value)


class TensorBoardLog:
    """One run's event files in `logdir`: per-epoch scalars, histograms and first-layer tiles, then hyper-parameters.

    Histograms of weights come from the model after each epoch, or, when `measured`, from the diagnostics'
    snapshots (`snapshot` as a listener: weights, gradients and activations on the probe, epoch 0 included).

    The event file is opened at the first event: a run resumed after epoch k starts there at k + 1, and TensorBoard
    is told to drop whatever an interrupted earlier attempt logged from that step on (tensorboardX's purge_step).
    """

    def __init__(
        self,
        logdir: str | Path,
        model: Model,
        config: Mapping[str, Any],
        image_shape: tuple[int, ...] | None = None,
        measured: bool = False,
    ) -> None:
        require()
        self.logdir = make_dir(logdir)  # an unusable directory fails now, before any training
        self._writer: Any = None
        self.model = model
        self.config = dict(config)
        self.tiles = first_layer(model, image_shape)
        self.from_snapshots = measured
        self.history: History | None = None
        self.closed = False
        self.checks_logged = 0
        # Without snapshots the initialization is logged (as step 0) once a first epoch shows the run is fresh.
        self.initial = None if measured else {name: p.copy() for name, p in model.params.items()}

    @property
    def writer(self) -> Any:
        """The open SummaryWriter (`open` makes it)."""
        return self._writer if self._writer is not None else self.open(0)

    def open(self, step: int) -> Any:
        """The event writer, made at the run's first event, `step`: a step past 1 means a resumed run, whose
        earlier attempt's events from `step` on TensorBoard drops."""
        if self._writer is None:
            from tensorboardX import SummaryWriter

            resumed = step > 1
            self._writer = SummaryWriter(
                logdir=str(self.logdir),
                flush_secs=10,
                purge_step=step if resumed else None,
                # tensorboardX names a file by the second and host: a second writer within that second would
                # truncate the first's file without a suffix of its own.
                filename_suffix=f".{os.getpid()}.{next(WRITERS)}",
            )
            initial, self.initial = self.initial, None
            if initial is not None and not resumed:
                self.parameters(0, initial)
        return self._writer

    def parameters(self, step: int, params: Mapping[str, np.ndarray]) -> None:
        """Histograms of every parameter and the first layer's tiles at `step`."""
        for name, value in params.items():
            self.histogram(f"weights/{name}", value, step)
        if self.tiles is not None:
            name, shape = self.tiles
            self.writer.add_image("first_layer", weight_tiles(params[name], shape), step, dataformats="HW")

    def histogram(self, tag: str, values: np.ndarray, step: int) -> None:
        """A histogram of the finite values in HISTOGRAM_BINS equal bins: NaN/inf left out, and huge values of a
        diverging run kept (tensorboardX's own fixed bins end at 1e20 and fail beyond)."""
        flat = np.asarray(values, np.float64).ravel()
        finite = flat[np.isfinite(flat)]
        if not finite.size:
            return
        low, high = float(finite.min()), float(finite.max())
        counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS, range=(low, high) if high > low else None)
        with np.errstate(over="ignore"):
            squares = float(np.dot(finite, finite))
        self.writer.add_histogram_raw(
            tag,
            min=low,
            max=high,
            num=int(finite.size),
            sum=float(finite.sum()),
            sum_squares=squares,
            bucket_limits=edges.tolist(),  # right edges, after an empty bucket ending at the minimum
            bucket_counts=[0, *counts.tolist()],
            global_step=step,
        )

    def epoch(self, epoch: int, history: History) -> None:
        """An `on_epoch` callback of `fit`: the epoch's scalars (and weights unless snapshots bring them)."""
        self.history = history
        self.open(epoch)
        for tag, key in SCALARS.items():
            series = getattr(history, key)
            if series and math.isfinite(series[-1]):
                self.writer.add_scalar(tag, series[-1], epoch)
        if not self.from_snapshots:
            self.parameters(epoch, self.model.params)
        self.writer.flush()

    def snapshot(self, snapshot: Any) -> None:
        """A diagnostics listener: histograms of the snapshot's weights, gradients and activations, and the tiles."""
        step = snapshot.epoch
        self.open(step)
        self.parameters(step, snapshot.params)
        for name, value in snapshot.gradients.items():
            self.histogram(f"gradients/{name}", value, step)
        for name, value in snapshot.activations.items():
            self.histogram(f"activations/{name}", value, step)
        self.writer.flush()

    def memorization(self, result: Memorization) -> None:
        """An `on_epoch` callback of `fit_until_memorized`: the fit checks' loss and accuracy on the whole training
        split by step (the one at step 0 included), and the weights."""
        if self._writer is None and len(result.check_steps) > 2:  # resumed: earlier checks came from a checkpoint
            self.checks_logged = len(result.check_steps) - 1
        self.open(result.check_steps[self.checks_logged])
        checks = zip(result.check_steps, result.check_loss, result.check_acc, strict=True)
        for step, loss, acc in list(checks)[self.checks_logged :]:
            for tag, value in (("loss/train", loss), ("accuracy/train", acc)):
                if math.isfinite(value):
                    self.writer.add_scalar(tag, value, step)
        self.checks_logged = len(result.check_steps)
        self.parameters(result.steps, self.model.params)
        self.writer.flush()

    def close(self, metrics: Mapping[str, Any] | None = None) -> None:
        """Write the hyper-parameters with the final metrics (those so far when the run stopped early), then close."""
        if self.closed:
            return
        self.closed = True
        if self._writer is None:  # no epoch ended (diverged at once, or interrupted): nothing to show
            return
        try:
            outcome: Mapping[str, Any] = metrics if metrics is not None else self._so_far()
            self.hparams(outcome)
        finally:
            self._writer.close()

    def _so_far(self) -> dict[str, Any]:
        if self.history is None:
            return {}
        return self.history.to_dict()

    def hparams(self, metrics: Mapping[str, Any]) -> None:
        """The config beside the run's final metrics, in this run's own directory (so TensorBoard's HPARAMS tab
        lists each run of a sweep once, under its own name)."""
        from tensorboardX.summary import hparams

        values = {
            tag: float(metrics[key])
            for tag, key in HPARAM_METRICS.items()
            if isinstance(metrics.get(key), int | float) and math.isfinite(metrics[key])  # not a per-epoch list
        }
        if not values:
            return
        config = {k: hparam_value(v) for k, v in sorted(self.config.items()) if k != "tensorboard"}
        for summary in hparams(config, values):
            self.writer.file_writer.add_summary(summary)
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, int(metrics.get("epochs_done") or metrics.get("steps") or 0))
        self.writer.flush()
