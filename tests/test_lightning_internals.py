"""The Lightning internals the package relies on (ffnn_lightning/lightning_internals.py) are
where it expects them; a Lightning upgrade that moves one fails here, naming it."""

from __future__ import annotations

import lightning as L
import pytest

from ffnn_lightning import BlobsDataModule
from ffnn_lightning.training.fast_steps import FastSteps
from ffnn_lightning.training.lightning_internals import (
    count_manual_steps,
    hand_step_count_to,
)
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
