"""``python -m ffnn_lightning.compare``: train one fresh network per config and compare them.

The chapter's closing exercise as one command::

    python -m ffnn_lightning.compare configs/blobs_adam.yaml configs/blobs_sgd.yaml \\
        configs/blobs_rmsprop.yaml --log-scale

Each config (optionally on top of a shared ``--base``) is trained with ``fit`` as its own
TensorBoard run inside one parent folder, so ``tensorboard --logdir <folder>`` overlays the
curves. The folder then holds ``loss.png`` (training loss per epoch, one line per run),
``epochs.csv`` (one row per run and epoch) and ``summary.md`` (the same as tables).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ffnn_lightning.cli import main as cli_main
from ffnn_lightning.logs import read_scalars

TITLE = "Loss across epochs for different optimizers"


def run_all(
    configs: list[Path], base: Path | None, root: Path, extra: list[str]
) -> dict[str, dict[str, list[float]]]:
    """Fit each config as run ``root/<config stem>``; return each run's per-epoch scalars."""
    results = {}
    for config in configs:
        label = config.stem
        args = ["fit", *(["--config", str(base)] if base else []), "--config", str(config)]
        args += [
            f"--trainer.logger.init_args.save_dir={root.parent}",
            f"--trainer.logger.init_args.name={root.name}",
            f"--trainer.logger.init_args.version={label}",
            *extra,
        ]
        cli = cli_main(args)
        scalars = read_scalars(Path(cli.trainer.log_dir))
        results[label] = {tag: [value for _, value in points] for tag, points in scalars.items()}
    return results


def write_table(results: dict[str, dict[str, list[float]]], folder: Path) -> Path:
    """``epochs.csv``: run, epoch and every epoch-level scalar the runs logged."""
    # the curves' tags; not "epoch", nor the HParams tab's one-point final/ copies
    tags = sorted(
        {t for run in results.values() for t in run if t != "epoch" and not t.startswith("final/")}
    )
    path = folder / "epochs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "epoch", *tags])
        for label, run in results.items():
            for epoch in range(len(run["train/loss"])):
                values = [_at(run.get(tag, []), epoch) for tag in tags]
                writer.writerow([label, epoch + 1, *values])
    return path


def write_summary(results: dict[str, dict[str, list[float]]], folder: Path) -> Path:
    """``summary.md``: training loss per epoch (a column per run), then final validation."""
    labels = list(results)
    epochs = max(len(run["train/loss"]) for run in results.values())
    lines = [f"# {TITLE}", "", "Training loss (mean per sample) per epoch:", ""]
    lines += ["| epoch | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for epoch in range(epochs):
        cells = [_format(_at(results[label]["train/loss"], epoch)) for label in labels]
        lines.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    lines += ["", "After the last epoch:", "", "| run | val/loss | val/acc |", "|---|---|---|"]
    for label in labels:
        run = results[label]
        loss, acc = _at(run.get("val/loss", []), -1), _at(run.get("val/acc", []), -1)
        lines.append(f"| {label} | {_format(loss)} | {_format(acc)} |")
    path = folder / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def plot(results: dict[str, dict[str, list[float]]], folder: Path, log_scale: bool) -> Path:
    """``loss.png``: the chapter's figure, training loss against epochs, a line per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for label, run in results.items():
        losses = run["train/loss"]
        axes.plot(range(1, len(losses) + 1), losses, marker="o", label=label)
    if log_scale:
        axes.set_yscale("log")
    axes.set_title(TITLE)
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


def _format(value: float | str) -> str:
    return f"{value:.4g}" if isinstance(value, float) else value


def _next_folder(parent: Path, name: str) -> Path:
    """``parent/name_0``, ``name_1``, ...: the first that does not exist yet."""
    index = 0
    while (parent / f"{name}_{index}").exists():
        index += 1
    return parent / f"{name}_{index}"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m ffnn_lightning.compare",
        description="Train one fresh network per config; plot and tabulate their losses.",
        epilog="Arguments after '--' go to every run, e.g. -- --trainer.max_epochs=20",
    )
    parser.add_argument("configs", nargs="+", type=Path, help="one run per config (or overlay)")
    parser.add_argument("--base", type=Path, help="a config under every run's own one")
    parser.add_argument("--name", default="compare", help="parent folder name in lightning_logs")
    parser.add_argument("--log-scale", action="store_true", help="logarithmic loss axis")
    argv, extra = _split_extra(argv)
    args = parser.parse_args(argv)
    for path in [*args.configs, *([args.base] if args.base else [])]:
        if not path.is_file():
            parser.error(f"config {str(path)!r} does not exist")
    labels = [path.stem for path in args.configs]
    if len(set(labels)) != len(labels):
        parser.error(f"configs need distinct file names (they name the runs), got {labels}")

    folder = _next_folder(Path("lightning_logs"), args.name)
    results = run_all(args.configs, args.base, folder, extra)
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
