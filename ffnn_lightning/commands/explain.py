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

import csv
import importlib
from pathlib import Path
from typing import Any

import numpy as np

from ffnn_lightning.commands.export import checked, checkpoint_parser, load
from ffnn_lightning.errors import InputError
from ffnn_lightning.run_files import run_folder_of
from ffnn_lightning.training.attribution import (
    Wrapped,
    input_groups,
    integrated_gradients,
    permutation_importance,
    plot_importance,
    raw_names,
    raw_rows,
)
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
    split = "predict" if "predict" in data.prepare().tensors else "val"
    return raw_rows(data, split)


def write_importance(
    ranked: list[tuple[str, float, float]], folder: Path, metric: str
) -> list[Path]:
    table = folder / "importance.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["column", f"{metric}_increase_mean", f"{metric}_increase_std"])
        writer.writerows(ranked)
    return [table, plot_importance(ranked, folder / "importance.png", metric)]


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
    parser = checkpoint_parser("explain", __doc__.splitlines()[0])
    parser.add_argument("--data.path", dest="path", help="a file of rows with targets to explain")
    parser.add_argument("--repeats", type=int, default=5, help="shuffles per column")
    parser.add_argument("--rows", type=int, default=200, help="rows given attributions")
    parser.add_argument("--steps", type=int, default=32, help="integrated gradients' steps")
    parser.add_argument("--output", type=Path, help="the folder (default: the run folder)")
    args = checked(parser.parse_args(argv))
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
