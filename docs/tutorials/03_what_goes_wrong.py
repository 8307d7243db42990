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
# # 3. What goes wrong, and how to see it
#
# A loss curve says *that* training is stuck, not *why*. mlplab measures every layer on a fixed probe batch (the
# first 512 validation images) before the first step and after every epoch: activation statistics, saturated and
# dead units, gradient and parameter norms, update-to-data ratios, and how alike the hidden units are
# ([Diagnostics](../../guide/diagnostics/)). Three things that go wrong on the digits, each seen in those numbers,
# then the same numbers as a report with `mlplab inspect`.

# %%
# %matplotlib inline
import warnings

# Progress bars in Jupyter are ipywidgets; without that package tqdm warns once. These tutorials show no bars.
warnings.filterwarnings("ignore", message="IProgress not found")

import tempfile
from pathlib import Path

import mlplab
from mlplab import data, models, optim, training
from mlplab.cli import main
from mlplab.diagnostics import Diagnostics

ds = data.load("digits")

# %% [markdown]
# ## The network, summarized
#
# `Model.summary()` names every layer (Keras style: `dense_1`, `sigmoid_1`, …), its output shape and its parameter
# count. These names are the keys of every diagnostic below; `mlplab train` prints the same table when it starts.

# %%
model = models.TwoLayerNet(ds.input_size, hidden_sizes=[128], seed=1024)
print(model.summary())
assert model.layer_names == ["dense_1", "sigmoid_1", "dense_2"]
assert sum(p.size for p in model.params.values()) == 9610

# %% [markdown]
# ## 1. Hidden units that move as one
#
# The assignment starts from weights 0.001·N(0,1). At epoch 0 the units' incoming weights point in unrelated
# directions (mean pairwise cosine similarity ≈ 0), but they are so small that every hidden unit outputs ≈ ½ for
# every image, so every unit gets almost the same update: after one epoch the 128 units' weights are nearly
# parallel (similarity ≈ 1) and the network acts like one with a single hidden unit. With the assignment's defaults
# (batch 64, lr 0.1) the digits' 17 steps per epoch never get out of that: accuracy stays at chance.

# %%
stuck = Diagnostics()
history = training.fit(models.TwoLayerNet(ds.input_size, [128], seed=1024), optim.SGD(lr=0.1, reg=0.001), ds,
                       epochs=6, batch_size=64, seed=1024, progress=False, diagnostics=stuck)
for r in stuck.records:
    print(f"epoch {r['epoch']}: similarity {r['similarity']['dense_1']:.3f}, val acc {r['val_acc'] or 0:.3f}")
assert stuck.records[0]["similarity"]["dense_1"] < 0.01 and max(history.val_acc) < 0.15

# %% [markdown]
# `configs/digits.yaml`'s batches of 8 with momentum take 135 steps an epoch and larger ones: the units first line up
# (similarity 0.999 after epoch 1), then the small differences grow, the similarity falls, and accuracy climbs —
# 15%, 36%, 76%, 93% after epochs 1–4.

# %%
breaking = Diagnostics()
training.fit(models.TwoLayerNet(ds.input_size, [128], seed=1024), optim.SGD(lr=0.2, reg=0.001, momentum=0.9), ds,
             epochs=6, batch_size=8, seed=1024, progress=False, diagnostics=breaking)
similarity = [r["similarity"]["dense_1"] for r in breaking.records]
accuracy = [r["val_acc"] for r in breaking.records[1:]]
print("similarity:", [f"{s:.3f}" for s in similarity])
print("val acc:   ", [f"{a:.3f}" for a in accuracy])
assert similarity[1] > 0.99 and similarity[1] > similarity[2] > similarity[3] > similarity[4] > similarity[5]
assert [round(a, 2) for a in accuracy[:4]] == [0.15, 0.36, 0.76, 0.93]

# %% [markdown]
# ## 2. Saturated sigmoids
#
# A sigmoid unit whose output is near 0 or 1 (below 0.03 or above 0.97) has a derivative under 12% of its maximum:
# it passes little gradient back. A two-hidden-layer sigmoid MLP with Xavier's initialization has no saturated unit
# on the probe; multiply its initial weights by 10 and about half its units start saturated.

# %%
def saturation(scale: float) -> dict[str, float]:
    net = models.MLP(ds.input_size, hidden_sizes=[64, 64], activation="sigmoid", init="xavier", seed=0)
    for name in ("W1", "W2", "W3"):
        net.params[name] *= scale
    measured = Diagnostics()
    training.fit(net, optim.SGD(lr=0.1), ds, epochs=1, batch_size=32, seed=0, progress=False, diagnostics=measured)
    layers = measured.records[0]["layers"]
    return {name: layers[name]["saturated"] for name in ("sigmoid_1", "sigmoid_2")}


normal, large = saturation(1.0), saturation(10.0)
print("Xavier init:     ", {k: f"{v:.1%}" for k, v in normal.items()})
print("10 × Xavier init:", {k: f"{v:.1%}" for k, v in large.items()})
assert max(normal.values()) < 0.01 and min(large.values()) > 0.3

# %% [markdown]
# ## 3. Dead ReLUs
#
# A ReLU unit that outputs 0 for every image gets no gradient and never comes back: it is dead. With plain SGD at
# lr 0.05, 5% of a 128-unit layer is dead on the probe and stays so; at lr 1, a few large steps push a quarter of
# the units below zero for good within the first epoch.

# %%
def dead_units(lr: float) -> list[float]:
    net = models.MLP(ds.input_size, hidden_sizes=[128], activation="relu", seed=0)
    measured = Diagnostics()
    training.fit(net, optim.SGD(lr=lr), ds, epochs=5, batch_size=32, seed=0, progress=False, diagnostics=measured)
    return [r["layers"]["relu_1"]["dead"] for r in measured.records]


calm, hot = dead_units(0.05), dead_units(1.0)
print("lr 0.05:", [f"{d:.1%}" for d in calm])
print("lr 1:   ", [f"{d:.1%}" for d in hot])
assert max(calm) < 0.1 and min(hot[1:]) > 0.2

# %% [markdown]
# ## The same numbers as a report, with mlplab inspect
#
# Every `mlplab train` run writes these records to `diagnostics.json` beside `metrics.json`. `mlplab inspect RUN`
# turns them into one self-contained HTML report (and Markdown): learning curves, the summary, per-layer panels over
# the epochs, update ratios on a log scale, unit similarity and the first layer's weights as images. It works on a
# run that is still training too.

# %%
work = Path(tempfile.mkdtemp(prefix="inspect-"))
metrics, _ = mlplab.train({"type": "MLP", "hidden_sizes": [128], "learning_rate": 1.0, "batch_size": 32,
                           "epochs": 5, "seed": 0}, out=work / "run", progress=False)
assert main(["inspect", str(work / "run"), "--out", str(work / "report")]) == 0
print(sorted(p.name for p in (work / "report").iterdir()))
assert (work / "report" / "report.html").stat().st_size > 10_000

# %%
import shutil  # noqa: E402

shutil.rmtree(work)  # the files were only for this tutorial; open work / "report" / "report.html" before this
