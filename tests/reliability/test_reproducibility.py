"""The same config on the same machine gives the same numbers."""

from __future__ import annotations

from ffnn_lightning.training.logs import read_scalars
from tests.conftest import CONFIGS


def test_two_runs_of_a_config_log_identical_metrics(run_cli):
    # circles shuffles its batches every epoch and splits at random: both must be seeded
    args = ["fit", "--config", str(CONFIGS / "circles.yaml"), "--trainer.max_epochs=3"]
    first, second = (read_scalars(run_cli(*args).trainer.log_dir) for _ in range(2))
    assert first.keys() == second.keys()
    assert first == second
