"""Every use of Lightning's private or undocumented internals in this package, each with why no
public API does it.

``tests/test_lightning_internals.py`` exercises each one and fails, naming it, if a Lightning
upgrade moves it. Nothing else in the package may reach behind Lightning's public API.
"""

from __future__ import annotations

import lightning as L


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
