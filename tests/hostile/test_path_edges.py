"""Paths whose bytes are not UTF-8 (Python holds them as surrogate escapes): every command that writes or prints a
path works with them — output lock, JSON, Markdown and HTML files, run names, the study database, stdout and stderr
— under a strict UTF-8 stdout (PYTHONIOENCODING=utf-8, as in an ordinary UTF-8 locale)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.test_hostile import BLAS, FAST, assert_no_orphans

ROOT = Path(__file__).resolve().parents[2]
NAME = os.fsdecode(b"r\xff\xfe-\xe9t\xe9")  # Latin-1 bytes: not UTF-8


def run(*args: str, timeout: float = 120) -> tuple[int, bytes, bytes]:
    """`mlplab args` in its own session with a strict UTF-8 stdout: (status, stdout bytes, stderr bytes)."""
    env = {**os.environ, **BLAS, "PYTHONPATH": str(ROOT / "src"), "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen([sys.executable, "-m", "mlplab.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)  # fmt: skip
    out, err = proc.communicate(timeout=timeout)
    assert b"Traceback" not in err and b"Exception ignored" not in err, err.decode("utf-8", "replace")[-2000:]
    assert_no_orphans(proc.pid)
    return proc.returncode, out, err


def text_files_are_utf8(directory: Path) -> int:
    """Every JSON, Markdown and HTML file below `directory` is valid UTF-8 (and JSON parses); returns the count."""
    count = 0
    for path in directory.rglob("*"):
        if path.suffix in (".json", ".md", ".html"):
            text = path.read_bytes().decode("utf-8")  # strict: raises on a stray byte
            if path.suffix == ".json":
                json.loads(text)
            count += 1
    return count


@pytest.fixture
def strange(tmp_path: Path) -> Path:
    directory = tmp_path / NAME
    directory.mkdir()
    return directory


@pytest.mark.slow
def test_train_evaluate_predict_export_under_a_non_utf8_directory(strange: Path) -> None:
    out = strange / "run"
    code, stdout, _ = run("train", *FAST, "--out", str(out))
    assert code == 0 and os.fsencode(str(out)) in stdout
    model = out / "model.npz"
    code, stdout, _ = run("evaluate", str(model), "--report", str(strange / "report"))
    assert code == 0 and b"report.html" in stdout
    image = strange / os.fsdecode(b"seven-\xff.png")
    picture = Image.new("L", (40, 40), 255)
    ImageDraw.Draw(picture).line([(8, 8), (32, 8), (16, 34)], fill=0, width=4)
    picture.save(image)
    code, stdout, _ = run("predict", str(model), str(image))
    assert code == 0 and stdout.startswith(os.fsencode(str(image)) + b": ")  # the path's own bytes, as ls prints
    code, stdout, _ = run("predict", "--json", str(model), str(image))
    assert code == 0 and json.loads(stdout)[0]["image"] == str(image)  # round-trips through JSON's escapes
    code, _, _ = run("export", str(model), str(strange / "m.onnx"))
    assert code == 0 and (strange / "m.onnx").stat().st_size > 0
    assert text_files_are_utf8(strange) >= 5


@pytest.mark.slow
def test_sweep_and_tune_under_a_non_utf8_directory(strange: Path) -> None:
    code, _, _ = run("sweep", "learning_rate", "0.1", "0.05", *FAST, "--workers", "1", "--out", str(strange / "s"))
    assert code == 0 and len(json.loads((strange / "s" / "results.json").read_text())) == 2
    space = strange / "space.yaml"
    space.write_text("learning_rate: {low: 0.05, high: 0.5, log: true}\n")
    args = ("tune", *FAST, "--space", str(space), "--trials", "2", "--workers", "1", "--out", str(strange / "t"))
    code, _, err = run(*args)
    assert code == 0, err
    assert json.loads((strange / "t" / "best.json").read_text())["complete"] == 2
    assert text_files_are_utf8(strange) >= 6


@pytest.mark.slow
def test_sweep_value_with_non_utf8_bytes_names_its_run(strange: Path) -> None:
    """A swept value is part of a run directory's name: a long one is hashed, bytes and all."""
    value = os.fsdecode(b"x" * 130 + b"\xff")
    code, _, err = run("sweep", "data_dir", value, *FAST, "--workers", "1", "--out", str(strange / "s"))
    assert code == 2 and len(err.splitlines()) == 1, err  # refused as a data directory, not a UnicodeEncodeError


@pytest.mark.slow
def test_the_output_lock_names_its_holder_in_a_non_utf8_command_line(strange: Path) -> None:
    out = strange / "o"
    env = {**os.environ, **BLAS, "PYTHONPATH": str(ROOT / "src"), "PYTHONIOENCODING": "utf-8"}
    first = subprocess.Popen([sys.executable, "-m", "mlplab.cli", "train", "--set", "threads=1", "--set",
                              "epochs=40", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=env, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / ".mlplab.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    code, _, err = run("train", *FAST, "--out", str(out))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"is in use by pid {first.pid}".encode() in err and os.fsencode(NAME) in err
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
