"""Shared helpers: run the real CLI in a temporary folder with a shrunk config, read its logs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from ffnn_lightning.cli import main
from ffnn_lightning.model import FeedForwardModule, FeedForwardNetwork
from ffnn_lightning.tasks import DataInfo

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# pytest runs one worker per core (pyproject's -n auto); a worker's tiny networks gain nothing
# from more threads, which would only contend for the same cores
torch.set_num_threads(1)


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Run ``python -m ffnn_lightning`` in-process inside ``tmp_path``; returns the CLI object.

    The trainer is shrunk for speed (no model summary) unless a test overrides it.
    """
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        return main([*args, "--trainer.enable_model_summary=false"])

    return run


def quiet_trainer(**kwargs) -> L.Trainer:
    """A plain ``L.Trainer`` for unit tests: no logger, checkpoints, bar or summary unless the
    test asks for them."""
    defaults = {
        "max_epochs": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**{**defaults, **kwargs})


def build_module(hidden=(16,), network=None, **kwargs) -> FeedForwardModule:
    """A FeedForwardModule built by hand: ``data_info`` keys (``in_features``, ``task``, ...)
    and the module's own arguments as keywords, a FeedForwardNetwork of ``hidden`` unless a
    ``network`` is given."""
    info = {key: kwargs.pop(key) for key in list(kwargs) if key in DataInfo.__annotations__}
    network = network or partial(FeedForwardNetwork, hidden=list(hidden))
    return FeedForwardModule(network=network, data_info=info, **kwargs)
