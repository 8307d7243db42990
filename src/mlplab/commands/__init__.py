"""One module per subcommand; each has `register(subparsers)` that adds its parser with `func` set."""

from mlplab.commands import (
    evaluate,
    export,
    gradcheck,
    inspect,
    keys,
    predict,
    randomize,
    reproduce,
    sweep,
    theory,
    train,
    tune,
)

COMMANDS = [train, evaluate, predict, export, keys, gradcheck, theory, sweep, tune, reproduce, randomize, inspect]
