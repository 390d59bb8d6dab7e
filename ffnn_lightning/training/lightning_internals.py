"""Every use of Lightning's private or undocumented internals in this package, each with why no
public API does it.

``tests/test_lightning_internals.py`` exercises each one and fails, naming it, if a Lightning
upgrade moves it. Nothing else in the package may reach behind Lightning's public API.
"""

from __future__ import annotations

import weakref

import lightning as L
import torch
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric


def hand_step_count_to(trainer: L.Trainer, manual: bool) -> None:
    """Make the optimizer steps counted so far count for the route that trains next.

    Lightning keeps two counters of optimizer steps, one for automatic and one for manual
    optimization, and ``trainer.global_step`` reads the one of the module's current mode. The
    fast route trains in manual mode and hands the module back in automatic mode, and a run
    may resume on the other route than the one that wrote its checkpoint; without this,
    ``global_step`` (hence ``max_steps``, checkpoints' step, the logs) would restart at 0.
    The counters are attributes of the fit loop's epoch loop, which Lightning does not
    document; no public API sets ``global_step``.
    """
    loop = trainer.fit_loop.epoch_loop
    automatic = loop.automatic_optimization.optim_progress.optimizer.step.total
    manual_total = loop.manual_optimization.optim_step_progress.total
    count = max(automatic.completed, manual_total.completed)
    target = manual_total if manual else automatic
    target.ready = target.completed = count


def count_manual_steps(trainer: L.Trainer, steps: int) -> None:
    """Count ``steps`` optimizer steps made outside Lightning in manual optimization.

    The fast route steps the torch optimizer itself: through ``LightningOptimizer.step`` each
    step would also run every callback's ``on_before_optimizer_step`` (none of which is
    overridden on that route), about a tenth of the chapter's step. Lightning counts a
    manual step only inside that call, in the epoch loop's undocumented progress tracker.
    """
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    for tracker in (progress.total, progress.current):
        tracker.ready += steps
        tracker.completed += steps


def move_logged_values_only_when_needed() -> None:
    """Make ``self.log`` move a logged value's stored result to the value's device only when
    it is not there already (once, for a fit on one device).

    Each ``self.log`` call ends in ``_ResultMetric.to(value.device)``, which walks every
    attribute of the stored result (a torchmetrics ``Metric``) even when nothing moves: a
    large part of an epoch's fixed cost on a small table, whose epoch logs about fifteen
    values. ``_ResultMetric`` is private to Lightning's logger connector and no public API
    logs to ``trainer.callback_metrics`` without it. Idempotent.
    """
    if getattr(_ResultMetric.to, "moves_when_needed", False):
        return
    move = _ResultMetric.to
    # beside the results, not in them: a result restored from a checkpoint (its tensors
    # mapped anywhere) or copied is not here, and is moved on its first call. By id: a
    # torchmetrics Metric's hash follows its state tensors, which each update replaces.
    moved_to: dict[int, tuple[weakref.ref, torch.device | None]] = {}

    def to(self, *args, **kwargs):
        device = args[0] if len(args) == 1 and not kwargs else None
        known, there = moved_to.get(id(self), (lambda: None, None))
        if device is not None and there == device and known() is self:
            return self
        result = move(self, *args, **kwargs)
        key = id(self)
        moved_to[key] = (weakref.ref(self, lambda _: moved_to.pop(key, None)), device)
        return result

    to.moves_when_needed = True
    _ResultMetric.to = to
