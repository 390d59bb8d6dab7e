"""Shared helpers: run the real CLI in a temporary folder with a shrunk config, read its logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ffnn_lightning.cli import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Run ``python -m ffnn_lightning`` in-process inside ``tmp_path``; returns the CLI object.

    The trainer is shrunk for speed (no model summary) unless a test overrides it.
    """
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        return main([*args, "--trainer.enable_model_summary=false"])

    return run


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard run folder, as (step, value) pairs."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }
