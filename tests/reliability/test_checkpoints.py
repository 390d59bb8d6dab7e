"""last.ckpt is replaced whole or not at all."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from ffnn_lightning import BlobsDataModule
from ffnn_lightning.training.callbacks import LatestCheckpoint
from tests.conftest import build_module, quiet_trainer


def test_a_crash_while_writing_leaves_the_previous_last_checkpoint_whole(tmp_path, monkeypatch):
    latest = LatestCheckpoint(every_n_steps=10)
    trainer = quiet_trainer(max_epochs=3, default_root_dir=tmp_path, callbacks=[latest])
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
    module = build_module(in_features=8, hidden=[16])
    with pytest.raises(OSError, match="simulated crash"):
        trainer.fit(module, BlobsDataModule(n_samples=500, n_features=8))

    last = torch.load(latest.path(trainer), weights_only=True)
    assert last["global_step"] == 10  # the first write, intact
