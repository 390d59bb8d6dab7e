"""Reading checkpoint files as plain data: one place for the CLI and the data modules."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ffnn_lightning.errors import InputError

TRUST_REMEDY = "Pass --weights_only false only for a checkpoint you trust."


def read_checkpoint(
    path: Path, trusted: bool = False, name: str = "checkpoint", remedy: str = TRUST_REMEDY
) -> dict:
    """A checkpoint's contents, loaded as plain data unless ``trusted``. A missing file, or
    one whose pickle would build other Python objects (which can run code), is an InputError
    that calls it ``name`` and ends with ``remedy``."""
    if not path.is_file():
        raise InputError(f"{name} {str(path)!r} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except (RuntimeError, EOFError, OSError) as error:  # torch's reader on a cut or foreign file
        raise InputError(
            f"{name} {str(path)!r} is not a readable checkpoint: the file is truncated or "
            f"corrupt, or not a checkpoint. ({str(error).splitlines()[0]})"
        ) from error
    except pickle.UnpicklingError as error:
        raise InputError(
            f"Refused to load {str(path)!r}: it holds Python objects other than tensors and "
            f"plain values, and unpickling them could run code. {remedy} "
            f"({_unpickling_reason(error)})"
        ) from error


def _unpickling_reason(error: Exception) -> str:
    """The line of torch's long weights-only message that names the offending object."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "GLOBAL" in line), lines[0] if lines else "")
