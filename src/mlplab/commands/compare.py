"""`mlplab compare RUN RUN …`: runs side by side (curves, config differences, final metrics, diagnostics)."""

from __future__ import annotations

import argparse

DEFAULT_OUT = "runs/compare"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare",
        help="runs side by side: overlaid curves, differing config keys, final metrics and diagnostics",
        description="Compare finished (or still training) runs: report.md and a self-contained report.html with "
        "overlaid learning curves, the config keys that differ, final metrics and the final epoch's diagnostics.",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run directories (holding metrics.json), or sweep, tune or reproduce directories (all their runs)",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab.experiments.compare import check_out, load_runs, write_comparison
    from mlplab.files import claim_output
    from mlplab.report import percent

    runs = load_runs(args.runs)  # every input read and checked before the output directory is touched
    check_out(runs, args.out)
    out = claim_output(args.out)
    result = write_comparison(runs, out)
    width = max(len(r.label) for r in result.runs)
    for r in result.runs:
        m = r.metrics
        print(
            f"{r.label:<{width}}  val {percent(m.get('best_val_acc'))}  test {percent(m.get('test_acc'))}  "
            f"({len(m['train_loss'])} epochs, {r.status}{'' if r.diagnostics else ', no diagnostics'})"
        )
    differing = result.sections[1].tables[0].rows if result.sections[1].tables else []
    print("differing config keys: " + (", ".join(row[0] for row in differing) or "none"))
    print(
        f"wrote {out}/report.md, report.html, curves.png"
        + (", diagnostics.png" if any(r.diagnostics for r in result.runs) else "")
        + ", comparison.json"
    )
    return 0
