"""Regenerate docs/inside.md's "Looking inside the network" pictures (about two minutes on 2 cores).

    python docs/insight_figures.py

Each picture comes from fits of the shipped configs with ``NetworkInsight`` on, read back from
the callback (the same numbers and images TensorBoard shows):

- ``insight_vanishing.png``: gradient norm per layer after one epoch, 8 sigmoid against 8 ReLU
  hidden layers (``configs/experiments/deep_sigmoid.yaml`` on the circles);
- ``insight_dead_relu.png``: the share of dead units of the second layer per epoch, at the
  circles' learning rate and at ``configs/experiments/dying_relu.yaml``'s;
- ``insight_circles.png``: the circles' decision boundary with identity and ReLU activations;
- ``insight_spirals.png``: tanh against ReLU on the spirals (``examples/spirals.yaml``).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGS = ROOT / "configs"
INSIGHT = ["--config", str(CONFIGS / "experiments" / "insight.yaml")]


def insight(args: list[str], folder: Path):
    """Fit with ``args``; the run's NetworkInsight callback (its history and frames)."""
    from ffnn_lightning.commands.runs import fit_run
    from ffnn_lightning.training.insight import NetworkInsight

    quiet = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    with contextlib.redirect_stdout(io.StringIO()):
        cli = fit_run([*args, *quiet], folder, f"run_{len(list(folder.glob('*')))}")
    return next(c for c in cli.trainer.callbacks if isinstance(c, NetworkInsight))


def last_per_layer(history: dict, name: str) -> list[float]:
    layers = sorted(
        (int(tag.rsplit("_", 1)[1]), values[-1][1])
        for tag, values in history.items()
        if tag.startswith(f"insight/{name}/layer_")
    )
    return [value for _, value in layers]


def vanishing(folder: Path) -> Path:
    circles = ["--config", str(CONFIGS / "circles.yaml")]
    deep = [*circles, "--config", str(CONFIGS / "experiments" / "deep_sigmoid.yaml")]
    figure, axes = plt.subplots(figsize=(7, 3.5))
    for activation, colour in (("sigmoid", "tab:red"), ("relu", "tab:blue")):
        run = insight(
            [*deep, f"--model.network.activation={activation}", "--trainer.max_epochs=1"], folder
        )
        norms = last_per_layer(run.history, "grad_norm")
        axes.plot(range(1, len(norms) + 1), norms, "o-", color=colour, label=activation)
    axes.set(
        yscale="log",
        xlabel="linear layer (1 = first, 9 = output)",
        ylabel="weight gradient norm",
        title="8 hidden layers on the circles, after one epoch",
    )
    axes.legend()
    return save(figure, "insight_vanishing.png")


def dead_relu(folder: Path) -> Path:
    circles = ["--config", str(CONFIGS / "circles.yaml")]
    figure, axes = plt.subplots(figsize=(7, 3.5))
    for label, extra in (
        ("lr 0.01 (circles.yaml)", [*INSIGHT, "--model.network.hidden=[64, 64]"]),
        ("lr 0.3 (dying_relu.yaml)", ["--config", str(CONFIGS / "experiments/dying_relu.yaml")]),
    ):
        run = insight([*circles, *extra], folder)
        dead = [value for _, value in run.history["insight/dead/layer_2"]]
        axes.plot(np.arange(1, len(dead) + 1), dead, label=label)
    axes.set(xlabel="epoch", ylabel="dead share of layer 2", ylim=(0, 1), title="Dying ReLUs")
    axes.legend()
    return save(figure, "insight_dead_relu.png")


def boundaries(name: str, runs: list[list[str]], folder: Path) -> Path:
    """The final decision boundaries of several runs, side by side."""
    frames = [insight(args, folder).frames[-1] for args in runs]
    path = DOCS / name
    Image.fromarray(np.concatenate(frames, axis=1)).save(path)
    return path


def save(figure, name: str) -> Path:
    figure.tight_layout()
    figure.savefig(DOCS / name, dpi=80)
    plt.close(figure)
    return DOCS / name


def main() -> None:
    from ffnn_lightning.commands.runs import quiet_runs

    quiet_runs()
    sys.path.insert(0, str(ROOT / "examples"))  # spirals.SpiralsDataModule
    circles = ["--config", str(CONFIGS / "circles.yaml"), *INSIGHT]
    spirals = ["--config", str(ROOT / "examples" / "spirals.yaml"), *INSIGHT]
    with tempfile.TemporaryDirectory() as folder:
        written = [
            vanishing(Path(folder)),
            dead_relu(Path(folder)),
            boundaries(
                "insight_circles.png",
                [
                    [*circles, "--model.network.activation=identity"],
                    [*circles, "--model.network.activation=relu"],
                ],
                Path(folder),
            ),
            boundaries(
                "insight_spirals.png",
                [
                    [*spirals, "--model.network.activation=tanh"],
                    [*spirals, "--model.network.activation=relu"],
                ],
                Path(folder),
            ),
        ]
    print("Written:", *written, sep="\n  ")


if __name__ == "__main__":
    main()
