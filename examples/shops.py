"""A table with a category of many levels (a shop), the case for a category embedding.

Run from this folder (Python finds ``shops`` in the current directory):

    python -m ffnn_lightning fit --config shops.yaml    # each shop: 8 learned numbers
    python -m ffnn_lightning fit --config shops.yaml \
        --data.init_args.category_embedding_min_levels null    # each shop: a one-hot column
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ffnn_lightning.data import TabularDataModule


class ShopsDataModule(TabularDataModule):
    """Whether a sale is large, from its price, its hour and its shop: each of ``shops`` shops
    has its own leaning (hidden from the model), which only its training rows reveal.

    Args:
        rows: sales in the table.
        shops: how many shops (levels of the ``shop`` column).
        **kwargs: the base's arguments (batch size, split, ``category_embedding_min_levels``...).
    """

    def __init__(self, rows: int = 20_000, shops: int = 2_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rows, self.shops = rows, shops

    def load(self) -> tuple[pd.DataFrame, np.ndarray]:
        """A table with a text column: the base encodes it, one-hot or as codes."""
        rng = np.random.default_rng(0)  # the same table for every split seed
        shop = rng.integers(self.shops, size=self.rows)
        price, hour = rng.normal(size=self.rows), rng.uniform(0, 24, size=self.rows)
        leaning = rng.normal(scale=1.5, size=self.shops)
        odds = leaning[shop] + 1.5 * price + np.sin(hour / 24 * 2 * np.pi)
        large = rng.uniform(size=self.rows) < 1 / (1 + np.exp(-odds))
        table = pd.DataFrame(
            {"price": 50 + 20 * price, "hour": hour, "shop": [f"shop{i}" for i in shop]}
        )
        return table, np.where(large, "large", "small")
