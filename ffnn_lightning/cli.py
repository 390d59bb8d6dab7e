"""``python -m ffnn_lightning``: the LightningCLI with this template's defaults and links."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from ffnn_lightning.callbacks import (
    BestCheckpoint,
    LatestCheckpoint,
    PredictionsWriter,
    RunSummary,
    ThrottledProgressBar,
)
from ffnn_lightning.checkpoints import read_checkpoint
from ffnn_lightning.data import TabularDataModule
from ffnn_lightning.errors import InputError, TrainingDiverged
from ffnn_lightning.module import FeedForwardModule


class FFNNCLI(LightningCLI):
    """Links the data's shape into the model and adds checkpoints, a bar and a predictions CSV."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_features", "model.in_features", apply_on="instantiate")
        parser.link_arguments("data.num_outputs", "model.out_features", apply_on="instantiate")
        parser.link_arguments("data.task_name", "model.task", apply_on="instantiate")
        parser.link_arguments("data.target_mean", "model.target_mean", apply_on="instantiate")
        parser.link_arguments("data.target_std", "model.target_std", apply_on="instantiate")
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LatestCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.filename": "best-{epoch}",
                # the best weights are for validate/test/predict; resuming uses last.ckpt
                "checkpoint.save_weights_only": True,
                # Lightning's pre-training validation pass runs the same step the first epoch's
                # validation runs moments later; on 100k rows it costs 3% of an epoch.
                "trainer.num_sanity_val_steps": 0,
                # TensorBoard runs in lightning_logs/version_N, without the placeholder
                # hp_metric scalar (the real metrics are logged by name).
                "trainer.logger": {
                    "class_path": "ffnn_lightning.logs.TensorBoardLogger",
                    "init_args": {
                        "save_dir": ".",
                        "name": "lightning_logs",
                        "default_hp_metric": False,
                    },
                },
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        self._data_defaults_from_checkpoint(sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)
        self._check_checkpoint(self.config.get("subcommand"))

    def _data_defaults_from_checkpoint(self, args: Any) -> None:
        """``validate|test|predict --ckpt_path X`` need no ``--data``: the checkpoint names its
        data module and arguments, which become the defaults (``--config`` and ``--data.*``
        options still override them, e.g. ``--data.path new.csv``)."""
        if not isinstance(args, list) or not args or args[0] not in EVALUATING:
            return
        path = _option_value(args, "--ckpt_path")
        if path is None or not Path(path).is_file():
            return  # resolved or reported by _check_checkpoint
        try:
            hparams = read_checkpoint(Path(path)).get(DATA_HPARAMS, {})
        except InputError:
            return  # reported by _check_checkpoint
        if "_class_path" in hparams:
            init_args = {k: v for k, v in hparams.items() if k[0] != "_" and k != "checkpoint"}
            data = {"class_path": hparams["_class_path"], "init_args": init_args}
            self._parser(args[0]).set_defaults({"data": data})

    def _check_checkpoint(self, subcommand: str | None) -> None:
        """Check ``--ckpt_path`` before anything reads it (LightningCLI itself reads the
        model's hyperparameters from it next).

        ``fit --ckpt_path last`` resumes the newest run's ``last.ckpt``; a resumed run goes on
        logging into its checkpoint's run folder, replacing what the interrupted run logged
        after that checkpoint. A checkpoint must load as plain data (``weights_only``): one
        whose pickle would build other Python objects, which can run code, is refused.
        """
        config = self.config.get(str(subcommand))
        if config is None or not config.get("ckpt_path"):
            return
        if config.get("weights_only") is None:
            config.weights_only = True  # Lightning 2.6 would unpickle anything by default
        runs = _tensorboard_root(config)
        if config.ckpt_path == "last" and runs is not None:
            config.ckpt_path = str(_newest_last_checkpoint(runs))
        if config.ckpt_path in ("last", "best", "hpc"):
            return
        checkpoint = Path(config.ckpt_path)
        state = read_checkpoint(checkpoint, not config.weights_only, name="--ckpt_path")
        if subcommand in EVALUATING:
            _use_the_fit_of(checkpoint, state, config.get("data"))
        in_run = runs is not None and checkpoint.resolve().parent.parent.parent == runs.resolve()
        if subcommand == "fit" and in_run and "loops" in state:
            logger = config.trainer.logger.init_args
            logger.version = checkpoint.parent.parent.name
            # TensorBoard drops what the interrupted run logged after its checkpoint
            loops = state["loops"]["fit_loop"]["epoch_loop.state_dict"]
            logger.purge_step = loops["_batches_that_stepped"]

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The configured Trainer plus this template's callbacks.

        ``fit`` gets checkpoints and a closing summary. ``validate``, ``test`` and ``predict``
        report on the console (``predict`` writes into the checkpoint's run folder) and open no
        new run folder.
        """
        config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        callbacks: list[Callback] = []
        if config.get("enable_progress_bar") is not False:
            callbacks.append(ThrottledProgressBar())
        callbacks.append(PredictionsWriter())  # after the bar, so its line follows the bar's
        if self.subcommand in (None, "fit"):
            if config.get("enable_checkpointing") is not False:
                keys = self._parser(self.subcommand).callback_keys
                callbacks += [self._get(self.config_init, key) for key in keys]
            callbacks.append(RunSummary())
        else:
            config.update(logger=False, enable_checkpointing=False)
            self.save_config_callback = None
        return self._instantiate_trainer(config, callbacks)


EVALUATING = ("validate", "test", "predict")
DATA_HPARAMS = "datamodule_hyper_parameters"


def _use_the_fit_of(checkpoint: Path, state: dict, data) -> None:
    """Point the data module at the checkpoint, where it holds a fit of that class: new rows
    are then scaled, encoded and labelled exactly as the training rows were."""
    if not data or str(data.get("class_path", "")).rsplit(".", 1)[-1] not in state:
        return
    if not data.init_args.get("checkpoint"):
        data.init_args.checkpoint = str(checkpoint)


def _option_value(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in a command line, else None."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1 :]
    return None


def _quiet_known_notices() -> None:
    """Silence notices that do not apply to this template, each for the reason given."""
    # Raised inside Lightning's own pytree helper under torch >= 2.9; nothing here can change it.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    # validate/test/predict restore only weights; the checkpoint callback of fit is not needed.
    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks.*")
    # Metrics are logged once per epoch, so the per-step logging interval does not matter.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # An advertisement for a hosted logger, printed on every run; TensorBoard is the logger here.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip")
    )


def _tensorboard_root(config) -> Path | None:
    """``save_dir/name`` of a configured TensorBoardLogger: the folder holding the runs."""
    logger = config.trainer.get("logger")
    if not logger or not str(logger.get("class_path", "")).endswith("TensorBoardLogger"):
        return None
    return Path(logger.init_args.save_dir) / logger.init_args.name


def _newest_last_checkpoint(runs: Path) -> Path:
    candidates = sorted(runs.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise InputError(
            f"--ckpt_path last: no run under {runs} has a checkpoints/last.ckpt to resume from."
        )
    return candidates[-1]


def run(args: list[str] | None = None) -> None:
    """The command line's entry point: :func:`main`, with the template's own errors (a bad
    value, a diverged run) reported in one line and exit status 1 instead of a traceback."""
    try:
        main(args)
    except Exception as error:
        ours = _own_error(error)
        if ours is None:
            raise
        sys.exit(f"error: {ours}")


def _own_error(error: BaseException | None) -> Exception | None:
    """The template's own error behind ``error``, also where jsonargparse wrapped it (it
    builds the data module while resolving argument links)."""
    while error is not None:
        if isinstance(error, InputError | TrainingDiverged):
            return error
        error = error.__cause__
    return None


def main(args: list[str] | None = None, run: bool = True) -> FFNNCLI:
    """Run the CLI (``args`` as on the command line; ``None`` reads ``sys.argv``).

    With ``run=False`` it only builds the objects (no subcommand in ``args``), for scripts that
    drive ``cli.trainer`` themselves.
    """
    _quiet_known_notices()
    return FFNNCLI(
        FeedForwardModule,
        TabularDataModule,
        subclass_mode_data=True,
        args=args,
        run=run,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"default_env": False},
    )
