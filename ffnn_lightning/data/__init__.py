"""Data modules: one base for in-memory tables, one small class per data set."""

from ffnn_lightning.data.base import TabularDataModule
from ffnn_lightning.data.batches import TensorBatches
from ffnn_lightning.data.synthetic import BlobsDataModule

__all__ = ["BlobsDataModule", "TabularDataModule", "TensorBatches"]
