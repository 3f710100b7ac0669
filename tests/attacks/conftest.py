"""Small victims trained here (seconds on one CPU thread): a spiking MLP on synthetic binary event frames."""

import pytest
import torch
from torch import nn

from snnkit import neurons, surrogate
from snnkit.layers import SeqBatchNorm1d

T, FEATURES, CLASSES = 8, 24, 3


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary frames [T, n, 24]: class c fires features 8c..8c+7 with probability 0.45, the rest with 0.1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    p = torch.full((n, FEATURES), 0.1)
    for c in range(CLASSES):
        p[y == c, 8 * c : 8 * c + 8] = 0.45
    x = (torch.rand(T, n, FEATURES, generator=g) < p).float()
    return x, y


class Victim(nn.Module):
    def __init__(self, sg: surrogate.Surrogate) -> None:
        super().__init__()
        self.fc1 = nn.Linear(FEATURES, 32)
        self.bn = SeqBatchNorm1d(32)
        self.lif = neurons.LIF(surrogate=sg)
        self.fc2 = nn.Linear(32, CLASSES)

    def forward(self, x):
        return self.fc2(self.lif(self.bn(self.fc1(x))))


def train_victim(sg: surrogate.Surrogate, seed: int = 0, steps: int = 150) -> nn.Module:
    torch.manual_seed(seed)
    model = Victim(sg)
    x, y = make_data(512, seed + 100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(steps):
        idx = torch.randint(0, 512, (64,))
        loss = nn.functional.cross_entropy(model(x[:, idx]).mean(0), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def victim() -> nn.Module:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same victim on every machine; restored so later tests see the usual threads
    try:
        return train_victim(surrogate.ATan(2.0))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def test_data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_data(64, 7)
