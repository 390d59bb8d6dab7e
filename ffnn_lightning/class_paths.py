"""Classes named by dotted path in a config (``torch.nn.Mish``), for activations, losses and
metrics alike."""

from __future__ import annotations

import importlib
import importlib.util


def class_at(path: str, base: type) -> type | None:
    """The subclass of ``base`` that ``path`` names, or None where it names nothing such."""
    module_name, _, name = path.rpartition(".")
    if not module_name:
        return None
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) and issubclass(found, base) else None


def importable(module: str) -> bool:
    """Whether ``module`` can be imported from here, found without importing it (a dotted
    name imports its parent packages)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False
