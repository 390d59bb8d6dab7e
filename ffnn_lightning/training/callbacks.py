"""The template's own callbacks (``--print_config`` shows each in its slot): a light progress
bar, checkpoints, a stop for a diverging run, a predictions CSV, the closing lines and the
files handed to trackers."""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from ffnn_lightning.errors import InputError, TrainingDiverged
from ffnn_lightning.run_files import free_path, run_folder_of
from ffnn_lightning.training.calibration import conformal_threshold
from ffnn_lightning.training.logs import RUN_FOLDER, attach, tag


class ThrottledProgressBar(TQDMProgressBar):
    """TQDM bar that redraws at most ``1 / interval_s`` times a second; where stdout is not a
    terminal (a log file, a pipe), one plain line per epoch instead of a carriage-return frame
    per redraw.

    Lightning's bar redraws (and gathers the logged metrics) after every batch, which at the
    chapter's batch size of 16 costs about a third of a training step.
    """

    handles_step_chunks = True  # it draws the position of the last batch it is shown

    def __init__(self, interval_s: float = 0.25) -> None:
        self.lines = not sys.stdout.isatty()
        super().__init__(refresh_rate=0 if self.lines else 1)  # 0: no bar drawn
        self.interval_s = interval_s
        self._last_draw = 0.0
        self._shown = True  # Lightning hides the bar while it searches (lr_find)

    def disable(self) -> None:
        super().disable()
        self._shown = False

    def enable(self) -> None:
        super().enable()
        self._shown = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if now - self._last_draw >= self.interval_s or batch_idx + 1 == self.total_train_batches:
            self._last_draw = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def init_train_tqdm(self):
        """Lightning's bar without the steps-per-second rate, so that at 120 columns the
        metrics fit beside it."""
        bar = super().init_train_tqdm()
        counts = "{n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
        bar.bar_format = "{desc}{percentage:3.0f}%|{bar:10}| " + counts + "{postfix}"
        return bar

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._write_line(trainer, pl_module, trainer.current_epoch - 1)

    def on_train_end(self, trainer, pl_module) -> None:
        """Show the last epoch's values: the module logs them after the bar's epoch end."""
        if not self.train_progress_bar.disable:
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
        self._write_line(trainer, pl_module, trainer.current_epoch - 1)
        super().on_train_end(trainer, pl_module)

    def get_metrics(self, trainer, pl_module) -> dict:
        """The logged values, without the run's version number (``v_num``)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def _write_line(self, trainer: L.Trainer, pl_module: L.LightningModule, epoch: int) -> None:
        """In a log file, the epoch's logged values: read once the next epoch starts, when
        all are in."""
        if not self.lines or not self._shown or epoch < 0 or not trainer.is_global_zero:
            return
        metrics = self.get_metrics(trainer, pl_module)
        if metrics:
            values = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
            )
            print(f"Epoch {epoch + 1}/{trainer.max_epochs}: {values}", flush=True)


class LatestCheckpoint(L.Callback):
    """``last.ckpt`` beside the best checkpoint: the whole training state, for resuming.

    Written at the end of an epoch once ``every_s`` seconds have passed since the previous
    write, after every ``every_n_steps`` optimizer steps if set, and always when training ends.
    One write costs about a fifth of an epoch of the chapter's run at batch 256, so writing
    every epoch (``every_s: 0``) is a choice, not the default: a crash loses at most
    ``every_s`` seconds of training. A run resumed from it (``fit --ckpt_path last``) ends as
    if it had never stopped, also from the middle of an epoch.
    """

    def __init__(
        self, every_s: float = 30.0, every_n_steps: int | None = None, filename: str = "last.ckpt"
    ) -> None:
        self.every_s = every_s
        self.every_n_steps = every_n_steps
        self.filename = filename
        self._written_at = 0.0
        self._written_step = 0

    @property
    def handles_step_chunks(self) -> bool:
        """Only ``every_n_steps`` needs to see every optimizer step."""
        return not self.every_n_steps

    def path(self, trainer: L.Trainer) -> Path:
        return Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints" / self.filename

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._written_at, self._written_step = time.monotonic(), trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_steps and trainer.global_step - self._written_step >= self.every_n_steps:
            self._write(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = time.monotonic() - self._written_at >= self.every_s
        if trainer.strategy.broadcast(due):  # rank 0 decides, so every process joins the save
            self._write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def _write(self, trainer: L.Trainer) -> None:
        """Write beside the old file, then rename over it: a crash mid-write leaves the
        previous ``last.ckpt`` whole. (Lightning's own save stages the file in the system's
        temporary folder, and moving it from another file system is a copy, not a rename.)
        ``fast_dev_run`` writes nothing."""
        if trainer.fast_dev_run:
            return
        path = self.path(trainer)
        partial = path.with_name(path.name + ".partial")
        trainer.save_checkpoint(partial, weights_only=False)  # the whole training state
        if trainer.is_global_zero:
            os.replace(partial, path)
        trainer.strategy.barrier()
        self._written_at, self._written_step = time.monotonic(), trainer.global_step


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, telling the fast route (``training/fast_steps.py``)
    whether it saves within an epoch (``every_n_train_steps``, ``train_time_interval``): only
    then does it need to see every batch."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        within = kwargs.get("every_n_train_steps") or kwargs.get("train_time_interval")
        self.handles_step_chunks = not within


class StopOnDivergence(L.Callback):
    """Stops training once its loss is NaN or infinite, naming the epoch and the optimizer step,
    before any checkpoint of the broken weights is written (those come at the epoch's end)."""

    handles_step_chunks = True  # outputs["loss"] then holds the loss of every batch of the call

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        losses = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if losses is None:
            return
        finite = torch.isfinite(losses.detach().reshape(-1))
        if bool(finite.all()):
            return
        first = int((~finite).nonzero()[0])
        step = trainer.global_step - len(finite) + first + 1
        raise TrainingDiverged(
            f"The training loss became {losses.reshape(-1)[first].item()} at epoch "
            f"{trainer.current_epoch}, optimizer step {step}. Try a lower learning rate "
            "(--model.optimizer.init_args.lr) or gradient clipping (--trainer.gradient_clip_val)."
        )


class LargeTableLearningRate(L.Callback):
    """A size rule: from ``min_rows`` training rows on, every learning rate is ``factor`` times
    the optimizer's, through its whole schedule.

    A rate chosen on tables of some thousands of rows takes tens of thousands of steps on a
    table of some hundred thousand, and its noise then ends the run above the loss a lower
    rate reaches (docs/benchmark.md, "The large tables"). The rates are scaled before the
    first step; a resumed run takes its checkpoint's, which were scaled when it began.
    """

    def __init__(self, min_rows: int = 100_000, factor: float = 0.25) -> None:
        if min_rows < 0 or not factor > 0.0:  # NaN too
            raise InputError(
                f"LargeTableLearningRate needs min_rows >= 0 and factor > 0, got "
                f"min_rows={min_rows}, factor={factor}."
            )
        self.min_rows = min_rows
        self.factor = factor

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = training_rows(self, pl_module)
        if rows < self.min_rows:
            return
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                for key in ("lr", "initial_lr"):
                    if key in group:
                        group[key] *= self.factor
        for config in trainer.lr_scheduler_configs:  # base rate x schedule, at each step
            scheduler = config.scheduler
            if hasattr(scheduler, "base_lrs"):  # ReduceLROnPlateau scales the rate itself
                scheduler.base_lrs = [rate * self.factor for rate in scheduler.base_lrs]
        rank_zero_info(
            f"Learning rate x{self.factor}: {rows} training rows, at least min_rows "
            f"({self.min_rows})."
        )


class SmallTableBatchSize(L.Callback):
    """A size rule: under ``max_rows`` training rows, a training step takes at most
    ``batch_size`` rows.

    A batch chosen for tables of some thousands of rows leaves a table of some hundreds with
    one or two steps an epoch, too few to train in a run's epochs; a smaller batch gives it
    the steps at about the same cost, since such a fit is mostly its fixed costs
    (docs/benchmark.md, "The small tables"). A smaller batch the data module was given stays.
    """

    def __init__(self, max_rows: int = 1200, batch_size: int = 32) -> None:
        if max_rows < 0 or batch_size < 1:
            raise InputError(
                f"SmallTableBatchSize needs max_rows >= 0 and batch_size >= 1, got "
                f"max_rows={max_rows}, batch_size={batch_size}."
            )
        self.max_rows = max_rows
        self.batch_size = batch_size

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        rows = training_rows(self, pl_module)
        data = trainer.datamodule
        if data is None or not hasattr(data, "batch_size"):
            raise InputError(
                "SmallTableBatchSize sets the data module's batch_size (a TabularDataModule "
                f"has one); this fit has {type(data).__name__ if data else 'no data module'}."
            )
        given = rows if data.batch_size is None else data.batch_size  # None: the whole split
        if rows >= self.max_rows or given <= self.batch_size:
            return
        data.batch_size = self.batch_size
        rank_zero_info(
            f"Batch size {self.batch_size}: {rows} training rows, under max_rows ({self.max_rows})."
        )


def training_rows(rule: L.Callback, pl_module: L.LightningModule) -> int:
    """The training rows a size rule goes by: the data module links them into the module."""
    rows = getattr(pl_module, "data_info", {}).get("train_rows")
    if rows is None:
        raise InputError(
            f"{type(rule).__name__} needs the training rows in the module's data_info "
            "(a TabularDataModule links them); none were given."
        )
    return rows


class RunSummary(L.Callback):
    """The closing lines. After ``fit``: the final epoch metrics and where the run, checkpoints
    and logs went. After ``validate`` or ``test``: the metrics in one line, to four significant
    digits (Lightning's own table, with every digit of a float32, is ``--verbose true``)."""

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = _metrics_line(trainer)
        lines = [
            f"Finished after {trainer.current_epoch} epochs" + (f": {metrics}" if metrics else "")
        ]
        if trainer.fast_dev_run:  # Lightning's dry run: nothing was written
            rank_zero_info(lines[0])
            return
        if trainer.logger is not None and trainer.log_dir:
            lines.append(f"Run folder:  {Path(trainer.log_dir)}")
        found = checkpoint_files(trainer)
        if "best" in found:
            lines.append(f"Checkpoint, best {trainer.checkpoint_callback.monitor}: {found['best']}")
        if "latest" in found:
            lines.append(f"Checkpoint, latest: {found['latest']}")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                lines.append(f"TensorBoard: tensorboard --logdir {Path(logger.root_dir)}")
        rank_zero_info("\n".join(lines + _mlflow_lines(trainer)))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "validate":
            lines = [f"Validation: {_metrics_line(trainer)}", *_mlflow_lines(trainer)]
            rank_zero_info("\n".join(lines))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rank_zero_info("\n".join([f"Test: {_metrics_line(trainer)}", *_mlflow_lines(trainer)]))


def _mlflow_lines(trainer: L.Trainer) -> list[str]:
    return [
        f"MLflow: run {logger.run_id} of experiment {logger.experiment_id}"
        for logger in trainer.loggers
        if isinstance(logger, MLFlowLogger)
    ]


class TrackerFiles(L.Callback):
    """The run's files, handed to the trackers (MLflow, W&B; none without them): the run
    folder as a tag when ``fit`` starts; the best and latest checkpoints when it ends, as their
    paths (tags ``checkpoint/best``, ``checkpoint/latest``) or as the files themselves
    (``checkpoints: files``, artifacts under ``checkpoints/``); the predictions file of
    ``predict``."""

    def __init__(self, checkpoints: Literal["paths", "files"] = "paths") -> None:
        if checkpoints not in ("paths", "files"):
            raise ValueError(f"checkpoints must be 'paths' or 'files', got {checkpoints!r}")
        self.checkpoints = checkpoints

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        folder = trainer.log_dir if stage == "fit" else None  # log_dir: every process asks
        if folder and trainer.is_global_zero:
            tag(trainer, {RUN_FOLDER: str(Path(folder).resolve())})
            _name_after(Path(folder), trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        found = checkpoint_files(trainer)  # every process: it asks for log_dir, a broadcast
        if not trainer.is_global_zero or trainer.fast_dev_run:
            return
        if self.checkpoints == "paths":
            tag(trainer, {f"checkpoint/{k}": str(path.resolve()) for k, path in found.items()})
        for path in found.values() if self.checkpoints == "files" else ():
            attach(trainer, path, "checkpoints")

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for callback in trainer.callbacks if trainer.is_global_zero else ():
            if isinstance(callback, PredictionsWriter) and callback.written:
                attach(trainer, callback.written)


def _name_after(folder: Path, trainer: L.Trainer) -> None:
    """An MLflow run the user did not name is named after its folder (``version_3``): its
    random name comes from Python's generator, which the seed fixes, so every run of a
    seeded config would be called the same."""
    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger) and "mlflow.runName" not in (logger.tags or {}):
            logger.experiment.set_tag(logger.run_id, "mlflow.runName", folder.name)


def checkpoint_files(trainer: L.Trainer) -> dict[str, Path]:
    """The run's best checkpoint (its first ``ModelCheckpoint``'s) and latest (``last.ckpt``),
    those that exist."""
    found = {}
    best = trainer.checkpoint_callback
    if isinstance(best, ModelCheckpoint) and best.best_model_path:
        found["best"] = Path(best.best_model_path)
    for callback in trainer.callbacks:
        if isinstance(callback, LatestCheckpoint) and callback.path(trainer).is_file():
            found["latest"] = callback.path(trainer)
    return found


def _metrics_line(trainer: L.Trainer) -> str:
    """The logged metrics to four significant digits, by name; not ``step`` and ``epoch``
    (TensorBoard's x and Lightning's epoch index)."""
    return ", ".join(
        f"{name}={value.item():.4g}"
        for name, value in sorted(trainer.callback_metrics.items())
        if name not in ("step", "epoch")
    )


def run_dir(trainer: L.Trainer, ckpt_path: str | None) -> Path:
    """The folder of the run a checkpoint belongs to, else the trainer's log folder."""
    if ckpt_path:
        return run_folder_of(ckpt_path)
    return Path(trainer.log_dir or trainer.default_root_dir)


class PredictionsWriter(L.Callback):
    """Writes ``predictions.csv`` (one row per input row, in order) into the run folder.

    Predictions on a file of new rows are named after it (``predictions-new_patients.csv``);
    an earlier predictions file is never replaced: the next free ``-2``, ``-3``... is taken.
    With a ``coverage`` (0.9) each row also gets a split conformal prediction set of classes
    (``set``: ``a|b``) or interval (``lower``, ``upper``) that holds the true answer that
    often, from the validation rows' scores in the checkpoint (``Calibration`` callback).
    """

    def __init__(self, filename: str = "predictions.csv", coverage: float | None = None) -> None:
        if coverage is not None:
            conformal_threshold(torch.zeros(1), coverage)  # refuses a coverage outside (0, 1)
        self.filename = filename
        self.coverage = coverage
        self._batches: list[dict[str, torch.Tensor]] = []
        self.written: Path | None = None  # the file the last predict wrote

    def _name(self, data) -> str:
        """``predictions.csv``, or after the file of new rows it predicts on."""
        if getattr(data, "predict_split", None) == "predict" and hasattr(data, "output_name"):
            path = Path(self.filename)
            return f"{path.stem}-{data.output_name()}{path.suffix}"
        return self.filename

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self._batches = []

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        self._batches.append(outputs)

    def on_predict_end(self, trainer, pl_module) -> None:
        folder = run_dir(trainer, trainer.ckpt_path)  # every process: log_dir is collective
        if not self._batches or not trainer.is_global_zero:
            return
        outputs = {
            key: torch.cat([b[key] for b in self._batches]).cpu() for key in self._batches[0]
        }
        data = trainer.datamodule
        table = data.row_ids(data.predict_split) if hasattr(data, "row_ids") else {}
        names = getattr(data, "class_names", None)
        table.update(_named_columns(outputs, names))
        if self.coverage is not None:
            threshold = conformal_threshold(pl_module.conformal_scores.cpu(), self.coverage)
            table.update(conformal_columns(outputs, threshold, names))
        left_out = data.left_out_rows(data.predict_split) if hasattr(data, "left_out_rows") else {}
        table = _with_left_out(table, left_out)
        if "row" in table:  # in the order of the data's rows, whatever order the split drew
            order = sorted(range(len(table["row"])), key=table["row"].__getitem__)
            table = {name: [column[i] for i in order] for name, column in table.items()}
        path = free_path(folder / self._name(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(table)
            writer.writerows(zip(*table.values(), strict=True))
        self.written = path
        count = len(next(iter(outputs.values())))
        unanswered = f", and {len(left_out['row'])} rows it could not predict" if left_out else ""
        rank_zero_info(f"Predictions for {count} rows{unanswered} written to {path}")


def conformal_columns(
    outputs: dict[str, torch.Tensor], threshold: float, names: list[str] | None
) -> dict[str, list]:
    """A prediction set per row (every class whose probability is at least 1 - threshold)
    or an interval (the prediction +- threshold)."""
    if "probability" in outputs:
        probability = outputs["probability"]
        labels = names or [str(i) for i in range(probability.shape[1])]
        kept = probability >= 1 - threshold
        sets = [[name for name, k in zip(labels, row, strict=True) if k] for row in kept.tolist()]
        return {"set": ["|".join(chosen) for chosen in sets]}
    prediction = outputs["prediction"].reshape(len(outputs["prediction"]), -1)
    columns = {}
    for i in range(prediction.shape[1]):
        suffix = f"_{i}" if prediction.shape[1] > 1 else ""
        columns[f"lower{suffix}"] = (prediction[:, i] - threshold).tolist()
        columns[f"upper{suffix}"] = (prediction[:, i] + threshold).tolist()
    return columns


def _with_left_out(table: dict[str, list], left_out: dict[str, list]) -> dict[str, list]:
    """The table with the rows the network was not given (their ``reason``, empty outputs)."""
    if not left_out:
        return table
    given = len(table["row"])
    extra = len(left_out["row"])
    merged = {name: column + left_out.get(name, [""] * extra) for name, column in table.items()}
    merged["reason"] = [""] * given + left_out["reason"]
    return merged


def _named_columns(outputs: dict[str, torch.Tensor], names: list[str] | None) -> dict[str, list]:
    """One list per CSV column: labels and targets as the data named the classes, a 2-D output
    one column per unit (``probability_<class>`` when there is one per class)."""
    columns = {}
    for key, values in outputs.items():
        values = values.reshape(len(values), -1)
        width = values.shape[1]
        if names and key in ("label", "target"):
            columns[key] = [names[i] for i in values[:, 0].long().tolist()]
        elif width == 1:
            columns[key] = values[:, 0].tolist()
        else:
            units = names if names and len(names) == width else range(width)
            columns.update({f"{key}_{unit}": values[:, i].tolist() for i, unit in enumerate(units)})
    return columns
