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
# # 5. From one run to many
#
# One training run answers one question. The writeup's questions ("which learning rate?", "what does tuning buy?")
# need many runs, and many runs want more than one core, or more than one machine. This tutorial takes the digits
# Two-Layer Net from one run to a **sweep**, runs the same sweep on a real **Dask cluster** (a `LocalCluster` of two
# worker processes, exactly what `dask scheduler` + `dask worker` give across machines), and lets two processes
# share one **Optuna study** stored in SQLite. Each step checks that the numbers are the same wherever the runs ran.

# %%
# %matplotlib inline
import warnings

# Progress bars in Jupyter are ipywidgets; without that package tqdm warns once. These tutorials show no bars.
warnings.filterwarnings("ignore", message="IProgress not found")

import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
from distributed import LocalCluster

from mlplab.experiments.executors import DaskExecutor, SerialExecutor
from mlplab.experiments.sweep import run_sweep, value_configs

root = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "configs" / "digits.yaml").exists())
config = root / "configs" / "digits.yaml"
work = Path(tempfile.mkdtemp(prefix="many-runs-"))  # every file this tutorial writes goes here

# %% [markdown]
# ## A sweep
#
# One run per value of one config key, everything else from the config: here the learning rate, with 10 epochs
# instead of 30 to keep it quick. This is
# `mlplab sweep learning_rate 1 0.2 0.05 --config configs/digits.yaml --set epochs=10 --out runs/lr`.

# %%
key, per_value = value_configs("learning_rate", ["1", "0.2", "0.05"], config, ["epochs=10", "threads=1"])
serial = run_sweep(key, per_value, work / "serial", SerialExecutor())
print(serial.table.markdown())
best = max(serial.runs, key=lambda v: serial.runs[v]["best_val_acc"])
print("best learning rate on validation:", best)
assert best == "0.2" and serial.runs["0.2"]["best_val_acc"] > serial.runs["0.05"]["best_val_acc"]
serial.plot()

# %% [markdown]
# The sweep wrote every run's files (`metrics.json`, `curves.png`, `model.npz`) under `runs/KEY=VALUE/`, and
# `results.json`, `table.md`, `val_acc.png` and a report beside them. A rerun with the same directory reuses every
# finished run.

# %%
print(sorted(p.name for p in (work / "serial").iterdir()))
assert (work / "serial" / "runs" / "learning_rate=0.2" / "model.npz").exists()

# %% [markdown]
# ## The same sweep on a Dask cluster
#
# A scheduler and two single-threaded worker processes on this machine. `DaskExecutor(address)` is what
# `--dask-scheduler tcp://HOST:PORT` uses: the runs go to the workers, their results stream back, and this process
# writes the files. Same seed, same numbers: every metric equals the serial run's (not the timings, nor the
# provenance: where and with what each run ran).

# %%
NOT_NUMBERS = {"epoch_seconds", "total_seconds", "provenance"}


def numbers(runs: dict) -> dict:
    return {v: {k: x for k, x in m.items() if k not in NOT_NUMBERS} for v, m in json.loads(json.dumps(runs)).items()}


def sweep_on(address: str):
    with DaskExecutor(address) as executor:
        print("slots:", executor.slots)
        return run_sweep(key, per_value, work / "dask", executor)


with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                  silence_logs=40) as cluster:
    print("scheduler at", cluster.scheduler_address)
    # In a script: on_cluster = sweep_on(cluster.scheduler_address). Jupyter runs an event loop of its own, and
    # DaskExecutor's connection check (asyncio.run) cannot start inside it today, so here it runs in a thread.
    with ThreadPoolExecutor(1) as thread:
        on_cluster = thread.submit(sweep_on, cluster.scheduler_address).result()
assert numbers(on_cluster.runs) == numbers(serial.runs)
print("identical to the serial sweep:", list(on_cluster.runs))

# %% [markdown]
# ## One study, two processes
#
# `mlplab tune` stores every finished trial in an Optuna storage. Point several processes (on one machine or many)
# at the same storage and study name and they share the trial budget: each asks for a trial only while the study
# has budget left, and each trial is trained exactly once. Across machines the storage is PostgreSQL
# ([tune](../../guide/tune/)); on one machine a SQLite file does. Here two `mlplab tune` processes start at the same
# moment on one SQLite study of 6 trials over the learning rate.

# %%
space = work / "space.yaml"
space.write_text("learning_rate: {low: 0.02, high: 0.5, log: true}\n")
storage = f"sqlite:///{work / 'study.db'}"
command = [sys.executable, "-c", "import sys; from mlplab.cli import main; sys.exit(main(sys.argv[1:]))", "tune",
           "--config", str(config), "--set", "epochs=10", "--space", str(space), "--trials", "6",
           "--storage", storage, "--study-name", "shared", "--workers", "1"]
processes = [subprocess.Popen([*command, "--out", str(work / f"tune-{i}")], stdout=subprocess.PIPE, text=True)
             for i in (1, 2)]
outputs = [p.communicate(timeout=600)[0] for p in processes]
assert [p.returncode for p in processes] == [0, 0]
print(outputs[0][-600:])

# %%
study = optuna.load_study(study_name="shared", storage=storage)
finished = [t for t in study.trials if t.state.is_finished()]
numbers_taken = sorted(t.number for t in finished)
print(f"{len(finished)} finished trials, numbered {numbers_taken}")
trained = [len(list((work / f"tune-{i}" / "trials").glob("trial-*"))) for i in (1, 2)]
print("trials trained by each process:", trained)
assert len(finished) == 6 and numbers_taken == list(range(6)) and sum(trained) == 6
best = [json.loads((work / f"tune-{i}" / "best.json").read_text())["best"] for i in (1, 2)]
same = ("trial", "params", "val_acc", "test_acc")
assert [{k: b[k] for k in same} for b in best] == [{k: best[0][k] for k in same}] * 2  # both report the same best
assert best[0]["trial"] == study.best_trial.number  # which only one of them trained (run_dir says where)
print("best trial, as both report it:", {k: best[0][k] for k in same})

# %% [markdown]
# The files were only for this tutorial: remove them (comment this out to look at them first).

# %%
import shutil  # noqa: E402

shutil.rmtree(work)
