"""The LightningModule: an injected network, the task's loss and metrics, the injected optimizer.

It is Lightning's textbook module: ``training_step(batch, batch_idx)`` returns the loss and
Lightning's automatic optimization does the rest. Change the loss, the metrics or what is
logged here, or subclass it (``--model my_module.MyModule``); the fast route
(:mod:`ffnn_lightning.training.fast_steps`) calls this same ``training_step``.
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from ffnn_lightning.errors import InputError
from ffnn_lightning.model.metrics import EpochMetrics
from ffnn_lightning.model.networks import FeedForwardNetwork
from ffnn_lightning.model.parts import NetworkFactory, build_network
from ffnn_lightning.tasks import CHAPTER_DATA, DataInfo, get_task


class FeedForwardModule(L.LightningModule):
    """A network, its task's loss and metrics, and its optimizer.

    Args:
        network: the network class with its arguments (``model.network``, default
            :class:`~ffnn_lightning.model.FeedForwardNetwork`); the module calls it with the
            input and output widths and whatever else of ``data_info`` it takes.
        loss: one of the task's losses by name, or the class path of a loss module
            (``torch.nn.SmoothL1Loss``); ``None`` takes the task's default (binary
            cross-entropy, cross-entropy, squared error).
        metrics: extra torchmetrics logged on validation and test beside the task's own, as
            ``{name: class path}`` (``{precision: torchmetrics.classification.BinaryPrecision}``);
            a class that takes ``num_classes`` gets the number of classes.
        optimizer: any ``torch.optim`` class with its arguments.
        lr_scheduler: optional learning-rate scheduler, stepped once per epoch
            (``ReduceLROnPlateau`` watches ``val/loss``).
        lr: when set, replaces the optimizer's learning rate. Lightning's learning-rate finder
            looks for this attribute and sets it (``python -m ffnn_lightning lr_find``).
        class_weight: weigh each class's rows in the loss: ``balanced`` (inversely to its
            count among the training rows) or one weight per class, in the classes' order;
            binary ``bce`` takes them as ``pos_weight = w1 / w0``. ``None``: every row alike.
        label_smoothing: classes only: train towards targets moved this share of the way to
            the uniform distribution (0.1: a common choice), against over-confident outputs.
            A regression has no labels to smooth: it trains without, and says so (so that
            one preset serves every task).
        data_info: what the data's fit knows (linked from the data by the CLI; without it,
            the chapter's 64 inputs and one binary output): widths, task, class counts, the
            target's scale (regression learns standardized targets; metrics and predictions
            are in the target's units, the loss in standardized units).
    """

    # training_step logs nothing per step, so the fast route may run it in chunks of batches
    # (a subclass that overrides training_step says so again, or takes Lightning's route)
    handles_step_chunks = True

    def __init__(
        self,
        network: NetworkFactory = FeedForwardNetwork,
        loss: str | None = None,
        metrics: dict[str, str] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr: float | None = None,
        class_weight: Literal["balanced"] | list[float] | None = None,
        label_smoothing: float = 0.0,
        data_info: DataInfo | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # a network or optimizer given as Python objects (not from a config) is no data for a
        # checkpoint: load_from_checkpoint(path, network=...) takes it again
        objects = ("network", "optimizer", "lr_scheduler")
        self.remove_ignored_hparams([k for k in objects if callable(self.hparams.get(k))])
        self.data_info = info = {**CHAPTER_DATA, **(data_info or {})}
        self.task = get_task(info["task"])
        width = info["out_features"]
        if not 0.0 <= label_smoothing < 1.0:
            raise InputError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        weights = class_weights(class_weight, info.get("class_counts"))
        if label_smoothing and not self.task.is_classification:
            rank_zero_info(f"label_smoothing ({label_smoothing}) is for classes: not used.")
            label_smoothing = 0.0
        self.loss_fn = self.task.loss(loss, width, weights, label_smoothing)
        self.network = build_network(
            network,
            info["in_features"],
            width,
            info.get("category_levels"),
            info.get("train_rows"),
            info.get("number_features"),
        )
        mean, std = info.get("target_mean"), info.get("target_std")
        if (mean is not None or std is not None) and info["task"] != "regression":
            raise InputError(f"target_mean and target_std are for regression, not {info['task']}.")
        # not in the state dict: data_info carries them
        for name, value in (("target_mean", mean), ("target_std", std)):
            value = None if value is None else torch.tensor(value, dtype=torch.float32)
            self.register_buffer(name, value, persistent=False)
        # set after training by the Calibration callback (training/calibration.py): the
        # logits' temperature (1: none) and the validation rows' conformal scores (none)
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("conformal_scores", torch.empty(0))
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        # only training is checkpointed mid-epoch; validation and test begin and end between
        self.train_metrics = EpochMetrics(self.task.metrics(width, False), persistent=True)
        self.val_metrics = EpochMetrics(self.task.metrics(width, True, metrics))
        self.test_metrics = EpochMetrics(self.task.metrics(width, True, metrics))
        # lets Lightning's model summary show each layer's shapes and FLOPs
        self.example_input_array = torch.zeros(1, info["in_features"])

    def forward(self, x: Tensor) -> Tensor:
        """The network's raw outputs with a member axis: ``[rows, members, outputs]`` (one
        member for a single network)."""
        return member_axis(self.network(x))

    def model_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The loss, the outputs in the target's units, and the target: one step of any
        stage. Each member is trained on its own loss (their mean); outputs are the members'
        mean."""
        x, target = batch
        outputs = self(x)
        # the target once per member (a view: no copy for a single network)
        each = target.unsqueeze(1).expand(target.shape[0], outputs.shape[1], *target.shape[1:])
        loss = self.loss_fn(outputs.flatten(0, 1), self._standardized(each.flatten(0, 1)))
        return loss, self.model_outputs(outputs), target

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, outputs, target = self.model_step(batch)
        self.train_metrics.update(loss, outputs, target)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, outputs, target = self.model_step(batch)
        self.val_metrics.update(loss, outputs, target)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, outputs, target = self.model_step(batch)
        self.test_metrics.update(loss, outputs, target)

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Tensor]:
        """The task's outputs (labels, probabilities, values), and the target if known."""
        x, *target = batch
        outputs = self.task.predict(self.model_outputs(self(x)))
        return {**outputs, **({"target": target[0]} if target else {})}

    # Epoch metrics: one log call each per epoch (a per-step self.log would cost a large part
    # of the chapter's small step).
    def on_train_epoch_end(self) -> None:
        self._log_epoch(self.train_metrics.compute("train"))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics.compute("val"))

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics.compute("test"))

    def _log_epoch(self, values: dict[str, Tensor]) -> None:
        """Log the epoch's values; the loss and the task's first metric (accuracy, MAE) also
        go on the progress bar, which would run off a terminal's edge with all of them.

        A logged ``step`` is the x of its values in TensorBoard (Lightning's documented way):
        the optimizer steps so far, the same on every route; training also logs ``epoch``
        (from 0), as Lightning does where no step is given."""
        shown = dict(list(values.items())[:2])
        self.log_dict(shown, prog_bar=True)
        self.log_dict({name: v for name, v in values.items() if name not in shown})
        self.log("step", float(self.global_step))
        if self.trainer.training:
            self.log("epoch", float(self.current_epoch))

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        if self.hparams.get("lr") is not None:
            for group in optimizer.param_groups:
                group["lr"] = self.hparams.lr
        if self.lr_scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.lr_scheduler(optimizer), "monitor": "val/loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def _standardized(self, target: Tensor) -> Tensor:
        return target if self.target_mean is None else (target - self.target_mean) / self.target_std

    def model_outputs(self, outputs: Tensor) -> Tensor:
        return model_outputs(outputs, self.target_mean, self.target_std, self.temperature)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another network shape, naming the first layer that differs;
        take its conformal scores whatever their number (a checkpoint from before calibration
        has none, and temperature 1)."""
        stored = checkpoint["state_dict"]
        stored.setdefault("temperature", torch.ones(()))
        self.conformal_scores = stored.setdefault("conformal_scores", torch.empty(0)).clone()
        own = self.state_dict()
        for name, tensor in stored.items():
            mine = own.get(name)
            if (
                isinstance(mine, Tensor)
                and isinstance(tensor, Tensor)
                and mine.shape != tensor.shape
            ):
                raise InputError(
                    f"The checkpoint does not fit this network: {name} has shape "
                    f"{list(tensor.shape)} there and {list(mine.shape)} here. It was "
                    "trained with other data (input width, classes) or another model.network."
                )


def member_axis(outputs: Tensor) -> Tensor:
    """A network's outputs as ``[rows, members, outputs]``: ``[rows, outputs]`` is one member."""
    return outputs.view(outputs.shape[0], -1, outputs.shape[-1])


def model_outputs(
    outputs: Tensor, mean: Tensor | None, std: Tensor | None, temperature: Tensor
) -> Tensor:
    """The model's outputs from ``[rows, members, outputs]``: the members' mean, and a
    regression's (trained on standardized targets) back in the target's units; classes'
    logits divided by their ``temperature``. Plain PyTorch, shared with the exported model
    (:class:`ffnn_lightning.commands.export.Predictor`)."""
    outputs = outputs.mean(dim=1)
    return outputs / temperature if mean is None else outputs * std + mean


def class_weights(
    class_weight: Literal["balanced"] | list[float] | None, counts: list[int] | None
) -> list[float] | None:
    """Per-class loss weights: as given, or ``balanced`` from the training rows' counts."""
    if class_weight is None:
        return None
    if class_weight != "balanced":
        if counts and len(class_weight) != len(counts):
            raise InputError(
                f"class_weight needs one weight per class ({len(counts)}), got {class_weight}."
            )
        return [float(w) for w in class_weight]
    if not counts:
        raise InputError("class_weight: balanced needs the data's class counts (classes only).")
    return [sum(counts) / (len(counts) * max(count, 1)) for count in counts]
