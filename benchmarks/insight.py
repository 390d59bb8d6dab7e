"""What looking inside costs: the chapter's run with NetworkInsight (its defaults) against without.

    python benchmarks/insight.py            # configs/blobs_adam.yaml (batch 16), 5 runs each
    python benchmarks/insight.py --quick    # CI: 1 epoch, 1 run each

The fits alternate (off, on, off, on, ...) in this process; each time is the whole
``trainer.fit`` (validation, logging and checkpoints included) and the table gives the medians
and their ratio. The target (issue #15): on is at most 1.10x off. A second pair runs the
circles, where the callback also draws the decision boundary every 2 epochs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSIGHT = ["--trainer.callbacks+=ffnn_lightning.training.insight.NetworkInsight"]


def fit_seconds(config: str, extra: list[str], folder: Path, epochs: int | None) -> float:
    from ffnn_lightning.commands.runs import fit_run

    args = [
        "--config", str(ROOT / "configs" / config), *extra,
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        *([f"--trainer.max_epochs={epochs}"] if epochs else []),
    ]  # fmt: skip
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the run's summary lines
        fit_run(args, folder, f"run_{len(list(folder.glob('*')))}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs, epochs = (1, 1) if args.quick else (args.runs, None)
    from ffnn_lightning.commands.runs import quiet_runs

    quiet_runs()
    print(f"{'config':<18} {'off s':>7} {'on s':>7} {'on/off':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for config in ("blobs_adam.yaml", "circles.yaml"):
            times: dict[str, list[float]] = {"off": [], "on": []}
            fit_seconds(config, [], Path(folder), 1)  # warm-up: imports, first-call costs
            for _ in range(runs):
                for label, extra in (("off", []), ("on", INSIGHT)):
                    times[label].append(fit_seconds(config, extra, Path(folder), epochs))
            off, on = (statistics.median(times[k]) for k in ("off", "on"))
            print(f"{config:<18} {off:>7.2f} {on:>7.2f} {on / off:>6.2f}x", flush=True)


if __name__ == "__main__":
    main()
