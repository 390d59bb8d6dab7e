"""What each kind of problem is: which targets make it, its output width and target tensor,
its losses, its output transform and its metrics. The one place that knows the task names."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict

import numpy as np
import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import classification

from ffnn_lightning.class_paths import class_at
from ffnn_lightning.errors import InputError

TaskName = Literal["binary", "multiclass", "regression"]


class BinaryHingeLoss(nn.Module):
    """Hinge loss on one logit per row with targets 0/1 (mapped to -1/+1)."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.relu(1 - (2 * target - 1) * logits).mean()


class SigmoidBCELoss(nn.Module):
    """The chapter's listing exactly: a sigmoid, then ``nn.BCELoss`` on the probabilities.

    For study only. ``BCELoss`` clamps log(0) to -100, so a confidently wrong sample whose
    sigmoid rounds to exactly 0 or 1 in float32 costs 100 and passes no gradient: training
    cannot fix it. That is the chapter's SGD plateau near 248 (about 2.5 such samples x 100).
    ``bce`` (``BCEWithLogitsLoss``) computes the same loss from the logits without that trap.
    """

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(torch.sigmoid(logits), target)


class BinaryBalancedAccuracy(classification.MulticlassAccuracy):
    """Balanced accuracy (the mean of the two classes' recalls) from one logit per row: the
    accuracy that a majority-class guess cannot inflate on imbalanced data."""

    def __init__(self, **kwargs) -> None:
        super().__init__(num_classes=2, average="macro", **kwargs)

    def update(self, preds: Tensor, target: Tensor) -> None:
        super().update((preds > 0).long().view(-1), target.long().view(-1))


class SmoothedBCEWithLogitsLoss(nn.BCEWithLogitsLoss):
    """Binary cross-entropy against targets moved ``smoothing / 2`` towards 0.5 (label
    smoothing: no row is pushed to an infinitely confident logit)."""

    def __init__(self, smoothing: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.smoothing = smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return super().forward(logits, target * (1 - self.smoothing) + 0.5 * self.smoothing)


def _bce(weights: list[float] | None, smoothing: float) -> nn.Module:
    """Binary cross-entropy; class weights [w0, w1] as ``pos_weight = w1 / w0``."""
    pos_weight = None if weights is None else torch.tensor([weights[1] / weights[0]])
    if not smoothing:
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    return SmoothedBCEWithLogitsLoss(smoothing, pos_weight=pos_weight)


def _cross_entropy(weights: list[float] | None, smoothing: float) -> nn.Module:
    weight = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing)


@dataclass(frozen=True)
class Task:
    """A problem type: which losses fit it, how logits become outputs, which metrics it logs."""

    name: str
    losses: dict[str, Callable[[], nn.Module]]
    predict: Callable[[Tensor], dict[str, Tensor]]
    base_metrics: Callable[[int, bool], dict[str, torchmetrics.Metric]]  # (outputs, full set)
    min_outputs: int = 1
    max_outputs: int | None = None
    # the loss that takes class weights and label smoothing: its name, and its maker
    weighted: tuple[str, Callable[[list[float] | None, float], nn.Module]] | None = None

    @property
    def is_classification(self) -> bool:
        return self.name != "regression"

    def num_outputs(self, classes: list[str] | None, targets: np.ndarray) -> int:
        """The network's output width: 1 for binary, one per class, one per target column."""
        if self.name == "binary":
            return 1
        if self.name == "multiclass":
            return len(classes)
        return targets.reshape(len(targets), -1).shape[1]

    def target_tensor(self, targets: np.ndarray) -> Tensor:
        """Targets as the loss takes them: class indices for multiclass, float columns else."""
        if self.name == "multiclass":
            return torch.from_numpy(targets.reshape(-1).astype(np.int64))
        return torch.from_numpy(targets.astype(np.float32).reshape(len(targets), -1))

    def loss(
        self,
        name: str | None,
        out_features: int,
        weights: list[float] | None = None,
        smoothing: float = 0.0,
    ) -> nn.Module:
        """The loss module, by name or class path, with per-class ``weights`` and label
        ``smoothing`` where given; refuses a loss name, an output width, weights or smoothing
        that do not fit the task."""
        name = name or next(iter(self.losses))
        loss_class = self.losses[name] if name in self.losses else _loss_class(name, self)
        if out_features < self.min_outputs or (
            self.max_outputs and out_features > self.max_outputs
        ):
            width = (
                f"exactly {self.min_outputs}"
                if self.max_outputs == self.min_outputs
                else f"at least {self.min_outputs}"
            )
            raise InputError(
                f"The {self.name} task needs {width} output unit(s), got out_features="
                f"{out_features}."
            )
        if weights is None and not smoothing:
            return loss_class()
        if self.weighted is None or name != self.weighted[0]:
            fits = f"the {self.weighted[0]} loss" if self.weighted else "classification"
            raise InputError(
                f"class_weight and label_smoothing are for {fits}, not {self.name} with "
                f"loss {name!r}."
            )
        return self.weighted[1](weights, smoothing)

    def metrics(
        self, out_features: int, full: bool, extra: dict[str, str] | None = None
    ) -> dict[str, torchmetrics.Metric]:
        """The task's metrics (the full set on validation and test) and the config's extras."""
        return {**self.base_metrics(out_features, full), **extra_metrics(extra, out_features)}


def _binary_predict(logits: Tensor) -> dict[str, Tensor]:
    """The label and both classes' probabilities (the single logit is class 1's)."""
    probability = torch.sigmoid(logits)
    return {
        "label": (probability > 0.5).long(),
        "probability": torch.cat([1 - probability, probability], 1),
    }


def _multiclass_predict(logits: Tensor) -> dict[str, Tensor]:
    probability = torch.softmax(logits, dim=-1)
    return {"label": probability.argmax(dim=-1), "probability": probability}


def _regression_predict(outputs: Tensor) -> dict[str, Tensor]:
    return {"prediction": outputs}


def _loss_class(path: str, task: Task) -> type[nn.Module]:
    """A loss module class by class path (``torch.nn.SmoothL1Loss``)."""
    cls = class_at(path, nn.Module)
    if cls is not None:
        return cls
    raise InputError(
        f"Loss {path!r} does not fit the {task.name} task. Valid losses for {task.name}: "
        f"{sorted(task.losses)}, or the class path of a torch.nn.Module loss such as "
        "'torch.nn.SmoothL1Loss'."
    )


def extra_metrics(paths: dict[str, str] | None, num_outputs: int) -> dict[str, torchmetrics.Metric]:
    """Metrics named in the config, ``{name: class path}``; a class that takes
    ``num_classes`` gets the output width."""
    metrics = {}
    for name, path in (paths or {}).items():
        cls = class_at(path, torchmetrics.Metric)
        if cls is None:
            raise InputError(
                f"Metric {name}: {path!r} is not the class path of a torchmetrics.Metric, "
                "e.g. 'torchmetrics.classification.BinaryPrecision'."
            )
        takes_classes = "num_classes" in inspect.signature(cls).parameters
        metrics[name] = cls(num_classes=num_outputs) if takes_classes else cls()
    return metrics


def _binary_metrics(_: int, full: bool) -> dict[str, torchmetrics.Metric]:
    metrics = {"acc": classification.BinaryAccuracy(validate_args=False)}
    if full:
        metrics["bal_acc"] = BinaryBalancedAccuracy(validate_args=False)
        metrics["f1"] = classification.BinaryF1Score(validate_args=False)
        metrics["auroc"] = classification.BinaryAUROC(validate_args=False)
    return metrics


def _multiclass_metrics(num_classes: int, full: bool) -> dict[str, torchmetrics.Metric]:
    metrics = {
        "acc": classification.MulticlassAccuracy(num_classes, average="micro", validate_args=False)
    }
    if full:
        metrics["bal_acc"] = classification.MulticlassAccuracy(
            num_classes, average="macro", validate_args=False
        )
        metrics["f1"] = classification.MulticlassF1Score(
            num_classes, average="macro", validate_args=False
        )
        metrics["auroc"] = classification.MulticlassAUROC(num_classes, validate_args=False)
    return metrics


def _regression_metrics(num_outputs: int, full: bool) -> dict[str, torchmetrics.Metric]:
    metrics = {"mae": torchmetrics.MeanAbsoluteError()}
    if full:
        metrics["mse"] = torchmetrics.MeanSquaredError()
        metrics["r2"] = torchmetrics.R2Score(multioutput="uniform_average")
    return metrics


TASKS: dict[str, Task] = {
    "binary": Task(
        "binary",
        {"bce": nn.BCEWithLogitsLoss, "hinge": BinaryHingeLoss, "bce_sigmoid": SigmoidBCELoss},
        _binary_predict,
        _binary_metrics,
        min_outputs=1,
        max_outputs=1,
        weighted=("bce", _bce),
    ),
    "multiclass": Task(
        "multiclass",
        {"cross_entropy": nn.CrossEntropyLoss, "hinge": nn.MultiMarginLoss},
        _multiclass_predict,
        _multiclass_metrics,
        min_outputs=2,
        weighted=("cross_entropy", _cross_entropy),
    ),
    "regression": Task(
        "regression",
        {"mse": nn.MSELoss, "huber": nn.HuberLoss, "mae": nn.L1Loss},
        _regression_predict,
        _regression_metrics,
    ),
}


# whole-number targets are classes up to this many values, or up to MAX_CLASSES codes (0..k-1
# or 1..k) that hold MIN_ROWS_PER_CLASS rows each on average; others are amounts or counts
FEW_VALUES, MAX_CLASSES, MIN_ROWS_PER_CLASS = 10, 100, 20


def infer_task(targets: np.ndarray, classes: list[str] | None = None) -> tuple[Task, str]:
    """The task a person would read in the targets, and why: text labels are classes, and
    so are a few whole numbers, or class codes 0..k-1 with many rows each; fractions, other
    whole numbers (prices, counts) and several target columns are regression."""
    if classes is not None:
        return _classes(len(classes)), f"{len(classes)} declared classes"
    if targets.ndim == 2 and targets.shape[1] > 1:
        return TASKS["regression"], f"{targets.shape[1]} target columns"
    values = np.unique(targets)
    rows, count = len(targets), len(values)
    if targets.dtype.kind not in "iuf":
        return _classes(count), f"{count} distinct labels"
    if not np.all(np.mod(values, 1) == 0):
        return TASKS["regression"], "numbers with fractions"
    per_value = rows / count
    codes = values[0] in (0, 1) and values[-1] - values[0] == count - 1
    if count <= FEW_VALUES or (codes and count <= MAX_CLASSES and per_value >= MIN_ROWS_PER_CLASS):
        return _classes(count), f"{count} distinct whole numbers in {rows} rows"
    return TASKS["regression"], (
        f"{count} distinct whole numbers in {rows} rows, {per_value:.1f} rows each: amounts "
        "or counts"
    )


def _classes(count: int) -> Task:
    return TASKS["binary" if count <= 2 else "multiclass"]


class DataInfo(TypedDict, total=False):
    """What the data's fit tells the model (``data.data_info``, linked into ``model.data_info``
    by the CLI, kept in checkpoints): the module builds its network, loss and metrics from it."""

    in_features: int  # the network's input width
    out_features: int  # its output width: 1 for binary, one per class, one per target
    task: str  # binary, multiclass or regression
    target_mean: list[float] | None  # regression targets are standardized with these
    target_std: list[float] | None
    class_counts: list[int] | None  # training rows per class (class_weight: balanced)
    train_rows: int | None  # rows in the training split
    category_levels: list[int] | None  # levels of each coded category (the last inputs)
    number_features: int | None  # how many of the first inputs are numbers (None: all but codes)


# a module built by hand, without data: the chapter's 64 inputs and one binary output
CHAPTER_DATA: DataInfo = {"in_features": 64, "out_features": 1, "task": "binary"}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise InputError(f"Unknown task {name!r}. Valid tasks: {sorted(TASKS)}.")
    return TASKS[name]
