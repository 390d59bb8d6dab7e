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
    parent: ParentRun | None = None,
) -> FFNNCLI:
    """``fit`` with the command line's ``args`` (``--config``, ``--model.*``, ...), logged as
    ``folder/version``. ``callbacks`` join the trainer's: objects a command line cannot give,
    such as an Optuna trial's pruning. ``hparams`` join the run's in every logger (a trial's
    values, among them an optimizer's, which the module does not record); an MLflow run becomes
    a child of ``parent``'s."""
    cli = main(list(args), run=False, run_folder=(folder, version))
    cli.trainer.callbacks.extend(callbacks)
    cli.before_fit()
    for logger in cli.trainer.loggers if hparams else ():
        logger.log_hyperparams(hparams)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    if parent is not None:
        parent.adopt(cli, version)
    return cli


class ParentRun:
    """The MLflow run that holds a command's runs (tune's trials, cv's folds) as its children,
    for each MLflow store and experiment the runs log to: opened with the first child, closed
    by ``close`` with the command's results (the study's best values, the folds' means). It
    holds only names and ids, so that worker processes can share it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.opened: dict[tuple[str, str], str] = {}  # (store, experiment id) -> parent run id

    def adopt(self, cli: FFNNCLI, version: str) -> None:
        """Make the run's MLflow runs children of this one, named ``version``."""
        from lightning.pytorch.loggers import MLFlowLogger

        for logger in cli.trainer.loggers:
            if not isinstance(logger, MLFlowLogger):
                continue
            client = logger.experiment
            key = (client.tracking_uri, logger.experiment_id)
            if key not in self.opened:
                run = client.create_run(logger.experiment_id, run_name=self.name)
                self.opened[key] = run.info.run_id
            client.set_tag(logger.run_id, "mlflow.parentRunId", self.opened[key])
            client.set_tag(logger.run_id, "mlflow.runName", version)

    def close(self, metrics: dict[str, float], params: dict[str, Any] | None = None) -> None:
        for (store, _), run_id in self.opened.items():
            from mlflow import MlflowClient

            client = MlflowClient(store)
            for name, value in metrics.items():
                client.log_metric(run_id, name, value)
            for name, value in (params or {}).items():
                client.log_param(run_id, name, value)
            client.set_terminated(run_id)


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
