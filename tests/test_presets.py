"""configs/presets/strong.yaml: the strong tabular recipe, every ingredient switched on."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from ffnn_lightning.model.schedules import WarmupCosineLR
from ffnn_lightning.training.callbacks import LargeTableLearningRate, SmallTableBatchSize
from tests.conftest import CONFIGS

STRONG = ("--config", f"{CONFIGS}/breast_cancer.yaml", "--config", f"{CONFIGS}/presets/strong.yaml")


def test_the_strong_preset_switches_on_each_of_its_ingredients(run_cli):
    # 364 training rows: the embedding needs a minimum under that
    small_tables = "--model.network.min_rows=300"
    cli = run_cli(
        "fit",
        *STRONG,
        small_tables,
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
    )
    assert cli.datamodule.scaler == "robust_clip"
    assert cli.datamodule.batch_size == 32  # 364 training rows: the small tables' batch
    assert cli.model.network.embedding is not None
    assert cli.model.loss_fn.smoothing == pytest.approx(0.1)  # breast_cancer: binary
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.01)
    assert optimizer.defaults["fused"] is True  # one kernel per step for all parameters
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, WarmupCosineLR)
    assert any(isinstance(c, EarlyStopping) for c in cli.trainer.callbacks)
    (rule,) = (c for c in cli.trainer.callbacks if isinstance(c, LargeTableLearningRate))
    assert (rule.min_rows, rule.factor) == (100_000, 0.25)
    (batch_rule,) = (c for c in cli.trainer.callbacks if isinstance(c, SmallTableBatchSize))
    assert (batch_rule.max_rows, batch_rule.batch_size) == (1200, 32)
    assert cli.trainer.num_training_batches == 12  # 364 rows in steps of 32
    assert scheduler.base_lrs == [pytest.approx(0.004)]  # 364 rows: the rate as chosen


@pytest.mark.parametrize(
    "config", ["regression.yaml", pytest.param("iris.yaml", marks=pytest.mark.slow)]
)  # classes: the other preset tests
def test_the_strong_preset_serves_every_task(config, run_cli, caplog):
    preset = ("--config", f"{CONFIGS}/{config}", "--config", f"{CONFIGS}/presets/strong.yaml")
    cli = run_cli("fit", *preset, "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false")
    regression = cli.model.task.name == "regression"
    assert cli.model.conformal_scores.numel() == len(cli.datamodule.tensors["val"][0])
    assert ("label_smoothing (0.1) is for classes: not used." in caplog.text) == regression
    if not regression:
        assert cli.model.loss_fn.label_smoothing == pytest.approx(0.1)


def test_early_stopping_leaves_test_the_best_epochs_weights(run_cli):
    cli = run_cli(
        "fit",
        *STRONG,
        "--trainer.max_epochs=40",
        "--trainer.callbacks.patience=2",
        "--data.init_args.batch_size=16",  # many steps an epoch at a high rate:
        "--model.optimizer.init_args.lr=0.03",  # over-fits within a few epochs
        "--model.lr_scheduler.init_args.max_epochs=40",
        "--trainer.enable_progress_bar=false",
    )
    stopping = cli.trainer.early_stopping_callback
    assert 0 < stopping.stopped_epoch < 39
    best = cli.trainer.checkpoint_callback.best_model_score.item()
    (last,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)
    (restored,) = cli.trainer.validate(datamodule=cli.datamodule, ckpt_path="best", verbose=False)
    assert restored["val/loss"] == pytest.approx(best, abs=1e-6)
    assert last["val/loss"] > best


def test_the_preset_leaves_the_embedding_out_of_a_table_under_its_min_rows(run_cli):
    cli = run_cli("fit", *STRONG, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false")
    assert cli.model.data_info["train_rows"] == 364  # under the preset's min_rows, 1200
    assert cli.model.network.embedding is None
    assert cli.model.network.network.layers[0].in_features == 30  # the inputs as they are


@pytest.mark.slow  # the fast set predicts from checkpoints elsewhere
def test_a_checkpoint_predicts_new_rows_with_the_network_it_was_trained_with(run_cli, tmp_path):
    from tests.test_predict import PETS, pets

    pets(200).to_csv(tmp_path / "pets.csv", index=False)
    for min_rows, embedded in ((1000, False), (10, True)):
        args = ["--model.network=ffnn_lightning.model.PeriodicEmbedding"]
        args += [f"--model.network.min_rows={min_rows}"]
        fitted = run_cli("fit", *PETS, *args, "--trainer.max_epochs=1")
        assert (fitted.model.network.embedding is not None) == embedded
        pets(20, seed=1).drop(columns="species").to_csv("new.csv", index=False)
        checkpoint = fitted.trainer.checkpoint_callback.best_model_path
        predicted = run_cli("predict", "--ckpt_path", checkpoint, "--data.path=new.csv")
        assert predicted.model.data_info["train_rows"] == fitted.model.data_info["train_rows"]
        assert (predicted.model.network.embedding is not None) == embedded
