"""The template's own errors: the command line reports them in one line, without a traceback."""

from __future__ import annotations


class InputError(ValueError):
    """A value in the config, on the command line or in the data that cannot work; the message
    names it and says what would be valid."""


class TrainingDiverged(FloatingPointError):
    """The training loss stopped being a finite number."""
