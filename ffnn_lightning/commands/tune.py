"""``python -m ffnn_lightning tune``: an Optuna study over a search space, from the same YAML.

    python -m ffnn_lightning tune --config configs/wine.yaml --search configs/search/mlp.yaml

Every trial is a ``fit`` in this process (no Python start per trial), a run folder of its own
(``lightning_logs/tune_N/trial_K``: TensorBoard curves, ``config.yaml``, checkpoints; the
HParams tab lists the trials with their values). A seeded TPE sampler proposes the values, a
median pruner stops trials whose epoch metric falls behind (``PruneTrial``). The study lives in
``tune_N/study.db`` (SQLite, nothing to set up) or in a database server (``--storage``) that
workers on several machines share; ``--workers K`` runs K processes here. A killed study goes
on with the same command plus ``--resume``. At the end the folder holds ``best.yaml`` (``fit
--config best.yaml`` reproduces the best trial), ``trials.csv``, ``history.png`` and
``importances.png``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import yaml

from ffnn_lightning.commands.search_space import (
    SearchSpace,
    as_options,
    flat_config,
    printed_config,
)
from ffnn_lightning.errors import InputError, TrainingDiverged

if TYPE_CHECKING:
    from ffnn_lightning.commands.runs import ParentRun

LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "error")


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The study's own options, and the rest: the options of every trial's ``fit``."""
    parser = argparse.ArgumentParser(
        prog="python -m ffnn_lightning tune",
        description="Search hyperparameters with Optuna; every other option goes to each fit.",
    )
    parser.add_argument("--search", type=Path, required=True, help="the search space (YAML)")
    parser.add_argument("--trials", type=int, default=20, help="finished trials to reach")
    parser.add_argument("--timeout", type=float, help="stop starting trials after this many s")
    parser.add_argument("--monitor", default="val/loss", help="the metric to optimize")
    parser.add_argument("--direction", choices=("minimize", "maximize"), help="default: by name")
    parser.add_argument("--cv", type=int, help="optimize the mean over this many folds")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--workers", type=int, default=1, help="processes on this machine")
    parser.add_argument("--storage", help="a database URL shared by workers on many machines")
    parser.add_argument("--study-name", help="the study's name in --storage (default: folder)")
    parser.add_argument("--name", default="tune", help="the study folder's name prefix")
    parser.add_argument(
        "--resume", nargs="?", const="latest", help="go on with a study folder (default: newest)"
    )
    own, fit_args = parser.parse_known_args(argv)
    # one table per trial would bury the study's output; --trainer.enable_model_summary brings it
    fit_args = ["--trainer.enable_model_summary=false", *fit_args]
    if own.trials < 1:
        raise InputError(f"--trials must be at least 1, got {own.trials}.")
    if own.workers < 1:
        raise InputError(f"--workers must be at least 1, got {own.workers}.")
    if own.cv is not None and own.cv < 2:
        raise InputError(f"--cv must be at least 2 folds, got {own.cv}.")
    own.direction = own.direction or direction_of(own.monitor)
    return own, fit_args


def direction_of(monitor: str) -> str:
    """``minimize`` for losses and errors, ``maximize`` for the rest (accuracy, F1, R2...)."""
    return "minimize" if monitor.rsplit("/", 1)[-1] in LOWER_IS_BETTER else "maximize"


def study_folder(own: argparse.Namespace) -> Path:
    """A new ``lightning_logs/<name>_N``, or the one ``--resume`` names (or the newest)."""
    from ffnn_lightning.commands.runs import next_folder

    runs = Path("lightning_logs")
    if own.resume is None:
        return next_folder(runs, own.name)
    if own.resume != "latest":
        folder = Path(own.resume)
    else:
        found = sorted(runs.glob(f"{own.name}_*/study.yaml"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise InputError(f"--resume: no study under {runs}/{own.name}_N to go on with.")
        folder = found[-1].parent
    if not (folder / "study.yaml").is_file():
        raise InputError(f"--resume: {str(folder)!r} is not a study folder (no study.yaml).")
    return folder


def check_options(space: SearchSpace, fit_args: list[str]) -> None:
    """Refuse an unknown option name, or values the command line rejects, before any trial."""
    from ffnn_lightning.cli import main

    def parse_only(args: list[str]) -> None:
        main(args, run=False)

    space.check_names(flat_config(printed_config(parse_only, fit_args)))
    printed_config(parse_only, [*fit_args, *as_options(space.first_values())])


def open_storage(url: str):
    """Optuna's database storage at ``url``, with a one-line error where it cannot be reached.
    Workers that start together may race to create its tables: the loser tries again."""
    import optuna
    from sqlalchemy.exc import IntegrityError

    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # the heartbeat is experimental in Optuna's terms
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"connect_args": {"timeout": 60}} if "sqlite" in url else {},
                    # a trial whose worker died (on any machine) fails, and is run again,
                    # after 2 minutes without its heartbeat
                    heartbeat_interval=30,
                    grace_period=120,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        2
                    ),
                )
        except IntegrityError:
            if attempt == 2:
                raise
            time.sleep(1.0)
        except Exception as error:  # SQLAlchemy's errors, a database driver not installed
            first = str(error).strip().splitlines()[0]
            raise InputError(f"The study's storage {url!r} cannot be reached: {first}") from error
    raise AssertionError("unreachable")


def open_study(settings: dict[str, Any], worker: int = 0, storage=None):
    """The study in its storage (created by the first worker, joined by the others);
    ``storage`` is opened from the settings unless given."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=settings["study_name"],
        storage=storage or open_storage(settings["storage"]),
        direction=settings["direction"],
        sampler=optuna.samplers.TPESampler(seed=settings["seed"] + worker),
        # steps are epochs, or folds with --cv: judged from the 6th epoch, or the 2nd fold
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=1 if settings["cv"] else 5
        ),
        load_if_exists=True,
    )


def finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def work(
    settings: dict[str, Any],
    worker: int = 0,
    study=None,
    parent: ParentRun | None = None,
    after_trial: Callable[..., None] | None = None,
) -> None:
    """One worker: run trials until the study has ``trials`` finished ones (or time is up).
    The first worker is given the study its process opened; the others open their own, and
    join the first one's MLflow ``parent`` run. ``after_trial`` is called after each trial."""
    import optuna
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings["workers"]))
    if parent is not None:
        PARENTS[settings["folder"]] = parent
    study = study or open_study(settings, worker)
    left = settings["trials"] - finished(study)
    if left <= 0:
        return
    space = SearchSpace(settings["space"], settings["search"])
    study.optimize(
        lambda trial: objective(trial, space, settings),
        n_trials=left,
        timeout=settings["timeout"],
        catch=(TrainingDiverged,),  # a diverged trial is recorded as failed; the study goes on
        callbacks=[
            optuna.study.MaxTrialsCallback(
                settings["trials"],
                states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED),
            ),
            *([after_trial] if after_trial else []),
        ],
    )


def objective(trial, space: SearchSpace, settings: dict[str, Any]) -> float:
    """One trial: the space's values as ``fit`` options, the run's final monitored value (or
    its mean over the folds with ``--cv``)."""
    from ffnn_lightning.commands.cv import cross_validate
    from ffnn_lightning.commands.runs import final_metrics, fit_run

    values = space.suggest(trial)
    args = [*settings["fit_args"], *as_options(values)]
    folder, version, monitor = (
        Path(settings["folder"]),
        f"trial_{trial.number}",
        settings["monitor"],
    )
    trial.set_user_attr("run", str(folder / version))
    trial.set_user_attr("worker", os.getpid())
    hparams = {f"tune/{name}": value for name, value in values.items()}
    if settings["cv"]:
        means: list[float] = []

        def after_fold(fold: int, metrics: dict[str, float]) -> None:
            means.append(_monitored(metrics, monitor))
            trial.report(sum(means) / len(means), fold)
            if trial.should_prune():
                import optuna

                raise optuna.TrialPruned(f"pruned after fold {fold}")

        parent = parent_run(settings)
        cross_validate(args, settings["cv"], folder / version, after_fold, hparams, parent)
        _keep_config(trial, folder / version / "fold_0")
        return sum(means) / len(means)
    prune = [PruneTrial(trial, monitor)]
    cli = fit_run(args, folder, version, prune, hparams, parent_run(settings))
    _keep_config(trial, Path(cli.trainer.log_dir))
    return _monitored(final_metrics(cli), monitor)


# this process's MLflow parent run of each study folder's trials
PARENTS: dict[str, ParentRun] = {}


def parent_run(settings: dict[str, Any]) -> ParentRun:
    """The MLflow run whose children are this process's trials (one per worker process)."""
    from ffnn_lightning.commands.runs import ParentRun

    folder = settings["folder"]
    return PARENTS.setdefault(folder, ParentRun(Path(folder).name))


def close_parent_run(study, settings: dict[str, Any]) -> None:
    """The study's best value and values on its MLflow parent run."""
    parent = PARENTS.pop(settings["folder"], None)
    if parent is not None and study.best_trials:
        best = study.best_trial
        values = {f"best/{name}": value for name, value in best.params.items()}
        parent.close({f"best/{settings['monitor']}": best.value}, values)


def _keep_config(trial, run: Path) -> None:
    """The run's complete config, in the study: any worker's machine can write best.yaml."""
    trial.set_user_attr("config", (run / "config.yaml").read_text())


class PruneTrial(L.Callback):
    """Reports the monitored metric to the trial about ten times a run, and ends a trial that
    the pruner gives up on. Optuna's own Lightning callback reports every epoch: a database
    write each, 5 ms on SQLite, as long as a whole epoch of a small table."""

    def __init__(self, trial, monitor: str, reports: int = 10) -> None:
        self.trial, self.monitor, self.reports = trial, monitor, reports

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        every = max(1, (trainer.max_epochs or self.reports) // self.reports)
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or (trainer.current_epoch + 1) % every or value is None:
            return
        self.trial.report(float(value), trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {trainer.current_epoch + 1}")


def _monitored(metrics: dict[str, float], monitor: str) -> float:
    if monitor not in metrics:
        raise InputError(f"--monitor {monitor!r} was not logged; the runs log {sorted(metrics)}.")
    return metrics[monitor]


def rerun_interrupted(study, storage) -> None:
    """Trials a killed study left running: failed, and their values proposed again."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)


def write_results(study, folder: Path, cv: int | None) -> list[Path]:
    """``trials.csv``, ``best.yaml``, ``history.png`` and ``importances.png``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization import matplotlib as plots

    warnings.filterwarnings("ignore", category=ExperimentalWarning)  # the plots' API may change

    written = [folder / "trials.csv"]
    trials = study.trials_dataframe()
    trials.drop(columns=["user_attrs_config"], errors="ignore").to_csv(written[0], index=False)
    if study.best_trials:
        written.append(write_best_config(study.best_trial, folder, cv))
    drawings = {
        "history.png": plots.plot_optimization_history,
        "importances.png": plots.plot_param_importances,
    }
    for name, draw in drawings.items():
        try:
            axes = draw(study)
        except (ValueError, RuntimeError) as why:  # too few finished trials to draw it
            print(f"{name} not drawn: {why}")
            continue
        axes.figure.savefig(folder / name, bbox_inches="tight", dpi=120)
        plt.close(axes.figure)
        written.append(folder / name)
    return written


def write_best_config(trial, folder: Path, cv: int | None) -> Path:
    """The best trial's complete config, logging into ``lightning_logs`` as a new run: ``fit
    --config best.yaml`` reproduces it (with ``--cv``, ``cv --config best.yaml`` does)."""
    config = yaml.safe_load(trial.user_attrs["config"])
    loggers = config["trainer"]["logger"]
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if str(logger.get("class_path", "")).endswith("TensorBoardLogger"):
            logger["init_args"].update(save_dir=".", name="lightning_logs", version=None)
    if cv:
        config["data"]["init_args"].update(folds=None, fold=0)
    path = folder / "best.yaml"
    header = f"# The best trial of {folder} (trial {trial.number}): {trial.params}\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path


def main(argv: list[str]) -> Path:
    own, fit_args = parse(argv)
    space = SearchSpace.from_file(own.search)
    check_options(space, fit_args)
    folder = study_folder(own)
    settings = {
        "space": space.entries,
        "search": str(own.search),
        "fit_args": fit_args,
        "folder": str(folder),
        "storage": own.storage or f"sqlite:///{folder / 'study.db'}",
        "study_name": own.study_name or folder.name,
        **{
            key: getattr(own, key)
            for key in ("trials", "timeout", "monitor", "direction", "cv", "seed", "workers")
        },
    }
    # a server that cannot be reached is refused before the folder is made; SQLite's file
    # lives in the folder
    storage = open_storage(own.storage) if own.storage else None
    folder.mkdir(parents=True, exist_ok=True)
    storage = storage or open_storage(settings["storage"])
    study = open_study(settings, storage=storage)
    if own.resume:
        rerun_interrupted(study, storage)
    (folder / "study.yaml").write_text(yaml.safe_dump({"argv": argv, **settings}))
    others = Workers(settings, tracked=_mlflow_named(fit_args))
    if not others.tracked:
        others.start()
    work(settings, study=study, after_trial=others.start)
    others.start()  # if this process ran no trial
    others.join()
    written = write_results(study, folder, own.cv)
    close_parent_run(study, settings)
    print_summary(study, own.monitor, written)
    return folder


class Workers:
    """The worker processes beside this one. With an MLflow logger they start after this
    process's first trial, which opens the study's parent run: they then join it."""

    def __init__(self, settings: dict[str, Any], tracked: bool) -> None:
        self.settings, self.tracked = settings, tracked
        self.processes: list = []

    def start(self, *_: Any) -> None:
        if self.processes:
            return
        # fork (Linux): a worker starts with the imports done, not 4 s later; spawn elsewhere
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        parent = PARENTS.get(self.settings["folder"])
        self.processes = [
            context.Process(target=work, args=(self.settings, w, None, parent))
            for w in range(1, self.settings["workers"])
        ]
        for process in self.processes:
            process.start()

    def join(self) -> None:
        for process in self.processes:
            process.join()


def _mlflow_named(fit_args: list[str]) -> bool:
    from ffnn_lightning.cli import config_texts

    return any("MLFlowLogger" in text for text in [*fit_args, *config_texts(fit_args)])


def print_summary(study, monitor: str, written: list[Path]) -> None:
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    counts = [
        f"{len(study.get_trials(deepcopy=False, states=(s,)))} {s.name.lower()}" for s in states
    ]
    print(f"\nStudy {study.study_name}: {', '.join(counts)}")
    if study.best_trials:
        best = study.best_trial
        print(f"Best {monitor}: {best.value:.4g} (trial {best.number}) with {best.params}")
    print("Written:", *(str(path) for path in written), sep="\n  ")
