"""Reading checkpoint files as plain data, and the classes they name: one place for the CLI,
the commands and the data modules.

A checkpoint loads as plain data (``weights_only``), but the class paths stored in it (the
module, its network, activation, loss and metrics, the data module) are imported when it is
used, and importing a module runs its code. So a stored class path is used only within this
package, the libraries it is built on, or a module the user names (on the command line or in
a config file); ``--weights_only false`` trusts the whole checkpoint.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import lightning as L
import torch

from ffnn_lightning.class_paths import class_at, importable
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


# the packages a checkpoint may name without the user naming them: this one and those it uses
TRUSTED_PACKAGES = frozenset(
    {"ffnn_lightning", "torch", "torchmetrics", "lightning", "sklearn", "numpy", "tabm"}
    | {"rtdl_num_embeddings"}
)
# keys whose value is always a class (or function) path, whatever its case
PATH_KEYS = ("class_path", "_class_path", "_instantiator")
# a dotted name ending in a capitalised one (torch.nn.Mish, my_net.L1Module), not "data.csv"
CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\.[A-Z]\w*$")
DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def stored_class_paths(value: object, key: str = "") -> Iterator[str]:
    """Every class path in a checkpoint's hyperparameters, however deep."""
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            yield from stored_class_paths(inner, str(inner_key))
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from stored_class_paths(inner)
    elif isinstance(value, str) and (key in PATH_KEYS or CLASS_PATH.match(value)):
        yield value


def named_modules(texts: Iterable[str]) -> set[str]:
    """The modules a user's command line and config files name: each dotted name in them,
    and every prefix of it (``my_net.L1Module`` names ``my_net`` and ``my_net.L1Module``)."""
    named = set()
    for text in texts:
        for dotted in DOTTED.findall(text):
            parts = dotted.split(".")
            named.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return named


NAME_REMEDY = (
    "Name it yourself: on the command line (--model {path} for a module) or in a --config "
    "file (the run's config.yaml names its classes), or pass --weights_only false for a "
    "checkpoint you trust."
)


def check_class_paths(
    hparams: dict, checkpoint: str, named: set[str], remedy: str = NAME_REMEDY
) -> None:
    """Refuse, in one line and before anything imports them, the class paths among a
    checkpoint's ``hparams`` (those to be used) outside :data:`TRUSTED_PACKAGES` and the
    modules the user ``named``."""
    foreign = sorted(
        {
            path
            for path in stored_class_paths(hparams)
            if path.split(".")[0] not in TRUSTED_PACKAGES and path.rpartition(".")[0] not in named
        }
    )
    if foreign:
        raise InputError(
            f"{checkpoint} names {', '.join(foreign)}, from outside ffnn_lightning and the "
            "libraries it uses; importing it would run its code. " + remedy.format(path=foreign[0])
        )


# the module's arguments before the network was injected (model.network)
EARLIER_ARGUMENTS = ("in_features", "hidden", "activation", "embedding", "ensemble")


def check_model_arguments(hparams: dict, checkpoint: str) -> None:
    """Refuse, in one line, a checkpoint whose model class cannot be imported from here, or
    one written before the network became ``model.network``."""
    if "_class_path" in hparams:
        check_importable(hparams["_class_path"], checkpoint, "model")
    earlier = [name for name in EARLIER_ARGUMENTS if name in hparams]
    if earlier:
        raise InputError(
            f"{checkpoint} was written by an earlier ffnn-lightning, whose module took "
            f"{', '.join(earlier)}: these are now the network's arguments "
            "(model.network.init_args.hidden, ...). Train it again with this version."
        )


def module_class(
    checkpoint: Path, named: set[str] | None, remedy: str = NAME_REMEDY
) -> type[L.LightningModule]:
    """The LightningModule class a checkpoint was trained with (a subclass named by
    ``--model``, or FeedForwardModule), refused in one line where it cannot be imported or
    is not to be (:func:`check_class_paths` with ``named``; ``None``: a checkpoint trusted
    whole): Lightning's ``load_from_checkpoint`` must be called on that class itself."""
    from ffnn_lightning.model.module import FeedForwardModule

    state = read_checkpoint(checkpoint, trusted=named is None)
    hparams = state.get("hyper_parameters", {})
    if named is not None:
        check_class_paths(hparams, str(checkpoint), named, remedy)
    check_model_arguments(hparams, str(checkpoint))
    path = hparams.get("_class_path")
    if path is None:
        return FeedForwardModule
    found = class_at(path, L.LightningModule)
    if found is None:
        raise InputError(f"{checkpoint} names the model {path}, which is no LightningModule.")
    return found


def check_importable(class_path: str, checkpoint: str, kind: str = "data module") -> None:
    """Refuse, in one line, a checkpoint's class that cannot be imported from here."""
    module = class_path.rpartition(".")[0]
    if not importable(module):
        raise InputError(
            f"{checkpoint} was trained with the {kind} {class_path}, and module "
            f"{module!r} cannot be imported from here. Run from the folder that holds "
            f"{module.split('.')[0]}.py, or add that folder to PYTHONPATH."
        )
