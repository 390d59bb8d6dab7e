"""The TensorBoard logger: flushes rarely, loses nothing."""

from __future__ import annotations

import pytest

from ffnn_lightning.logs import TensorBoardLogger, read_scalars


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
