"""A researcher's own pieces, each named by class path from the command line or YAML:

BASE="--config configs/blobs_adam.yaml"
python -m ffnn_lightning fit $BASE --model.network my_net.ResidualMLP
python -m ffnn_lightning fit $BASE --model my_net.L1Module --model.l1 0.001
python -m ffnn_lightning fit $BASE --model.loss my_net.FocalLoss
python -m ffnn_lightning fit $BASE --trainer.callbacks+=my_net.PrintLoss
"""

import lightning as L
import torch
from torch import nn

from ffnn_lightning import FeedForwardModule


class ResidualMLP(nn.Module):
    """A network: its first two arguments are given by the data, the rest come from YAML."""

    def __init__(self, in_features: int, out_features: int, width: int = 64) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, width)
        self.block = nn.Sequential(nn.ReLU(), nn.Linear(width, width))
        self.out = nn.Linear(width, out_features)

    def forward(self, x):
        h = self.first(x)
        return self.out(h + self.block(h))


class L1Module(FeedForwardModule):
    """A module: the template's, plus an L1 penalty on every weight."""

    handles_step_chunks = True  # its training_step logs nothing per step: the fast route may run it

    def __init__(self, *args, l1: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.l1 = l1

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss + self.l1 * sum(p.abs().sum() for p in self.network.parameters())


class FocalLoss(nn.Module):
    """A loss for one logit per row (binary): easy rows weigh less (Lin et al., 2017)."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits, target):
        bce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return ((1 - torch.exp(-bce)) ** self.gamma * bce).mean()


class PrintLoss(L.Callback):
    """A callback: one line per epoch with the validation loss (validation ends before the
    training epoch does)."""

    def on_train_epoch_end(self, trainer, pl_module):
        print(f"epoch {trainer.current_epoch}: val/loss {trainer.callback_metrics['val/loss']:.4f}")
