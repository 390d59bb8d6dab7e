"""``python -m ffnn_lightning explain``: which input columns drive a trained model.

    python -m ffnn_lightning explain --ckpt_path lightning_logs/version_0/checkpoints/last.ckpt

Writes into the checkpoint's run folder (or ``--output``):

- ``importance.csv`` and ``importance.png``: permutation importance of each raw column on the
  validation rows (or every row of ``--data.path file.csv``): how much the log loss (classes)
  or the RMSE (regression) grows when that column's values are shuffled among the rows, as
  the mean and standard deviation over ``--repeats`` shuffles (scikit-learn's
  ``permutation_importance``). A category's one-hot levels move together: the answer is in
  the table's own columns.
- ``attributions.csv``: integrated gradients of up to ``--rows`` rows, one column per raw
  input column (the sum over its one-hot levels), for the predicted class's logit or the
  regression's output, from the all-zeros input (the training mean of scaled numbers, no
  level of a category) in ``--steps`` steps. A category coded for an embedding has no
  gradient: its column is empty.

Needs nothing but the checkpoint: its data module remakes its rows with the stored fit.
"""

from __future__ import annotations

import argparse
import csv
import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ffnn_lightning.commands.export import load
from ffnn_lightning.data.preprocessing import Fitted, match_columns, transform
from ffnn_lightning.errors import InputError
from ffnn_lightning.training.calibration import nll
from ffnn_lightning.training.callbacks import run_folder_of
from ffnn_lightning.training.checkpoints import check_class_paths, read_checkpoint

DATA_HPARAMS = "datamodule_hyper_parameters"


def explained_rows(checkpoint: Path, path: str | None, trusted: bool) -> tuple[Any, np.ndarray]:
    """The raw features and targets of the checkpoint's validation rows, or of a file's."""
    hparams = dict(read_checkpoint(checkpoint, trusted).get(DATA_HPARAMS, {}))
    if "_class_path" not in hparams:
        raise InputError(f"checkpoint {str(checkpoint)!r} names no data module to remake rows.")
    if not trusted:
        check_class_paths({"data": hparams}, str(checkpoint), set())
    module, name = hparams.pop("_class_path").rsplit(".", 1)
    arguments = {k: v for k, v in hparams.items() if not k.startswith("_")}
    arguments["checkpoint"] = str(checkpoint)
    if path:
        arguments["path"] = path
    data = getattr(importlib.import_module(module), name)(**arguments)
    prepared = data.prepare()
    split = "predict" if "predict" in prepared.tensors else "val"
    if len(prepared.tensors[split]) < 2:
        raise InputError(f"{path or 'the rows'} have no targets: importance needs them.")
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
            return self.module.model_outputs(self.module(self.inputs(features)))


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


def write_importance(
    ranked: list[tuple[str, float, float]], folder: Path, metric: str
) -> list[Path]:
    table = folder / "importance.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["column", f"{metric}_increase_mean", f"{metric}_increase_std"])
        writer.writerows(ranked)
    return [table, plot_importance(ranked, folder / "importance.png", metric)]


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


def write_attributions(model: Wrapped, features: Any, rows: int, steps: int, folder: Path) -> Path:
    sample = features.iloc[:rows] if hasattr(features, "iloc") else features[:rows]
    x = model.inputs(sample)
    attributions = integrated_gradients(model.module, x, steps)
    names = raw_names(features)
    groups = input_groups(model.fitted, names, x.shape[1])
    path = folder / "attributions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", *names])
        for i, row in enumerate(attributions):
            cells = [float(row[groups[n]].sum()) if groups[n] else "" for n in names]
            writer.writerow([i, *cells])
    return path


def main(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m ffnn_lightning explain", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--ckpt_path", type=Path, required=True, help="a checkpoint of fit")
    parser.add_argument("--data.path", dest="path", help="a file of rows with targets to explain")
    parser.add_argument("--repeats", type=int, default=5, help="shuffles per column")
    parser.add_argument("--rows", type=int, default=200, help="rows given attributions")
    parser.add_argument("--steps", type=int, default=32, help="integrated gradients' steps")
    parser.add_argument("--output", type=Path, help="the folder (default: the run folder)")
    parser.add_argument(
        "--weights_only",
        type=lambda text: text.lower() not in ("false", "0"),
        default=True,
        help="false: trust the checkpoint whole (its pickle, and classes from anywhere)",
    )
    args = parser.parse_args(argv)
    if not args.ckpt_path.is_file():
        raise InputError(f"checkpoint {str(args.ckpt_path)!r} does not exist.")
    for name in ("repeats", "rows", "steps"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    trusted = not args.weights_only
    module, fitted = load(args.ckpt_path, trusted)
    features, targets = explained_rows(args.ckpt_path, args.path, trusted)
    model = Wrapped(module, fitted)
    folder = args.output or run_folder_of(args.ckpt_path)
    folder.mkdir(parents=True, exist_ok=True)
    metric = "log_loss" if module.task.is_classification else "rmse"
    ranked = permutation_importance(model, features, targets, args.repeats)
    written = write_importance(ranked, folder, metric)
    written.append(write_attributions(model, features, args.rows, args.steps, folder))
    print(f"Most important ({metric} growth when shuffled):")
    for name, mean, std in ranked[:10]:
        print(f"  {name:<24} {mean:.4g} ± {std:.2g}")
    print("Written:", *(str(path) for path in written), sep="\n  ")
    return folder
