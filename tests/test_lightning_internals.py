"""The Lightning internals the package relies on (ffnn_lightning/lightning_internals.py) are
where it expects them; a Lightning upgrade that moves one fails here, naming it."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from ffnn_lightning import BlobsDataModule
from ffnn_lightning.training.fast_steps import FastSteps
from ffnn_lightning.training.lightning_internals import (
    count_manual_steps,
    hand_step_count_to,
    move_logged_values_only_when_needed,
)
from ffnn_lightning.training.trainer import Trainer
from tests.conftest import build_module, quiet_trainer


def short_fit(tmp_path, *callbacks) -> L.Trainer:
    trainer = quiet_trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
        enable_checkpointing=True,
        callbacks=list(callbacks),
    )
    trainer.fit(
        build_module(in_features=8, hidden=[8]), BlobsDataModule(n_samples=200, n_features=8)
    )
    return trainer


def test_the_step_counters_of_both_optimization_routes_are_where_hand_step_count_to_sets_them(
    tmp_path,
):
    trainer = short_fit(tmp_path, FastSteps())
    try:
        hand_step_count_to(trainer, manual=True)
        loop = trainer.fit_loop.epoch_loop
        manual = loop.manual_optimization.optim_step_progress.total.completed
        automatic = loop.automatic_optimization.optim_progress.optimizer_steps
    except AttributeError as error:
        pytest.fail(f"Lightning moved an optimizer step counter: {error!r}")
    assert manual == automatic == trainer.global_step == 10


def test_manual_steps_counted_outside_lightning_show_in_global_step(tmp_path):
    trainer = short_fit(tmp_path, FastSteps())
    trainer.lightning_module.automatic_optimization = False  # global_step reads manual steps
    before = trainer.global_step
    try:
        count_manual_steps(trainer, 3)
    except AttributeError as error:
        pytest.fail(f"Lightning moved the manual optimizer step counter: {error!r}")
    assert trainer.global_step == before + 3


def test_a_logged_value_is_moved_to_its_device_once_and_again_only_to_another():
    try:
        from lightning.pytorch.trainer.connectors.logger_connector.result import (
            _Metadata,
            _ResultMetric,
        )
    except ImportError as error:
        pytest.fail(f"Lightning moved the stored result of self.log, _ResultMetric: {error!r}")
    move_logged_values_only_when_needed()
    result = _ResultMetric(_Metadata(fx="training_step", name="loss"), is_tensor=True)
    cpu, meta = torch.device("cpu"), torch.device("meta")
    assert result.to(cpu) is result
    assert "_moved_to" not in result.__getstate__()  # nothing of it goes into a checkpoint
    result.value = torch.zeros((), device=meta)  # a second move to the CPU would undo this
    result.to(cpu)
    assert result.value.device == meta
    result.to(meta)
    assert result.cumulated_batch_size.device == meta


def test_the_template_trainer_logs_through_the_one_time_move():
    from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric

    Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert getattr(_ResultMetric.to, "moves_when_needed", False)
