"""The `mlplab` command: a thin shell over the Python API. Bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from mlplab.commands import COMMANDS
from mlplab.errors import MlplabError
from mlplab.files import quoted_text, release_outputs

EXIT_BAD_INPUT = 2
EXIT_TERMINATED = 128 + signal.SIGTERM
MAX_MESSAGE = 1000  # characters of an error line: a message never grows with the input


class DefaultsFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.required or action.default is argparse.SUPPRESS or "default" in text:
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)".strip()
        if action.default is None:
            return f"{text} (default: none)".strip()
        return f"{text} (default: %(default)s)".strip()


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line naming the problem, and every option shows its default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class VersionAction(argparse.Action):
    """--version: what would be recorded as a result's provenance, in short (found only when asked)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        from mlplab.provenance import short

        print(short())
        parser.exit()


def build_parser() -> Parser:
    parser = Parser(prog="mlplab", description=__doc__)
    parser.add_argument(
        "--version",
        action=VersionAction,
        nargs=0,
        default=argparse.SUPPRESS,
        help="show mlplab's version and commit, Python, NumPy, SciPy, numba, the BLAS and the CPU, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: unwind like an interrupt, so worker pools are stopped and locks released on the way out."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return int(args.func(args) or 0)
    except MlplabError as exc:
        print(f"mlplab {args.command}: error: {quoted_text(' '.join(str(exc).split()), MAX_MESSAGE)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mlplab {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"mlplab {args.command}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        release_outputs()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
