"""The LightningModule: trains a FeedForwardNetwork for one task with an injected optimizer.

It is Lightning's textbook module: ``training_step(batch, batch_idx)`` returns the loss and
Lightning's automatic optimization does the rest. Change the loss, the metrics or what is
logged here; the fast route (:mod:`ffnn_lightning.fast_steps`) calls this same
``training_step``, so an edit applies on every route.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from ffnn_lightning.errors import InputError
from ffnn_lightning.metrics import EpochMetrics
from ffnn_lightning.network import Ensemble, FeedForwardNetwork, members_mean
from ffnn_lightning.tasks import get_task


class FeedForwardModule(L.LightningModule):
    """A feed-forward network, its loss, its metrics and its optimizer.

    Args:
        in_features: input width (linked from the data module by the CLI).
        out_features: output width (linked from the data: 1 for binary, one per class).
        hidden: widths of the hidden layers, input to output; ``[]`` for none.
        activation: hidden activation by name (``relu``, ``tanh``, ...) or class path.
        task: ``binary``, ``multiclass`` or ``regression`` (linked from the data).
        loss: one of the task's losses by name, or the class path of a loss module
            (``torch.nn.SmoothL1Loss``); ``None`` takes the task's default (binary
            cross-entropy, cross-entropy, squared error).
        metrics: extra torchmetrics logged on validation and test beside the task's own, as
            ``{name: class path}`` (``{precision: torchmetrics.classification.BinaryPrecision}``);
            a class that takes ``num_classes`` gets the number of classes.
        dropout: dropout probability after each hidden activation (0 disables it).
        batch_norm: batch normalisation before each hidden activation.
        optimizer: any ``torch.optim`` class with its arguments.
        lr_scheduler: optional learning-rate scheduler, stepped once per epoch
            (``ReduceLROnPlateau`` watches ``val/loss``).
        lr: when set, replaces the optimizer's learning rate. Lightning's learning-rate finder
            looks for this attribute and sets it (``python -m ffnn_lightning lr_find``).
        target_mean: regression only (linked from the data): the network learns the targets
            standardized with ``target_mean`` and ``target_std`` and its outputs are mapped
            back, so that metrics and predictions are in the target's own units; the loss is
            in standardized units.
        target_std: see ``target_mean``.
        class_weight: weigh each class's rows in the loss: ``balanced`` (inversely to its
            count among the training rows, so that each class weighs as much in all) or one
            weight per class, in the order of the classes; binary ``bce`` takes them as
            ``pos_weight = w1 / w0``. For imbalanced data; ``None`` weighs every row alike.
        class_counts: each class's count among the training rows (linked from the data).
        label_smoothing: classes only: train towards targets moved this share of the way to
            the uniform distribution (0.1: a common choice), against over-confident outputs.
        embedding: ``periodic``: embed each input in ``embedding_dim`` learned periodic
            features before the first layer (numerical embeddings, strong on tables);
            ``None``: the inputs as they are.
        embedding_dim: numbers per input of the embedding.
        embedding_min_rows: use the ``embedding`` only when the training split has at least
            this many rows (``train_rows``); below it the inputs go in as they are, since on
            small tables the embedding's extra weights overfit (README, "A strong preset").
        train_rows: rows in the training split (linked from the data).
        category_levels: how many levels each category column given as codes has (linked
            from the data, whose ``category_embedding_min_levels`` chooses those columns):
            each gets a learned table of ``category_embedding_dim`` numbers per level.
        category_embedding_dim: numbers per level of a coded category.
        ensemble: train this many networks side by side, each on its own loss (from its own
            initial weights); metrics and predictions use their mean output. 1: one network.
    """

    def __init__(
        self,
        in_features: int = 64,
        out_features: int = 1,
        hidden: Sequence[int] = (256, 1024),
        activation: str = "relu",
        task: str = "binary",
        loss: str | None = None,
        metrics: dict[str, str] | None = None,
        dropout: float = 0.0,
        batch_norm: bool = False,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr: float | None = None,
        target_mean: list[float] | None = None,
        target_std: list[float] | None = None,
        class_weight: Literal["balanced"] | list[float] | None = None,
        class_counts: list[int] | None = None,
        label_smoothing: float = 0.0,
        embedding: Literal["periodic"] | None = None,
        embedding_dim: int = 16,
        embedding_min_rows: int = 0,
        train_rows: int | None = None,
        category_levels: list[int] | None = None,
        category_embedding_dim: int = 8,
        ensemble: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.task = get_task(task)
        weights = class_weights(class_weight, class_counts)
        if not 0.0 <= label_smoothing < 1.0:
            raise InputError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        self.loss_fn = self.task.loss(loss, out_features, weights, label_smoothing)
        if ensemble < 1:
            raise InputError(f"ensemble must be a positive number of networks, got {ensemble}.")
        embedding = embedding_for(embedding, embedding_min_rows, train_rows)
        networks = [
            FeedForwardNetwork(
                in_features,
                list(hidden),
                out_features,
                activation,
                dropout,
                batch_norm,
                embedding,
                embedding_dim,
                category_levels or (),
                category_embedding_dim,
            )
            for _ in range(ensemble)
        ]
        self.network = networks[0] if ensemble == 1 else Ensemble(networks)
        if (target_mean is not None or target_std is not None) and task != "regression":
            raise InputError(f"target_mean and target_std are for regression, not {task}.")
        # not in the state dict: the hyperparameters carry them
        for name, value in (("target_mean", target_mean), ("target_std", target_std)):
            value = None if value is None else torch.tensor(value, dtype=torch.float32)
            self.register_buffer(name, value, persistent=False)
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        # only training is checkpointed mid-epoch; validation and test begin and end between
        self.train_metrics = EpochMetrics(self.task.metrics(out_features, False), persistent=True)
        self.val_metrics = EpochMetrics(self.task.metrics(out_features, True, metrics))
        self.test_metrics = EpochMetrics(self.task.metrics(out_features, True, metrics))
        # lets Lightning's model summary show each layer's shapes and FLOPs
        self.example_input_array = torch.zeros(1, in_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def model_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The loss, the outputs in the target's units, and the target: one step of any stage.
        An ensemble's loss is the mean of its members' losses, its outputs their mean."""
        x, target = batch
        outputs = self(x)
        target = self._standardized(target)
        if isinstance(self.network, Ensemble):  # [rows, members, outputs]: each one's loss
            members = outputs.shape[1]
            loss = self.loss_fn(outputs.flatten(0, 1), target.repeat_interleave(members, dim=0))
        else:
            loss = self.loss_fn(outputs, target)
        return loss, self._model_outputs(outputs), batch[1]

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
        outputs = self.task.predict(self._model_outputs(self(x)))
        return {**outputs, **({"target": target[0]} if target else {})}

    # Epoch metrics: one log call each per epoch (a per-step self.log costs about a third of
    # the chapter's step).
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
        if self.hparams.lr is not None:
            for group in optimizer.param_groups:
                group["lr"] = self.hparams.lr
        if self.lr_scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.lr_scheduler(optimizer), "monitor": "val/loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def _standardized(self, target: Tensor) -> Tensor:
        return target if self.target_mean is None else (target - self.target_mean) / self.target_std

    def _model_outputs(self, outputs: Tensor) -> Tensor:
        return model_outputs(self.network, outputs, self.target_mean, self.target_std)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another network shape, naming the first layer that differs.
        (Checkpoints written before the metrics had their own attributes load too.)"""
        state = checkpoint["state_dict"]
        for name in [n for n in state if n.startswith("stage_metrics.")]:
            if name.startswith("stage_metrics.train_."):
                state[name.replace("stage_metrics.train_.", "train_metrics.")] = state[name]
            del state[name]
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


def model_outputs(
    network: torch.nn.Module, outputs: Tensor, mean: Tensor | None, std: Tensor | None
) -> Tensor:
    """The network's raw ``outputs`` as the model's: an ensemble's members averaged, and a
    regression's (trained on standardized targets) back in the target's units. Plain
    PyTorch, shared with the exported model (:class:`ffnn_lightning.export.Predictor`)."""
    outputs = members_mean(network, outputs)
    return outputs if mean is None else outputs * std + mean


def embedding_for(embedding: str | None, min_rows: int, train_rows: int | None) -> str | None:
    """``embedding``, or None where the training split is known to be under ``min_rows``."""
    if embedding is None or train_rows is None or train_rows >= min_rows:
        return embedding
    rank_zero_info(
        f"No {embedding} embedding: {train_rows} training rows, under embedding_min_rows "
        f"({min_rows}); the inputs go to the first layer as they are."
    )
    return None


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
