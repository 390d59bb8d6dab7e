"""Regenerate docs/trust.md's pictures (under a minute on 2 cores).

    python docs/trust_figures.py

- ``trust_reliability.png``: the reliability diagram the ``Calibration`` callback draws, of an
  over-confident network (a wide one trained long on few noisy rows of
  ``configs/blobs_multiclass.yaml``);
- ``trust_importance.png``: ``explain``'s permutation importance on a table of ten columns of
  which two (the number ``x3`` and the category ``shade``) decide the label.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from ffnn_lightning.cli import main, run  # noqa: E402

CALIBRATED = ["--calibration", "ffnn_lightning.training.calibration.Calibration"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def decisive_table(rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(9)})
    frame["shade"] = rng.choice(["dark", "mid", "light"], size=rows)
    signal = frame["x3"] * 1.5 + frame["shade"].map({"dark": -2.0, "mid": 0.0, "light": 2.0})
    frame["label"] = np.where(signal > 0, "yes", "no")
    return frame


def main_figures() -> None:
    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        overfit = main([
            "fit", "--config", str(DOCS.parent / "configs" / "blobs_multiclass.yaml"),
            "--data.init_args.n_samples=1000", "--data.init_args.cluster_std=12.0",
            "--trainer.max_epochs=40", f"--trainer.default_root_dir={here}",
            f"--trainer.logger.init_args.save_dir={here}", *CALIBRATED, *QUIET,
        ])  # fmt: skip
        shutil.copy(
            Path(overfit.trainer.log_dir) / "reliability.png", DOCS / "trust_reliability.png"
        )
        decisive_table().to_csv(here / "table.csv", index=False)
        explained = main([
            "fit", "--data=ffnn_lightning.data.FileDataModule", f"--data.path={here / 'table.csv'}",
            "--data.target=label", "--trainer.max_epochs=15",
            f"--trainer.logger.init_args.save_dir={here}", *QUIET,
        ])  # fmt: skip
        checkpoint = Path(explained.trainer.log_dir) / "checkpoints" / "last.ckpt"
        run(["explain", "--ckpt_path", str(checkpoint), "--output", str(here / "explained")])
        shutil.copy(here / "explained" / "importance.png", DOCS / "trust_importance.png")


if __name__ == "__main__":
    main_figures()
