"""Where runs execute: in this process, in a local process pool, or on a Dask cluster; same numbers everywhere.

A task is a picklable function plus arguments (a resolved config); each worker loads its dataset once and
keeps it, so tasks never ship arrays. The parent collects results one at a time as they finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import select
import signal
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from mlplab import data as datasets
from mlplab.data import Dataset
from mlplab.diagnostics import Diagnostics
from mlplab.errors import MlplabError
from mlplab.experiments.store import RunOutcome, RunStore
from mlplab.files import quoted_text
from mlplab.limits import CONNECT_TIMEOUT, seconds_from_env
from mlplab.run import curves_png, train_run
from mlplab.training import EpochCallback

# One BLAS thread per run, whatever the worker count: these matrices are small enough that a second thread
# slows a run down, and OpenBLAS sums in a different order with another thread count, which would make
# parallel numbers differ from serial ones in the last bits.
BLAS_THREADS = 1

_datasets: dict[tuple[str, str | None], Dataset] = {}
_datasets_lock = threading.Lock()


def cached_dataset(config: dict[str, Any]) -> Dataset:
    """The config's dataset, loaded once per process (a Dask worker may run several tasks in threads)."""
    key = (config["dataset"], config.get("data_dir"))
    with _datasets_lock:
        if key not in _datasets:
            _datasets[key] = datasets.load(*key)
        return _datasets[key]


def train_in_worker(
    config: dict[str, Any], title: str = "", on_epoch: EpochCallback | None = None, checkpoint: str | None = None
) -> RunOutcome:
    """Train one resolved config with the BLAS thread limit; return metrics, parameters and the curves figure.

    With `checkpoint` (a file path) the run saves its state there after every epoch and resumes from it; the parent
    removes it once the run's files are saved.
    """
    diagnostics = Diagnostics() if config.get("diagnostics") else None
    with threadpool_limits(limits=BLAS_THREADS):
        dataset = cached_dataset(config)
        metrics, model = train_run(
            config, dataset=dataset, on_epoch=on_epoch, checkpoint=checkpoint, diagnostics=diagnostics
        )
    return RunOutcome(
        metrics,
        type(model).__name__,
        dict(model.hyper),
        model.state(),  # parameters and buffers (BatchNorm's running statistics)
        dataset.pixel_max,
        curves_png(metrics, title),
        None if diagnostics is None else diagnostics.to_json(),
    )


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Executor(ABC):
    """Submit tasks, then wait for whichever finishes first."""

    slots: int = 1
    shares_files: bool = True
    """Whether tasks see this process's files (so a run can keep its checkpoint in its run directory)."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Start `fn(*args)` (or queue it); returns a handle."""

    @abstractmethod
    def wait_any(self, handles: Collection[Any]) -> list[Any]:
        """Block until at least one of `handles` is done; return the done ones."""

    @abstractmethod
    def result(self, handle: Any) -> Any:
        """The finished task's return value (or its exception, raised)."""

    def close(self, abort: bool = False) -> None:  # noqa: B027 - nothing to release unless a subclass holds workers
        """Release workers or connections; with `abort`, stop running tasks instead of waiting for them."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(abort=exc_type is not None)


class _Deferred:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None


class SerialExecutor(Executor):
    """Runs each task in this process when it is waited for, in submission order."""

    def __init__(self) -> None:
        self.order: list[_Deferred] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> _Deferred:
        task = _Deferred(fn, args)
        self.order.append(task)
        return task

    def wait_any(self, handles: Collection[_Deferred]) -> list[_Deferred]:
        done = [h for h in handles if h.done]
        if done:
            return done
        wanted = set(map(id, handles))
        task = next(t for t in self.order if id(t) in wanted and not t.done)
        self.order.remove(task)
        try:
            task.value = task.fn(*task.args)
        except Exception as exc:  # handed to whoever asks for the result, like a future
            task.error = exc
        task.done = True
        return [task]

    def result(self, handle: _Deferred) -> Any:
        if handle.error is not None:
            raise handle.error
        return handle.value


def end_with_parent(parent: int) -> None:
    """Worker initializer: exit as soon as process `parent` ends, however it ends (even SIGKILL, which leaves no
    chance to tell the workers). Watches a pidfd where the kernel has them, else polls once a second."""
    try:
        handle: int | None = os.pidfd_open(parent)
    except (AttributeError, OSError):
        handle = None

    def watch() -> None:
        if handle is not None:
            select.select([handle], [], [])  # readable once the process has ended
        else:
            while _alive(parent):
                time.sleep(1.0)
        os._exit(1)

    if handle is None and not _alive(parent):
        os._exit(1)
    threading.Thread(target=watch, name="mlplab-parent-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, _unwind)  # an aborting parent terminates its workers: let their writes clean up


def _unwind(signum: int, frame: object) -> None:
    """SIGTERM in a worker: unwind, so a file being written removes its temporary instead of leaving it behind."""
    raise SystemExit(128 + signum)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


TRACKER_QUIET = "ignore::UserWarning:multiprocessing.resource_tracker"


class LocalExecutor(Executor):
    """A process pool of `workers` processes on this machine; the workers end when this process ends."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        # Python starts its helper processes with this process's -W options. When this process is killed, the
        # resource tracker removes the pool's semaphores itself; its warning about them is only noise on stderr.
        if TRACKER_QUIET not in sys.warnoptions:
            sys.warnoptions.append(TRACKER_QUIET)
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # Workers fork from a server that has already imported mlplab, so each starts in milliseconds.
            context.set_forkserver_preload([__name__])
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=end_with_parent, initargs=(os.getpid(),)
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        return self.pool.submit(fn, *args)

    def wait_any(self, handles: Collection[cf.Future]) -> list[cf.Future]:
        return list(cf.wait(handles, return_when=cf.FIRST_COMPLETED).done)

    def result(self, handle: cf.Future) -> Any:
        try:
            return handle.result()
        except cf.process.BrokenProcessPool as exc:
            raise MlplabError(f"a worker process died ({exc}); rerun with the same --out to resume") from None

    def close(self, abort: bool = False) -> None:
        if abort:  # interrupted or terminated: running tasks' results would be discarded, so stop them now
            # ProcessPoolExecutor has no public way to stop running tasks before Python 3.14's terminate_workers.
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """Tasks on an existing Dask cluster (`dask scheduler` + `dask worker`); mlplab must be installed there.

    Its workers may be other machines, which do not see the output directory: their runs keep no checkpoint.
    """

    shares_files = False

    def __init__(self, address: str, timeout: float | None = None) -> None:
        from distributed import Client
        from distributed.security import Security

        timeout = seconds_from_env("MLPLAB_CONNECT_TIMEOUT", CONNECT_TIMEOUT) if timeout is None else timeout
        security = Security()  # TLS certificates from Dask's own configuration, when a tls:// cluster needs them
        try:
            _check_reachable(address, timeout)
            _handshake(address, security, timeout)
            self.client = Client(address, timeout=timeout, set_as_default=False, security=security)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            why = str(exc) or f"no answer within {timeout:g} s"
            raise MlplabError(f"cannot reach the Dask scheduler at {quoted_text(address)}: {why}") from None
        self.slots = max(1, sum(self.client.nthreads().values()))

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def wait_any(self, handles: Collection[Any]) -> list[Any]:
        from distributed import as_completed

        done = [h for h in handles if h.done()]
        if not done:
            first = next(as_completed(list(handles), loop=self.client.loop))
            done = [h for h in handles if h.done() or h is first]
        return done

    def result(self, handle: Any) -> Any:
        return handle.result()

    def close(self, abort: bool = False) -> None:
        self.client.close()


def _check_reachable(address: str, timeout: float) -> None:
    """Fail at once on a refused tcp:// address instead of retrying until the timeout."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp"):
        return
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"expected tcp://HOST:PORT, got {quoted_text(address)!r}")
    with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
        pass


def _handshake(address: str, security: Any, timeout: float) -> None:
    """Ask the scheduler who it is, all within `timeout` seconds: a listener that accepts and never speaks, or
    an address no scheme can reach, fails here instead of hanging or leaving a half-built client behind."""
    from distributed.core import rpc

    async def identity() -> Any:
        async with rpc(address, timeout=timeout, connection_args=security.get_connection_args("client")) as r:
            return await r.identity()

    async def bounded() -> Any:
        return await asyncio.wait_for(identity(), timeout)

    reply = asyncio.run(bounded())
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ValueError("the process at that address is not a Dask scheduler")


def make_executor(workers: int | None = None, dask_scheduler: str | None = None) -> Executor:
    """Dask when a scheduler address is given, else a pool of `workers` processes (one means this process)."""
    if dask_scheduler:
        return DaskExecutor(dask_scheduler)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise MlplabError(f"--workers must be ≥ 1, got {workers}")
    return SerialExecutor() if workers == 1 else LocalExecutor(workers)


class Runner:
    """Named runs over an executor and a store: finished ones are loaded, the rest run once and are saved
    the moment they arrive; identical names share one run."""

    def __init__(
        self, executor: Executor, store: RunStore, on_saved: Callable[[str, dict[str, Any]], None] | None = None
    ) -> None:
        self.executor = executor
        self.store = store
        self.on_saved = on_saved
        self.finished: dict[str, dict[str, Any]] = {}
        self.reused: set[str] = set()  # finished by an earlier invocation, loaded from the store
        self.running: dict[Any, str] = {}

    def request(self, name: str, config: dict[str, Any], title: str = "") -> str:
        """Make sure run `name` with `config` exists or is under way; returns the name."""
        if name in self.finished or name in self.running.values():
            return name
        stored = self.store.load(name, config)
        if stored is not None:
            self.finished[name] = stored
            self.reused.add(name)
            return name
        checkpoint = self.checkpoint_path(name, config)
        self.running[self.executor.submit(train_in_worker, run_log_dir(config, name), title, None, checkpoint)] = name
        return name

    def checkpoint_path(self, name: str, config: dict[str, Any]) -> str | None:
        """Where run `name` keeps its checkpoint, when the executor's tasks see this process's files."""
        return str(self.store.checkpoint(name, config).path) if self.executor.shares_files else None

    def result(self, name: str) -> dict[str, Any]:
        """Run `name`'s metrics, saving every other run that finishes meanwhile."""
        while name not in self.finished:
            if not self.running:
                raise KeyError(f"run {name!r} was never requested")
            self.collect()
        return self.finished[name]

    def collect(self) -> None:
        """Wait for at least one running task and save whatever has finished; a failed task's error is raised
        only after every run that finished with it is saved."""
        errors = []
        for handle in self.executor.wait_any(list(self.running)):
            name = self.running.pop(handle)
            try:
                outcome: RunOutcome = self.executor.result(handle)
            except Exception as exc:  # raised below, once the others are safe on disk
                errors.append(exc)
                continue
            self.finished[name] = self.store.save(name, outcome)
            if self.on_saved:
                self.on_saved(name, self.finished[name])
        if errors:
            raise errors[0]

    def drain(self) -> None:
        """Wait for every requested run."""
        while self.running:
            self.collect()


MAX_RUN_NAME = 120  # characters: file systems allow 255 bytes per name, and a name is read by people


def run_dir_name(text: str) -> str:
    """A run name usable as a directory name on any system; a long one is cut and ends in a hash of the whole."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "=.,+-_") else "_" for c in text) or "_"
    if len(safe) > MAX_RUN_NAME:
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()  # argv's non-UTF-8 bytes too
        safe = f"{safe[: MAX_RUN_NAME - 13]}-{digest[:12]}"
    return safe


def check_tensorboard(config: dict[str, Any]) -> None:
    """Fail early, in the parent, when the config logs to TensorBoard and tensorboardX is missing."""
    if config.get("tensorboard"):
        from mlplab.tensorboard import require

        require()


def run_log_dir(config: dict[str, Any], name: str) -> dict[str, Any]:
    """`config` logging to TensorBoard into the sub-directory `name` of its `tensorboard` directory, so each run
    of a sweep, study or writeup is its own TensorBoard run; unchanged when it does not log."""
    if not config.get("tensorboard"):
        return config
    return {**config, "tensorboard": str(Path(config["tensorboard"]) / name)}


def check_dataset_reachable(config: dict[str, Any]) -> None:
    """Fail early, in the parent, when the data files cannot be found (workers would each fail later)."""
    if config["dataset"] != "digits":
        from mlplab.data.sources import locate

        locate(config["dataset"], config.get("data_dir"))
