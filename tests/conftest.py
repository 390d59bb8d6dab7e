"""Shared helpers: run the real CLI in a temporary folder with a shrunk config, read its logs."""

from __future__ import annotations

from pathlib import Path

import pytest

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
