"""One module per subcommand; each has `register(subparsers)` that adds its parser with `func` set."""

from mlplab.commands import train, verify

COMMANDS = [train, verify]
