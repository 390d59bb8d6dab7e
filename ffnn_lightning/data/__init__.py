"""Data modules: one base for in-memory tables, one small class per data set."""

from ffnn_lightning.data.base import TabularDataModule
from ffnn_lightning.data.batches import TensorBatches
from ffnn_lightning.data.bundled import BundledDataModule
from ffnn_lightning.data.files import FileDataModule
from ffnn_lightning.data.keel import KeelDataModule
from ffnn_lightning.data.synthetic import (
    BlobsDataModule,
    CirclesDataModule,
    ClassificationDataModule,
    MoonsDataModule,
    RegressionDataModule,
)

__all__ = [
    "BlobsDataModule",
    "BundledDataModule",
    "CirclesDataModule",
    "ClassificationDataModule",
    "FileDataModule",
    "KeelDataModule",
    "MoonsDataModule",
    "RegressionDataModule",
    "TabularDataModule",
    "TensorBatches",
]
