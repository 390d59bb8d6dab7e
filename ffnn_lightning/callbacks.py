"""Callbacks the CLI adds: a light progress bar, a predictions CSV and a closing summary."""

from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info


class ThrottledProgressBar(TQDMProgressBar):
    """TQDM bar that redraws at most ``1 / interval_s`` times a second.

    Lightning's bar redraws (and gathers the logged metrics) after every batch, which at the
    chapter's batch size of 16 costs about a third of a training step.
    """

    def __init__(self, interval_s: float = 0.25) -> None:
        super().__init__(refresh_rate=1)
        self.interval_s = interval_s
        self._last_draw = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if now - self._last_draw >= self.interval_s or batch_idx + 1 == self.total_train_batches:
            self._last_draw = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class RunSummary(L.Callback):
    """After ``fit``: the final epoch metrics and where the run, checkpoints and logs went."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = ", ".join(
            f"{name}={value.item():.4g}" for name, value in sorted(trainer.callback_metrics.items())
        )
        lines = [f"Finished after {trainer.current_epoch} epochs: {metrics}"]
        if trainer.log_dir:
            lines.append(f"Run folder:  {trainer.log_dir}")
        for checkpoint in trainer.checkpoint_callbacks:
            kind = f"best {checkpoint.monitor}" if checkpoint.monitor else "latest"
            lines.append(f"Checkpoint, {kind}: {checkpoint.best_model_path}")
        if trainer.logger is not None:
            lines.append(f"TensorBoard: tensorboard --logdir {trainer.logger.root_dir}")
        rank_zero_info("\n".join(lines))


def run_dir(trainer: L.Trainer, ckpt_path: str | None) -> Path:
    """The folder of the run a checkpoint belongs to, else the trainer's log folder."""
    if ckpt_path:
        ckpt = Path(ckpt_path).resolve()
        return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return Path(trainer.log_dir or trainer.default_root_dir)


class PredictionsWriter(L.Callback):
    """Writes ``predictions.csv`` (one row per input row, in order) into the run folder."""

    def __init__(self, filename: str = "predictions.csv") -> None:
        self.filename = filename
        self._batches: list[dict[str, torch.Tensor]] = []

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self._batches = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        self._batches.append(outputs)

    def on_predict_end(self, trainer, pl_module) -> None:
        if not self._batches:
            return
        columns = {
            key: torch.cat([b[key] for b in self._batches]).cpu() for key in self._batches[0]
        }
        header, table = _flatten(columns)
        path = run_dir(trainer, trainer.ckpt_path) / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(table)
        rank_zero_info(f"Predictions for {len(table)} rows written to {path}")


def _flatten(columns: dict[str, torch.Tensor]) -> tuple[list[str], list[list]]:
    """Column names and rows; a 2-D output becomes one column per unit (probability_0, ...)."""
    header, blocks = [], []
    for key, values in columns.items():
        values = values.reshape(len(values), -1)
        width = values.shape[1]
        header += [key] if width == 1 else [f"{key}_{i}" for i in range(width)]
        blocks.append(values.tolist())
    return header, [list(itertools.chain(*parts)) for parts in zip(*blocks, strict=True)]
