"""A data set from code: two interleaved spirals, a classic hard case for a small network.

A user's own project needs no more than this file and a config. Run from this folder (Python
finds ``spirals`` in the current directory):

    python -m ffnn_lightning fit --config spirals.yaml
"""

from __future__ import annotations

import numpy as np

from ffnn_lightning.data import TabularDataModule


class SpiralsDataModule(TabularDataModule):
    """Two spiral arms of ``n_samples`` points each, labelled ``left`` and ``right``.

    Args:
        n_samples: points per arm.
        noise: standard deviation of the Gaussian noise added to each point.
        turns: how many times each arm winds around the centre.
        **kwargs: the base's arguments (batch size, split, scaling, seed, ...).
    """

    def __init__(
        self, n_samples: int = 500, noise: float = 0.3, turns: float = 1.5, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.noise, self.turns = n_samples, noise, turns

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Features (x, y coordinates) and string labels; the base does everything else."""
        rng = np.random.default_rng(self.seed)
        angle = np.sqrt(rng.uniform(size=self.n_samples)) * self.turns * 2 * np.pi
        arm = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1)
        points = np.concatenate([arm, -arm])
        points += rng.normal(scale=self.noise, size=points.shape)
        labels = np.repeat(["left", "right"], self.n_samples)
        return points, labels
