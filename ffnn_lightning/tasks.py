"""What each kind of problem needs: its losses, its output transform and its metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import classification

from ffnn_lightning.errors import InputError


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


@dataclass(frozen=True)
class Task:
    """A problem type: which losses fit it, how logits become outputs, which metrics it logs."""

    name: str
    losses: dict[str, Callable[[], nn.Module]]
    predict: Callable[[Tensor], dict[str, Tensor]]
    metrics: Callable[[int, bool], dict[str, torchmetrics.Metric]]  # (outputs, full set)
    min_outputs: int = 1
    max_outputs: int | None = None

    def loss(self, name: str | None, out_features: int) -> nn.Module:
        """The loss module; refuses a loss or an output width that does not fit the task."""
        name = name or next(iter(self.losses))
        if name not in self.losses:
            raise InputError(
                f"Loss {name!r} does not fit the {self.name} task. "
                f"Valid losses for {self.name}: {sorted(self.losses)}."
            )
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
        return self.losses[name]()


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


def _binary_metrics(_: int, full: bool) -> dict[str, torchmetrics.Metric]:
    metrics = {"acc": classification.BinaryAccuracy(validate_args=False)}
    if full:
        metrics["f1"] = classification.BinaryF1Score(validate_args=False)
        metrics["auroc"] = classification.BinaryAUROC(validate_args=False)
    return metrics


def _multiclass_metrics(num_classes: int, full: bool) -> dict[str, torchmetrics.Metric]:
    metrics = {
        "acc": classification.MulticlassAccuracy(num_classes, average="micro", validate_args=False)
    }
    if full:
        metrics["f1"] = classification.MulticlassF1Score(
            num_classes, average="macro", validate_args=False
        )
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
    ),
    "multiclass": Task(
        "multiclass",
        {"cross_entropy": nn.CrossEntropyLoss, "hinge": nn.MultiMarginLoss},
        _multiclass_predict,
        _multiclass_metrics,
        min_outputs=2,
    ),
    "regression": Task(
        "regression",
        {"mse": nn.MSELoss, "huber": nn.HuberLoss, "mae": nn.L1Loss},
        _regression_predict,
        _regression_metrics,
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise InputError(f"Unknown task {name!r}. Valid tasks: {sorted(TASKS)}.")
    return TASKS[name]
