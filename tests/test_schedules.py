"""The learning-rate schedules the strong tabular preset uses."""

from __future__ import annotations

import itertools

import pytest
import torch

from ffnn_lightning.errors import InputError
from ffnn_lightning.model.schedules import WarmupCosineLR


def learning_rates(epochs: int, **kwargs) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = WarmupCosineLR(optimizer, **kwargs)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return rates


def test_warmup_rises_linearly_then_the_cosine_falls_to_zero():
    rates = learning_rates(12, warmup_epochs=3, max_epochs=11)
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[7] == pytest.approx(0.5)  # half-way through the cosine
    assert all(a > b for a, b in itertools.pairwise(rates[3:11]))
    assert rates[11] == pytest.approx(0.0)  # past max_epochs it stays at 0


@pytest.mark.parametrize(("warmup", "total"), [(5, 5), (-1, 10)])
def test_a_warmup_outside_the_run_is_refused(warmup, total):
    with pytest.raises(InputError, match="0 <= warmup_epochs < max_epochs"):
        learning_rates(1, warmup_epochs=warmup, max_epochs=total)
