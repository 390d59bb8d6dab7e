"""Epoch metrics that are exact over all samples and cheap per step."""

from __future__ import annotations

import torch
import torchmetrics
from torch import Tensor, nn


class EpochMetrics(nn.Module):
    """The loss and the task's torchmetrics of one stage, computed once per epoch.

    A step only keeps small copies of its loss, outputs and targets; every ``flush_rows`` rows,
    and when the epoch's values are computed, they are concatenated and handed to torchmetrics
    in one update (torchmetrics also reduces them across processes). A torchmetrics update per
    step costs as much as a small model's step; the buffer keeps memory bounded on large data.
    The loss is the mean over samples (each step weighted by its batch size), as Lightning's
    ``self.log(..., on_epoch=True)`` reduces it.
    """

    def __init__(
        self,
        metrics: dict[str, torchmetrics.Metric],
        flush_rows: int = 16384,
        persistent: bool = False,
    ) -> None:
        super().__init__()
        # A NaN loss must show as NaN, not be dropped ("warn"/"ignore") or raise ("error");
        # "disable" would do, but torchmetrics 1.9 then ignores the weights (batch sizes).
        self.loss = torchmetrics.MeanMetric(nan_strategy=float("nan"))
        self.metrics = nn.ModuleDict(metrics)
        for metric in (self.loss, *self.metrics.values()):
            metric.persistent(persistent)  # in checkpoints: a resumed epoch's means stay exact
        self.flush_rows = flush_rows
        self.pending: list[tuple[Tensor, Tensor, Tensor]] = []
        self.pending_rows = 0

    def update(self, loss: Tensor, outputs: Tensor, target: Tensor) -> None:
        # copies: a detached view of a step's output can keep that step's buffers alive
        self.pending.append((loss.detach().clone(), outputs.detach().clone(), target))
        self.pending_rows += len(target)
        if self.pending_rows >= self.flush_rows:
            self.flush()

    def state_dict(self, *args, **kwargs):
        """The metric states with the pending steps folded in, so that a checkpoint taken
        mid-epoch holds every step so far."""
        self.flush()
        return super().state_dict(*args, **kwargs)

    def flush(self) -> None:
        """Hand the pending steps to torchmetrics."""
        if not self.pending:
            return
        losses, outputs, targets = zip(*self.pending, strict=True)
        sizes = torch.tensor([len(t) for t in targets], device=losses[0].device)
        self.loss.update(torch.stack(losses), weight=sizes)
        outputs, targets = torch.cat(outputs), torch.cat(targets)
        for metric in self.metrics.values():
            metric.update(outputs, targets)
        self.pending.clear()
        self.pending_rows = 0

    def compute(self, prefix: str) -> dict[str, Tensor]:
        """The epoch's values named ``prefix/name``; also resets, ready for the next epoch."""
        self.flush()
        values = {"loss": self.loss.compute()}
        values.update({name: metric.compute() for name, metric in self.metrics.items()})
        self.reset()
        return {f"{prefix}/{name}": value for name, value in values.items()}

    def reset(self) -> None:
        self.pending.clear()
        self.pending_rows = 0
        self.loss.reset()
        for metric in self.metrics.values():
            metric.reset()
