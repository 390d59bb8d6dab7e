"""``python -m ffnn_lightning compare``: train one fresh network per config and compare them.

The chapter's closing exercise as one command::

    python -m ffnn_lightning compare configs/blobs_adam.yaml configs/blobs_sgd.yaml \\
        configs/blobs_rmsprop.yaml --log-scale

Each config (optionally on top of a shared ``--base``) is trained with ``fit`` as its own
TensorBoard run inside one parent folder, so ``tensorboard --logdir <folder>`` overlays the
curves. The folder then holds ``loss.png`` (training loss per epoch, one line per run),
``epochs.csv`` (one row per run and epoch) and ``summary.md`` (the same as tables).
``--seeds N`` trains each config N times (seeds 0..N-1): the figure then draws each config's
mean with a band from its lowest to its highest seed, the tables mean +- standard deviation.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ffnn_lightning.commands.runs import ParentRun, fit_run, next_folder
from ffnn_lightning.training.logs import read_scalars

TITLE = "Loss across epochs for different optimizers"

Curves = dict[str, list[float]]  # one run's scalars per epoch, by tag


def run_all(
    configs: list[Path], base: Path | None, root: Path, extra: list[str], seeds: int = 1
) -> dict[str, list[Curves]]:
    """Fit each config as run ``root/<config stem>`` (with several seeds, as
    ``<stem>/seed_<s>``, seeding with ``s`` = 0, 1, ...); return each run's per-epoch scalars.
    Their MLflow runs, if any, are children of one named after ``root``."""
    results: dict[str, list[Curves]] = {}
    parent = ParentRun(root.name)
    for config in configs:
        label = config.stem
        args = [*(["--config", str(base)] if base else []), "--config", str(config), *extra]
        results[label] = []
        for seed in range(seeds):
            seeded = [f"--seed_everything={seed}"] if seeds > 1 else []
            version = f"{label}/seed_{seed}" if seeds > 1 else label
            cli = fit_run([*args, *seeded], root, version, parent=parent)
            scalars = read_scalars(Path(cli.trainer.log_dir))
            results[label].append({tag: [v for _, v in points] for tag, points in scalars.items()})
    parent.close({})
    return results


def write_table(results: dict[str, list[Curves]], folder: Path) -> Path:
    """``epochs.csv``: run, seed, epoch and every epoch-level scalar the runs logged."""
    # the curves' tags; not "epoch", nor the HParams tab's one-point final/ copies
    tags = sorted(
        {
            tag
            for runs in results.values()
            for run in runs
            for tag in run
            if tag != "epoch" and not tag.startswith("final/")
        }
    )
    path = folder / "epochs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "seed", "epoch", *tags])
        for label, runs in results.items():
            for seed, run in enumerate(runs):
                for epoch in range(len(run["train/loss"])):
                    values = [_at(run.get(tag, []), epoch) for tag in tags]
                    writer.writerow([label, seed, epoch + 1, *values])
    return path


def write_summary(results: dict[str, list[Curves]], folder: Path) -> Path:
    """``summary.md``: training loss per epoch (a column per run), then final validation;
    over several seeds each cell is the mean +- standard deviation."""
    labels = list(results)
    seeds = len(next(iter(results.values())))
    epochs = max(len(run["train/loss"]) for runs in results.values() for run in runs)
    over = f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""
    lines = [f"# {TITLE}", "", f"Training loss (mean per sample) per epoch{over}:", ""]
    lines += ["| epoch | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for epoch in range(epochs):
        cells = [_spread(results[label], "train/loss", epoch) for label in labels]
        lines.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    lines += ["", f"After the last epoch{over}:", "", "| run | val/loss | val/acc |"]
    lines.append("|---|---|---|")
    for label in labels:
        loss, acc = (_spread(results[label], tag, -1) for tag in ("val/loss", "val/acc"))
        lines.append(f"| {label} | {loss} | {acc} |")
    path = folder / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def plot(results: dict[str, list[Curves]], folder: Path, log_scale: bool) -> Path:
    """``loss.png``: the chapter's figure, training loss against epochs, a line per run; over
    several seeds the mean, in a band from the lowest to the highest seed."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import numpy as np
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for label, runs in results.items():
        epochs = min(len(run["train/loss"]) for run in runs)
        losses = np.array([run["train/loss"][:epochs] for run in runs])
        x = range(1, epochs + 1)
        (line,) = axes.plot(x, losses.mean(0), marker="o", label=label)
        if len(runs) > 1:
            axes.fill_between(x, losses.min(0), losses.max(0), color=line.get_color(), alpha=0.2)
    if log_scale:
        axes.set_yscale("log")
    seeds = len(next(iter(results.values())))
    axes.set_title(TITLE + (f" (mean, min-max band over {seeds} seeds)" if seeds > 1 else ""))
    axes.set_xlabel("Epochs")
    axes.set_ylabel("Training loss (mean per sample)" + (", log scale" if log_scale else ""))
    axes.grid(True, alpha=0.3)
    axes.legend()
    path = folder / "loss.png"
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


def _at(values: list[float], index: int) -> float | str:
    return values[index] if -len(values) <= index < len(values) else ""


def _spread(runs: list[Curves], tag: str, epoch: int) -> str:
    """One run's value at ``epoch``, or the mean +- std of the seeds' values."""
    import statistics

    values = [v for v in (_at(run.get(tag, []), epoch) for run in runs) if v != ""]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m ffnn_lightning compare",
        description="Train one fresh network per config; plot and tabulate their losses.",
        epilog="Arguments after '--' go to every run, e.g. -- --trainer.max_epochs=20",
    )
    parser.add_argument("configs", nargs="+", type=Path, help="one run per config (or overlay)")
    parser.add_argument("--base", type=Path, help="a config under every run's own one")
    parser.add_argument("--name", default="compare", help="parent folder name in lightning_logs")
    parser.add_argument("--log-scale", action="store_true", help="logarithmic loss axis")
    parser.add_argument(
        "--seeds", type=int, default=1, help="runs per config, seeded 0, 1, ...: error bars"
    )
    argv, extra = _split_extra(argv)
    args = parser.parse_args(argv)
    for path in [*args.configs, *([args.base] if args.base else [])]:
        if not path.is_file():
            parser.error(f"config {str(path)!r} does not exist")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    labels = [path.stem for path in args.configs]
    if len(set(labels)) != len(labels):
        parser.error(f"configs need distinct file names (they name the runs), got {labels}")

    folder = next_folder(Path("lightning_logs"), args.name)
    results = run_all(args.configs, args.base, folder, extra, args.seeds)
    outputs = [
        plot(results, folder, args.log_scale),
        write_table(results, folder),
        write_summary(results, folder),
    ]
    print(f"\n{(folder / 'summary.md').read_text()}")
    print("Written:", *(str(path) for path in outputs), sep="\n  ")
    print(f"Overlay the curves: tensorboard --logdir {folder}")
    return folder


def _split_extra(argv: list[str] | None) -> tuple[list[str], list[str]]:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


if __name__ == "__main__":
    main()
