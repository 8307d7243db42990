"""The `mlplab` command: a thin shell over the Python API. Bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import io
import os
import select
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
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for `yes | head`: the reader stopped early
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


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end has been closed (poll reports POLLERR on its writing end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a file descriptor
        return False


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is still buffered fails silently (the
    recipe of Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status.

    A reader that stops early (`mlplab theory | head -1`) ends the command quietly with status 141, as the shell
    reports for any program stopped by a closed pipe: the output was cut short, which a pipeline may want to know.
    """
    for stream in (sys.stdout, sys.stderr):  # a path's bytes that are not UTF-8 are printed as they are, like ls
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # a closed reader shows here, not as a traceback at interpreter exit
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # a broken socket or worker pipe is not the user's `| head`
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _run(argv: Sequence[str] | None) -> int:
    """Parse, run the command, and turn its MlplabError, interrupt or termination into one line and a status."""
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
