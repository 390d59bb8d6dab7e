"""last.ckpt is replaced whole or not at all; the best checkpoint, written late, is the best."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from ffnn_lightning import BlobsDataModule, FeedForwardModule
from ffnn_lightning.callbacks import BestCheckpoint, LatestCheckpoint


def test_a_crash_while_writing_leaves_the_previous_last_checkpoint_whole(tmp_path, monkeypatch):
    latest = LatestCheckpoint(every_n_steps=10)
    trainer = L.Trainer(
        max_epochs=3,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[latest],
    )
    save = L.Trainer.save_checkpoint
    writes = []

    def crash_on_second_write(self, filepath, *args, **kwargs):
        writes.append(filepath)
        if len(writes) == 2:  # half a file, then the process dies
            with open(filepath, "wb") as handle:
                handle.write(b"PK\x03\x04 truncated")
            raise OSError("simulated crash while writing")
        save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(L.Trainer, "save_checkpoint", crash_on_second_write)
    module = FeedForwardModule(in_features=8, hidden=[16])
    with pytest.raises(OSError, match="simulated crash"):
        trainer.fit(module, BlobsDataModule(n_samples=500, n_features=8))

    last = torch.load(latest.path(trainer), weights_only=True)
    assert last["global_step"] == 16  # the first write, intact


class WeightsPerEpoch(L.Callback):
    """The network's weights at each epoch's end, and the checkpoint files on disk then."""

    def __init__(self, folder, fail_at_epoch: int | None = None) -> None:
        self.folder, self.fail_at_epoch = folder, fail_at_epoch
        self.weights, self.files = [], []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.fail_at_epoch:
            raise RuntimeError("simulated failure")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.weights.append({k: v.clone() for k, v in pl_module.network.state_dict().items()})
        self.files.append(sorted(p.name for p in self.folder.glob("*.ckpt")))


def fit_with_best(tmp_path, fail_at_epoch=None):
    # "best" is the highest validation loss: an early epoch, whose weights have changed since
    best = BestCheckpoint(
        monitor="val/loss", mode="max", dirpath=tmp_path, filename="{epoch}", write_every_s=3600
    )
    spy = WeightsPerEpoch(tmp_path, fail_at_epoch)
    trainer = L.Trainer(
        max_epochs=6,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[spy, best],
    )
    module = FeedForwardModule(in_features=8, hidden=[16])
    data = BlobsDataModule(n_samples=500, n_features=8, cluster_std=4.0)
    if fail_at_epoch is None:
        trainer.fit(module, data)
    else:
        with pytest.raises(RuntimeError, match="simulated failure"):
            trainer.fit(module, data)
    return best, spy


def assert_holds_weights_of(path, weights) -> None:
    saved = torch.load(path, weights_only=True)["state_dict"]
    for name, tensor in weights.items():
        assert torch.equal(saved[f"network.{name}"], tensor), name


def test_a_best_found_during_training_is_written_when_training_ends(tmp_path):
    best, spy = fit_with_best(tmp_path)
    assert spy.files == [[]] * 6  # nothing written while training
    files = list(tmp_path.glob("*.ckpt"))
    assert [str(f) for f in files] == [best.best_model_path]  # earlier bests left no file
    epoch = torch.load(files[0], weights_only=True)["epoch"]
    assert_holds_weights_of(files[0], spy.weights[epoch])  # its weights as they were then


def test_a_best_waiting_to_be_written_is_written_when_training_fails(tmp_path):
    best, spy = fit_with_best(tmp_path, fail_at_epoch=3)
    files = list(tmp_path.glob("*.ckpt"))
    assert [str(f) for f in files] == [best.best_model_path]
    epoch = torch.load(files[0], weights_only=True)["epoch"]
    assert epoch < 3
    assert_holds_weights_of(files[0], spy.weights[epoch])
