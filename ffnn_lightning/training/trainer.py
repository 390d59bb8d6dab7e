"""Lightning's Trainer with a run folder whatever the loggers, and one more command:
``lr_find``, the learning-rate finder."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import rank_zero_info

from ffnn_lightning.training.lightning_internals import move_logged_values_only_when_needed


class Trainer(L.Trainer):
    """``L.Trainer``; ``python -m ffnn_lightning lr_find`` runs its lr_find method. Its
    ``self.log`` calls move a stored value to a device only when it is elsewhere
    (:func:`~ffnn_lightning.training.lightning_internals.move_logged_values_only_when_needed`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        move_logged_values_only_when_needed()
        super().__init__(*args, **kwargs)

    @property
    def log_dir(self) -> str | None:
        """The run's folder, for its config, checkpoints, predictions and plots: the first
        logger's own folder (TensorBoard's, CSV's); for a logger without one (MLflow on a
        database or a server, W&B) the folder Lightning's checkpoints go to,
        ``save_dir/name/version`` (``default_root_dir`` for a save_dir of None); without a
        logger ``default_root_dir``. Lightning's own gives None there, and the CLI's config
        saving stops on it."""
        folder = super().log_dir
        logger = self.loggers[0] if self.loggers else None
        if logger is None or getattr(logger, "log_dir", None):
            return folder
        root = logger.save_dir or self.default_root_dir
        return self.strategy.broadcast(str(Path(root, str(logger.name), str(logger.version))))

    def lr_find(
        self,
        model: L.LightningModule,
        datamodule: L.LightningDataModule | None = None,
        min_lr: float = 1e-6,
        max_lr: float = 1.0,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
    ) -> float | None:
        """Sweep the learning rate from ``min_lr`` to ``max_lr`` over ``num_training`` steps
        (Lightning's learning-rate finder) and suggest one.

        Writes ``lr_find.png`` (loss against learning rate, the suggestion marked) and
        ``lr_find.csv`` (every step's rate and loss) into the run folder, and prints the
        suggestion with the option that uses it. The model's weights are left as they were.
        """
        finder = Tuner(self).lr_find(
            model,
            datamodule=datamodule,
            min_lr=min_lr,
            max_lr=max_lr,
            num_training=num_training,
            mode=mode,
            early_stop_threshold=early_stop_threshold,
            update_attr=False,
        )
        if finder is None or not self.is_global_zero:
            return None
        folder = Path(self.log_dir or self.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "lr_find.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["lr", "loss"])
            writer.writerows(zip(finder.results["lr"], finder.results["loss"], strict=True))
        suggestion = finder.suggestion()
        figure = finder.plot(suggest=suggestion is not None)
        figure.savefig(folder / "lr_find.png", dpi=120, bbox_inches="tight")
        if suggestion is None:
            rank_zero_info(f"No learning rate to suggest: see {folder / 'lr_find.png'}.")
        else:
            rank_zero_info(
                f"Suggested learning rate: {suggestion:.3g} (--model.lr {suggestion:.3g}); "
                f"loss curve in {folder / 'lr_find.png'}"
            )
        return suggestion
