"""Shared data for the plasticity tests."""

import pytest
import torch


@pytest.fixture(scope="session")
def spoken_digits_binary() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The bundled spoken digits cropped to 500 ms (50 bins of 10 ms), binarised: ``(x_train [T, N, 140], y_train,
    x_test, y_test)``, as scripts/compare_neurons.py uses them."""
    from snnkit import data

    out = []
    for split in ("train", "test"):
        ds = data.SpokenDigits(split=split, max_duration_ms=500.0)
        x, y = data.pad_collate([ds[i] for i in range(len(ds))])
        out += [(x > 0).float(), y]
    return tuple(out)
