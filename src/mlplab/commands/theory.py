"""`mlplab theory`: the problem set's claims, checked numerically, one line per claim."""

from __future__ import annotations

import argparse
import shutil
import sys

from mlplab.files import write_text
from mlplab.report import Table

EXIT_FAILED = 1


def register(sub: argparse._SubParsersAction) -> None:
    claims = sub.add_parser("theory", help="check the problem set's claims numerically, one line per claim")
    claims.add_argument(
        "--markdown", metavar="FILE", help="also write the results as a Markdown table to FILE (default: none)"
    )
    claims.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlplab import theory  # scipy.optimize loads slowly: only this command needs it

    results = theory.run_all()
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    print(theory.format_lines(results, width))
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} claims pass")
    if args.markdown:
        path = write_text(args.markdown, Table(list(theory.COLUMNS), theory.rows(results)).markdown() + "\n")
        print(f"wrote {path} ({len(results)} claims as a Markdown table)")
    return 0 if passed == len(results) else EXIT_FAILED
