"""Check every number the docs quote: re-run the cheap ones, list the expensive ones with where they were measured.

    python docs/check_numbers.py            # every cheap check (about 30 s of CPU) and every page's quotes
    python docs/check_numbers.py --pages    # only that every page still quotes what docs/numbers.yaml says
    python docs/check_numbers.py --only digits-quickstart theory-claims

docs/numbers.yaml lists the numbers. For each entry, every page it names must contain each of its `quoted` strings
(so a page cannot drift from the file). An entry with `check` is re-measured here, on the bundled digits, and what
comes out must equal `quoted` — exactly, or within `tolerance` (absolute, on accuracies as fractions; whole numbers
such as epochs and steps always exactly). Exit status 0 when all agree, 1 otherwise, with one line per entry.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?%?")


def cli(*args: str) -> tuple[int, str]:
    """Run `mlplab ARGS` in this process; its status and what it printed."""
    from mlplab.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(list(args))
    return status, out.getvalue()


def train_digits(work: Path) -> dict[str, Any]:
    """The quick start's run, once per invocation of this script."""
    run = work / "digits"
    if not (run / "metrics.json").exists():
        status, _ = cli("train", "--config", str(ROOT / "configs" / "digits.yaml"), "--out", str(run))
        assert status == 0, f"mlplab train exited {status}"
    return json.loads((run / "metrics.json").read_text())


def reproduce_digits(work: Path) -> dict[str, Any]:
    """`mlplab reproduce --dataset digits`, once per invocation of this script."""
    out = work / "repro"
    if not (out / "results.json").exists():
        status, _ = cli("reproduce", "--dataset", "digits", "--workers", "1", "--out", str(out))
        assert status == 0, f"mlplab reproduce exited {status}"
    return json.loads((out / "results.json").read_text())


def digits_quickstart(work: Path) -> list[str]:
    m = train_digits(work)
    return [
        f"best val acc {m['best_val_acc']:.4f} (epoch {m['best_epoch']}); test acc of that model {m['test_acc']:.4f}"
    ]


def digits_quickstart_curve(work: Path) -> list[str]:
    m = train_digits(work)
    return [f"val loss {m['val_loss'][e - 1]:.4f} acc {m['val_acc'][e - 1]:.4f}" for e in (1, 2, 3, 4, 23)]


def reproduce_digits_lr(work: Path) -> list[str]:
    sweep = reproduce_digits(work)["learning_rate_sweep"]
    return [f"{sweep[lr]['val_acc']:.2%}" for lr in ("1", "0.1", "0.05", "0.01")]


def reproduce_digits_tuned(work: Path) -> list[str]:
    tuning = list(reproduce_digits(work)["tuning"].values())
    return [f"{tuning[0]['test_acc']:.2%} → {tuning[-1]['test_acc']:.2%}"]


def predict_drawn_digit_digits(work: Path) -> list[str]:
    train_digits(work)
    status, printed = cli("predict", str(work / "digits" / "model.npz"), str(DOCS / "drawn_digit.jpg"))
    assert status == 0, printed
    return [printed.strip().split(": ", 1)[1]]


def evaluate_digits(work: Path) -> list[str]:
    train_digits(work)
    status, printed = cli("evaluate", str(work / "digits" / "model.npz"))
    assert status == 0, printed
    return [line.strip() for line in printed.splitlines() if line.startswith(("val ", "test "))]


def digits_split(work: Path) -> list[str]:
    from mlplab import data

    ds = data.load("digits")
    return [f"{len(ds.train.y):,} / {len(ds.val.y):,} / {len(ds.test.y):,}"]


def theory_claims(work: Path) -> list[str]:
    status, printed = cli("theory")
    match = re.search(r"(\d+)/(\d+) claims pass", printed)
    assert match and status == 0 and match[1] == match[2], printed[-500:]
    return [f"{match[2]} claims"]


def gradcheck_two_layer(work: Path) -> list[str]:
    status, printed = cli("gradcheck", "--model", "two_layer")
    return ["(1e-6)"] if status == 0 else [f"FAILED: {printed[-300:]}"]


CHECKS: dict[str, Callable[[Path], list[str]]] = {
    f.__name__: f
    for f in (
        digits_quickstart,
        digits_quickstart_curve,
        reproduce_digits_lr,
        reproduce_digits_tuned,
        digits_split,
        predict_drawn_digit_digits,
        evaluate_digits,
        theory_claims,
        gradcheck_two_layer,
    )
}


def values(text: str) -> list[tuple[float, bool]]:
    """The numbers in a quoted string, percentages as fractions; whether each is a whole number."""
    found = []
    for token in NUMBER.findall(text):
        whole = "." not in token
        number = float(token.rstrip("%").replace(",", ""))
        found.append((number / 100 if token.endswith("%") else number, whole))
    return found


def agree(quoted: str, measured: str, tolerance: float) -> bool:
    """Equal, or the same numbers with decimals within `tolerance` and whole numbers exactly."""
    if quoted == measured:
        return True
    a, b = values(quoted), values(measured)
    if not tolerance or len(a) != len(b) or NUMBER.sub("#", quoted) != NUMBER.sub("#", measured):
        return False
    return all((x == y) if whole else abs(x - y) <= tolerance + 1e-12 for (x, whole), (y, _) in zip(a, b, strict=True))


def page_text(page: str) -> str:
    path = ROOT / page if page == "README.md" else DOCS / page
    return path.read_text(encoding="utf-8")


def load_entries() -> list[dict[str, Any]]:
    return list(yaml.safe_load((DOCS / "numbers.yaml").read_text(encoding="utf-8"))["numbers"])


def check_pages(entry: dict[str, Any]) -> list[str]:
    """Problems: a page that no longer quotes one of the entry's strings."""
    return [
        f"{page} does not quote {quote!r}"
        for page in entry["pages"]
        for quote in entry["quoted"]
        if quote not in page_text(page)
    ]


def check_entry(entry: dict[str, Any], work: Path) -> list[str]:
    """Problems: re-measured numbers that no longer agree with the quoted ones."""
    measured = CHECKS[entry["check"]](work)
    tolerance = float(entry.get("tolerance", 0))
    if len(measured) != len(entry["quoted"]):
        return [f"measured {measured}, quoted {entry['quoted']}"]
    return [
        f"quoted {q!r}, measured {m!r}"
        for q, m in zip(entry["quoted"], measured, strict=True)
        if not agree(q, m, tolerance)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", action="store_true", help="only check that the pages quote what numbers.yaml says")
    parser.add_argument("--only", nargs="+", metavar="ID", help="only these entries")
    args = parser.parse_args(argv)
    entries = [e for e in load_entries() if not args.only or e["id"] in args.only]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mlplab-numbers-") as tmp:
        for entry in entries:
            problems = check_pages(entry)
            if not args.pages and entry.get("check"):
                problems += check_entry(entry, Path(tmp))
                how = "re-measured"
            else:
                how = f"last measured {entry.get('measured', '?')} on {entry.get('machine', '?')}"
            failed += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {entry['id']}: {how}")
            for problem in problems:
                print(f"       {problem}")
    print(f"{len(entries) - failed}/{len(entries)} quoted numbers agree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
