"""The TensorBoard logger: flushes rarely, loses nothing."""

from __future__ import annotations

import pytest

from ffnn_lightning.training.logs import TensorBoardLogger, read_scalars


def test_saves_flush_at_most_every_flush_secs_and_the_end_writes_everything(tmp_path, monkeypatch):
    logger = TensorBoardLogger(save_dir=tmp_path, name="runs", flush_secs=3600)
    writer = logger.experiment
    flushes = []
    flush = writer.flush
    monkeypatch.setattr(writer, "flush", lambda: (flushes.append(1), flush()))
    for epoch in range(5):  # what Lightning does after each epoch's metrics
        logger.log_metrics({"train/loss": 1.0 / (epoch + 1)}, step=epoch)
        logger.save()
    assert len(flushes) == 1

    logger.finalize("success")
    logged = read_scalars(logger.log_dir)["train/loss"]
    assert [step for step, _ in logged] == list(range(5))
    assert [value for _, value in logged] == pytest.approx([1.0 / (e + 1) for e in range(5)])
    assert (tmp_path / "runs" / "version_0" / "hparams.yaml").is_file()


def test_a_finished_run_fills_the_hparams_tab_with_its_hyperparameters_and_final_metrics(run_cli):
    from ffnn_lightning.training.logs import read_hparams
    from tests.conftest import CONFIGS

    cli = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "blobs_adam.yaml"),
        "--trainer.max_epochs=2",
        "--data.init_args.n_samples=300",
    )
    hparams, metrics = read_hparams(cli.trainer.log_dir)
    network = {"network/class_path", "network/init_args/hidden", "optimizer/init_args/lr"}
    assert {*network, "data/batch_size", "data/n_samples"} <= set(hparams)
    assert {"final/train/loss", "final/val/loss", "final/val/acc"} <= set(metrics)
    scalars = read_scalars(cli.trainer.log_dir)
    assert scalars["final/val/loss"][0][1] == pytest.approx(scalars["val/loss"][-1][1])
    assert len(scalars["train/loss"]) == 2  # the curves themselves are untouched


@pytest.mark.parametrize("steps_per_call", [16, 1], ids=["fast route", "plain route"])
def test_epoch_metrics_are_plotted_against_optimizer_steps_on_either_route(run_cli, steps_per_call):
    from tests.conftest import CONFIGS

    cli = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "blobs_adam.yaml"),
        "--trainer.max_epochs=2",
        "--data.init_args.n_samples=500",  # 400 training rows: 25 steps an epoch
        f"--fast_steps.steps_per_call={steps_per_call}",
    )
    scalars = read_scalars(cli.trainer.log_dir)
    for tag in ("train/loss", "val/loss", "epoch"):
        assert [step for step, _ in scalars[tag]] == [25, 50], tag
    assert [value for _, value in scalars["epoch"]] == [0, 1]
