"""The fast route: several optimizer steps per Lightning training step, same updates.

Lightning's per-batch machinery (closures, hooks, progress and logging bookkeeping) costs about
a third of the chapter's step at batch 16 on a CPU. :class:`FastSteps` pays it once per
``steps_per_call`` batches instead, the idea of Keras's ``steps_per_execution``: for the
length of a fit it has Lightning hand the module's training step a ``dataloader_iter``, and
for each batch it calls the module's own ``training_step(batch, batch_idx)``, then
``loss.backward()`` and the optimizer's ``step()``, exactly what automatic optimization does. The
epoch's plain schedulers are stepped at its end, as Lightning would.

Faster and the same, or not at all: before each fit it looks for anything that needs
Lightning's per-batch route and, if it finds one, leaves the fit to Lightning and says why in
one line (see :meth:`FastSteps.plain_route_reason`). It fails closed: the module's
``training_step`` must come from a class that says it is content to run in chunks (a true
``handles_step_chunks``, as :class:`~ffnn_lightning.model.FeedForwardModule` says; a subclass
that overrides ``training_step`` is not trusted until it says so too), and a ``self.log``
called from inside the step while the fast route runs stops the fit with the remedy instead
of logging differently from Lightning. A callback whose ``on_train_batch_start/end`` are
content to run once per call (each sees the call's last batch, and ``outputs["loss"]`` holds
every batch's loss) says so with a true ``handles_step_chunks`` attribute.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import types
from collections.abc import Iterator, Mapping

import lightning as L
import torch
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import is_overridden

from ffnn_lightning.errors import InputError
from ffnn_lightning.training.lightning_internals import count_manual_steps, hand_step_count_to

# Hooks that Lightning runs for every batch; a callback with ``handles_step_chunks`` is
# content to have them run once per call.
BATCH_HOOKS = ("on_train_batch_start", "on_train_batch_end")
# ... and around every backward and optimizer step, which the fast route does not run.
PER_BATCH_HOOKS = (
    *BATCH_HOOKS,
    "on_before_backward",
    "on_after_backward",
    "on_before_zero_grad",
    "on_before_optimizer_step",
)
# The module's own hooks into the optimization step and the batch transfer.
MODULE_STEP_HOOKS = (
    *PER_BATCH_HOOKS,
    "backward",
    "optimizer_step",
    "optimizer_zero_grad",
    "configure_gradient_clipping",
    "on_before_batch_transfer",
    "transfer_batch_to_device",
    "on_after_batch_transfer",
)


class FastSteps(L.Callback):
    """Runs ``steps_per_call`` optimizer steps (one per batch) in each Lightning training step.

    Args:
        steps_per_call: batches per Lightning training step; 1 turns the fast route off.
    """

    handles_step_chunks = True

    def __init__(self, steps_per_call: int = 16) -> None:
        if steps_per_call < 1:
            raise ValueError(f"steps_per_call must be a positive integer, got {steps_per_call}.")
        self.steps_per_call = steps_per_call
        self.engaged = False
        self.reason: str | None = None  # why the last fit took Lightning's route, if it did

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.reason = reason = self.plain_route_reason(trainer, pl_module)
        if reason is not None:
            rank_zero_info(f"Fast steps off: {reason}; Lightning steps every batch itself.")
            return
        self.engaged = True
        self._attach(trainer, pl_module)  # before the fit loop reads the step's signature

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after a resumed run's loop state is restored, which may come from the other route
        hand_step_count_to(trainer, manual=self.engaged)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.engaged:
            self._attach(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The module's epoch hooks see its own ``training_step`` (``self.log`` asks for a
        batch size otherwise), and the epoch's schedulers are stepped: Lightning steps none
        under manual optimization."""
        if not self.engaged:
            return
        _detach(pl_module)
        for config in trainer.lr_scheduler_configs:
            if (trainer.current_epoch + 1) % config.frequency == 0:
                pl_module.lr_scheduler_step(config.scheduler, None)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.engaged:
            _detach(pl_module)
            pl_module.automatic_optimization = True
            hand_step_count_to(trainer, manual=False)
            self.engaged = False

    def _attach(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Give the module, for this fit, a training step that takes the data iterator and
        runs ``steps_per_call`` batches through the class's own ``training_step``."""
        step = type(pl_module).training_step.__get__(pl_module)

        def training_step(module, dataloader_iter: Iterator) -> dict[str, torch.Tensor] | None:
            return self._run_steps(trainer, module, step, dataloader_iter)

        pl_module.training_step = types.MethodType(training_step, pl_module)
        pl_module.automatic_optimization = False

    def _run_steps(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        step,
        dataloader_iter: Iterator,
    ) -> dict[str, torch.Tensor] | None:
        """One optimizer step per batch, as automatic optimization takes it: a step that
        returns None is skipped. The batches move to the device in one call, and the torch
        optimizer is stepped directly: the hooks Lightning would run around it are overridden
        by nothing on this route (see :meth:`plain_route_reason`). Returns every batch's loss
        (for callbacks called once per call)."""
        optimizer = module.optimizers().optimizer
        batches = list(itertools.islice(dataloader_iter, self.steps_per_call))
        losses = []
        with self._no_step_logging(module):
            for batch, batch_idx, _ in trainer.strategy.batch_to_device(batches):
                output = step(batch, batch_idx)
                loss = output["loss"] if isinstance(output, Mapping) else output
                if loss is None:
                    continue
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
        count_manual_steps(trainer, len(losses))
        return {"loss": torch.stack(losses)} if losses else None

    @contextlib.contextmanager
    def _no_step_logging(self, module: L.LightningModule) -> Iterator[None]:
        """While the module's steps run here, ``self.log`` stops the fit with the remedy:
        logged per call, its values would differ from Lightning's per-step logging."""

        def refuse(*args, **kwargs) -> None:
            raise InputError(
                f"{type(module).__name__} called self.log inside its training step on the "
                f"fast route, which runs {self.steps_per_call} optimizer steps per Lightning "
                "step and cannot log each one as Lightning does. Log once per epoch (in "
                "on_train_epoch_end), or take Lightning's route: --fast_steps.steps_per_call 1."
            )

        module.log = module.log_dict = refuse
        try:
            yield
        finally:
            del module.log, module.log_dict

    def plain_route_reason(self, trainer: L.Trainer, module: L.LightningModule) -> str | None:
        """Why this fit needs Lightning's per-batch route, or None if the fast route is the
        same. Every check is one feature that works per batch or per optimizer step."""
        if self.steps_per_call == 1:
            return "steps_per_call is 1"
        checks = [
            (not module.automatic_optimization, "the module optimizes manually"),
            (
                "dataloader_iter" in inspect.signature(module.training_step).parameters,
                "training_step takes a dataloader_iter",
            ),
            (
                type(trainer.strategy) is not SingleDeviceStrategy,
                f"strategy {type(trainer.strategy).__name__} (one device only)",
            ),
            (str(trainer.precision) != "32-true", f"precision {trainer.precision}"),
            (
                trainer.accumulate_grad_batches != 1,
                f"accumulate_grad_batches={trainer.accumulate_grad_batches}",
            ),
            (bool(trainer.gradient_clip_val), f"gradient_clip_val={trainer.gradient_clip_val}"),
            (bool(trainer.fast_dev_run), "fast_dev_run"),
            (_counts_batches(trainer.limit_train_batches), "limit_train_batches"),
            (trainer.overfit_batches > 0, "overfit_batches"),
            (_counts_batches(trainer.val_check_interval), "val_check_interval"),
            (trainer.max_steps != -1, "max_steps"),
            (
                bool(trainer.reload_dataloaders_every_n_epochs),
                "reload_dataloaders_every_n_epochs",
            ),
            (bool(trainer.min_steps), "min_steps"),
            (not isinstance(trainer.profiler, PassThroughProfiler), "a profiler"),
        ]
        reason = next((why for failed, why in checks if failed), None)
        return (
            reason
            or _optimizer_reason(trainer)
            or _callback_reason(trainer)
            or _module_reason(module)
        )


def _detach(pl_module: L.LightningModule) -> None:
    """The class's own ``training_step`` again."""
    pl_module.__dict__.pop("training_step", None)


def _counts_batches(limit: int | float) -> bool:
    """Whether a Trainer limit other than the whole epoch is set (an int counts batches)."""
    return isinstance(limit, int) or limit != 1.0


def _optimizer_reason(trainer: L.Trainer) -> str | None:
    if len(trainer.optimizers) != 1:
        return f"{len(trainer.optimizers)} optimizers"
    optimizer = trainer.optimizers[0]
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        return f"{type(optimizer).__name__} needs a closure"
    for config in trainer.lr_scheduler_configs:
        if config.interval != "epoch" or config.reduce_on_plateau:
            kind = "a per-step" if config.interval != "epoch" else "a plateau"
            return f"{kind} learning-rate scheduler ({type(config.scheduler).__name__})"
    return None


def _callback_reason(trainer: L.Trainer) -> str | None:
    for callback in trainer.callbacks:
        name = type(callback).__name__
        if isinstance(callback, LearningRateFinder | BatchSizeFinder):
            return f"{name} runs trial fits"
        excused = BATCH_HOOKS if getattr(callback, "handles_step_chunks", False) else ()
        hooks = [
            h
            for h in PER_BATCH_HOOKS
            if h not in excused and is_overridden(h, callback, L.Callback)
        ]
        if hooks:
            return f"{name} runs {hooks[0]} for every batch"
    return None


def _module_reason(module: L.LightningModule) -> str | None:
    hooks = [h for h in MODULE_STEP_HOOKS if is_overridden(h, module, L.LightningModule)]
    if hooks:
        return f"{type(module).__name__} overrides {hooks[0]}"
    owner = next(c for c in type(module).__mro__ if "training_step" in vars(c))
    if not vars(owner).get("handles_step_chunks", False):
        return (
            f"{owner.__qualname__}.training_step does not say it may run in chunks (a class "
            "whose step logs nothing per step says so with handles_step_chunks = True)"
        )
    return None
