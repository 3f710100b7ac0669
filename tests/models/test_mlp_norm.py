"""The spiking MLP's ``norm`` option: BatchNorm before each LIF layer (default) or none."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnkit import models
from snnkit.layers import SeqBatchNorm1d
from snnkit.models import SpikingMLP


def test_norm_none_has_no_batchnorm_and_linears_with_bias() -> None:
    torch.manual_seed(0)
    m = models.build("mlp", (140,), 20, hidden=(32, 16), norm="none")
    assert not any(isinstance(mod, SeqBatchNorm1d) for mod in m.modules())
    linears = [mod for mod in m.features if isinstance(mod, nn.Linear)]
    assert len(linears) == 2
    assert all(lin.bias is not None for lin in linears)
    y = m((torch.rand(25, 4, 140) < 0.2).float())
    assert y.shape == (25, 4, 20)
    assert torch.isfinite(y).all()


def test_norm_batch_is_the_default_and_unchanged() -> None:
    m = models.build("mlp", (10,), 3, hidden=(7, 5))
    assert m.norm == "batch"
    assert sum(isinstance(mod, SeqBatchNorm1d) for mod in m.modules()) == 2
    linears = [mod for mod in m.features if isinstance(mod, nn.Linear)]
    assert all(lin.bias is None for lin in linears)
    # Same module layout (and so the same state-dict keys) as before the option existed.
    assert [type(mod).__name__ for mod in m.features][:4] == ["Linear", "SeqBatchNorm1d", "LIF", "Dropout"]


def test_norm_none_gradient_reaches_first_layer() -> None:
    torch.manual_seed(0)
    m = SpikingMLP(12, 3, hidden=(16,), dropout=0.0, norm="none")
    x = (torch.rand(10, 2, 12) < 0.5).float()
    m(x).mean(0).sum().backward()
    assert m.features[0].weight.grad is not None
    assert m.features[0].bias.grad is not None


def test_bad_norm_raises() -> None:
    with pytest.raises(ValueError, match="norm must be one of"):
        SpikingMLP(10, 3, norm="layer")
