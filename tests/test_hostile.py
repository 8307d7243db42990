"""The hostile suite: each case runs the real `mlplab` command in its own process session, as a user would, with
inputs, faults (SIGKILL, SIGTERM, a full disk), a second process or a silent server built here. Every case must
end in time, with no traceback, no corrupt or mixed file, no finished run redone and no process left behind.

`python tests/test_hostile.py` runs every case and prints a table of case → outcome; pytest runs each as a test.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FAST = ("--set", "threads=1", "--set", "epochs=1")
BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ROOT = Path(__file__).resolve().parents[1]


# --- running the command as a user would ---------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float
    peak_mb: float

    def refused(self, *needles: str) -> str:
        """Exit 2 with one line on stderr naming the problem (each needle appears in it)."""
        assert self.code == 2, f"exit {self.code}, stderr: {self.err[-500:]}"
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {self.err[:500]}"
        for needle in needles:
            assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
        assert len(lines[0]) <= 1100, f"a {len(lines[0])}-character message"
        return f"exit 2 in {self.seconds:.1f} s: {lines[0][:150]}"


def group_members(pgid: int) -> list[int]:
    """Processes still in process group `pgid` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def assert_no_orphans(pgid: int, grace: float = 10.0) -> None:
    """Nothing the command started outlives it (workers, forkserver, resource tracker), after a short grace."""
    deadline = time.monotonic() + grace
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind: {[Path(f'/proc/{p}/cmdline').read_text() for p in left]}"


# `python -m mlplab.cli` that also records its own peak memory (VmHWM counts from exec; a child's ru_maxrss
# would include the memory of the test process it was forked from).
PEAK_LAUNCHER = """
import os, sys
from mlplab.cli import main
try:
    code = main(sys.argv[1:])
finally:
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    open(os.environ["MLPLAB_TEST_PEAK_FILE"], "w").write(peak.split()[1])
sys.exit(code)
"""


class Command:
    """One `mlplab` process in its own session: started, optionally signalled, then checked."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, limits: Callable[[], None] | None = None):
        self.logs = tempfile.TemporaryDirectory(prefix="mlplab-hostile-")
        self.stdout = open(Path(self.logs.name) / "out", "w+")  # noqa: SIM115 - read back in finish()
        self.stderr = open(Path(self.logs.name) / "err", "w+")  # noqa: SIM115
        self.peak_file = Path(self.logs.name) / "peak"
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PEAK_LAUNCHER, *args],
            stdout=self.stdout,
            stderr=self.stderr,
            env={**os.environ, **BLAS, **(env or {}), "MLPLAB_TEST_PEAK_FILE": str(self.peak_file)},
            start_new_session=True,
            preexec_fn=limits,
        )

    def running(self) -> bool:
        """Whether the process has not exited yet (without reaping it: finish() does that)."""
        return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def finish(self, timeout: float = 120) -> Result:
        """Wait (a hang is a failure), then check: no traceback, nothing left running."""
        killer = threading.Timer(timeout, lambda: os.killpg(self.proc.pid, signal.SIGKILL))
        killer.start()
        _, status, _ = os.wait4(self.proc.pid, 0)
        killer.cancel()
        self.proc.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - self.start
        self.stdout.seek(0)
        self.stderr.seek(0)
        out, err = self.stdout.read(), self.stderr.read()
        peak_mb = int(self.peak_file.read_text()) / 1024 if self.peak_file.exists() else 0.0  # none when killed
        self.stdout.close()
        self.stderr.close()
        self.logs.cleanup()
        assert seconds < timeout, f"hung: killed after {timeout} s"
        assert "Traceback" not in err and "Exception ignored" not in err, err[-2000:]
        assert_no_orphans(self.proc.pid)
        return Result(code, out, err, seconds, peak_mb)


IN_PROCESS = {"on": False}  # pytest runs the input cases through cli.main in its own process: same code, no startup


def mlplab(*args: str, timeout: float = 120, isolate: bool = False, **kwargs: object) -> Result:
    """The command's outcome: in a process of its own (always when `isolate`: its peak memory is measured), or
    (input cases under pytest) through `cli.main` here."""
    if IN_PROCESS["on"] and not kwargs and not isolate:
        return in_process(*args)
    return Command(*args, **kwargs).finish(timeout)  # type: ignore[arg-type]


def in_process(*args: str) -> Result:
    """cli.main in this process; an exception escaping it is the traceback a user would have seen."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from mlplab.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue(), time.monotonic() - start, 0.0)


def file_size_limit(limit: int) -> Callable[[], None]:
    """A full disk, as far as this process can tell: writes past `limit` bytes fail with EFBIG."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, by relative path (the lock file aside)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".mlplab.lock"
    }


def no_temporaries(directory: Path) -> None:
    left = [p for p in directory.rglob("*") if p.name.endswith((".tmp", ".download", ".part"))]
    assert not left, f"temporary files left: {left}"


# --- hostile inputs built here -------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def idx_dataset(directory: Path, n_train: int, images: bytes | None = None) -> Path:
    """An MNIST-layout directory with `n_train` 28×28 training images (or the given raw image file)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": images or idx_bytes(rng.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (5, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 5)),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def gzip_with_zeros(path: Path, head: bytes, zeros: int) -> Path:
    """A small gzip file that inflates to `head` plus `zeros` zero bytes."""
    chunk = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(head)
        for _ in range(zeros // len(chunk)):
            out.write(chunk)
    return path


def model_file(path: Path, header: dict, **params: np.ndarray) -> Path:
    np.savez(path, __header__=np.array(json.dumps(header)), **{f"param/{k}": v for k, v in params.items()})
    return path


TWO_LAYER = {"format": 1, "model": "TwoLayerNet", "meta": {"dataset": "digits"}}


def two_layer_header(hidden: int) -> dict:
    return {**TWO_LAYER, "hyper": {"input_size": 64, "hidden_size": hidden, "num_classes": 10, "dtype": "float32"}}


def train_digits(out: Path, *extra: str) -> Result:
    result = mlplab("train", *FAST, *extra, "--out", str(out))
    assert result.code == 0, result.err
    return result


@contextmanager
def silent_listener() -> Iterator[int]:
    """A TCP server that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


@contextmanager
def slow_mirror(trickle: bool) -> Iterator[str]:
    """An HTTP mirror that promises 10 MB, then sends a few bytes every half second (or nothing at all)."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "10000000")
            self.end_headers()
            try:
                for _ in range(240):
                    if trickle:
                        self.wfile.write(b"\x1f" * 70_000)
                        self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# --- the cases -----------------------------------------------------------------------------------------------

CASES: dict[str, tuple[str, Callable[[Path], str]]] = {}


def case(kind: str, name: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    def register(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        CASES[name] = (kind, fn)
        return fn

    return register


@case("input", "sweep values that would share a run directory")
def _(tmp: Path) -> str:
    result = mlplab("sweep", "hidden_size", "1:0", "1_0", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    outcome = result.refused("'1:0'", "'1_0'", "hidden_size=1_0")
    assert not (tmp / "s").exists()
    return outcome


@case("input", "sweep value whose run name is over 255 characters")
def _(tmp: Path) -> str:
    seed = "1" * 300
    result = mlplab("sweep", "seed", seed, "2", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    assert result.code == 0, result.err
    names = [p.name for p in (tmp / "s" / "runs").iterdir()]
    assert len(names) == 2 and max(map(len, names)) <= 120, names
    assert len(json.loads((tmp / "s" / "results.json").read_text())) == 2
    return f"exit 0; run directories {sorted(map(len, names))} characters long"


@case("input", "IDX training file with 0 images")
def _(tmp: Path) -> str:
    data = idx_dataset(tmp / "mnist", 0)
    return mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp / "o")).refused("cannot be split")


@case("input", "IDX training file with 1 image")
def _(tmp: Path) -> str:
    data = idx_dataset(tmp / "mnist", 1)
    return mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp / "o")).refused("1 training image(s)")


def train_refuses_images(tmp: Path, images: bytes, needle: str, detail: str = "") -> str:
    """`train` on 10 IDX images whose file is `images`: refused naming `needle`, at a peak RSS under 400 MB."""
    data = idx_dataset(tmp / "mnist", 10, images=images)
    result = mlplab("train", *FAST, "--data-dir", str(data), "--out", str(tmp / "o"), isolate=True)
    outcome = result.refused(needle)
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    return f"{outcome} ({detail}{'; ' if detail else ''}peak {result.peak_mb:.0f} MB)"


@case("input", "gzip IDX whose header declares 3 TB")
def _(tmp: Path) -> str:
    head = bytes([0, 0, 0x08, 3]) + np.asarray([4_000_000_000, 28, 28], ">u4").tobytes()
    return train_refuses_images(tmp, gzip.compress(head + bytes(1000)), "corrupt header")


@case("input", "gzip IDX inflating to 512 MB past its declared size")
def _(tmp: Path) -> str:
    head = idx_bytes(np.zeros((10, 28, 28)))
    bomb = gzip_with_zeros(tmp / "images.gz", head, 512 << 20).read_bytes()
    assert len(bomb) < 3 << 20
    return train_refuses_images(tmp, bomb, "trailing bytes", detail=f"a {len(bomb) >> 10} KB file")


@case("input", "YAML alias bomb (a few hundred bytes)")
def _(tmp: Path) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("hidden_size: *a8")
    config = tmp / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n")
    assert config.stat().st_size < 700
    result = mlplab("train", "--config", str(config), "--out", str(tmp / "o"), timeout=60, isolate=True)
    outcome = result.refused("expands to more than")
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    return outcome


@case("input", "config value of a million characters quoted in an error")
def _(tmp: Path) -> str:
    config = tmp / "long.yaml"
    config.write_text(f"hidden_size: {'x' * 1_000_000}\n")
    result = mlplab("train", "--config", str(config), "--out", str(tmp / "o"))
    return result.refused("hidden_size", "…")


@case("input", "hidden_size of 10⁹")
def _(tmp: Path) -> str:
    return mlplab("train", *FAST, "--set", "hidden_size=1000000000", "--out", str(tmp / "o")).refused("parameters")


@case("input", "model header claiming hidden_size 10⁹")
def _(tmp: Path) -> str:
    path = model_file(tmp / "m.npz", two_layer_header(10**9), W1=np.zeros((64, 4), "f4"))
    return mlplab("evaluate", str(path)).refused("parameters", "more than this machine")


def npy_claiming(shape: tuple[int, ...], payload: bytes) -> bytes:
    """A .npy member whose header declares `shape` float32s but which holds only `payload`."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header = header.ljust(64 * ((len(header) + 11) // 64 + 1) - 11) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


@case("input", "model member declaring 10¹² floats in 100 bytes")
def _(tmp: Path) -> str:
    import zipfile

    path = tmp / "forged.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__header__.npy", _npy_text(json.dumps(two_layer_header(4))))
        archive.writestr("param/W1.npy", npy_claiming((1_000_000, 1_000_000), bytes(100)))
    result = mlplab("evaluate", str(path), isolate=True)
    outcome = result.refused("declares (1000000, 1000000)")
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
    return outcome


def _npy_text(text: str) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array(text))
    return buffer.getvalue()


@case("input", "model parameter holding strings")
def _(tmp: Path) -> str:
    shapes = {"b1": (4,), "W2": (4, 10), "b2": (10,)}
    params = {k: np.zeros(s, "f4") for k, s in shapes.items()}
    path = model_file(tmp / "m.npz", two_layer_header(4), W1=np.array([["a"] * 4] * 64), **params)
    return mlplab("evaluate", str(path)).refused("<U1", "not floating point")


@case("input", "model parameters of an integer dtype")
def _(tmp: Path) -> str:
    shapes = {"W1": (64, 4), "b1": (4,), "W2": (4, 10), "b2": (10,)}
    path = model_file(tmp / "m.npz", two_layer_header(4), **{k: np.zeros(s, "i4") for k, s in shapes.items()})
    return mlplab("evaluate", str(path)).refused("int32", "not floating point")


@case("input", "random bytes given as a model file")
def _(tmp: Path) -> str:
    path = tmp / "m.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    result = mlplab("evaluate", str(path))
    outcome = result.refused("not an .npz archive")
    assert "pickle" not in result.err
    return outcome


@case("input", "warmup_epochs=.inf")
def _(tmp: Path) -> str:
    return mlplab("train", *FAST, "--set", "warmup_epochs=.inf", "--out", str(tmp / "o")).refused("finite")


@case("input", "learning_rate=.nan")
def _(tmp: Path) -> str:
    return mlplab("train", *FAST, "--set", "learning_rate=.nan", "--out", str(tmp / "o")).refused("finite")


@case("input", "tune space with high: .inf")
def _(tmp: Path) -> str:
    space = tmp / "space.yaml"
    space.write_text("learning_rate: {low: 0.01, high: .inf, log: true}\n")
    result = mlplab("tune", *FAST, "--space", str(space), "--trials", "1", "--workers", "1", "--out", str(tmp / "t"))
    outcome = result.refused("finite")
    assert not (tmp / "t").exists()
    return outcome


@case("input", "--out /proc/x (cannot be created)")
def _(tmp: Path) -> str:
    result = mlplab("train", *FAST, "--out", "/proc/x")
    outcome = result.refused("/proc/x")
    assert "epoch" not in result.out  # refused before any training
    return outcome


@case("input", "--out below a regular file")
def _(tmp: Path) -> str:
    (tmp / "file").write_text("x")
    result = mlplab("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp / "file" / "o"))
    outcome = result.refused("Not a directory")
    assert "learning_rate=" not in result.out
    return outcome


@case("input", "a run's metrics.json replaced by []")
def _(tmp: Path) -> str:
    args = ("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    assert mlplab(*args).code == 0
    (tmp / "s" / "runs" / "learning_rate=0.1" / "metrics.json").write_text("[]")
    return mlplab(*args).refused("not a run's metrics")


@case("input", "a sweep's results.json replaced by []")
def _(tmp: Path) -> str:
    args = ("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    assert mlplab(*args).code == 0
    before = snapshot(tmp / "s" / "runs")
    (tmp / "s" / "results.json").write_text("[]")
    result = mlplab(*args)
    assert result.code == 0, result.err
    assert list(json.loads((tmp / "s" / "results.json").read_text())) == ["0.1"]
    assert snapshot(tmp / "s" / "runs") == before  # rebuilt from the finished run, not retrained
    return "exit 0: results.json rebuilt from the finished run, nothing retrained"


@case("input", "a randomization results.json replaced by []")
def _(tmp: Path) -> str:
    args = ("randomize", "--conditions", "true-labels", "--subset", "200", "--max-steps", "20", "--workers", "1")
    assert mlplab(*args, "--out", str(tmp / "r")).code == 0
    (tmp / "r" / "results.json").write_text("[]")
    return mlplab(*args, "--out", str(tmp / "r")).refused("not a randomization run's results")


@case("input", "gradcheck --hidden-sizes abc")
def _(tmp: Path) -> str:
    return mlplab("gradcheck", "--model", "mlp", "--hidden-sizes", "abc").refused("--hidden-sizes")


@case("input", "gradcheck --batch 0")
def _(tmp: Path) -> str:
    return mlplab("gradcheck", "--batch", "0").refused("--batch")


@case("input", "theory --markdown /nonexistent/x.md")
def _(tmp: Path) -> str:
    return mlplab("theory", "--markdown", "/nonexistent/x.md").refused("/nonexistent/x.md")


@case("input", "randomize --subset 0")
def _(tmp: Path) -> str:
    return mlplab("randomize", "--subset", "0", "--out", str(tmp / "r")).refused("--subset")


@case("input", "randomize --max-steps 0")
def _(tmp: Path) -> str:
    return mlplab("randomize", "--max-steps", "0", "--out", str(tmp / "r")).refused("--max-steps")


@case("fault", "disk full while a rerun writes its files")
def _(tmp: Path) -> str:
    out = tmp / "o"
    train_digits(out)
    before = snapshot(out)
    result = mlplab("train", *FAST, "--set", "seed=7", "--out", str(out), limits=file_size_limit(16_000))
    outcome = result.refused("file too large")
    assert snapshot(out) == before, "the earlier run's files changed"
    no_temporaries(out)
    return f"{outcome}; the earlier run untouched"


@case("fault", "disk full in a sweep, then resumed")
def _(tmp: Path) -> str:
    args = ("sweep", "learning_rate", "0.1", "0.05", *FAST, "--workers", "1", "--out", str(tmp / "s"))
    result = mlplab(*args, limits=file_size_limit(16_000))
    outcome = result.refused("file too large")
    no_temporaries(tmp / "s")
    assert not list((tmp / "s").rglob("metrics.json")), "a run marked finished without all its files"
    again = mlplab(*args)
    assert again.code == 0, again.err
    return f"{outcome}; rerun exit 0"


def runs_finished(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (out / "runs").glob("*/metrics.json")}


def killed_mid_sweep(tmp: Path, sig: int) -> tuple[Result, Path, list[str]]:
    values = ["0.5", "0.4", "0.3", "0.2", "0.1", "0.09"]
    out = tmp / "s"
    args = ("sweep", "learning_rate", *values, "--set", "threads=1", "--set", "epochs=60", "--workers", "2")
    command = Command(*args, "--out", str(out))
    deadline = time.monotonic() + 120
    while not runs_finished(out) and command.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert command.running(), "the sweep ended before the signal"
    os.kill(command.proc.pid, sig)  # the parent only, as a scheduler or an impatient user would
    return command.finish(60), out, values


@case("fault", "SIGKILL of a sweep --workers 2 parent, then resumed")
def _(tmp: Path) -> str:
    _, out, values = killed_mid_sweep(tmp, signal.SIGKILL)  # finish() found no worker, forkserver or tracker left
    before = runs_finished(out)
    assert 1 <= len(before) < len(values)
    no_marker = [p for p in (out / "runs").iterdir() if not (p / "metrics.json").exists()]
    again = mlplab("sweep", "learning_rate", *values, "--set", "threads=1", "--set", "epochs=60", "--workers", "2",
                   "--out", str(out))  # fmt: skip
    assert again.code == 0, again.err
    after = runs_finished(out)
    assert {k: after[k] for k in before} == before, "a finished run was redone"
    return f"no process left; {len(before)} finished runs kept, {len(no_marker)} unfinished redone"


@case("fault", "SIGTERM of a sweep --workers 2 parent")
def _(tmp: Path) -> str:
    result, out, _ = killed_mid_sweep(tmp, signal.SIGTERM)
    assert result.code == 143 and result.err.strip() == "mlplab sweep: terminated", (result.code, result.err)
    no_temporaries(out)
    for run in (out / "runs").iterdir():
        if (run / "metrics.json").exists():
            assert {p.name for p in run.iterdir()} == {"metrics.json", "model.npz", "curves.png", "diagnostics.json"}
    return f"exit 143, one line, no process left; {len(runs_finished(out))} finished runs complete"


def tune_args(tmp: Path, trials: int, epochs: int = 3, workers: int = 1) -> tuple[str, ...]:
    space = tmp / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.5, log: true}\n")
    return ("tune", "--set", "threads=1", "--set", f"epochs={epochs}", "--space", str(space),
            "--trials", str(trials), "--workers", str(workers), "--no-pruning", "--out", str(tmp / "t"))  # fmt: skip


@case("fault", "tune killed after a trial's files, before the study recorded it")
def _(tmp: Path) -> str:
    args = tune_args(tmp, 2)
    assert mlplab(*tune_args(tmp, 1)).code == 0
    trial_files = snapshot(tmp / "t" / "trials")
    with sqlite3.connect(tmp / "t" / "study.db") as db:  # as if SIGKILL landed between the files and the tell
        db.execute("UPDATE trials SET state = 'RUNNING', datetime_complete = NULL WHERE number = 0")
        db.execute("DELETE FROM trial_values")
        db.execute(
            "UPDATE trial_user_attributes SET value_json = ? WHERE key = 'owner'",
            (f'"{socket.gethostname()}:999999999"',),
        )
        db.execute("DELETE FROM trial_user_attributes WHERE key = 'run'")
    result = mlplab(*args)
    assert result.code == 0, result.err
    assert snapshot(tmp / "t" / "trials")["trial-0000/metrics.json"] == trial_files["trial-0000/metrics.json"]
    best = json.loads((tmp / "t" / "best.json").read_text())
    assert best["complete"] == 2, best
    trained = [line for line in result.out.splitlines() if line.startswith("trial ")]
    assert len(trained) == 1 and trained[0].startswith("trial   1"), trained
    return "trial 0 recorded from its files, not retrained; trial 1 trained"


@case("fault", "SIGKILL of tune mid-study, then resumed")
def _(tmp: Path) -> str:
    args = tune_args(tmp, 3, epochs=150)
    command = Command(*args)
    deadline = time.monotonic() + 120
    trials = tmp / "t" / "trials"
    while not list(trials.glob("*/metrics.json")) and command.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert command.running(), "the study ended before the kill"
    os.kill(command.proc.pid, signal.SIGKILL)
    command.finish(60)
    done = {p.parent.name: p.read_bytes() for p in trials.glob("*/metrics.json")}
    result = mlplab(*args)
    assert result.code == 0, result.err
    after = {p.parent.name: p.read_bytes() for p in trials.glob("*/metrics.json")}
    assert {k: after[k] for k in done} == done, "a finished trial was redone"
    assert json.loads((tmp / "t" / "best.json").read_text())["complete"] == 3
    return f"{len(done)} finished trial(s) kept; study completed to 3"


def pool_workers(parent: int) -> list[int]:
    """The process-pool workers of `parent`: children of its forkserver, in its process group."""
    members = group_members(parent)
    servers = [p for p in members if _parent_of(p) == parent]  # the forkserver and the resource tracker
    return [p for p in members if _parent_of(p) in servers]  # workers fork from the forkserver


def _parent_of(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@case("fault", "a tune worker killed mid-trial (as by the OOM killer), then resumed")
def _(tmp: Path) -> str:
    args = tune_args(tmp, 3, epochs=60, workers=2)
    command = Command(*args)
    deadline = time.monotonic() + 120
    while len(workers := pool_workers(command.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # both trials under way
    os.kill(workers[0], signal.SIGKILL)
    outcome = command.finish(120).refused("a worker process died")
    study_db = tmp / "t" / "study.db"
    with sqlite3.connect(study_db) as db:
        failed = db.execute("SELECT COUNT(*) FROM trials WHERE state = 'FAIL'").fetchone()[0]
    assert failed >= 1, "the crashed trial is not recorded"
    again = mlplab(*args)
    assert again.code == 0, again.err
    best = json.loads((tmp / "t" / "best.json").read_text())
    assert best["fail"] >= 1 and best["complete"] + best["pruned"] + best["fail"] == 3, best
    return f"{outcome}; the crashed trial recorded as failed, not retried; rerun finished the study"


@case("concurrency", "two trains on one --out at once")
def _(tmp: Path) -> str:
    out = tmp / "o"
    first = Command("train", "--set", "threads=1", "--set", "epochs=40", "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / ".mlplab.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    second = mlplab("train", *FAST, "--set", "seed=7", "--out", str(out))
    outcome = second.refused(f"is in use by pid {first.proc.pid} on {socket.gethostname()}", "mlplab train")
    done = first.finish()
    assert done.code == 0, done.err
    from mlplab.models import Model

    Model.load(out / "model.npz")
    assert json.loads((out / "metrics.json").read_text())["config"]["seed"] == 1024
    return f"{outcome}; the first finished with a valid model"


@case("concurrency", "two sweeps on one --out at once")
def _(tmp: Path) -> str:
    out = tmp / "s"
    args = ("sweep", "learning_rate", "0.1", "0.05", "--set", "threads=1", "--set", "epochs=20", "--workers", "1")
    first = Command(*args, "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / ".mlplab.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    outcome = mlplab(*args, "--out", str(out)).refused("is in use by pid", "mlplab sweep")
    assert first.finish().code == 0
    assert len(json.loads((out / "results.json").read_text())) == 2
    return f"{outcome}; each run trained once"


DASK = ("sweep", "learning_rate", "0.1", *FAST)


@case("hang", "Dask scheduler address that accepts and never speaks")
def _(tmp: Path) -> str:
    with silent_listener() as port:
        result = mlplab(*DASK, "--dask-scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp / "s"),
                        env={"MLPLAB_CONNECT_TIMEOUT": "3"}, timeout=60)  # fmt: skip
    return result.refused("cannot reach the Dask scheduler", "3 s")


@case("hang", "Dask tls:// address without certificates")
def _(tmp: Path) -> str:
    with silent_listener() as port:
        result = mlplab(*DASK, "--dask-scheduler", f"tls://127.0.0.1:{port}", "--out", str(tmp / "s"), timeout=60)
    outcome = result.refused("cannot reach the Dask scheduler")
    assert result.seconds < 30
    return outcome


@case("hang", "Dask foo://bar:1 address")
def _(tmp: Path) -> str:
    result = mlplab(*DASK, "--dask-scheduler", "foo://bar:1", "--out", str(tmp / "s"), timeout=60)
    outcome = result.refused("unknown address scheme 'foo'")
    assert result.seconds < 30
    return outcome


def download_from(tmp: Path, trickle: bool) -> Result:
    """`train --dataset mnist` with no files anywhere, a 2 s download timeout and a slow mirror tried first."""
    env = {"MLPLAB_NO_DOWNLOAD": "0", "MLPLAB_CACHE": str(tmp / "cache"), "MLPLAB_DOWNLOAD_TIMEOUT": "2"}
    with slow_mirror(trickle) as url:
        result = mlplab("train", *FAST, "--dataset", "mnist", "--out", str(tmp / "o"),
                        env={**env, "MLPLAB_DATA": "", "MLPLAB_MIRROR": url}, timeout=90)  # fmt: skip
    assert not [p for p in (tmp / "cache").rglob("*") if p.is_file()], "a partial download was left in the cache"
    return result


@case("hang", "dataset download from a mirror that stalls")
def _(tmp: Path) -> str:
    return download_from(tmp, trickle=False).refused("no data for 2 s")


@case("hang", "dataset download from a mirror that trickles")
def _(tmp: Path) -> str:
    return download_from(tmp, trickle=True).refused("not finished after 2 s")


# --- pytest and the table ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES), ids=[f"{kind}-{name}" for name, (kind, _) in CASES.items()])
def test_hostile_case(name: str, tmp_path: Path, one_blas_thread: None) -> None:
    kind, run = CASES[name]
    IN_PROCESS["on"] = kind == "input"
    try:
        run(tmp_path)
    finally:
        IN_PROCESS["on"] = False


def main() -> int:
    """Run every case and print case → outcome; exit 1 if any case is not clean."""
    os.environ.setdefault("MLPLAB_NO_DOWNLOAD", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    rows, failed = [], 0
    for name, (kind, fn) in CASES.items():
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="mlplab-hostile-") as tmp:
            try:
                verdict, outcome = "clean", fn(Path(tmp))
            except Exception as exc:
                verdict, outcome = "FAILED", f"{type(exc).__name__}: {exc}"
                failed += 1
        seconds = time.monotonic() - start
        rows.append((kind, name, verdict, f"{seconds:.1f}", " ".join(outcome.split())))
        print(f"| {' | '.join(rows[-1])} |", flush=True)
    print(f"\n{len(rows) - failed}/{len(rows)} cases clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
