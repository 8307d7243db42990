"""The one exception type the CLI turns into a single line on stderr and exit status 2."""


class MlplabError(Exception):
    """A problem with the user's input (data, config, model file) that a user can fix."""


class DataError(MlplabError):
    """A data file is missing, corrupt or not in a supported layout."""


class ConfigError(MlplabError):
    """A config file or value is invalid."""
