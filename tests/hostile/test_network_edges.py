"""Waits bounded: a PostgreSQL storage URL whose server accepts and never answers (the Dask connect timeout applies,
not psycopg's 130 s), a download mirror that trickles bytes too slowly to finish (a minimum rate, measured by a real
HTTP server on 127.0.0.1), and config or search-space files that never end (/dev/zero, a FIFO)."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlplab.experiments.study_storage import driver_url
from tests.hostile.harness import FAST, mlplab, silent_listener


@pytest.mark.slow
def test_a_postgresql_server_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.5, log: true}\n")
    with silent_listener() as port:
        result = mlplab("tune", *FAST, "--space", str(space), "--trials", "1", "--workers", "1",
                        "--storage", f"postgresql://mlplab@127.0.0.1:{port}/study", "--out", str(tmp_path / "t"),
                        env={"MLPLAB_CONNECT_TIMEOUT": "3"}, timeout=60)  # fmt: skip
    result.refused("cannot open the Optuna storage", "timeout")
    assert result.seconds < 30, f"{result.seconds:.0f} s"
    assert not (tmp_path / "t" / "best.json").exists()


def test_the_connect_timeout_is_added_unless_the_url_sets_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLPLAB_CONNECT_TIMEOUT", raising=False)
    assert driver_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db?connect_timeout=15"
    assert driver_url("postgres://u@h/db?sslmode=require") == (
        "postgresql+psycopg://u@h/db?sslmode=require&connect_timeout=15"
    )
    assert driver_url("postgresql://u@h/db?connect_timeout=90") == "postgresql+psycopg://u@h/db?connect_timeout=90"
    monkeypatch.setenv("MLPLAB_CONNECT_TIMEOUT", "2.5")
    assert driver_url("postgresql+psycopg://u@h/db").endswith("?connect_timeout=3")
    assert driver_url("sqlite:///x.db") == "sqlite:///x.db"


@contextmanager
def mirror(pause: float, piece: int, pieces: int) -> Iterator[str]:
    """An HTTP mirror that promises 10 MB, then sends `piece` bytes every `pause` seconds, `pieces` times."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "10000000")
            self.end_headers()
            try:
                for _ in range(pieces):
                    self.wfile.write(b"\x1f" * piece)
                    self.wfile.flush()
                    time.sleep(pause)
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


def download(tmp: Path, url: str, **env: str) -> object:
    """`train --dataset mnist` with nothing local: the mirror `url` is tried first."""
    settings = {"MLPLAB_NO_DOWNLOAD": "0", "MLPLAB_CACHE": str(tmp / "cache"), "MLPLAB_DATA": "", "MLPLAB_MIRROR": url}
    result = mlplab("train", *FAST, "--dataset", "mnist", "--out", str(tmp / "o"), env={**settings, **env}, timeout=90)
    assert not [p for p in (tmp / "cache").rglob("*") if p.is_file()], "a partial download was left in the cache"
    return result


@pytest.mark.slow
@pytest.mark.parametrize(("pause", "piece"), [(0.5, 1), (0.2, 100)], ids=["a byte every 0.5 s", "500 bytes/s"])
def test_a_mirror_that_trickles_is_given_up_on_at_the_minimum_rate(tmp_path: Path, pause: float, piece: int) -> None:
    """Each piece arrives well within the stall timeout, so only the rate can tell: refused after one 2-s window,
    long before the 60-s deadline."""
    with mirror(pause, piece, pieces=1000) as url:
        result = download(tmp_path, url, MLPLAB_DOWNLOAD_TIMEOUT="60", MLPLAB_DOWNLOAD_STALL="2")
    result.refused("slower than the minimum of 10,000 (MLPLAB_DOWNLOAD_MIN_RATE)")  # type: ignore[attr-defined]
    assert result.seconds < 30, f"{result.seconds:.0f} s"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_mirror_above_the_minimum_rate_is_not_cut(tmp_path: Path) -> None:
    """64 KB every 0.1 s (640 KB/s) for 3 s: over the 10 KB/s minimum through every 1-s window, so the download
    runs to the end of what the mirror sends — then fails on the content, not the rate."""
    with mirror(0.1, 65536, pieces=30) as url:
        result = download(tmp_path, url, MLPLAB_DOWNLOAD_TIMEOUT="60", MLPLAB_DOWNLOAD_STALL="1")
    line = result.refused(url)  # type: ignore[attr-defined]
    assert "MLPLAB_DOWNLOAD_MIN_RATE" not in line and result.seconds > 2.5, line  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["/dev/zero", "FIFO", "too large"])
@pytest.mark.parametrize("option", ["--config", "--space"])
def test_a_config_file_that_never_ends_is_refused(tmp_path: Path, kind: str, option: str) -> None:
    if kind == "/dev/zero":
        path, needle = "/dev/zero", "not a regular file (a character device)"
    elif kind == "FIFO":
        os.mkfifo(tmp_path / "c.yaml")
        path, needle = str(tmp_path / "c.yaml"), "not a regular file (a FIFO)"
    else:
        (tmp_path / "c.yaml").write_text("# padding\n" * 200_000)
        path, needle = str(tmp_path / "c.yaml"), "more than 1,048,576 bytes"
    command = ["train", *FAST] if option == "--config" else ["tune", *FAST, "--trials", "1", "--workers", "1"]
    result = mlplab(*command, option, path, "--out", str(tmp_path / "o"), isolate=True, timeout=60)
    result.refused(path, needle)
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"


@pytest.mark.parametrize("kind", ["FIFO", "/dev/zero"])
def test_a_finished_runs_metrics_replaced_by_a_special_file_is_refused(tmp_path: Path, kind: str) -> None:
    """A rerun reads each finished run's metrics.json: a FIFO there would wait for a writer, /dev/zero never end."""
    args = ("sweep", "learning_rate", "0.1", *FAST, "--workers", "1", "--out", str(tmp_path / "s"))
    assert mlplab(*args, isolate=True).code == 0
    metrics = tmp_path / "s" / "runs" / "learning_rate=0.1" / "metrics.json"
    metrics.unlink()
    if kind == "FIFO":
        os.mkfifo(metrics)
    else:
        metrics.symlink_to("/dev/zero")
    shown = "FIFO" if kind == "FIFO" else "character device"
    result = mlplab(*args, isolate=True, timeout=60)
    result.refused(str(metrics), f"not a regular file (a {shown})", "delete that run directory")
    assert 0 < result.peak_mb < 400, f"peak RSS {result.peak_mb:.0f} MB"
