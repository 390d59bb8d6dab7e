"""What a researcher edits: the networks, the parts that wrap them, the LightningModule, its
metrics and schedules."""

from ffnn_lightning.model.module import FeedForwardModule
from ffnn_lightning.model.networks import FeedForwardNetwork, ResidualMLP, TabM
from ffnn_lightning.model.parts import (
    CategoryEmbedding,
    Ensemble,
    NetworkFactory,
    PeriodicEmbedding,
)

__all__ = [
    "CategoryEmbedding",
    "Ensemble",
    "FeedForwardModule",
    "FeedForwardNetwork",
    "NetworkFactory",
    "PeriodicEmbedding",
    "ResidualMLP",
    "TabM",
]
