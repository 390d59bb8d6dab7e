"""Classes named by dotted path in a config (``torch.nn.Mish``), for activations, losses and
metrics alike."""

from __future__ import annotations

import importlib


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
