# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Write your own layer
#
# Every mlplab model is a `Network` of small layers, each with its forward pass beside its backward pass. A new
# kind of layer is one class on the engine's contract (the docstring of `mlplab.layers`, and
# [The layer engine and its contract](../../concepts/engine/)). Here we write a **leaky ReLU**,
# f(x) = x for x > 0 and αx otherwise, check its gradient against finite differences, put it in a model, check the
# model's gradients, save and load it, and train it on the digits.

# %%
# %matplotlib inline
import warnings

# Progress bars in Jupyter are ipywidgets; without that package tqdm warns once. These tutorials show no bars.
warnings.filterwarnings("ignore", message="IProgress not found")

import tempfile
from pathlib import Path

import numpy as np

from mlplab import data, optim, training
from mlplab.gradcheck import check_gradients, move_to_random_point
from mlplab.layers import Dense, Layer
from mlplab.models.base import Model

# %% [markdown]
# ## The layer
#
# The contract, in short:
#
# * `forward(x, train)` returns the output for a batch. It never changes `x`, and writes the output into
#   `self.scratch(key, shape)`, a work array kept per shape, so a training step allocates nothing of size. With
#   `train` it keeps what backward will need.
# * `backward(dy, need_dx)` writes d(loss)/d(param) into `self.grads` (this layer has no parameters) and returns
#   d(loss)/dx, again in its own scratch; it never changes `dy`.
# * `output_shape(input_shape)`: an elementwise layer keeps the shape (the default).
#
# The leaky ReLU's derivative is 1 where x > 0 and α elsewhere; since α > 0, x > 0 exactly where y > 0, so backward
# needs only the sign of x, which we keep as a boolean mask.

# %%
class LeakyReLU(Layer):
    """max(x, αx) elementwise, 0 < α < 1; dx = dy where x > 0, α·dy elsewhere."""

    def __init__(self, alpha: float = 0.1, dtype: str = "float32") -> None:
        super().__init__(dtype)
        self.alpha = alpha
        self.positive: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        y = self.scratch("y", x.shape)
        np.multiply(x, self.alpha, out=y)
        np.maximum(x, y, out=y)
        if train:
            self.positive = x > 0
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if not need_dx:
            return None
        dx = self.scratch("dx", dy.shape)
        np.multiply(dy, np.where(self.positive, 1.0, self.alpha), out=dx)
        return dx


# %% [markdown]
# ## Its gradient, checked
#
# For any upstream gradient `dy`, backward must return the gradient of L(x) = Σ dy·f(x). Compare it with central
# finite differences on a random batch (float64: float32 round-off would swamp the difference quotients).

# %%
rng = np.random.default_rng(0)
layer = LeakyReLU(alpha=0.1, dtype="float64")
x = rng.normal(size=(8, 5))
dy = rng.normal(size=(8, 5))
layer.forward(x, train=True)
analytic = layer.backward(dy).copy()

eps = 1e-6
numeric = np.zeros_like(x)
for i in np.ndindex(x.shape):
    step = np.zeros_like(x)
    step[i] = eps
    numeric[i] = (np.sum(dy * layer.forward(x + step, False)) - np.sum(dy * layer.forward(x - step, False))) / (2 * eps)
error = np.max(np.abs(analytic - numeric) / (np.abs(analytic) + np.abs(numeric)))
print(f"worst relative error {error:.1e}")
assert error < 1e-6  # the tolerance `mlplab gradcheck` uses

# %% [markdown]
# ## A model with it
#
# A model is a `Model` (a `Network` with a name) whose constructor builds the layers and passes its own arguments
# on, so that model files can rebuild it. The network ends in softmax cross-entropy, as every mlplab model does.

# %%
class LeakyMLP(Model):
    """input → Dense → LeakyReLU → Dense → softmax."""

    def __init__(
        self,
        input_size: int = 64,
        hidden_size: int = 64,
        num_classes: int = 10,
        alpha: float = 0.1,
        seed: int = 0,
        dtype: str = "float32",
    ) -> None:
        rng = np.random.default_rng(seed)
        layers = [
            Dense(input_size, hidden_size, rng, init="he", dtype=dtype),
            LeakyReLU(alpha, dtype),
            Dense(hidden_size, num_classes, rng, init="he", dtype=dtype),
        ]
        super().__init__(
            layers,
            (input_size,),
            dtype,
            input_size=input_size,
            hidden_size=hidden_size,
            num_classes=num_classes,
            alpha=alpha,
            seed=seed,
        )


ds = data.load("digits")
model = LeakyMLP(ds.input_size, hidden_size=64, seed=0)
print({name: p.shape for name, p in model.params.items()})
assert list(model.params) == ["W1", "b1", "W2", "b2"]  # global names: local name + the k-th layer with params

# %% [markdown]
# The whole model's gradients, J = CE + reg/2·Σ‖W‖², against finite differences: the same check `mlplab gradcheck`
# runs for the built-in models, at a random point in float64.

# %%
checked = move_to_random_point(LeakyMLP(ds.input_size, hidden_size=16, seed=1, dtype="float64"), seed=0)
results = check_gradients(checked, ds.train.x[:16] / ds.pixel_max, ds.train.y[:16], reg=0.01)
for r in results:
    print(f"{r.name}: worst relative error {r.worst_relative_error:.1e} over {r.checked} of {r.size} entries")
assert max(r.worst_relative_error for r in results) < 1e-6

# %% [markdown]
# ## Train it
#
# The same `fit` as every model: Adam, 20 epochs of batches of 32, the best epoch by validation kept and tested.
# It reaches 97.5% validation accuracy (epoch 13) and 96.7% on the test set (exact on the machine these pages were
# written on; another CPU's rounding can move them by a point).

# %%
history = training.fit(model, optim.Adam(lr=0.003), ds, epochs=20, batch_size=32, seed=0, progress=False)
print(f"best val acc {history.best_val_acc:.4f} (epoch {history.best_epoch}); test acc {history.test_acc:.4f}")
assert abs(history.best_val_acc - 0.975) < 0.015 and abs(history.test_acc - 0.9667) < 0.015
history.plot("LeakyMLP on digits")

# %% [markdown]
# Same seed, same numbers: a second run is identical to the last digit.

# %%
again = training.fit(LeakyMLP(ds.input_size, hidden_size=64, seed=0), optim.Adam(lr=0.003), ds, epochs=20,
                     batch_size=32, seed=0, progress=False)
assert again.val_acc == history.val_acc and again.test_acc == history.test_acc

# %% [markdown]
# ## Save and load
#
# Model files hold the parameters and the constructor's arguments as JSON, without pickle. Loading rebuilds the
# model by its class name, so the class must be defined (imported) where it is loaded.

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "leaky.npz"
    model.save(path, pixel_max=ds.pixel_max)
    loaded, meta = Model.load(path)
print(type(loaded).__name__, loaded.hyper, meta)
loss, acc = training.evaluate(loaded, ds.test, ds.pixel_max)
assert isinstance(loaded, LeakyMLP) and loaded.hyper["alpha"] == 0.1 and acc == history.test_acc
