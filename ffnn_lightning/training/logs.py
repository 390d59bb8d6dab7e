"""The run's loggers: TensorBoard's; what the trackers (MLflow, W&B) are handed besides the
metrics (the config, the checkpoints, the predictions); reading back what a run logged."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch import loggers
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(loggers.TensorBoardLogger):
    """Lightning's TensorBoard logger, flushing its event file at most every ``flush_secs``, and
    filling TensorBoard's HParams tab when the run ends.

    Lightning saves the logger after every logging call, and each save waits for TensorBoard's
    writer thread to flush: about a millisecond per epoch, a sixtieth of an epoch of the
    chapter's run at batch 256. Here a save flushes only once ``flush_secs`` have passed; the
    writer also flushes on its own every ``flush_secs``, and when the run ends.

    Lightning writes the HParams tab only with metrics given, so at the end the run's
    hyperparameters go there with the last value of every logged metric, as ``final/<name>``
    (one point each, beside the curves): runs can then be sorted and compared in that tab.
    """

    def __init__(self, *args: Any, flush_secs: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, flush_secs=flush_secs, **kwargs)
        self.flush_secs = flush_secs
        self._saved_at = -float("inf")
        self.latest: dict[str, float] = {}  # the last value of each metric, for the HParams tab

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        self.latest.update({k: float(v) for k, v in metrics.items() if k != "epoch"})

    def save(self) -> None:
        if time.monotonic() - self._saved_at >= self.flush_secs:
            super().save()
            self._saved_at = time.monotonic()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        final = {f"final/{k}": v for k, v in self.latest.items()}
        if final and self.hparams:
            self.log_hyperparams(self.hparams, final)
        self.latest = {}
        self._saved_at = -float("inf")  # the closing save always writes
        super().finalize(status)


def read_hparams(log_dir: Path | str) -> tuple[list[str], list[str]]:
    """The hyperparameter and metric names in a run's HParams tab."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(log_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams").get("_hparams_/experiment")
    if content is None:
        return [], []
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
    return (
        [info.name for info in experiment.hparam_infos],
        [info.name.tag for info in experiment.metric_infos],
    )


def read_scalars(log_dir: Path | str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard run folder, as (step, value) pairs in logged order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


class SaveConfig(SaveConfigCallback):
    """LightningCLI's ``config.yaml`` in the run folder, and handed to the trackers too: to
    each MLflow logger as an artifact, to each W&B logger as a run file, and to both its
    values as ``config/...`` parameters (a run then holds what it was started with, whichever
    loggers are on)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        # every process asks (log_dir is a collective call); save_config runs on rank 0 only
        self.folder = trainer.log_dir
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        for logger in trackers(trainer):
            logger.log_hyperparams({"config": self.config.clone().as_dict()})
        attach(trainer, Path(self.folder, self.config_filename))


TRACKERS = (loggers.MLFlowLogger, loggers.WandbLogger)  # loggers that keep runs elsewhere


def trackers(trainer: L.Trainer) -> list[loggers.Logger]:
    return [logger for logger in trainer.loggers if isinstance(logger, TRACKERS)]


def attach(trainer: L.Trainer, path: Path, folder: str | None = None) -> None:
    """Hand a file to every tracker: an MLflow artifact (in ``folder``), a W&B run file."""
    for logger in trackers(trainer):
        if isinstance(logger, loggers.MLFlowLogger):
            logger.experiment.log_artifact(logger.run_id, str(path), folder)
        else:
            base = path.parent.parent if folder else path.parent
            logger.experiment.save(str(path), base_path=str(base), policy="now")


def tag(trainer: L.Trainer, values: dict[str, str]) -> None:
    """Name things (paths) on every tracker's run: MLflow tags, W&B summary values."""
    for logger in trackers(trainer):
        for name, value in values.items():
            if isinstance(logger, loggers.MLFlowLogger):
                logger.experiment.set_tag(logger.run_id, name, value)
            else:
                logger.experiment.summary[name] = value


RUN_FOLDER = "run_folder"  # the tag that ties a tracker's run to its folder (and checkpoints)


def run_with_folder(tracking_uri: str | None, experiment: str, folder: Path) -> str | None:
    """The id of the newest MLflow run tagged with ``folder`` as its run folder, if any."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.{RUN_FOLDER} = '{folder.resolve()}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None
