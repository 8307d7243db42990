"""What a newcomer meets first: help that lists defaults and config keys, reruns that say what they reused,
readable times, short summaries and wrapped lines."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mlplab import data
from mlplab.cli import build_parser, main
from mlplab.commands.common import duration
from mlplab.config import OPTIONS

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(subparsers()))
def test_every_option_says_its_default_or_is_required(command: str) -> None:
    parser = subparsers()[command]
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.default is argparse.SUPPRESS or action.required:
            continue
        assert action.help, f"{command} {action.option_strings[0]} has no help"
        assert "default" in parser._get_formatter()._get_help_string(action), (command, action.option_strings)
    assert "(default: none)" not in text.split("--help")[0]


def test_dataset_help_names_no_config_where_there_is_none() -> None:
    for command in ("evaluate", "randomize"):
        help_text = subparsers()[command].format_help()
        assert "config" not in help_text.split("--dataset")[1].split("--data-dir")[0]
    assert subparsers()["randomize"].parse_args([]).out == "runs/randomize"


def test_train_help_points_at_the_keys_and_keys_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert "mlplab keys" in " ".join(subparsers()["train"].format_help().split())
    assert main(["keys"]) == 0
    out = capsys.readouterr().out
    *keys, blank, aliases, renamed = out.splitlines()[2:]
    assert [line.split()[0] for line in keys] == list(OPTIONS) and blank == ""
    assert "learning_rate  0.1" in out and aliases.startswith("aliases: ")
    assert renamed.startswith("old names, still read: augment → shift, steps → milestones, hidden_size → hidden_sizes")


def test_durations_of_tiny_runs_are_not_zero() -> None:
    assert duration(0.0432) == "43 ms"
    assert duration(3.24) == "3.2 s"
    assert duration(41.4) == "41 s"


def test_a_dataset_prints_as_one_line() -> None:
    ds = data.load("digits")
    assert repr(ds) == (
        "Dataset('digits': 1,077 train / 360 val / 360 test, 8×8 images with pixels 0–16, 10 classes, "
        "from sklearn.datasets.load_digits)"
    )
    assert repr(ds.test) == "Split(360 images of 64 uint8 pixels, labels int64)"


def test_theory_wraps_to_a_width_and_confirms_its_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlplab import theory

    results = theory.run_all()
    wrapped = theory.format_lines(results, width=70)
    assert max(map(len, wrapped.splitlines())) <= 70
    assert " ".join(wrapped.split()) == " ".join(theory.format_lines(results).split())
    target = tmp_path / "theory.md"
    assert main(["theory", "--markdown", str(target)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {target} ({len(results)} claims as a Markdown table)"
    assert target.read_text().count("\n") == len(results) + 2


def test_a_rerun_says_what_it_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    options = ["--config", CONFIG, "--set", "epochs=2", "--workers", "1", "--out", str(tmp_path)]
    assert main(["sweep", "learning_rate", "0.2", "0.1", *options]) == 0
    assert "reused" not in capsys.readouterr().out
    assert main(["sweep", "learning_rate", "0.2", "0.1", "0.05", *options]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"2 finished runs reused from an earlier invocation in {tmp_path} (not run again)"
    assert "learning_rate=0.05: train" in out and "learning_rate=0.2: train" not in out
