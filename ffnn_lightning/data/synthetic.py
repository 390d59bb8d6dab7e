"""Data sets that scikit-learn generates: nothing to download, any size."""

from __future__ import annotations

import numpy as np
from sklearn import datasets

from ffnn_lightning.data.base import SplitMethod, TabularDataModule


class BlobsDataModule(TabularDataModule):
    """``make_blobs`` clusters; the defaults are the chapter's (listing 3-2).

    5000 rows, 64 features, 2 centres, ``cluster_std=10``, ``random_state=2020``: the first
    80% train in order, the last 20% held out, raw (unscaled) features, batches of 16.
    """

    def __init__(
        self,
        n_samples: int = 5000,
        n_features: int = 64,
        centers: int = 2,
        cluster_std: float = 10.0,
        random_state: int = 2020,
        split: SplitMethod = "ordered",
        shuffle: bool = False,
        standardize: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(split=split, shuffle=shuffle, standardize=standardize, **kwargs)
        self.n_samples = n_samples
        self.n_features = n_features
        self.centers = centers
        self.cluster_std = cluster_std
        self.random_state = random_state

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return datasets.make_blobs(
            n_samples=self.n_samples,
            centers=self.centers,
            n_features=self.n_features,
            cluster_std=self.cluster_std,
            random_state=self.random_state,
        )


class CirclesDataModule(TabularDataModule):
    """``make_circles``: a ring inside a ring, not separable by a line (needs a nonlinearity).

    Other arguments (batch size, split, ...) are those of TabularDataModule's.
    """

    def __init__(
        self,
        n_samples: int = 1000,
        noise: float = 0.1,
        factor: float = 0.5,
        random_state: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.noise, self.factor = n_samples, noise, factor
        self.random_state = random_state

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return datasets.make_circles(
            n_samples=self.n_samples,
            noise=self.noise,
            factor=self.factor,
            random_state=self.random_state,
        )


class MoonsDataModule(TabularDataModule):
    """``make_moons``: two interleaving half circles."""

    def __init__(
        self, n_samples: int = 1000, noise: float = 0.1, random_state: int = 0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.noise, self.random_state = n_samples, noise, random_state

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return datasets.make_moons(
            n_samples=self.n_samples, noise=self.noise, random_state=self.random_state
        )


class ClassificationDataModule(TabularDataModule):
    """``make_classification``: classes around hypercube vertices, some features noise;
    ``weights`` (each class's share of the rows) makes it imbalanced."""

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 20,
        n_informative: int = 5,
        n_classes: int = 2,
        weights: list[float] | None = None,
        random_state: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.n_features, self.n_informative = n_samples, n_features, n_informative
        self.n_classes, self.weights, self.random_state = n_classes, weights, random_state

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return datasets.make_classification(
            n_samples=self.n_samples,
            n_features=self.n_features,
            n_informative=self.n_informative,
            n_classes=self.n_classes,
            weights=self.weights,
            random_state=self.random_state,
        )


class RegressionDataModule(TabularDataModule):
    """``make_regression``: targets a noisy linear function of the features."""

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 10,
        n_targets: int = 1,
        noise: float = 10.0,
        random_state: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n_samples, self.n_features, self.n_targets = n_samples, n_features, n_targets
        self.noise, self.random_state = noise, random_state

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return datasets.make_regression(
            n_samples=self.n_samples,
            n_features=self.n_features,
            n_targets=self.n_targets,
            noise=self.noise,
            random_state=self.random_state,
        )
