"""Typed errors for everything a user can get wrong.

Each error carries a one-line message naming the file, field or value and what was expected;
entry points print that line (not a traceback) and exit non-zero.  Keeping them in one module
lets tests and callers catch a category (``DataError``) without string matching.
"""


class CnnzooError(Exception):
    """Base class: a user-facing problem with a one-line explanation."""

    exit_code = 2


class DataError(CnnzooError):
    """A dataset file is missing, unreadable or malformed."""


class DataNotFoundError(DataError):
    """No copy of a dataset could be found (and it cannot be downloaded here)."""


class ConfigError(CnnzooError):
    """A configuration value is unknown, inconsistent or out of range."""


class ModelError(CnnzooError):
    """A model name, layer option or weight file does not fit what cnnzoo can build."""


class TrainingError(CnnzooError):
    """Training could not go on (a non-finite loss, an output dir it cannot write)."""


class TrainingInterrupted(TrainingError):
    """SIGINT/SIGTERM stopped training; a checkpoint to resume from was written first."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number  # the shell's convention for "killed by signal N"
