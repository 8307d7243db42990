"""The hostile suite's harness: each case runs the real `mlplab` command in its own process session, as a user
would, with inputs, faults (SIGKILL, SIGTERM, a full disk), a second process or a silent server built here. Every case
must end in time, with no traceback, no corrupt or mixed file, no finished run redone and no process left behind.

The cases live in tests/hostile/test_<kind of fault>.py; `python -m tests.hostile` runs every case and prints a table of
case → outcome; pytest runs each as a test.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import socket
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

FAST = ("--set", "threads=1", "--set", "epochs=1")
BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ROOT = Path(__file__).resolve().parents[2]


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


# --- pytest and the table ------------------------------------------------------------------------------------


def cases_in(module: str) -> list[str]:
    """The names of the cases a test module registered, in order."""
    return [name for name, (_, fn) in CASES.items() if fn.__module__ == module]


def run_case(name: str, tmp_path: Path) -> None:
    """One case as a test (input cases through cli.main in this process)."""
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
