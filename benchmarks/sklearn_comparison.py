"""The shipped configs for scikit-learn's bundled data sets next to scikit-learn's own MLP.

    python benchmarks/sklearn_comparison.py                  # every data set, 5 seeds
    python benchmarks/sklearn_comparison.py --datasets iris --seeds 2
    python benchmarks/sklearn_comparison.py --tune --datasets iris -- --model.network.hidden=[64]

For every seed both see the same rows: a 20% test split (stratified for classes) drawn by the
template's data module, which also carves its validation split from the other 80%;
scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` (default settings but 2000 iterations for
the regressor, standard-scaled inputs) trains on all of that 80%. The template runs its config
as shipped and is scored with the weights of its last epoch. The table gives mean ± std of
test accuracy (R² for diabetes), the validation score the configs were tuned on, and the
median wall time of one training run.
``--tune`` scores the validation split only, never touching the test rows: that is how the
configs were tuned, with options after ``--`` added to every run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def run_template(name: str, seed: int, extra: list[str], tune: bool = False) -> dict:
    """Train the shipped config on one seed's split; its scores, seconds and test rows."""
    from ffnn_lightning.cli import main

    args = [f"--data.init_args.seed={seed}", f"--seed_everything={seed}", *QUIET, *extra]
    cli = main(["--config", str(ROOT / "configs" / f"{name}.yaml"), *args], run=False)
    data, trainer = cli.datamodule, cli.trainer
    if (data.test_fraction, data.split) != (0.2, "stratified"):
        raise SystemExit(f"configs/{name}.yaml must hold out a stratified 20% test split.")
    start = time.perf_counter()
    trainer.fit(cli.model, data)
    seconds = time.perf_counter() - start
    metric = "r2" if data.task_name == "regression" else "acc"
    val = trainer.validate(cli.model, data, verbose=False)[0][f"val/{metric}"]
    if tune:
        return {"val": val, "seconds": seconds}
    test = trainer.test(cli.model, data, verbose=False)[0][f"test/{metric}"]
    return {"test": test, "val": val, "seconds": seconds, "test_rows": data.row_ids("test")["row"]}


def run_sklearn(name: str, seed: int, test_rows: list[int]) -> dict:
    """scikit-learn's MLP with default settings on the 80% the template did not test on."""
    from sklearn import datasets
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    test = np.zeros(len(y), dtype=bool)
    test[test_rows] = True
    # MLPRegressor's 200 iterations leave diabetes' raw targets (25-346) far from fitted
    # (R² about -1.2): it gets the iterations it needs to converge, default otherwise.
    mlp = MLPRegressor(max_iter=2000) if name == "diabetes" else MLPClassifier()
    model = make_pipeline(StandardScaler(), mlp.set_params(random_state=seed))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 200 iterations, as shipped
        model.fit(x[~test], y[~test])
    seconds = time.perf_counter() - start
    return {"test": model.score(x[test], y[test]), "seconds": seconds}


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=DATASETS, choices=DATASETS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune", action="store_true", help="validation scores only")
    parser.add_argument("extra", nargs="*", help="options for every template run, after --")
    options = parser.parse_args()
    from ffnn_lightning.commands.runs import quiet_runs

    quiet_runs()
    warnings.filterwarnings("ignore", message=".*args parameter is intended to run.*")
    if options.tune:
        return tune(options)

    print(
        "| data set | metric | template (test) | scikit-learn MLP (test) | template (val) "
        "| template s | scikit-learn s | |\n|---|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        for name in options.datasets:
            ours, theirs = [], []
            for seed in range(options.seeds):
                ours.append(run_template(name, seed, options.extra))
                theirs.append(run_sklearn(name, seed, ours[-1]["test_rows"]))
            mean_ours = statistics.mean(r["test"] for r in ours)
            mean_theirs = statistics.mean(r["test"] for r in theirs)
            verdict = "matches or beats" if mean_ours >= mean_theirs else "**below**"
            print(
                f"| {name} | {'R²' if name == 'diabetes' else 'accuracy'} "
                f"| {spread([r['test'] for r in ours])} | {spread([r['test'] for r in theirs])} "
                f"| {spread([r['val'] for r in ours])} "
                f"| {statistics.median(r['seconds'] for r in ours):.1f} "
                f"| {statistics.median(r['seconds'] for r in theirs):.1f} | {verdict} |",
                flush=True,
            )


def tune(options: argparse.Namespace) -> None:
    """Validation scores of the configs (with the extra options): the test rows stay unseen."""
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        for name in options.datasets:
            runs = [run_template(name, s, options.extra, tune=True) for s in range(options.seeds)]
            print(
                f"{name} {' '.join(options.extra)}: val {spread([r['val'] for r in runs])}, "
                f"{statistics.median(r['seconds'] for r in runs):.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
