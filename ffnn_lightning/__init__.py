"""ffnn-lightning: a PyTorch Lightning template for feed-forward neural networks."""

import importlib
import importlib.abc
import importlib.util
import sys

# the names the package offers, imported when first used: ``python -m ffnn_lightning --help``
# loads neither PyTorch nor Lightning
EXPORTS = {
    "BlobsDataModule": "ffnn_lightning.data",
    "TabularDataModule": "ffnn_lightning.data",
    "FeedForwardModule": "ffnn_lightning.model",
    "FeedForwardNetwork": "ffnn_lightning.model",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'ffnn_lightning' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)


# Modules that moved when the package was grouped by job: configs and saved config.yaml files
# name classes by these paths, which keep working as aliases of the new modules.
MOVED = {
    "ffnn_lightning.schedules": "ffnn_lightning.model.schedules",
    "ffnn_lightning.metrics": "ffnn_lightning.model.metrics",
    "ffnn_lightning.network": "ffnn_lightning.model.networks",
    "ffnn_lightning.module": "ffnn_lightning.model.module",
    "ffnn_lightning.insight": "ffnn_lightning.training.insight",
    "ffnn_lightning.logs": "ffnn_lightning.training.logs",
    "ffnn_lightning.callbacks": "ffnn_lightning.training.callbacks",
    "ffnn_lightning.fast_steps": "ffnn_lightning.training.fast_steps",
    "ffnn_lightning.trainer": "ffnn_lightning.training.trainer",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path (:data:`MOVED`) as the module now at the new path."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        pass


sys.meta_path.append(_MovedModules())
