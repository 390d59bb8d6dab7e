"""scikit-learn's bundled real data sets: shipped with the package, nothing to download."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn import datasets

from ffnn_lightning.data.base import TabularDataModule
from ffnn_lightning.errors import InputError

BundledName = Literal["iris", "wine", "breast_cancer", "digits", "diabetes"]


class BundledDataModule(TabularDataModule):
    """One of scikit-learn's bundled data sets by name.

    ``iris`` (3 classes, 150 rows), ``wine`` (3 classes, 178), ``breast_cancer`` (binary,
    569), ``digits`` (10 classes, 8x8 pixels = 64 features, 1797) and ``diabetes``
    (regression, 442). The task follows from the targets; other arguments (split, scaling,
    batch size) are those of TabularDataModule's.
    """

    def __init__(self, name: BundledName = "iris", **kwargs) -> None:
        super().__init__(**kwargs)
        self.name = name

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        loader = getattr(datasets, f"load_{self.name}", None)
        if loader is None:
            raise InputError(
                f"Unknown bundled data set {self.name!r}. Use one of {list(BundledName.__args__)}."
            )
        return loader(return_X_y=True)
