"""Every Trainer flag and callback behaves as Lightning documents.

Each case runs the template through its CLI on a small config and, where a comparison means
something, Lightning's documentation-style module (tests/docs_module.py) on the same network,
seed and batches with plain ``L.Trainer``: the weights after the run must agree to 1e-6
relative and the logged epoch metrics must match. Every case also checks the feature's own
effect. docs/speed.md's matrix table lists it.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch import callbacks as lc
from torch.utils.data import DataLoader, TensorDataset

from ffnn_lightning import BlobsDataModule, FeedForwardModule
from ffnn_lightning.model.networks import FeedForwardNetwork
from ffnn_lightning.training.fast_steps import FastSteps
from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS
from tests.docs_module import DocsModule

SMALL = [
    "--config", str(CONFIGS / "blobs_adam.yaml"), "--data.init_args.n_samples=400",
    "--model.network.hidden=[32]", "--trainer.max_epochs=2", "--trainer.enable_model_summary=false",
]  # fmt: skip
STEPS_PER_EPOCH = 20  # 320 training rows in batches of 16


class EpochRecorder(L.Callback):
    """What was logged by the end of each epoch (read when the next begins, and at the end)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._record(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._record(trainer)

    def _record(self, trainer) -> None:
        self.epochs.append({k: v.item() for k, v in trainer.callback_metrics.items()})


class LogsEveryStep(FeedForwardModule):
    """A user's edit: the loss of every step logged with ``self.log``."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train/step_loss", loss)
        return loss


# The same edit where no source file can be read (a notebook cell, exec): a module that
# exists only in memory, importable by name as a notebook's classes are.
CELL = types.ModuleType("notebook_cell")
exec(
    "from ffnn_lightning import FeedForwardModule\n"
    "class LogsInACell(FeedForwardModule):\n"
    "    def training_step(self, batch, batch_idx):\n"
    "        loss = super().training_step(batch, batch_idx)\n"
    "        self.log('train/step_loss', loss)\n"
    "        return loss\n",
    CELL.__dict__,
)
sys.modules[CELL.__name__] = CELL


class LogsInModelStep(FeedForwardModule):
    """A user's edit the class-level check cannot see: FeedForwardModule's own training_step
    runs, and the helper it calls logs per step."""

    def model_step(self, batch):
        loss, outputs, target = super().model_step(batch)
        self.log("train/step_loss", loss)
        return loss, outputs, target


class DocsLogsEveryStep(DocsModule):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("train/step_loss", loss)
        return loss


@dataclass
class Case:
    route: str  # "fast" or "plain": whether FastSteps trains or steps aside
    args: list[str] = field(default_factory=list)  # the template's command line
    kwargs: dict = field(default_factory=dict)  # the reference Trainer's, or None: no reference
    callbacks: list = field(default_factory=list)  # the reference's callbacks (factories)
    optimizer: object = partial(torch.optim.Adam, lr=0.001)
    template_module: type | None = None
    reference_module: type = DocsModule
    effect: object = None  # check(cli, folder) of the feature's own effect


def steps(count: int):
    return lambda cli, folder: cli.trainer.global_step == count


def scalars(tag: str, count: int):
    def check(cli, folder):
        logged = read_scalars(cli.trainer.log_dir)
        return len(logged.get(tag, [])) == count

    return check


def stopped_early(cli, folder):
    return cli.trainer.current_epoch < 4 and cli.trainer.should_stop


def no_run_folder(cli, folder):
    return cli.trainer.global_step == 1 and not (folder / "lightning_logs").exists()


def lr_found(cli, folder):
    lr = cli.model.hparams.lr
    return lr is not None and cli.trainer.optimizers[0].param_groups[0]["lr"] == lr


def csv_written(cli, folder):
    text = (folder / "csv" / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    return "train/loss" in text.splitlines()[0] and len(text.splitlines()) > 2


def batch_size_scaled(cli, folder):
    return cli.datamodule.batch_size > 16


def validated_every_second_epoch(cli, folder):
    recorder = next(c for c in cli.trainer.callbacks if isinstance(c, EpochRecorder))
    return "val/loss" not in recorder.epochs[0] and "val/loss" in recorder.epochs[1]


def profiled(cli, folder):
    return "run_training_batch" in cli.trainer.profiler.summary()


def rich_bar(cli, folder):
    return isinstance(cli.trainer.progress_bar_callback, lc.RichProgressBar)


def averaged(cli, folder):
    swa = next(c for c in cli.trainer.callbacks if isinstance(c, lc.StochasticWeightAveraging))
    return swa.n_averaged is not None and swa.n_averaged.item() > 0


CASES = {
    "as shipped (fast route)": Case("fast", effect=steps(2 * STEPS_PER_EPOCH)),
    "accumulate_grad_batches": Case(
        "plain",
        ["--trainer.accumulate_grad_batches=4"],
        {"accumulate_grad_batches": 4},
        effect=steps(10),
    ),
    "gradient_clip_val": Case(
        "plain", ["--trainer.gradient_clip_val=0.01"], {"gradient_clip_val": 0.01}
    ),
    "fast_dev_run": Case(
        "plain", ["--trainer.fast_dev_run=true"], {"fast_dev_run": True}, effect=no_run_folder
    ),
    "LearningRateFinder": Case(
        "plain",
        ["--trainer.callbacks+=LearningRateFinder", "--trainer.callbacks.num_training_steps=30"],
        callbacks=[partial(lc.LearningRateFinder, num_training_steps=30)],
        effect=lr_found,
    ),
    "RichProgressBar": Case("plain", ["--trainer.callbacks+=RichProgressBar"], effect=rich_bar),
    "self.log per step": Case(
        "plain",
        ["--trainer.log_every_n_steps=1"],
        {"log_every_n_steps": 1},
        template_module=LogsEveryStep,
        reference_module=DocsLogsEveryStep,
        effect=scalars("train/step_loss", 2 * STEPS_PER_EPOCH),
    ),
    "self.log per step, in a class without source": Case(
        "plain",
        ["--trainer.log_every_n_steps=1"],
        {"log_every_n_steps": 1},
        template_module=CELL.LogsInACell,
        reference_module=DocsLogsEveryStep,
        effect=scalars("train/step_loss", 2 * STEPS_PER_EPOCH),
    ),
    "LearningRateMonitor per step": Case(
        "plain",
        [
            "--trainer.callbacks+=LearningRateMonitor",
            "--trainer.callbacks.logging_interval=step",
            "--trainer.log_every_n_steps=1",
        ],
        {"log_every_n_steps": 1},
        effect=scalars("lr-Adam", 2 * STEPS_PER_EPOCH),
    ),
    "LBFGS (a closure)": Case(
        "plain",
        ["--model.optimizer=LBFGS", "--model.optimizer.lr=0.1", "--model.optimizer.max_iter=3"],
        optimizer=partial(torch.optim.LBFGS, lr=0.1, max_iter=3),
    ),
    "precision bf16-mixed": Case(
        "plain", ["--trainer.precision=bf16-mixed"], {"precision": "bf16-mixed"}
    ),
    "val_check_interval": Case(
        "plain", ["--trainer.val_check_interval=0.5"], {"val_check_interval": 0.5}
    ),
    "limit_train_batches": Case(
        "plain", ["--trainer.limit_train_batches=5"], {"limit_train_batches": 5}, effect=steps(10)
    ),
    "max_steps": Case("plain", ["--trainer.max_steps=7"], {"max_steps": 7}, effect=steps(7)),
    "overfit_batches": Case(
        "plain", ["--trainer.overfit_batches=3"], {"overfit_batches": 3}, effect=steps(6)
    ),
    "detect_anomaly": Case("fast", ["--trainer.detect_anomaly=true"], {"detect_anomaly": True}),
    "profiler simple": Case(
        "plain", ["--trainer.profiler=simple"], {"profiler": "simple"}, effect=profiled
    ),
    "EarlyStopping": Case(
        "fast",
        [
            "--trainer.max_epochs=4",
            "--trainer.callbacks+=EarlyStopping",
            "--trainer.callbacks.monitor=val/loss",
            "--trainer.callbacks.min_delta=10",
            "--trainer.callbacks.patience=0",
        ],
        {"max_epochs": 4},
        callbacks=[partial(lc.EarlyStopping, monitor="val/loss", min_delta=10, patience=0)],
        effect=stopped_early,
    ),
    "StochasticWeightAveraging": Case(
        "fast",
        ["--trainer.callbacks+=StochasticWeightAveraging", "--trainer.callbacks.swa_lrs=0.01"],
        callbacks=[partial(lc.StochasticWeightAveraging, swa_lrs=0.01)],
        effect=averaged,
    ),
    "CSVLogger": Case(
        "fast", ["--trainer.logger=CSVLogger", "--trainer.logger.save_dir=csv"], effect=csv_written
    ),
    "deterministic": Case("fast", ["--trainer.deterministic=true"], {"deterministic": True}),
    "check_val_every_n_epoch": Case(
        "fast",
        ["--trainer.check_val_every_n_epoch=2"],
        {"check_val_every_n_epoch": 2},
        effect=validated_every_second_epoch,
    ),
    "max_time": Case("plain", ["--trainer.max_time=00:00:10:00"], {"max_time": "00:00:10:00"}),
    "num_sanity_val_steps": Case(
        "fast", ["--trainer.num_sanity_val_steps=2"], {"num_sanity_val_steps": 2}
    ),
    "barebones": Case("fast", ["--trainer.barebones=true"], {"barebones": True}),
    "BatchSizeFinder": Case(
        "plain",
        [
            "--trainer.callbacks+=BatchSizeFinder",
            "--trainer.callbacks.init_val=16",
            "--trainer.callbacks.max_trials=2",
        ],
        kwargs=None,  # it changes the batches: no reference run
        effect=batch_size_scaled,
    ),
}


def run_template(case: Case, folder: Path):
    from ffnn_lightning.cli import main

    args = [*SMALL, *case.args, "--trainer.callbacks+=tests.test_lightning_contract.EpochRecorder"]
    if case.template_module is not None:  # a module subclass by class path, as a user names it
        module = case.template_module
        args += [f"--model={module.__module__}.{module.__qualname__}"]
    return main(["fit", *args])


def run_reference(case: Case) -> tuple[DocsModule, EpochRecorder]:
    L.seed_everything(2020)  # the config's seed_everything, before the network is built
    data = BlobsDataModule(n_samples=400)
    network = FeedForwardNetwork(64, 1, [32])
    module = case.reference_module(network, case.optimizer)
    recorder = EpochRecorder()
    settings = {
        "max_epochs": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        **case.kwargs,
    }
    callbacks = [recorder, *(make() for make in case.callbacks)]
    trainer = L.Trainer(**settings, callbacks=callbacks, default_root_dir="reference")
    train, val = (TensorDataset(*data.tensors[split]) for split in ("train", "val"))
    trainer.fit(module, DataLoader(train, batch_size=16), DataLoader(val, batch_size=4096))
    return module, recorder


@pytest.mark.parametrize("name", list(CASES))
def test_flag_or_callback_behaves_as_with_lightnings_textbook_module(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = CASES[name]
    cli = run_template(case, tmp_path)
    fast_steps = next(c for c in cli.trainer.callbacks if isinstance(c, FastSteps))
    assert ("fast" if fast_steps.reason is None else "plain") == case.route, fast_steps.reason
    if case.effect is not None:
        assert case.effect(cli, tmp_path), f"{name}: the feature's effect is not visible"
    if case.kwargs is None:
        return
    reference, expected = run_reference(case)
    for (key, mine), theirs in zip(
        cli.model.network.state_dict().items(), reference.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7, msg=f"{name}: {key}")
    actual = next(c for c in cli.trainer.callbacks if isinstance(c, EpochRecorder))
    assert len(actual.epochs) == len(expected.epochs)
    for mine, theirs in zip(actual.epochs, expected.epochs, strict=True):
        for key in theirs:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5), f"{name}: {key}"


def test_fast_route_says_why_it_steps_aside(run_cli, caplog):
    run_cli("fit", *SMALL, "--trainer.accumulate_grad_batches=2")
    assert "Fast steps off: accumulate_grad_batches=2" in caplog.text


def test_a_step_that_logs_where_no_check_can_see_stops_with_the_remedy(tmp_path, monkeypatch):
    from ffnn_lightning.cli import run

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        run(["fit", *SMALL, "--model=tests.test_lightning_contract.LogsInModelStep"])
    message = str(stopped.value.code)
    assert "LogsInModelStep called self.log inside its training step on the fast route" in message
    assert "--fast_steps.steps_per_call 1" in message
    assert not list(tmp_path.glob("lightning_logs/*/checkpoints/*.ckpt"))


def test_a_module_without_a_module_name_takes_the_plain_route():
    namespace: dict = {"FeedForwardModule": FeedForwardModule}
    exec(
        "class Nameless(FeedForwardModule):\n"
        "    def training_step(self, batch, batch_idx):\n"
        "        return super().training_step(batch, batch_idx)\n",
        namespace,
    )
    module = namespace["Nameless"]()
    fast_steps = FastSteps()
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[fast_steps], limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, BlobsDataModule(n_samples=200))
    assert fast_steps.reason.startswith("Nameless.training_step does not say it may run")
    assert trainer.global_step == 10  # 160 rows in batches of 16, all by Lightning's route
