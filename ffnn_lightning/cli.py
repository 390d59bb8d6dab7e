"""``python -m ffnn_lightning``: the LightningCLI with this template's defaults and links."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from ffnn_lightning.class_paths import class_at, importable
from ffnn_lightning.commands import command_module
from ffnn_lightning.data import TabularDataModule
from ffnn_lightning.errors import InputError, TrainingDiverged
from ffnn_lightning.model.module import FeedForwardModule
from ffnn_lightning.run_files import run_folder_of
from ffnn_lightning.training.calibration import Calibration
from ffnn_lightning.training.callbacks import (
    BestCheckpoint,
    LatestCheckpoint,
    PredictionsWriter,
    RunSummary,
    StopOnDivergence,
    ThrottledProgressBar,
    TrackerFiles,
)
from ffnn_lightning.training.checkpoints import (
    check_class_paths,
    check_importable,
    check_model_arguments,
    named_modules,
    read_checkpoint,
)
from ffnn_lightning.training.fast_steps import FastSteps
from ffnn_lightning.training.logs import TRACKERS, SaveConfig, run_with_folder
from ffnn_lightning.training.trainer import Trainer


class ValidatedOnceParser(LightningArgumentParser):
    """Dumps and saves a config it has validated without validating it again. LightningCLI
    writes the parsed config twice a run (``config.yaml``, the checkpoint's hyperparameters),
    and each validation checks every class's arguments anew: on a small table as long as many
    epochs. Any other namespace is validated as before."""

    validated: tuple[Namespace, ...] = ()

    def dump(self, namespace: Namespace, *args: Any, **kwargs: Any) -> str:
        return super().dump(namespace, *args, **self._writing(namespace, kwargs))

    def save(self, namespace: Namespace, *args: Any, **kwargs: Any) -> None:
        super().save(namespace, *args, **self._writing(namespace, kwargs))

    def _writing(self, namespace: Namespace, kwargs: dict[str, Any]) -> dict[str, Any]:
        if any(namespace is checked for checked in self.validated):
            kwargs["skip_validation"] = True  # SaveConfigCallback passes False explicitly
        if "skip_none" in kwargs:  # Lightning 2.6 still passes jsonargparse's old name for it
            kwargs["skip_unset"] = kwargs.pop("skip_none")
        return kwargs


class FFNNCLI(LightningCLI):
    """Links the data's shape into the model; adds checkpoints, the fast route, a bar, a stop
    for diverging runs, a predictions CSV and the ``lr_find`` command."""

    def __init__(self, *args: Any, run_folder: tuple[Path, str] | None = None, **kwargs: Any):
        self.run_folder = run_folder  # (folder, version) of a command's run: see main()
        self.parsers: list[ValidatedOnceParser] = []
        super().__init__(*args, parser_class=ValidatedOnceParser, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        parser = super().init_parser(**kwargs)
        self.parsers.append(parser)
        return parser

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.config.get("subcommand")), self.config)
        if self.subcommand in EVALUATING and config.get("ckpt_path"):
            _evaluation_runs(config, self.subcommand)
        if self.run_folder is not None:
            self._place_run(config, *self.run_folder)
        for parser in self.parsers:  # parsed and validated; changed above by this code only
            parser.validated = (self.config, config)

    @staticmethod
    def _place_run(config, folder: Path, version: str) -> None:
        """A run that a command places (a trial of ``tune``, a fold of ``cv``): TensorBoard
        logs it as ``folder/version``; without TensorBoard its folder is under ``folder``."""
        logger = _tensorboard(config)
        if logger is None:
            config.trainer.default_root_dir = str(folder)
            return
        logger.init_args.save_dir, logger.init_args.name = str(folder.parent), folder.name
        logger.init_args.version = version

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), "lr_find": {"model", "datamodule"}}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # what the data's fit knows (widths, task, ...) reaches the model, which builds its
        # network from it: nobody types the input width twice
        parser.link_arguments("data.data_info", "model.init_args.data_info", apply_on="instantiate")
        for key, (base, cls, init_args) in CALLBACKS.items():
            default = {"class_path": f"{cls.__module__}.{cls.__name__}"}
            default.update({"init_args": init_args} if init_args else {})
            default = None if init_args is None else default  # a slot off by default
            summary = cls.__doc__.split(".")[0].replace("\n", " ")
            parser.add_argument(
                f"--{key}", type=base | None, default=default, help=f"{summary} (null: none)."
            )
        parser.set_defaults(
            {
                # the module a config names with --model (any subclass); this one by default
                "model": {"class_path": "ffnn_lightning.model.FeedForwardModule"},
                # Lightning's pre-training validation pass runs the same step the first epoch's
                # validation runs moments later; on 100k rows it costs 3% of an epoch.
                "trainer.num_sanity_val_steps": 0,
                # TensorBoard runs in lightning_logs/version_N, without the placeholder
                # hp_metric scalar (the real metrics are logged by name).
                "trainer.logger": {
                    "class_path": "ffnn_lightning.training.logs.TensorBoardLogger",
                    "init_args": {
                        "save_dir": ".",
                        "name": "lightning_logs",
                        "default_hp_metric": False,
                    },
                },
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        args = sys.argv[1:] if args is None else args
        # RunSummary reports in one line; Lightning's wide table is --verbose true
        with contextlib.suppress(KeyError):  # no subcommands where main(run=False) builds
            parser.set_defaults({"validate.verbose": False, "test.verbose": False})
        texts = [*map(str, args), *config_texts(args)]
        _check_logger_packages(texts)
        # the modules the user names: a checkpoint's class paths may point there
        self.named = named_modules(texts)
        self._data_defaults_from_checkpoint(parser, args)
        super().parse_arguments(parser, args)
        self._check_checkpoint(self.config.get("subcommand"))

    def _data_defaults_from_checkpoint(self, parser: LightningArgumentParser, args: Any) -> None:
        """``validate|test|predict --ckpt_path X`` need no ``--data``: the checkpoint names its
        data module and arguments, which become the defaults (``--config`` and ``--data.*``
        options still override them, e.g. ``--data.path new.csv``; ``--data FileDataModule``
        reads new rows from a file with any data module's fit). They must be defaults
        before parsing, so the checkpoint is looked up in the command line and its configs.
        ``--data`` naming the checkpoint's own data module keeps its arguments."""
        if not isinstance(args, list) or not args or args[0] not in EVALUATING:
            return
        path = _named_in(args[1:], "ckpt_path")
        if path is None or not Path(path).is_file():
            return  # resolved or reported by _check_checkpoint
        try:
            state = read_checkpoint(Path(path))
        except InputError:
            return  # reported by _check_checkpoint
        named = [value for name, value in _options(args[1:]) if name == "--data"]
        own = state.get(DATA_HPARAMS, {})
        other_data = bool(named) and not _names_class(named[-1], own.get("_class_path"))
        hparams = {} if other_data else own
        if str(_named_in(args[1:], "weights_only")).lower() not in ("false", "0"):
            used = {"model": state.get("hyper_parameters", {}), "data": hparams}
            check_class_paths(used, path, self.named)
        check_model_arguments(state.get("hyper_parameters", {}), path)
        if other_data:
            return  # another data module, given the checkpoint's fit by _use_the_fit_of
        if "_class_path" in hparams:
            check_importable(hparams["_class_path"], path)
            init_args = {k: v for k, v in hparams.items() if k[0] != "_" and k != "checkpoint"}
            data = {"class_path": hparams["_class_path"], "init_args": init_args}
            parser.set_defaults({f"{args[0]}.data": data})

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
        if config.weights_only:  # the model's: LightningCLI builds it from them next
            check_class_paths(state.get("hyper_parameters", {}), str(checkpoint), self.named)
        if subcommand in EVALUATING:
            _use_the_fit_of(checkpoint, config.get("data"))
        in_run = runs is not None and checkpoint.resolve().parent.parent.parent == runs.resolve()
        if subcommand == "fit" and in_run and "loops" in state:
            logger = _tensorboard(config).init_args
            logger.version = checkpoint.parent.parent.name
            # TensorBoard drops what the interrupted run logged after its checkpoint (its x
            # axis is optimizer steps: see FeedForwardModule._log_epoch)
            logger.purge_step = state["global_step"]

    def before_fit(self) -> None:
        """The data module's arguments beside the model's in the run's hyperparameters
        (``hparams.yaml`` and TensorBoard's HParams tab), as ``data/<argument>``: Lightning
        would refuse to merge the two, which share names such as ``task``."""
        hparams = self.datamodule.hparams.items()
        for logger in self.trainer.loggers:
            logger.log_hyperparams({f"data/{k}": v for k, v in hparams if not k.startswith("_")})

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The configured Trainer: its own ``callbacks``, then the template's from their slots.

        ``validate``, ``test`` and ``predict`` report on the console (``predict`` writes into
        the checkpoint's run folder) and open no new run folder.
        """
        config = self.config_init.get(str(self.subcommand), self.config_init)
        trainer = config["trainer"]
        callbacks = list(trainer.get("callbacks") or [])
        slots = [config.get(key) for key in CALLBACKS]
        fitting = self.subcommand in (None, "fit")
        callbacks += [c for c in slots if c and _switched_on(c, trainer, callbacks, fitting)]
        if self.subcommand in EVALUATING:
            self.save_config_callback = None
        if trainer.get("barebones"):
            kwargs.setdefault("logger", False)
        elif self.subcommand in EVALUATING:  # the trackers only: no new TensorBoard folder
            kwargs.setdefault(
                "logger",
                [c for c in _listed(trainer.get("logger")) if isinstance(c, TRACKERS)] or False,
            )
        return super().instantiate_trainer(**kwargs, callbacks=callbacks)


# The template's own callbacks, each in a slot of its own: --print_config shows them with all
# their arguments, --checkpoint.monitor val/acc changes one, null removes one (in YAML, or
# --divergence_stop=null). Each acts where it applies (the checkpoints in fit, the predictions
# file in predict), and trainer.callbacks stays the user's own list. (Lightning's forced
# callbacks, add_lightning_class_args, cannot be removed.)
CALLBACKS = {
    "progress_bar": (ProgressBar, ThrottledProgressBar, {}),
    "predictions": (L.Callback, PredictionsWriter, {}),  # after the bar: its line follows it
    "fast_steps": (L.Callback, FastSteps, {}),
    "divergence_stop": (L.Callback, StopOnDivergence, {}),
    # the best weights are for validate/test/predict; resuming uses last.ckpt
    "checkpoint": (
        ModelCheckpoint,
        BestCheckpoint,
        {"monitor": "val/loss", "filename": "best-{epoch}", "save_weights_only": True},
    ),
    "last_checkpoint": (L.Callback, LatestCheckpoint, {}),
    "summary": (L.Callback, RunSummary, {}),
    "trackers": (L.Callback, TrackerFiles, {}),  # MLflow's, W&B's; nothing without them
    # off by default (None); on: --calibration ffnn_lightning.training.calibration.Calibration
    "calibration": (L.Callback, Calibration, None),
}


def _switched_on(callback: L.Callback, trainer, chosen: list[L.Callback], fitting: bool) -> bool:
    """Lightning's switches (``enable_progress_bar``, ``enable_checkpointing``, ``barebones``)
    turn the template's bar and checkpoints off too; a bar in ``trainer.callbacks`` replaces
    its bar (Lightning takes one). Checkpoints are written by ``fit`` only (elsewhere Lightning
    would restore their state from ``--ckpt_path`` and warn that their folder moved)."""
    lean = bool(trainer.get("barebones"))
    if isinstance(callback, ProgressBar):
        mine = any(isinstance(c, ProgressBar) for c in chosen)
        return trainer.get("enable_progress_bar") is not False and not lean and not mine
    if isinstance(callback, ModelCheckpoint | LatestCheckpoint):
        return trainer.get("enable_checkpointing") is not False and not lean and fitting
    return True


EVALUATING = ("validate", "test", "predict")
DATA_HPARAMS = "datamodule_hyper_parameters"


def _use_the_fit_of(checkpoint: Path, data) -> None:
    """Point a tabular data module (one with a ``checkpoint`` argument) at the checkpoint: new
    rows are then scaled, encoded and labelled exactly as the training rows were."""
    if data and "checkpoint" in data.get("init_args", {}) and not data.init_args.checkpoint:
        data.init_args.checkpoint = str(checkpoint)


def _named_in(args: list[str], key: str) -> str | None:
    """A top-level option (``ckpt_path``) as parsing will see it: on the command line, or
    else in the last ``--config`` file that sets it."""
    found = None
    for name, value in _options(args):
        if name == f"--{key}":
            return value
        if name in CONFIG_FLAGS and Path(value).is_file():
            loaded = yaml.safe_load(Path(value).read_text())
            if isinstance(loaded, dict) and loaded.get(key) is not None:
                found = str(loaded[key])
    return found


def config_texts(args: list) -> list[str]:
    """The text of each ``--config`` file a command line names."""
    names = [value for name, value in _options([str(a) for a in args]) if name in CONFIG_FLAGS]
    return [Path(name).read_text() for name in names if Path(name).is_file()]


CONFIG_FLAGS = ("--config", "-c")


def _names_class(named: str, class_path: str | None) -> bool:
    """Whether a ``--data`` value names the class at ``class_path``: by its name alone
    (``FileDataModule``) or by any import path to it."""
    if class_path is None:
        return False
    if "." not in named:
        return named == class_path.rpartition(".")[2]
    found = class_at(named, object)
    return found is not None and found is class_at(class_path, object)


def _options(args: list[str]):
    """(name, value) of each ``--name value`` or ``--name=value`` in a command line."""
    for i, arg in enumerate(args):
        if "=" in arg and arg.startswith("-"):
            yield tuple(arg.split("=", 1))
        elif arg.startswith("-") and i + 1 < len(args):
            yield arg, args[i + 1]


@functools.cache
def quiet_known_notices() -> None:
    """Silence notices that do not apply to this template, each for the reason given (once a
    process: filters pile up otherwise)."""
    # Raised inside Lightning's own pytree helper under torch >= 2.9; nothing here can change it.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    # validate/test/predict restore only weights; the checkpoint callback of fit is not needed.
    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks.*")
    # The fast route hands the module's step a dataloader_iter on purpose (fast_steps.py).
    warnings.filterwarnings("ignore", message=".*`dataloader_iter`.*")
    # Metrics are logged once per epoch, so the per-step logging interval does not matter.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    # main(args) from scripts (compare, benchmarks, tests) is this CLI's documented use.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended.*")
    # An advertisement for a hosted logger, and which accelerators exist but go unused: printed
    # on every run, informing of nothing (a GPU that is used still says so).
    # "`Trainer.fit` stopped: `max_epochs=N` reached." is the normal end, which RunSummary's
    # "Finished after N epochs" reports (other reasons to stop are still shown).
    noise = (
        "💡 Tip",
        "TPU available: False",
        "GPU available: False",
        "HPU available: False",
        "`Trainer.fit` stopped: `max_epochs=",
    )
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith(noise)
    )


def _listed(logger) -> list:
    """``trainer.logger`` as a list: one logger, several, or none."""
    return logger if isinstance(logger, list) else [logger] if logger else []


def _configured(config, name: str) -> list:
    """The configured loggers (alone, or among several) whose class is named ``name``."""
    chosen = _listed(config.trainer.get("logger"))
    return [c for c in chosen if hasattr(c, "get") and c.get("class_path", "").endswith(f".{name}")]


def _tensorboard(config):
    """The configured TensorBoardLogger (alone, or among several loggers), or None."""
    found = _configured(config, "TensorBoardLogger")
    return found[0] if found else None


def _evaluation_runs(config, subcommand: str) -> None:
    """``validate``/``test``/``predict`` of a checkpoint open an MLflow run of their own, named
    after the command and tagged with the checkpoint: a child of the run that wrote it."""
    checkpoint = Path(config.ckpt_path).resolve()
    for logger in _configured(config, "MLFlowLogger"):
        args = logger.init_args
        args.run_name = args.run_name or subcommand
        parent = run_with_folder(args.tracking_uri, args.experiment_name, run_folder_of(checkpoint))
        tags = {"checkpoint": str(checkpoint)} | ({"mlflow.parentRunId": parent} if parent else {})
        args.tags = {**(args.tags or {}), **tags}


def _tensorboard_root(config) -> Path | None:
    """``save_dir/name`` of a configured TensorBoardLogger: the folder holding the runs."""
    logger = _tensorboard(config)
    if logger is None:
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
    """The command line's entry point: :func:`main`, or a command beside LightningCLI's
    (``tune``, ``cv``, ..., ``predict`` with an ONNX model), with the template's
    own errors (a bad value, a diverged run) reported in one line and exit status 1 instead of
    a traceback."""
    args = sys.argv[1:] if args is None else args
    try:
        command = command_module(args)
        if command is not None:
            quiet_known_notices()
            importlib.import_module(command).main(args[1:])
        else:
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


# loggers whose packages are optional extras of this project: class name -> package
OPTIONAL_LOGGERS = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}


def _check_logger_packages(texts: list[str]) -> None:
    """Refuse, in one line naming the extra, a logger named without its package (jsonargparse
    would bury Lightning's hint in a page about union types)."""
    for name, package in OPTIONAL_LOGGERS.items():
        if not any(name in text for text in texts):
            continue
        if not importable(package):
            raise InputError(
                f'{name} needs its package: pip install -e ".[{package}]" (or pip install '
                f"{package})."
            )


def main(
    args: list[str] | None = None, run: bool = True, run_folder: tuple[Path, str] | None = None
) -> FFNNCLI:
    """Run the CLI (``args`` as on the command line; ``None`` reads ``sys.argv``).

    With ``run=False`` it only builds the objects (no subcommand in ``args``), for scripts that
    drive ``cli.trainer`` themselves; ``run_folder`` (folder, version) places their run.
    """
    quiet_known_notices()
    return FFNNCLI(
        FeedForwardModule,
        TabularDataModule,
        trainer_class=Trainer,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        run_folder=run_folder,
        auto_configure_optimizers=False,
        save_config_callback=SaveConfig,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "default_env": False,
            "prog": "python -m ffnn_lightning",
            "description": "Train, evaluate and predict (below); also `tune` (an Optuna study), "
            "`cv` (k-fold cross-validation), `compare` (one run per config), `export` "
            "(ONNX) and `explain` (which columns matter): python -m ffnn_lightning tune --help",
        },
    )
