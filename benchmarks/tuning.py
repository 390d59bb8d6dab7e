"""What tuning and cross-validation cost, as ratios to plain fits measured in the same run.

    python benchmarks/tuning.py            # the figures in docs/tuning.md (a few minutes)
    python benchmarks/tuning.py --quick    # CI: that it runs

1. A trial inside ``tune`` against the same config's ``fit`` in the same process (imports
   excluded): the median trial (Optuna's start-to-complete time) over the median fit.
2. ``tune --workers 2`` against ``--workers 1``: the wall time of a whole study, each a fresh
   command (Python start included), on the same machine.
3. ``cv --folds 5`` against one fit of the same config, in the same process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WINE = ["--config", str(ROOT / "configs" / "wine.yaml"), "--trainer.enable_progress_bar=false"]
QUIET = ["--trainer.enable_model_summary=false"]
# wine.yaml's own values: a trial then trains the same network as the fit it is timed against
SAME = {
    "model.optimizer.init_args.lr": {"type": "categorical", "choices": [0.001]},
    "model.network.hidden": {"type": "categorical", "choices": [[32]]},
}
SPACE = {
    "model.optimizer.init_args.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "model.network.hidden": {"type": "categorical", "choices": [[32], [64]]},
}


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def fit_seconds(folder: Path, extra: list[str], repeats: int) -> float:
    """The median wall time of a fit of wine.yaml, in this process."""
    from ffnn_lightning.commands.runs import fit_run

    fit_run([*WINE, *QUIET, *extra], folder / "warm-up", "0")  # imports, first-call costs
    times = [
        timed(lambda i=i: fit_run([*WINE, *QUIET, *extra], folder, f"fit_{i}"))
        for i in range(repeats)
    ]
    return statistics.median(times)


def trial_seconds(folder: Path, space: Path, trials: int, extra: list[str]) -> float:
    """The median trial's duration in a study run in this process."""
    import optuna

    from ffnn_lightning.cli import run

    run(["tune", "--search", str(space), "--trials", str(trials), "--name", "trial", *WINE, *extra])
    study_folder = folder / "lightning_logs" / "trial_0"
    study = optuna.load_study(
        study_name="trial_0", storage=f"sqlite:///{study_folder / 'study.db'}"
    )
    durations = [t.duration.total_seconds() for t in study.trials if t.duration is not None]
    return statistics.median(durations[1:] or durations)  # the first pays the first-call costs


def study_seconds(space: Path, trials: int, workers: int, extra: list[str]) -> tuple[float, float]:
    """The wall time of a whole ``tune`` command (a fresh Python) with ``workers`` workers, and
    the span of its trials (first start to last end: without Python's start and the plots)."""
    import optuna

    command = [sys.executable, "-m", "ffnn_lightning", "tune", "--search", str(space)]
    command += ["--trials", str(trials), "--workers", str(workers), *WINE, *extra]
    with tempfile.TemporaryDirectory() as folder:
        wall = timed(lambda: subprocess.run(command, cwd=folder, check=True, capture_output=True))
        storage = f"sqlite:///{folder}/lightning_logs/tune_0/study.db"
        done = optuna.load_study(study_name="tune_0", storage=storage).trials
    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    return wall, span.total_seconds()


def cv_seconds(folds: int, extra: list[str]) -> float:
    from ffnn_lightning.cli import run

    return timed(lambda: run(["cv", "--folds", str(folds), *WINE, *QUIET, *extra]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs and trials (CI)")
    args = parser.parse_args()
    extra = ["--trainer.max_epochs=5"] if args.quick else []
    trials, repeats = (4, 1) if args.quick else (20, 5)
    with tempfile.TemporaryDirectory() as folder:
        import os

        os.chdir(folder)
        space, same = Path(folder) / "space.yaml", Path(folder) / "same.yaml"
        space.write_text(yaml.safe_dump(SPACE))
        same.write_text(yaml.safe_dump(SAME))
        fit = fit_seconds(Path(folder) / "lightning_logs" / "fits", extra, repeats)
        trial = trial_seconds(Path(folder), same, 4 if args.quick else 8, extra)
        studies = {w: [study_seconds(space, trials, w, extra) for _ in range(3)] for w in (1, 2)}
        one, two = (statistics.median(wall for wall, _ in studies[w]) for w in (1, 2))
        one_span, two_span = (statistics.median(span for _, span in studies[w]) for w in (1, 2))
        cv = cv_seconds(5, extra)
    print(f"fit of wine.yaml (median of {repeats}): {fit:.2f} s")
    print(
        f"trial inside tune (median):      {trial:.2f} s = {trial / fit:.2f}x a fit (target <= 1.3)"
    )
    print(f"{trials}-trial study, --workers 1:  {one:.1f} s, trials spanning {one_span:.1f} s")
    print(
        f"{trials}-trial study, --workers 2:  {two:.1f} s = {two / one:.2f}x (target <= 0.65), "
        f"trials spanning {two_span:.1f} s = {two_span / one_span:.2f}x"
    )
    print(f"cv --folds 5:                   {cv:.2f} s = {cv / fit:.2f}x a fit (target <= 5.5)")


if __name__ == "__main__":
    main()
