"""A LightningModule written as Lightning's documentation writes one: the reference that the
template must train exactly like, whatever Trainer flag or callback is in play."""

from __future__ import annotations

import lightning as L
import torch
from torch.nn import functional as F
from torchmetrics.classification import BinaryAccuracy

from ffnn_lightning.model.networks import FeedForwardNetwork


class DocsModule(L.LightningModule):
    """Binary classification, automatic optimization, metrics logged with ``self.log``."""

    def __init__(self, network: FeedForwardNetwork, optimizer, lr: float | None = None) -> None:
        super().__init__()
        self.network = network
        self.optimizer = optimizer
        self.lr = lr  # for Lightning's learning-rate finder
        self.train_acc = BinaryAccuracy()
        self.val_acc = BinaryAccuracy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_acc(logits, y)
        self.log("val/loss", F.binary_cross_entropy_with_logits(logits, y))
        self.log("val/acc", self.val_acc)

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        if self.lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = self.lr
        return optimizer
