"""Probabilities you can trust and how sure a prediction is: temperature scaling and split
conformal scores, both fitted on the validation rows and kept in the module's checkpoint.

The module holds two buffers that this callback fills: ``temperature`` (its classification
logits are divided by it before they become probabilities: in ``validate``, ``test``,
``predict`` and the exported ONNX model) and ``conformal_scores`` (each validation row's
nonconformity: one minus the calibrated probability of its true class, or the absolute error
of a regression), from which ``predict`` makes prediction sets and intervals
(``--predictions.init_args.coverage 0.9``).
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor
from torchmetrics.functional.classification import multiclass_calibration_error

from ffnn_lightning.errors import InputError
from ffnn_lightning.training.logs import attach


class Calibration(L.Callback):
    """Fits a temperature and the conformal scores on the validation rows after every
    validation of ``fit``, so that each checkpoint holds the ones of its own weights.

    Logs ``val/nll`` and ``val/ece`` (expected calibration error over ``bins`` equal-width
    bins of confidence) with the temperature applied, ``val/nll_raw`` and ``val/ece_raw``
    without it, and ``val/temperature``; ``test`` logs the same of its rows with the
    checkpoint's temperature. At the end of ``fit`` it draws ``reliability.png`` (into the run
    folder, and TensorBoard's images). Accuracy does not move: dividing logits by a positive
    number keeps their order. Regression gets the conformal scores only.
    """

    def __init__(self, temperature: bool = True, bins: int = 15) -> None:
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}")
        self.temperature = temperature
        self.bins = bins
        self._rows: list[tuple[Tensor, Tensor]] = []
        self._last: tuple[Tensor, Tensor] | None = None  # the final validation's, for the diagram

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for name in ("temperature", "conformal_scores", "task", "model_outputs"):
            if not hasattr(pl_module, name):
                raise InputError(
                    f"Calibration needs a module with a {name!r} (FeedForwardModule or a "
                    f"subclass); {type(pl_module).__name__} has none."
                )

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._rows = []

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        with torch.no_grad():
            self._rows.append((pl_module(batch[0]).mean(dim=1), batch[1]))  # raw member mean

    on_test_batch_end = on_validation_batch_end

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        logits, target = self._gathered(pl_module)
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            if self.temperature and pl_module.task.is_classification:
                pl_module.temperature.fill_(fit_temperature(logits, target))
            pl_module.conformal_scores = conformal_scores(pl_module, logits, target)
            self._last = (logits, target)
        self._log(pl_module, "val", logits, target)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self._log(pl_module, "test", *self._gathered(pl_module))

    def on_fit_end(self, trainer: L.Trainer, pl_module) -> None:
        folder = trainer.log_dir  # every process asks: a collective call
        if not (trainer.is_global_zero and self._last and pl_module.task.is_classification):
            return
        image = rendered(reliability_diagram(*self._last, float(pl_module.temperature), self.bins))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                step = trainer.global_step
                logger.experiment.add_image(
                    "calibration/reliability", image, step, dataformats="HWC"
                )
        if folder and not trainer.fast_dev_run:
            from matplotlib.image import imsave

            path = Path(folder) / "reliability.png"
            imsave(path, image)
            attach(trainer, path)

    def _gathered(self, pl_module) -> tuple[Tensor, Tensor]:
        logits = torch.cat([rows[0] for rows in self._rows])
        target = torch.cat([rows[1] for rows in self._rows])
        if pl_module.trainer.world_size > 1:  # the samplers pad every process to one length
            logits, target = (pl_module.all_gather(t).flatten(0, 1) for t in (logits, target))
        return logits, target

    def _log(self, pl_module, stage: str, logits: Tensor, target: Tensor) -> None:
        if not pl_module.task.is_classification:
            return
        temperature = float(pl_module.temperature)
        values = {f"{stage}/temperature": temperature}
        for suffix, t in (("", temperature), ("_raw", 1.0)):
            values[f"{stage}/nll{suffix}"] = nll(logits / t, target)
            values[f"{stage}/ece{suffix}"] = ece(logits / t, target, self.bins)
        pl_module.log_dict({k: float(v) for k, v in values.items()})


def as_class_logits(logits: Tensor) -> Tensor:
    """One logit per class: a binary network's single logit z becomes (0, z), whose softmax
    is (1 - sigmoid(z), sigmoid(z))."""
    return torch.cat([torch.zeros_like(logits), logits], 1) if logits.shape[1] == 1 else logits


def class_index(target: Tensor) -> Tensor:
    return target.reshape(-1).long()


def nll(logits: Tensor, target: Tensor) -> Tensor:
    """The mean negative log-likelihood of the true classes (the log loss)."""
    return F.cross_entropy(as_class_logits(logits).float(), class_index(target))


def ece(logits: Tensor, target: Tensor, bins: int = 15) -> Tensor:
    """Expected calibration error (torchmetrics'): the gap between confidence and accuracy,
    averaged over equal-width confidence bins weighted by their rows."""
    probability = torch.softmax(as_class_logits(logits).float(), dim=1)
    return multiclass_calibration_error(
        probability, class_index(target), probability.shape[1], n_bins=bins
    )


def fit_temperature(logits: Tensor, target: Tensor, steps: int = 50) -> float:
    """The temperature T > 0 that minimizes the log loss of ``logits / T`` (Guo et al. 2017).
    The loss is convex in 1/T, with the softmax's mean and variance of the logits as its first
    and second derivatives, so Newton's method on 1/T (halving a step that would not lower
    the loss) converges in a few vectorized steps. Where every row is right that optimum is
    T -> 0, certainty: then one pseudo-row spread over the classes (Laplace's rule of
    succession) joins them."""
    logits = as_class_logits(logits).detach().double()
    if not bool(torch.isfinite(logits).all()):  # a diverged network: nothing to scale
        return 1.0
    target = class_index(target)
    all_right = bool((logits.argmax(dim=1) == target).all())
    pseudo = 1 / (len(target) + 1) if all_right else 0.0
    # the smoothed target's mean logit, per row
    target_logit = (1 - pseudo) * logits.gather(1, target[:, None])[:, 0] + pseudo * logits.mean(1)

    def loss(inverse: float) -> float:
        return float((torch.logsumexp(inverse * logits, 1) - inverse * target_logit).mean())

    inverse, low, high = 1.0, 1e-2, 1e2  # 1/T, within T's clamp
    current = loss(inverse)
    for _ in range(steps):
        p = torch.softmax(inverse * logits, dim=1)
        mean = (p * logits).sum(1)
        gradient = float((mean - target_logit).mean())
        curvature = float((p * (logits - mean[:, None]) ** 2).sum(1).mean())
        step = gradient / curvature if curvature > 0 else math.copysign(inverse, gradient)
        candidate = min(max(inverse - step, low), high)
        while (trial := loss(candidate)) > current and abs(candidate - inverse) > 1e-12:
            candidate = (candidate + inverse) / 2
        if abs(candidate - inverse) <= 1e-9 * inverse:
            break
        inverse, current = candidate, trial
    return 1 / inverse


def conformal_scores(pl_module, logits: Tensor, target: Tensor) -> Tensor:
    """Each row's nonconformity: one minus the calibrated probability of its class, or the
    largest absolute error over a regression's target columns, in the target's units."""
    outputs = pl_module.model_outputs(logits.unsqueeze(1))
    if pl_module.task.is_classification:
        probability = torch.softmax(as_class_logits(outputs).float(), dim=1)
        return 1 - probability.gather(1, class_index(target).unsqueeze(1)).reshape(-1)
    return (outputs - target.reshape(outputs.shape)).abs().amax(dim=1)


def conformal_threshold(scores: Tensor, coverage: float) -> float:
    """The split conformal quantile: the ceil((n + 1) * coverage)-th smallest of the n
    scores; infinite where there are too few rows for that coverage."""
    if not 0 < coverage < 1:
        raise InputError(f"coverage must be between 0 and 1 (0.9: 90%), got {coverage}.")
    if scores.numel() == 0:
        raise InputError(
            "coverage needs the conformal scores of the validation rows, which this "
            "checkpoint lacks: train it with the calibration callback "
            "(--calibration ffnn_lightning.training.calibration.Calibration)."
        )
    rank = math.ceil((scores.numel() + 1) * coverage)
    if rank > scores.numel():
        return math.inf
    return float(scores.sort().values[rank - 1])


def reliability_diagram(logits: Tensor, target: Tensor, temperature: float, bins: int):
    """Accuracy against confidence per bin, before and after the temperature."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5), dpi=120)  # no pyplot: no window, no state
    # fixed margins for the fixed labels: a layout engine would measure every text each fit
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfectly calibrated")
    for label, t in (("raw", 1.0), (f"temperature {temperature:.3g}", temperature)):
        probability = torch.softmax(as_class_logits(logits / t).float(), dim=1)
        confidence, predicted = probability.max(dim=1)
        right = (predicted == class_index(target)).float()
        edges = torch.linspace(0, 1, bins + 1, device=confidence.device)
        which = torch.bucketize(confidence, edges[1:-1])
        x, y = [], []
        for b in range(bins):
            chosen = which == b
            if chosen.any():
                x.append(float(confidence[chosen].mean()))
                y.append(float(right[chosen].mean()))
        error = float(ece(logits / t, target, bins))
        axes.plot(x, y, marker="o", label=f"{label} (ECE {error:.3f})")
    axes.set_xlabel("Confidence (the highest probability)")
    axes.set_ylabel("Accuracy")
    axes.set_title("Reliability on the validation rows")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left")
    return figure


def rendered(figure) -> np.ndarray:
    """The figure drawn once, as ``[height, width, RGB]`` bytes: the PNG and TensorBoard's
    image are the same drawing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
