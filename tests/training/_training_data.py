"""A tiny synthetic spike-train classification set (no files): class k fires mostly on its own channel band."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from snnkit.training import DataBundle, TrainConfig

T, C, K = 8, 12, 3


def _make(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % K
    rate = torch.full((n, T, C), 0.08)
    band = C // K
    for k in range(K):
        rate[y == k, :, k * band : (k + 1) * band] = 0.6
    x = (torch.rand(n, T, C, generator=g) < rate).float()
    return TensorDataset(x, y)


def tiny_bundle(n_train: int = 60, n_test: int = 21) -> DataBundle:
    """60 training samples (8 batches of 8 at batch size 8, the last one partial), 21 test samples."""
    return DataBundle(_make(n_train, 1), _make(n_test, 2), in_shape=(C,), num_classes=K)


def tiny_config(out: str, name: str = "run") -> TrainConfig:
    """Two short epochs of a one-hidden-layer MLP with dropout (so dropout RNG matters for exact resume)."""
    return TrainConfig(
        dataset="tiny",
        model="mlp",
        model_kwargs={"hidden": [24], "dropout": 0.3},
        epochs=2,
        batch_size=8,
        lr=1e-2,
        device="cpu",
        seed=3,
        ckpt_every=2,
        plot_every=0,
        out=str(out),
        name=name,
    )
