"""``python -m ffnn_lightning cv``: k-fold cross-validation of one config, with error bars.

    python -m ffnn_lightning cv --config configs/wine.yaml --folds 5

Each fold is a ``fit`` of its own run folder (``lightning_logs/cv_N/fold_K``), on the data
module's ``folds``/``fold`` split: the test rows are never touched, and the preprocessing is
fitted on each fold's training rows only. ``cv.csv`` holds each fold's final validation
metrics, ``summary.md`` and the console their mean +- standard deviation.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ffnn_lightning.commands.runs import ParentRun, final_metrics, fit_run, next_folder
from ffnn_lightning.errors import InputError

FoldDone = Callable[[int, dict[str, float]], None]
KINDS = ("mean", "std")  # what the parent run holds of each metric over the folds


def cross_validate(
    args: Sequence[str],
    folds: int,
    folder: Path,
    on_fold: FoldDone | None = None,
    hparams: dict[str, Any] | None = None,
    parent: ParentRun | None = None,
) -> list[dict[str, float]]:
    """Fit ``args`` once per fold as ``folder/fold_K``; each fold's final validation metrics.
    ``on_fold(k, metrics)`` is called after each fold (``tune --cv`` prunes there);
    ``hparams`` join each fold's in the HParams tab (a trial's values); MLflow runs become
    children of ``parent``'s."""
    results = []
    for fold in range(folds):
        split = [f"--data.init_args.folds={folds}", f"--data.init_args.fold={fold}"]
        cli = fit_run([*args, *split], folder, f"fold_{fold}", hparams=hparams, parent=parent)
        metrics = {k: v for k, v in final_metrics(cli).items() if k.startswith("val/")}
        results.append(metrics)
        if on_fold is not None:
            on_fold(fold, metrics)
    return results


def mean_and_std(results: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Each metric's mean and (sample) standard deviation over the folds."""
    names = sorted({name for fold in results for name in fold})
    spread = {}
    for name in names:
        values = [fold[name] for fold in results if name in fold]
        spread[name] = (
            statistics.mean(values),
            statistics.stdev(values) if len(values) > 1 else 0.0,
        )
    return spread


def write_results(results: list[dict[str, float]], folder: Path) -> list[Path]:
    """``cv.csv`` (a row per fold) and ``summary.md`` (mean +- std per metric)."""
    spread = mean_and_std(results)
    table = folder / "cv.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fold", *spread])
        for fold, metrics in enumerate(results):
            writer.writerow([fold, *(metrics.get(name, "") for name in spread)])
    lines = [f"# {len(results)}-fold cross-validation", "", "| metric | mean | std |"]
    lines += ["|---|---|---|"]
    lines += [f"| {name} | {mean:.4g} | {std:.2g} |" for name, (mean, std) in spread.items()]
    summary = folder / "summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return [table, summary]


def main(argv: list[str]) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m ffnn_lightning cv",
        description="k-fold cross-validation: one fit per fold, mean +- std of the metrics.",
        epilog="Every other option goes to each fold's fit, e.g. --config configs/wine.yaml.",
    )
    parser.add_argument("--folds", type=int, default=5, help="how many folds (default 5)")
    parser.add_argument("--name", default="cv", help="the parent folder's name in lightning_logs")
    own, fit_args = parser.parse_known_args(argv)
    if own.folds < 2:
        raise InputError(f"--folds must be at least 2 to cross-validate, got {own.folds}.")
    folder = next_folder(Path("lightning_logs"), own.name)
    parent = ParentRun(folder.name)
    results = cross_validate(fit_args, own.folds, folder, parent=parent)
    written = write_results(results, folder)
    spread = mean_and_std(results).items()
    parent.close({f"{kind}/{name}": v[i] for name, v in spread for i, kind in enumerate(KINDS)})
    print("\n" + written[1].read_text())
    print("Written:", *(str(path) for path in written), sep="\n  ")
    print(f"The folds' curves: tensorboard --logdir {folder}")
    return folder
