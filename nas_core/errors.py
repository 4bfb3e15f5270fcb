"""User-facing errors: one line that says what is wrong and where, exit code 2, no traceback.

Anything the user can fix (a config, a path, a checkpoint, a plugin name, an architecture
string, the data) raises :class:`NasError`. The CLI prints ``error: <message>`` and exits 2.
Everything else is a bug: the CLI's safety net prints one ``error: internal error: ...`` line
and exits 3, and ``nas --debug`` shows its traceback. A known bad input must never end there.
"""


class NasError(Exception):
    """An error caused by user input; its message is a complete, single-line explanation.

    Several independent problems found at once (a config with three mistakes) are given as
    several messages: each stays one line, and the CLI prints one ``error:`` line per message.
    """

    exit_code = 2

    def __init__(self, message: str, *more: str):
        self.messages = [" ".join(str(m).split()) for m in (message, *more)]
        super().__init__("\n".join(self.messages))


class ConfigError(NasError):
    """A config file or override is invalid. Message reads ``FILE: dotted.path: message``."""


class PluginError(NasError):
    """A plugin could not be found, imported, validated or is incompatible."""


class CheckpointError(NasError):
    """A checkpoint is missing, truncated, corrupt or does not fit the model."""


class DataError(NasError):
    """A data set is missing or malformed."""


class ArchitectureError(NasError):
    """An architecture string or constraint does not fit the search space."""
