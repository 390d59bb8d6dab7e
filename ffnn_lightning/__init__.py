"""ffnn-lightning: a PyTorch Lightning template for feed-forward neural networks."""

from ffnn_lightning.data import BlobsDataModule, TabularDataModule
from ffnn_lightning.module import FeedForwardModule
from ffnn_lightning.network import FeedForwardNetwork

__all__ = ["BlobsDataModule", "FeedForwardModule", "FeedForwardNetwork", "TabularDataModule"]
