"""One module per subcommand; each has `register(subparsers)` that adds its parser with `func` set."""

from mlplab.commands import export, predict, randomize, reproduce, sweep, train, tune, verify

COMMANDS = [train, predict, export, verify, sweep, tune, reproduce, randomize]
