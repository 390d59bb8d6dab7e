"""Which input columns drive a trained model: permutation importance of the raw columns
(scikit-learn's) and integrated gradients summed back to them; ``ColumnImportance`` logs the
importance at the end of ``fit``, ``python -m ffnn_lightning explain`` writes both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from ffnn_lightning.data.preprocessing import Fitted, match_columns, transform
from ffnn_lightning.errors import InputError
from ffnn_lightning.training.calibration import nll
from ffnn_lightning.training.logs import attach


def raw_rows(data, split: str) -> tuple[Any, np.ndarray]:
    """A split's rows as the data module loads them (before any preprocessing), and their
    task-shaped targets."""
    prepared = data.prepare()
    if len(prepared.tensors[split]) < 2:
        raise InputError(f"The {split} rows have no targets: importance needs them.")
    features, _ = data.load()
    rows = prepared.rows[split]
    features = features.iloc[rows] if hasattr(features, "iloc") else np.asarray(features)[rows]
    return features, prepared.tensors[split][1].numpy()


class Wrapped:
    """The trained module as scikit-learn's ``permutation_importance`` calls it: raw rows in,
    the task's outputs out."""

    def __init__(self, module, fitted: Fitted) -> None:
        self.module, self.fitted = module, fitted

    def fit(self, *_: Any) -> Wrapped:
        return self

    def inputs(self, features: Any) -> Tensor:
        is_frame = hasattr(features, "iloc")
        table = match_columns(features, self.fitted) if is_frame else features
        return transform(table, self.fitted.preprocessor, hasattr(table, "iloc"))

    def outputs(self, features: Any) -> Tensor:
        with torch.no_grad():
            x = self.inputs(features).to(self.module.device)
            return self.module.model_outputs(self.module(x)).cpu()


def score(model: Wrapped, features: Any, targets: np.ndarray) -> float:
    """Higher is better: minus the log loss, or minus the RMSE."""
    outputs = model.outputs(features)
    if model.module.task.is_classification:
        return -float(nll(outputs, torch.as_tensor(targets)))
    error = outputs - torch.as_tensor(targets).reshape(outputs.shape)
    return -float(error.pow(2).mean().sqrt())


def permutation_importance(
    model: Wrapped, features: Any, targets: np.ndarray, repeats: int, seed: int = 0
) -> list[tuple[str, float, float]]:
    """(column, mean, std) of the loss's growth when the column is shuffled, largest first."""
    from sklearn.inspection import permutation_importance as shuffled

    found = shuffled(model, features, targets, scoring=score, n_repeats=repeats, random_state=seed)
    names = raw_names(features)
    ranked = zip(names, found.importances_mean, found.importances_std, strict=True)
    return sorted(((n, float(m), float(s)) for n, m, s in ranked), key=lambda r: -r[1])


def raw_names(features: Any) -> list[str]:
    if hasattr(features, "columns"):
        return [str(c) for c in features.columns]
    return [f"x{i}" for i in range(np.asarray(features).shape[1])]


def input_groups(fitted: Fitted, names: list[str], width: int) -> dict[str, list[int]]:
    """Which of the network's inputs each raw column became (one per number, one per level of
    a one-hot category); a coded category (for an embedding) gets none: it has no gradient."""
    preprocessor = fitted.preprocessor
    if not hasattr(preprocessor, "transformers_"):  # numbers only, scaled one to one
        if width != len(names):
            raise InputError(f"Cannot map {width} network inputs back to {len(names)} columns.")
        return {name: [i] for i, name in enumerate(names)}
    groups: dict[str, list[int]] = {name: [] for name in names}
    for kind, step, positions in preprocessor.transformers_:
        if kind not in preprocessor.output_indices_:
            continue
        start = preprocessor.output_indices_[kind].start
        encoder = step[-1] if hasattr(step, "steps") else step
        sizes = [len(c) for c in encoder.categories_] if kind == "categorical" else None
        for j, position in enumerate(np.asarray(positions, dtype=int)):
            size = sizes[j] if sizes else 1
            if kind != "codes":
                groups[names[position]] = list(range(start, start + size))
            start += size
    return groups


def integrated_gradients(module, x: Tensor, steps: int = 32) -> Tensor:
    """Integrated gradients (Sundararajan et al. 2017) from the zero input, of the predicted
    class's logit (a binary network's single logit, signed towards the predicted class) or of
    the first output, by the midpoint rule; each row's attributions sum to its output minus
    the baseline's."""
    baseline = torch.zeros_like(x)
    with torch.no_grad():
        logits = module.model_outputs(module(x))
    if logits.shape[1] == 1:
        pick = torch.zeros(len(x), dtype=torch.long)
        sign = torch.where(logits[:, 0] >= 0, 1.0, -1.0) if module.task.is_classification else 1
    else:
        pick, sign = logits.argmax(dim=1), 1.0
    total = torch.zeros_like(x)
    for alpha in (torch.arange(steps, dtype=x.dtype) + 0.5) / steps:
        point = (baseline + alpha * (x - baseline)).requires_grad_(True)
        out = module.model_outputs(module(point)).gather(1, pick[:, None]).reshape(-1)
        (gradient,) = torch.autograd.grad((out * sign).sum(), point)
        total += gradient
    return (x - baseline) * total / steps


def plot_importance(ranked: list[tuple[str, float, float]], path: Path, metric: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    shown = ranked[:30][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.5), dpi=120)
    axes.barh([r[0] for r in shown], [r[1] for r in shown], xerr=[r[2] for r in shown])
    axes.set_xlabel(f"Growth of the validation {metric} when the column is shuffled")
    axes.set_title("Permutation importance (mean, std over shuffles)")
    axes.grid(True, axis="x", alpha=0.3)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


class ColumnImportance(L.Callback):
    """Permutation importance of the raw columns on the validation rows, at the end of
    ``fit``: a bar chart in TensorBoard's images (``importance/columns``) and
    ``importance.png`` in the run folder, handed to the trackers.

        --trainer.callbacks+=ffnn_lightning.training.attribution.ColumnImportance
    """

    def __init__(self, repeats: int = 5) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        self.repeats = repeats
        self.ranked: list[tuple[str, float, float]] = []

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = trainer.log_dir  # every process asks: a collective call
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        data = trainer.datamodule
        features, targets = raw_rows(data, "val")
        model = Wrapped(pl_module, data.prepare().fitted)
        was_training = pl_module.training
        pl_module.eval()
        self.ranked = permutation_importance(model, features, targets, self.repeats)
        pl_module.train(was_training)
        metric = "log_loss" if pl_module.task.is_classification else "rmse"
        path = plot_importance(self.ranked, Path(folder or ".") / "importance.png", metric)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                from PIL import Image

                image = np.asarray(Image.open(path).convert("RGB"))
                logger.experiment.add_image("importance/columns", image, dataformats="HWC")
        attach(trainer, path)
