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
# # 1. The assignment, end to end
#
# The course assignment in Python, on the bundled 8×8 digits (seconds on a laptop): load the data, build the
# Two-Layer Net, check its gradients against finite differences, train it with SGD, look at the learning curves and
# evaluate the best model on the test set. `mlplab train --config configs/digits.yaml` does the same in one command;
# at the end we check that both give the same numbers.
#
# Every number this notebook states is asserted in the cell that prints it: when the code changes and a number no
# longer comes out, the notebook fails in CI.

# %%
# %matplotlib inline
import warnings

# Progress bars in Jupyter are ipywidgets; without that package tqdm warns once. These tutorials show no bars.
warnings.filterwarnings("ignore", message="IProgress not found")

from pathlib import Path

import numpy as np

import mlplab
from mlplab import data, models, optim, training
from mlplab.evaluation import evaluate_split
from mlplab.gradcheck import check_gradients, move_to_random_point

# %% [markdown]
# ## The data
#
# scikit-learn's digits: 1,797 images of 8×8 pixels with values 0–16, split 60/20/20 with a fixed seed. The arrays
# stay as the dataset stores them (uint8); training scales each batch by `pixel_max` as it draws it.

# %%
ds = data.load("digits")
print(ds)
print("train", ds.train.x.shape, ds.train.x.dtype, "labels", np.bincount(ds.train.y))
assert (len(ds.train), len(ds.val), len(ds.test)) == (1077, 360, 360)
assert ds.pixel_max == 16 and ds.input_size == 64

# %%
from matplotlib.figure import Figure  # noqa: E402  (the Figure API: no pyplot, no global state)

fig = Figure(figsize=(8, 1.6))
for i, ax in enumerate(fig.subplots(1, 10)):
    ax.imshow(ds.train.x[i].reshape(ds.image_shape), cmap="gray_r")
    ax.set_title(int(ds.train.y[i]))
    ax.axis("off")
fig

# %% [markdown]
# ## The model
#
# The assignment's Two-Layer Net: input → (W1, b1) → sigmoid → (W2, b2) → softmax, weights drawn from
# 0.001·N(0, 1), biases zero. The loss is cross-entropy plus L2 on the weight matrices,
# J = CE + reg/2·(‖W1‖² + ‖W2‖²).

# %%
model = models.TwoLayerNet(input_size=ds.input_size, hidden_sizes=[128], seed=1024)
for name, p in model.params.items():
    print(f"{name}: {p.shape}, std {p.std():.5f}")
assert model.params["W1"].shape == (64, 128) and model.params["W2"].shape == (128, 10)

# %% [markdown]
# With weights this small every hidden unit starts at almost exactly sigmoid(0) = ½ for every image: the units
# are alike, and they get alike gradients. That is why the first epochs below learn slowly.

# %%
x = ds.train.x[:256] / np.float32(ds.pixel_max)
hidden = model.layers[1].forward(model.layers[0].forward(x, train=False), train=False)
print(f"hidden activations: mean {hidden.mean():.6f}, spread {hidden.max() - hidden.min():.6f}")
assert abs(hidden.mean() - 0.5) < 1e-3 and hidden.max() - hidden.min() < 0.01

# %% [markdown]
# ## Gradient check
#
# Before trusting training, compare the hand-written backward pass with central finite differences. The check
# needs float64 (float32 round-off swamps a difference quotient) and a random point: at the 0.001-scale start the
# gradients are too small to compare.

# %%
checked = move_to_random_point(models.TwoLayerNet(ds.input_size, hidden_sizes=[16], seed=0, dtype="float64"), seed=0)
xb, yb = ds.train.x[:16] / ds.pixel_max, ds.train.y[:16]
results = check_gradients(checked, xb, yb, reg=0.01)
for r in results:
    print(r)
worst = max(r.worst_relative_error for r in results)
print(f"worst relative error {worst:.1e}")
assert worst < 1e-6

# %% [markdown]
# ## Training
#
# SGD with momentum on batches of 8, as `configs/digits.yaml` sets it: small batches and momentum break the
# symmetric start within a few epochs. `fit` validates after every epoch, keeps the parameters of the best epoch by
# validation accuracy, and tests only that snapshot.

# %%
history = training.fit(
    model, optim.SGD(lr=0.2, reg=0.001, momentum=0.9), ds, epochs=30, batch_size=8, seed=1024, progress=False
)
print("val acc, epochs 1-4:", [f"{a:.2%}" for a in history.val_acc[:4]])
print(f"best val acc {history.best_val_acc:.4f} (epoch {history.best_epoch}); test acc {history.test_acc:.4f}")
assert [round(a, 2) for a in history.val_acc[:4]] == [0.15, 0.36, 0.76, 0.93]
assert history.best_epoch == 22 and round(history.best_val_acc, 4) == 0.9639 and round(history.test_acc, 4) == 0.9667

# %% [markdown]
# ## Learning curves
#
# Loss and accuracy per epoch, training against validation. Validation accuracy jumps around after epoch 5 (down
# to 82% at epoch 23): an effective step of lr/(1 − momentum) = 2 on the gradient of 8 images keeps the weights
# bouncing around the minimum. The best-by-validation snapshot (epoch 22) is what is kept and tested.

# %%
print(f"val acc at epoch 23: {history.val_acc[22]:.4f}; train acc stays {min(history.train_acc[5:]):.2f}-"
      f"{max(history.train_acc[5:]):.2f} after epoch 5")
assert round(history.val_acc[22], 4) == 0.8222
history.plot("Two-Layer Net on digits")

# %% [markdown]
# ## Evaluation
#
# The model `fit` returns holds the best snapshot. Its test accuracy, the confusion matrix (rows: true class,
# columns: predicted) and the hardest class:

# %%
test_loss, test_acc = training.evaluate(model, ds.test, ds.pixel_max)
evaluation = evaluate_split(model, ds.test, ds.pixel_max, "test")
print(f"test loss {test_loss:.4f}, accuracy {test_acc:.4f}, wrong {int((evaluation.predicted != ds.test.y).sum())}")
print(evaluation.confusion())
recalls = [row["recall"] for row in evaluation.per_class()]
print("hardest class:", int(np.argmin(recalls)), f"recall {min(recalls):.2%}")
assert test_acc == history.test_acc and evaluation.accuracy == test_acc
assert int((evaluation.predicted != ds.test.y).sum()) == 12

# %% [markdown]
# ## The same run from the config file
#
# `mlplab.train` does what `mlplab train` does: it reads the config, builds the model, optimizer and data, and
# returns `metrics.json`'s content and the model. Same seed, same numbers.

# %%
root = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "configs" / "digits.yaml").exists())
metrics, same_model = mlplab.train(root / "configs" / "digits.yaml", progress=False)
print(f"best val acc {metrics['best_val_acc']:.4f} (epoch {metrics['best_epoch']}); test {metrics['test_acc']:.4f}")
assert metrics["val_acc"] == history.val_acc and metrics["test_acc"] == history.test_acc
