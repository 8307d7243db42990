"""docs/check_numbers.py: every page quotes what docs/numbers.yaml says, and a re-measured number that no longer
comes out (or a page that drifted) fails the check."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_numbers", ROOT / "docs" / "check_numbers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_page_quotes_what_numbers_yaml_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert checker().main(["--pages"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "quoted numbers agree" in out
    assert "randomize-quick-mnist: last measured 2026-12-04" in out  # the expensive ones say when and where


def test_cheap_numbers_are_remeasured(capsys: pytest.CaptureFixture[str]) -> None:
    assert checker().main(["--only", "digits-split", "theory-claims"]) == 0
    assert "ok   digits-split: re-measured" in capsys.readouterr().out


def test_a_stale_number_fails(tmp_path: Path) -> None:
    check = checker()
    assert check.agree("92.50%", "92.50%", 0)
    assert not check.agree("94.4%", "92.50%", 0.01)  # the stale README figure against a fresh run
    assert check.agree("val acc 0.9639 (epoch 22)", "val acc 0.9611 (epoch 22)", 0.015)
    assert not check.agree("val acc 0.9639 (epoch 22)", "val acc 0.9639 (epoch 21)", 0.015)  # whole numbers: exact
    entry = {"id": "x", "quoted": ["1,077 / 360 / 999"], "pages": ["guide/data.md"], "check": "digits_split"}
    assert check.check_entry(entry, tmp_path) == ["quoted '1,077 / 360 / 999', measured '1,077 / 360 / 360'"]
    assert check.check_pages(entry) == ["guide/data.md does not quote '1,077 / 360 / 999'"]
