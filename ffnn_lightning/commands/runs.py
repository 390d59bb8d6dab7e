"""Runs driven from Python (``compare``, ``cv``, ``tune``): each a ``fit`` as it would run from
the command line, logged as one run folder inside a parent folder, so that
``tensorboard --logdir <parent>`` overlays them and its HParams tab lists them side by side."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L

from ffnn_lightning.cli import FFNNCLI, main


def fit_run(
    args: Sequence[str],
    folder: Path,
    version: str,
    callbacks: Sequence[L.Callback] = (),
    hparams: dict[str, Any] | None = None,
) -> FFNNCLI:
    """``fit`` with the command line's ``args`` (``--config``, ``--model.*``, ...), logged as
    ``folder/version``. ``callbacks`` join the trainer's: objects a command line cannot give,
    such as an Optuna trial's pruning. ``hparams`` join the run's in TensorBoard's HParams tab
    (a trial's values, among them an optimizer's, which the module does not record)."""
    logger = "--trainer.logger.init_args"
    cli = main(
        [
            *args,
            f"{logger}.save_dir={folder.parent}",
            f"{logger}.name={folder.name}",
            f"{logger}.version={version}",
        ],
        run=False,
    )
    cli.trainer.callbacks.extend(callbacks)
    cli.before_fit()
    if hparams and cli.trainer.logger is not None:
        cli.trainer.logger.log_hyperparams(hparams)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli


def next_folder(parent: Path, name: str) -> Path:
    """``parent/name_0``, ``name_1``, ...: the first that does not exist yet."""
    index = 0
    while (parent / f"{name}_{index}").exists():
        index += 1
    return parent / f"{name}_{index}"


def final_metrics(cli: FFNNCLI) -> dict[str, float]:
    """The metrics the run ended with (its last epoch's), by name."""
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items()}


def quiet_runs() -> None:
    """Leave a script's own output alone: the runs' info lines (seed, checkpoints, summary)
    are not shown, their warnings and errors are. (Lightning sets its loggers' levels when
    imported, which this module has done.)"""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
