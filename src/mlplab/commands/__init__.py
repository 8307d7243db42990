"""One module per subcommand; each has `register(subparsers)` that adds its parser with `func` set."""

from mlplab.commands import randomize, reproduce, sweep, train, tune, verify

COMMANDS = [train, verify, sweep, tune, reproduce, randomize]
