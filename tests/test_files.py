"""The one writer of output files: atomic writes, runs published as a unit, a lock per output directory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlplab import files
from mlplab.errors import MlplabError


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = files.write_json(tmp_path / "a.json", {"x": float("nan"), "y": np.float32(1.5), "z": [1, 2]})
    assert json.loads(path.read_text()) == {"x": None, "y": 1.5, "z": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path) -> None:
    path = files.write_text(tmp_path / "table.md", "old\n")

    def broken(out: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(MlplabError, match=r"cannot write .*table.md: No space left on device"):
        files.write_bytes(path, broken)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]


def test_publish_replaces_a_run_as_a_unit(tmp_path: Path) -> None:
    run = tmp_path / "run"
    files.publish(run, {"model.npz": b"old model", "curves.png": b"old", "metrics.json": b"{}"}, "metrics.json")
    # A new run that has no model (diverged in epoch 1) must not leave the old model beside its metrics.
    files.publish(
        run, {"metrics.json": b'{"new": 1}'}, "metrics.json", owned=("metrics.json", "model.npz", "curves.png")
    )
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]

    def full_disk(out: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(MlplabError):
        files.publish(run, {"curves.png": full_disk, "metrics.json": b"{}"}, "metrics.json")
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json"]  # the earlier run is untouched
    assert (run / "metrics.json").read_bytes() == b'{"new": 1}'


def test_a_size_limit_is_one_clear_error_and_nothing_half_written(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in a real process: the write fails with EFBIG (Python ignores SIGXFSZ), the old file stays."""
    target = files.write_bytes(tmp_path / "big.bin", b"old")
    script = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        from mlplab import files
        from mlplab.errors import MlplabError
        try:
            files.write_bytes({str(target)!r}, bytes(5000))
        except MlplabError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "file too large" in done.stdout, done.stderr
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY  # only the child was limited


HOLD = textwrap.dedent(
    """
    import sys, time
    from mlplab import files
    with files.output_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_a_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(MlplabError, match=rf"{out} is in use by pid {holder.pid} on "), files.output_lock(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    with files.output_lock(out), files.output_lock(out):  # the lock dies with its holder; one process may nest
        pass
    assert list(out.iterdir()) == []


def test_a_directory_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(MlplabError, match="cannot create the output directory"), files.output_lock(tmp_path / "file/x"):
        pass
    with pytest.raises(MlplabError, match="cannot create the output directory"), files.output_lock("/proc/x"):
        pass


def test_a_lock_held_then_failed_early_leaves_no_directory_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), files.output_lock(tmp_path / "a" / "b"):
        raise RuntimeError("bad input found after the lock was taken")
    assert list(tmp_path.iterdir()) == []


def test_quoted_values_never_grow_with_the_input() -> None:
    assert files.quoted("x" * 10_000) == "'" + "x" * 78 + "…"
    nested: list = [[0] * 10] * 10
    for _ in range(20):
        nested = [nested] * 10  # 10²² elements if expanded
    assert files.quoted(nested) == "<list of 10 items>"


def test_stale_temporaries_are_removed_under_the_lock(tmp_path: Path) -> None:
    (tmp_path / ".model.npz.abc.tmp").write_bytes(b"half")
    with files.output_lock(tmp_path):
        assert list(tmp_path.glob("*.tmp")) == []
