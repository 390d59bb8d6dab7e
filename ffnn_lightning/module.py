"""The LightningModule: trains a FeedForwardNetwork for one task with an injected optimizer."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Sequence
from typing import Literal

import lightning as L
import torch
import torchmetrics
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from ffnn_lightning.errors import InputError, TrainingDiverged
from ffnn_lightning.network import FeedForwardNetwork
from ffnn_lightning.tasks import get_task

STAGES = ("train", "val", "test")
# Hooks that Lightning runs around each backward and optimizer step; while nothing overrides
# them, FeedForwardModule calls backward and step directly (see its _backward).
_DIRECT_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")

# training_step takes a dataloader_iter on purpose (steps_per_call) and uses no batch_idx, which
# is all that Lightning's two notices about that signature warn of.
warnings.filterwarnings("ignore", message=".*`dataloader_iter`.*")
# Epoch values are already reduced across processes by torchmetrics; Lightning cannot see that.
warnings.filterwarnings("ignore", message=".*sync_dist=True.*")


def _direct_steps_allowed(trainer: L.Trainer, module: L.LightningModule) -> bool:
    """Whether backward and optimizer step may bypass Lightning's hooks: float32 on a single
    device (no gradient scaling, no gradient syncing), and no hook that would be skipped."""
    from lightning.pytorch.strategies import SingleDeviceStrategy
    from lightning.pytorch.utilities.model_helpers import is_overridden

    overridden = any(is_overridden(h, module, L.LightningModule) for h in _DIRECT_HOOKS) or any(
        is_overridden(h, callback, L.Callback)
        for callback in trainer.callbacks
        for h in _DIRECT_HOOKS
    )
    return (
        type(trainer.strategy) is SingleDeviceStrategy
        and str(trainer.precision) in ("32-true", "32")
        and not overridden
    )


class EpochMetrics(nn.Module):
    """Epoch-level metrics of one stage, exact over all samples and cheap per step.

    A step only keeps small copies of its loss, outputs and targets; every ``flush_rows`` rows
    and at the epoch's end they are concatenated and handed to torchmetrics in one update
    (torchmetrics also reduces them across processes). A torchmetrics update per step costs as
    much as a small model's step; the buffer keeps memory bounded on large data.
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
        self._steps: list[tuple[Tensor, Tensor, Tensor]] = []
        self._rows = 0

    def update(self, loss: Tensor, outputs: Tensor, target: Tensor) -> None:
        # copies: a detached view of a step's output can keep that step's buffers alive
        self._steps.append((loss.detach().clone(), outputs.detach().clone(), target))
        self._rows += len(target)
        if self._rows >= self.flush_rows:
            self.flush()

    def state_dict(self, *args, **kwargs):
        """The metric states with the buffered steps folded in, so that a checkpoint taken
        mid-epoch holds every step so far."""
        self.flush()
        return super().state_dict(*args, **kwargs)

    def flush(self) -> None:
        """Hand the buffered steps to torchmetrics."""
        if not self._steps:
            return
        losses, outputs, targets = zip(*self._steps, strict=True)
        sizes = torch.tensor([len(t) for t in targets], device=losses[0].device)
        self.loss.update(torch.stack(losses), weight=sizes)
        outputs, targets = torch.cat(outputs), torch.cat(targets)
        for metric in self.metrics.values():
            metric.update(outputs, targets)
        self._steps.clear()
        self._rows = 0

    def compute(self) -> dict[str, Tensor]:
        """Epoch values; also resets, ready for the next epoch."""
        self.flush()
        values = {"loss": self.loss.compute()}
        values.update({name: metric.compute() for name, metric in self.metrics.items()})
        self.reset()
        return values

    def reset(self) -> None:
        self._steps.clear()
        self._rows = 0
        self.loss.reset()
        for metric in self.metrics.values():
            metric.reset()


class FeedForwardModule(L.LightningModule):
    """A feed-forward network, its loss and its optimizer.

    Args:
        in_features: input width (linked from the data module by the CLI).
        out_features: output width (linked from the data: 1 for binary, one per class).
        hidden: widths of the hidden layers, input to output; ``[]`` for none.
        activation: hidden activation by name (``relu``, ``tanh``, ...) or class path.
        task: ``binary``, ``multiclass`` or ``regression`` (linked from the data).
        loss: one of the task's losses; ``None`` takes its default (binary cross-entropy,
            cross-entropy, squared error).
        dropout: dropout probability after each hidden activation (0 disables it).
        batch_norm: batch normalisation before each hidden activation.
        optimizer: any ``torch.optim`` class with its arguments.
        lr_scheduler: optional learning-rate scheduler, stepped once per epoch
            (``ReduceLROnPlateau`` on ``val/loss``).
        steps_per_call: optimizer steps (one per batch) that one Lightning training step runs,
            the idea of Keras's ``steps_per_execution``. The updates are exactly those of one
            step per batch; Lightning's per-step overhead is paid once per call instead.
            Per-batch callback hooks then run once per call (see the README).
        gradient_clip_val: clip gradients to this norm (or value) before each optimizer step;
            it replaces the Trainer's flag, which manual optimization does not support.
        gradient_clip_algorithm: ``norm`` or ``value``.
        target_mean: regression only (linked from the data): the network learns the targets
            standardized with ``target_mean`` and ``target_std`` and its outputs are mapped
            back, so that metrics and predictions are in the target's own units; the loss is
            in standardized units.
        target_std: see ``target_mean``.
    """

    def __init__(
        self,
        in_features: int = 64,
        out_features: int = 1,
        hidden: Sequence[int] = (256, 1024),
        activation: str = "relu",
        task: str = "binary",
        loss: str | None = None,
        dropout: float = 0.0,
        batch_norm: bool = False,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        steps_per_call: int = 16,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: Literal["norm", "value"] = "norm",
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
    ) -> None:
        super().__init__()
        if steps_per_call < 1:
            raise InputError(f"steps_per_call must be a positive integer, got {steps_per_call}.")
        self.automatic_optimization = False
        self._direct = False  # set for each fit in on_train_start
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.task = get_task(task)
        self.loss_fn = self.task.loss(loss, out_features)
        self.network = FeedForwardNetwork(
            in_features, list(hidden), out_features, activation, dropout, batch_norm
        )
        if (target_mean is not None or target_std is not None) and task != "regression":
            raise InputError(f"target_mean and target_std are for regression, not {task}.")
        # not in the state dict: the hyperparameters carry them
        for name, value in (("target_mean", target_mean), ("target_std", target_std)):
            value = None if value is None else torch.tensor(value, dtype=torch.float32)
            self.register_buffer(name, value, persistent=False)
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.stage_metrics = nn.ModuleDict(
            {
                # only training is ever checkpointed mid-epoch; validation and test begin
                # and end between checkpoints
                f"{stage}_": EpochMetrics(
                    self.task.metrics(out_features, stage != "train"), persistent=stage == "train"
                )
                for stage in STAGES
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def training_step(self, dataloader_iter: Iterator) -> None:
        """Up to ``steps_per_call`` plain optimizer steps, one per batch (see the class doc)."""
        trainer = self.trainer
        steps = self.hparams.steps_per_call
        if trainer.max_steps >= 0:
            steps = min(steps, trainer.max_steps - trainer.global_step)
        batches = [batch for batch, _, _ in itertools.islice(dataloader_iter, steps)]
        optimizer = self.optimizers()
        losses = []
        for batch in trainer.strategy.batch_to_device(batches):
            loss = self._shared_step(batch, "train")
            losses.append(loss.detach())
            optimizer.zero_grad()
            self._backward(loss)
            if self.hparams.gradient_clip_val:
                self.clip_gradients(
                    optimizer,
                    gradient_clip_val=self.hparams.gradient_clip_val,
                    gradient_clip_algorithm=self.hparams.gradient_clip_algorithm,
                )
            self._optimizer_step(optimizer)
        self._stop_unless_finite(losses)

    def on_train_start(self) -> None:
        self._direct = _direct_steps_allowed(self.trainer, self)

    def _backward(self, loss: Tensor) -> None:
        """``manual_backward``, or plain ``loss.backward()`` where that is all it would do.

        Lightning's route runs the backward and optimizer-step hooks of the module and of every
        callback, about a tenth of the chapter's step time. Plain float32 training on one device
        needs nothing else from it, so while no callback (and not the module) overrides one of
        those hooks, the same backward and step are called directly (see ``_DIRECT_HOOKS``).
        """
        if self._direct:
            loss.backward()
        else:
            self.manual_backward(loss)

    def _optimizer_step(self, optimizer: LightningOptimizer) -> None:
        """``optimizer.step()``, directly where allowed (see :meth:`_backward`); the step is
        counted either way, so ``global_step``, ``max_steps`` and checkpoints stay exact."""
        if not self._direct:
            optimizer.step()
            return
        optimizer._on_before_step()
        optimizer.optimizer.step()
        optimizer._on_after_step()

    def _stop_unless_finite(self, losses: list[Tensor]) -> None:
        """Raise TrainingDiverged, naming the first step whose loss was NaN or infinite.

        Checked once per call (one device sync per ``steps_per_call`` steps); no checkpoint is
        written after it, so the last one on disk comes from before the divergence.
        """
        finite = torch.isfinite(torch.stack(losses)) if losses else None
        if finite is None or bool(finite.all()):
            return
        first = int((~finite).nonzero()[0])
        step = self.trainer.global_step - len(losses) + first + 1
        raise TrainingDiverged(
            f"The training loss became {losses[first].item()} at epoch {self.current_epoch}, "
            f"optimizer step {step}. Try a lower learning rate "
            "(--model.optimizer.init_args.lr) or gradient clipping (--model.gradient_clip_val)."
        )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        """The task's outputs (labels, probabilities, values), and the target if known."""
        x, *target = batch
        outputs = self.task.predict(self._in_target_units(self.network(x)))
        return {**outputs, **({"target": target[0]} if target else {})}

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, target = batch
        outputs = self.network(x)
        loss = self.loss_fn(outputs, self._standardized(target))
        self.stage_metrics[f"{stage}_"].update(loss, self._in_target_units(outputs), target)
        return loss

    def _standardized(self, target: Tensor) -> Tensor:
        return target if self.target_mean is None else (target - self.target_mean) / self.target_std

    def _in_target_units(self, outputs: Tensor) -> Tensor:
        return outputs if self.target_mean is None else outputs * self.target_std + self.target_mean

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another network shape, naming the first layer that differs."""
        own = self.state_dict()
        for name, tensor in checkpoint["state_dict"].items():
            mine = own.get(name)
            if (
                isinstance(mine, Tensor)
                and isinstance(tensor, Tensor)
                and mine.shape != tensor.shape
            ):
                raise InputError(
                    f"The checkpoint does not fit this network: {name} has shape "
                    f"{list(tensor.shape)} there and {list(mine.shape)} here. It was "
                    "trained with other data (input width, classes) or another --model.hidden."
                )

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        scheduler = self.lr_schedulers()
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            metrics = self.trainer.callback_metrics
            scheduler.step(metrics.get("val/loss", metrics["train/loss"]))
        elif scheduler is not None:
            scheduler.step()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def _log_epoch(self, stage: str) -> None:
        """One log call per metric per epoch; the per-step hot path logs nothing."""
        values = self.stage_metrics[f"{stage}_"].compute()
        # batch_size only weights per-step values, of which there are none; Lightning asks for
        # it whenever training_step takes a dataloader_iter.
        self.log_dict(
            {f"{stage}/{name}": value for name, value in values.items()},
            prog_bar=True,
            batch_size=1,
        )

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return optimizer
        scheduler = self.lr_scheduler(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
