"""One module per subcommand; each has `register(subparsers)` that adds its parser with `func` set."""

from mlplab.commands import predict, randomize, reproduce, sweep, train, tune, verify

COMMANDS = [train, predict, verify, sweep, tune, reproduce, randomize]
