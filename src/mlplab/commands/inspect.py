"""`mlplab inspect RUN`: what happened inside a run's network, as report.md and a self-contained report.html."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlplab.files import claim_output


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect",
        help="report of a run's insides: curves, network summary, per-layer diagnostics, first-layer weights",
        description="Write report.md and a self-contained report.html (plus their figures) for a run directory: "
        "learning curves, the network's layers and parameter counts, activation distributions, saturated and dead "
        "units, gradient norms, update-to-data ratios (log scale, 1e-3 guide), how alike hidden units are, and the "
        "first layer's weights as images. Works on a run still training (the epochs so far).",
    )
    parser.add_argument(
        "run", help="a run directory (the --out of mlplab train, one run of a sweep, or OUT/CONDITION of randomize)"
    )
    parser.add_argument("--out", metavar="DIR", help="where to write the report (default: RUN/inspect)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab.inspection import inspect_run, read_run

    start = time.perf_counter()
    view = read_run(args.run)  # a directory that is not a run is refused before anything is created
    out = claim_output(args.out or Path(args.run) / "inspect")  # checked writable and held before writing
    inspect_run(view, out)
    for line in view.missing:
        print(f"note: {line}")
    print(f"wrote {out}/report.html and report.md in {time.perf_counter() - start:.1f} s")
    return 0
