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
# # 4. The randomization tests
#
# Zhang et al. (2017), "Understanding deep learning requires rethinking generalization": a network that
# generalizes on true labels also **memorizes** random labels, so its capacity alone cannot explain why it
# generalizes. We repeat the experiment on the bundled digits: a one-hidden-layer MLP without regularization is
# trained on each condition until it fits its training set (99% training accuracy) or a step budget runs out.
# The MNIST version, and what the numbers mean: [The randomization tests](../../concepts/randomization/).

# %%
# %matplotlib inline
import warnings

# Progress bars in Jupyter are ipywidgets; without that package tqdm warns once. These tutorials show no bars.
warnings.filterwarnings("ignore", message="IProgress not found")

import tempfile
from pathlib import Path

import numpy as np

from mlplab import data
from mlplab.corruptions import corrupt_labels
from mlplab.experiments.conditions import condition_names
from mlplab.experiments.executors import SerialExecutor
from mlplab.experiments.figures import randomization_figure
from mlplab.experiments.randomize import Settings, randomize

# %% [markdown]
# ## Corrupting the labels
#
# `corrupt_labels(dataset, p, seed)` replaces each training and validation label, with probability p, by one drawn
# uniformly from the 10 classes — so about 0.9·p of them change (a draw can give back the true class). Test labels
# are never touched: test accuracy always measures the true task.

# %%
ds = data.load("digits")
noisy = corrupt_labels(ds, p=0.4, seed=0)
changed = float(np.mean(noisy.train.y != ds.train.y))
print(f"labels changed: {changed:.1%}; test labels equal: {np.array_equal(noisy.test.y, ds.test.y)}")
assert 0.30 < changed < 0.42 and np.array_equal(noisy.test.y, ds.test.y)

# %% [markdown]
# ## Every condition
#
# True labels, label corruption 0.2 … 0.8, fully random labels, one fixed pixel permutation (`shuffled-pixels`), a
# new permutation per image (`random-pixels`) and Gaussian noise images. Settings: 512 hidden ReLU units, Adam, batch
# 128, a 3,000-step budget per condition. This is `mlplab randomize --dataset digits --hidden 512
# --max-steps 3000`; here the conditions run one after another in this process.

# %%
settings = Settings(dataset="digits", hidden=512, max_steps=3000)
names = condition_names()
print(names)
out = Path(tempfile.mkdtemp(prefix="randomize-"))
results = randomize(names, settings, out, executor=SerialExecutor(), progress=False)

print(f"{'condition':16} {'status':7} {'steps':>6} {'train':>7} {'test':>7}")
for name, r in results.items():
    print(f"{name:16} {r['status']:7} {r['steps']:6,} {r['train_acc']:7.2%} {r['test_acc']:7.2%}")

# %% [markdown]
# What comes out (checked below):
#
# * every condition is **fit** within the budget — even random labels and pure noise;
# * random labels take many times the steps of the true ones, and their test accuracy is chance (about 10%);
# * the more labels are corrupted, the more steps, and the lower the test accuracy;
# * shuffled pixels change next to nothing for an MLP: a fixed permutation of the inputs only reorders the rows of
#   W1 (the steps differ by an epoch or two because the same initial W1 now meets other pixels).
#
# On this machine: true labels fit in 108 steps (test 96.67%), random labels in 1,494 (test 11.39%), about 14× the
# steps.

# %%
steps = {name: r["steps"] for name, r in results.items()}
test = {name: r["test_acc"] for name, r in results.items()}
assert all(r["status"] == "fit" for r in results.values())
assert steps["random-labels"] >= 5 * steps["true-labels"]
assert test["true-labels"] > 0.9 and test["random-labels"] < 0.2 and test["gaussian"] < 0.2
partial = ["true-labels", "partial-0.2", "partial-0.4", "partial-0.6", "partial-0.8"]
assert [test[n] for n in partial] == sorted((test[n] for n in partial), reverse=True)
assert steps["shuffled-pixels"] <= 2 * steps["true-labels"] and abs(test["shuffled-pixels"] - test["true-labels"]) < 0.03
print(f"random labels: {steps['random-labels'] / steps['true-labels']:.0f}× the steps of the true ones")
assert 8 <= steps["random-labels"] / steps["true-labels"] <= 20

# %% [markdown]
# ## The paper's Figure 1
#
# (a) training loss against steps, (b) steps to fit against the label corruption, (c) test error against the label
# corruption. `mlplab randomize` writes the same figure as `randomization.png`.

# %%
randomization_figure(results)

# %% [markdown]
# The same seed and settings give the same numbers for any number of workers; a rerun with the same `out` skips
# finished conditions.

# %%
again = randomize(["true-labels", "random-labels"], settings, out, executor=SerialExecutor(), progress=False)
assert again["random-labels"]["steps"] == steps["random-labels"]

# %%
import shutil  # noqa: E402

shutil.rmtree(out)  # the files were only for this tutorial
