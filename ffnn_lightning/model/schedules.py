"""Learning-rate schedules beyond ``torch.optim.lr_scheduler``'s, selectable from YAML."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ffnn_lightning.errors import InputError


class WarmupCosineLR(LambdaLR):
    """A linear warm-up from ``lr / (warmup_epochs + 1)`` to ``lr`` over ``warmup_epochs``,
    then a cosine decay to 0 at ``max_epochs`` (stepped once per epoch).

    The schedule of the strong tabular recipes (RealMLP, TabM): the first epochs' large
    gradients move the weights less, the last epochs settle. Set ``max_epochs`` to the
    trainer's.
    """

    def __init__(self, optimizer: Optimizer, warmup_epochs: int = 3, max_epochs: int = 30) -> None:
        if not 0 <= warmup_epochs < max_epochs:
            raise InputError(
                f"WarmupCosineLR needs 0 <= warmup_epochs < max_epochs, got "
                f"warmup_epochs={warmup_epochs}, max_epochs={max_epochs}."
            )
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
        super().__init__(optimizer, self.factor)

    def factor(self, epoch: int) -> float:
        """The share of the optimizer's learning rate used in ``epoch`` (from 0)."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        done = (epoch - self.warmup_epochs) / (self.max_epochs - self.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
