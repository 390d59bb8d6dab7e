"""The learning-rate schedules the strong tabular preset uses, and its size rules."""

from __future__ import annotations

import itertools
from functools import partial

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from ffnn_lightning.data import BlobsDataModule
from ffnn_lightning.errors import InputError
from ffnn_lightning.model.schedules import WarmupCosineLR
from ffnn_lightning.training.callbacks import LargeTableLearningRate, SmallTableBatchSize
from tests.conftest import build_module, quiet_trainer


def learning_rates(epochs: int, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = WarmupCosineLR(optimizer, **kwargs)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_warmup_rises_linearly_then_the_cosine_falls_to_zero():
    rates = learning_rates(12, warmup_epochs=3, max_epochs=11)
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[7] == pytest.approx(0.5)  # half-way through the cosine
    assert all(a > b for a, b in itertools.pairwise(rates[3:11]))
    assert rates[11] == pytest.approx(0.0)  # past max_epochs it stays at 0


@pytest.mark.parametrize(("warmup", "total"), [(5, 5), (-1, 10)])
def test_a_warmup_outside_the_run_is_refused(warmup, total):
    with pytest.raises(InputError, match="0 <= warmup_epochs < max_epochs"):
        learning_rates(1, warmup_epochs=warmup, max_epochs=total)


class RatesSeen(L.Callback):
    """The optimizer's learning rate at each epoch's start."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def fitted_rates(epochs: int, rule: LargeTableLearningRate | None, folder, resume=None):
    """The rates of a small fit under WarmupCosineLR over 6 epochs, with ``rule``; each
    epoch's state saved in ``folder``, or resumed from ``resume``."""
    torch.manual_seed(0)
    module = build_module(
        in_features=3,
        train_rows=64,
        lr_scheduler=partial(WarmupCosineLR, warmup_epochs=2, max_epochs=6),
    )
    seen = RatesSeen()
    saved = ModelCheckpoint(dirpath=folder, save_top_k=-1, filename="{epoch}")
    trainer = quiet_trainer(
        max_epochs=epochs,
        callbacks=[seen, saved, *([rule] if rule else [])],
        enable_checkpointing=True,
    )
    rows = TensorDataset(torch.randn(64, 3), torch.randint(0, 2, (64, 1)).float())
    trainer.fit(module, DataLoader(rows, batch_size=16), ckpt_path=resume)
    return seen.rates


def test_a_table_at_the_rules_size_trains_at_its_factor_of_every_rate(tmp_path):
    plain = fitted_rates(5, None, tmp_path / "plain")
    scaled = fitted_rates(5, LargeTableLearningRate(min_rows=64, factor=0.25), tmp_path / "rule")
    assert scaled == pytest.approx([rate * 0.25 for rate in plain])
    assert plain[2] > plain[4] > 0  # the schedule moved: its every epoch was scaled


def test_a_smaller_table_keeps_its_rates(tmp_path):
    plain = fitted_rates(3, None, tmp_path / "plain")
    assert fitted_rates(3, LargeTableLearningRate(min_rows=65), tmp_path / "rule") == plain


def test_a_resumed_run_is_not_scaled_twice(tmp_path):
    rule = LargeTableLearningRate(min_rows=1, factor=0.5)
    whole = fitted_rates(5, rule, tmp_path / "whole")
    fitted_rates(2, rule, tmp_path / "first")
    resumed = fitted_rates(5, rule, tmp_path / "again", resume=tmp_path / "first" / "epoch=1.ckpt")
    assert resumed == pytest.approx(whole[2:])


def test_a_module_that_does_not_know_its_training_rows_is_refused():
    module = build_module(in_features=3)  # no data_info["train_rows"]
    trainer = quiet_trainer(callbacks=[LargeTableLearningRate()])
    rows = TensorDataset(torch.randn(8, 3), torch.ones(8, 1))
    with pytest.raises(InputError, match="needs the training rows"):
        trainer.fit(module, DataLoader(rows, batch_size=4))


@pytest.mark.parametrize(("min_rows", "factor"), [(-1, 0.5), (10, 0.0), (10, -2.0)])
def test_a_rule_that_cannot_scale_is_refused(min_rows, factor):
    with pytest.raises(InputError, match=f"min_rows={min_rows}, factor={factor}"):
        LargeTableLearningRate(min_rows=min_rows, factor=factor)


def steps_of_one_epoch(rule: SmallTableBatchSize, batch_size: int | None, rows: int = 300):
    """The optimizer steps of one epoch on a blobs table of ``rows`` (240 training rows at
    300) given ``batch_size``, with ``rule``; and the data module's batch size after it."""
    data = BlobsDataModule(n_samples=rows, n_features=8, batch_size=batch_size)
    train_rows = len(data.prepare().tensors["train"][0])
    module = build_module(in_features=8, train_rows=train_rows)
    trainer = quiet_trainer(max_epochs=1, callbacks=[rule])
    trainer.fit(module, datamodule=data)
    return trainer.global_step, data.batch_size


def test_a_table_under_the_rules_size_trains_at_its_batch():
    assert steps_of_one_epoch(SmallTableBatchSize(max_rows=241, batch_size=32), 256) == (8, 32)


@pytest.mark.parametrize("batch_size", [None, 100])  # the whole split, or a batch over 32
def test_any_larger_batch_of_a_small_table_comes_down_to_the_rules(batch_size):
    rule = SmallTableBatchSize(max_rows=1200, batch_size=32)
    assert steps_of_one_epoch(rule, batch_size) == (8, 32)


def test_a_table_at_the_rules_size_keeps_its_batch():
    assert steps_of_one_epoch(SmallTableBatchSize(max_rows=240, batch_size=32), 256) == (1, 256)


def test_a_smaller_batch_than_the_rules_stays():
    assert steps_of_one_epoch(SmallTableBatchSize(max_rows=1200, batch_size=32), 16) == (15, 16)


def test_the_batch_rule_needs_a_data_module():
    module = build_module(in_features=3, train_rows=8)
    trainer = quiet_trainer(callbacks=[SmallTableBatchSize()])
    rows = TensorDataset(torch.randn(8, 3), torch.ones(8, 1))
    with pytest.raises(InputError, match=r"sets the data module's batch_size.*no data module"):
        trainer.fit(module, DataLoader(rows, batch_size=4))


@pytest.mark.parametrize(("max_rows", "batch_size"), [(-1, 32), (1200, 0)])
def test_a_batch_rule_that_cannot_apply_is_refused(max_rows, batch_size):
    with pytest.raises(InputError, match=f"max_rows={max_rows}, batch_size={batch_size}"):
        SmallTableBatchSize(max_rows=max_rows, batch_size=batch_size)
