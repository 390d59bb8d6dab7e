"""What a command costs before it does anything, and a one-row prediction, as ratios to a
bare ``import torch`` measured in the same run.

    python benchmarks/start_up.py             # 5 runs of each, medians
    python benchmarks/start_up.py --runs 3

Every command runs in a fresh process, the commands alternating. ``predict`` answers a
one-row CSV from a checkpoint of a short fit on ``breast_cancer`` (made first, not timed):
through ``python -m ffnn_lightning predict`` with the checkpoint (Lightning's Trainer), and
with the exported ONNX model as ``--ckpt_path`` (onnxruntime, no PyTorch), which needs
``pip install -e ".[export]"``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PY = sys.executable


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def prepare(folder: Path) -> tuple[Path, Path, Path]:
    """A checkpoint, its ONNX export and a one-row CSV of the table's columns."""
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer(as_frame=True).frame
    csv = folder / "table.csv"
    table.to_csv(csv, index=False)
    table.drop(columns="target").head(1).to_csv(folder / "one_row.csv", index=False)
    fit = [
        PY, "-m", "ffnn_lightning", "fit", "--data=ffnn_lightning.data.FileDataModule",
        f"--data.init_args.path={csv}", "--data.init_args.target=target",
        "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false",
    ]  # fmt: skip
    subprocess.run(fit, cwd=folder, env=ENV, check=True, capture_output=True)
    checkpoint = folder / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    export = [PY, "-m", "ffnn_lightning", "export", f"--ckpt_path={checkpoint}"]
    subprocess.run(export, cwd=folder, env=ENV, check=True, capture_output=True)
    return checkpoint, checkpoint.with_suffix(".onnx"), folder / "one_row.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        checkpoint, onnx, row = prepare(folder)
        commands = {
            "import torch": [PY, "-c", "import torch"],
            "python -m ffnn_lightning --help": [PY, "-m", "ffnn_lightning", "--help"],
            "python -m ffnn_lightning fit --help": [PY, "-m", "ffnn_lightning", "fit", "--help"],
            "predict, one row (Lightning)": [
                PY, "-m", "ffnn_lightning", "predict", f"--ckpt_path={checkpoint}",
                "--data=ffnn_lightning.data.FileDataModule", f"--data.path={row}",
            ],
            "predict, one row (the exported ONNX model)": [
                PY, "-m", "ffnn_lightning", "predict", f"--ckpt_path={onnx}", f"--data.path={row}",
            ],
        }  # fmt: skip
        seconds: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, command in commands.items():
                seconds[label].append(timed(command, folder))
    base = statistics.median(seconds["import torch"])
    print(f"Median of {args.runs} runs, each in a fresh process.\n")
    print("| command | seconds | x import torch |\n|---|---|---|")
    for label, values in seconds.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.2f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
