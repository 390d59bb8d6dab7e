"""The chapter's listings 3-2 to 3-4 as plain PyTorch: the baseline the template is checked
against (same numbers) and timed against (benchmarks/throughput.py)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from sklearn.datasets import make_blobs
from torch import nn


def chapter_data(samples: int = 5000, n_features: int = 64) -> tuple[torch.Tensor, ...]:
    """Listing 3-2: make_blobs, float32, the first 80% for training and the rest held out."""
    x, y = make_blobs(
        n_samples=samples, centers=2, n_features=n_features, cluster_std=10, random_state=2020
    )
    x, y = torch.from_numpy(x).float(), torch.from_numpy(y.reshape(-1, 1)).float()
    split = int(samples * 0.8)
    return x[:split], y[:split], x[split:], y[split:]


class ChapterNetwork(nn.Module):
    """Listing 3-3, seeded with 2020 right before its layers are built."""

    def __init__(self, n_features: int = 64) -> None:
        super().__init__()
        torch.manual_seed(2020)
        self.fc1 = nn.Linear(n_features, 256)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(256, 1024)
        self.relu2 = nn.ReLU()
        self.out = nn.Linear(1024, 1)
        self.final = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.out(self.relu2(self.fc2(self.relu1(self.fc1(x))))))


def train_network(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    batch_size: int,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    on_epoch_end: Callable[[int], None] | None = None,
) -> list[float]:
    """Listing 3-4's loop; returns the mean loss per sample of each epoch.

    The listing's printed figure, ``sum(loss * batch_size)``, over-counts a short last batch;
    here each batch is weighted by its real size, so the figure is ``N * mean``.
    """
    loss_function = nn.BCELoss()
    model.train()
    epoch_means = []
    rows = x_train.shape[0]
    for epoch in range(num_epochs):
        total = torch.zeros(())
        for i in range(0, rows, batch_size):
            inputs, labels = x_train[i : i + batch_size], y_train[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_function(model(inputs), labels)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(inputs)
        epoch_means.append(total.item() / rows)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return epoch_means
