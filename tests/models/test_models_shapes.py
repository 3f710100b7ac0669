"""Shapes, errors and gradient flow of the registry models and the layers they use."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snnkit import models
from snnkit.layers import LeakyIntegrator, SeqBatchNorm1d, SeqBatchNorm2d, TimeDistributed


def spikes(*shape: int, p: float = 0.2) -> torch.Tensor:
    return (torch.rand(*shape) < p).float()


@pytest.mark.parametrize("readout", ["integrator", "linear"])
def test_mlp_output_is_per_step_logits(readout: str) -> None:
    torch.manual_seed(0)
    m = models.build("mlp", (140,), 20, hidden=(32, 16), readout=readout)
    y = m(spikes(25, 4, 140))
    assert y.shape == (25, 4, 20)
    assert torch.isfinite(y).all()


def test_mlp_depth_and_width_follow_hidden() -> None:
    m = models.build("mlp", (10,), 3, hidden=(7, 5, 4))
    linears = [mod for mod in m.features if isinstance(mod, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(10, 7), (7, 5), (5, 4)]
    assert m.classifier.in_features == 4


def test_mlp_flattens_multi_dim_steps() -> None:
    m = models.build("mlp", (2, 3, 3), 4, hidden=(8,))
    assert m(spikes(5, 2, 2, 3, 3)).shape == (5, 2, 4)


def test_mlp_gradient_reaches_first_layer() -> None:
    torch.manual_seed(0)
    m = models.build("mlp", (12,), 3, hidden=(16,), dropout=0.0)
    m(spikes(10, 8, 12, p=0.5)).mean(0).logsumexp(-1).sum().backward()
    g = m.features[0].weight.grad
    assert g is not None and g.abs().sum() > 0


def test_mlp_rejects_wrong_input() -> None:
    m = models.build("mlp", (12,), 3, hidden=(8,))
    with pytest.raises(ValueError, match="12 input features"):
        m(spikes(4, 2, 13))
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        m(spikes(4, 12))
    with pytest.raises(ValueError, match="readout"):
        models.build("mlp", (12,), 3, readout="softmax")


@pytest.mark.parametrize("size", [32, 48])
def test_vgg_output_shape(size: int) -> None:
    torch.manual_seed(0)
    m = models.build("vgg", (2, size, size), 10)
    y = m(spikes(3, 2, 2, size, size))
    assert y.shape == (3, 2, 10)


def test_vgg_custom_cfg_and_gradient() -> None:
    torch.manual_seed(0)
    m = models.build("vgg", (2, 16, 16), 5, cfg=(4, "M", 8, "M"), pool="max", dropout=0.0)
    assert m.classifier[-1].in_features == 8 * 4 * 4
    m(spikes(4, 3, 2, 16, 16, p=0.5)).sum().backward()
    first_conv = m.features[0].module
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_vgg_rejects_bad_shapes() -> None:
    m = models.build("vgg", (2, 16, 16), 5, cfg=(4, "M"))
    with pytest.raises(ValueError, match=r"\[T, B, 2, 16, 16\]"):
        m(spikes(3, 2, 2, 32, 32))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        models.build("vgg", (140,), 5)
    with pytest.raises(ValueError, match="too many pooling"):
        models.build("vgg", (2, 2, 2), 5, cfg=(4, "M", 4, "M"))


def test_build_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as e:
        models.build("resnet9000", (140,), 20)
    msg = str(e.value)
    assert "resnet9000" in msg
    for name in models.available():
        assert name in msg
    assert {"mlp", "vgg"} <= set(models.available())


def test_build_validates_shape_and_classes() -> None:
    with pytest.raises(ValueError, match="in_shape"):
        models.build("mlp", (), 20)
    with pytest.raises(ValueError, match="num_classes"):
        models.build("mlp", (140,), 1)


def test_seq_batchnorm_equals_batchnorm_over_time_and_batch() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5)
    seq, ref = SeqBatchNorm1d(5), nn.BatchNorm1d(5)
    torch.testing.assert_close(seq(x), ref(x.reshape(24, 5)).reshape(6, 4, 5))
    torch.testing.assert_close(seq.bn.running_mean, ref.running_mean)
    # A single step passes through as a plain BatchNorm.
    assert seq(torch.randn(4, 5)).shape == (4, 5)
    x2 = torch.randn(3, 2, 4, 5, 5)
    seq2, ref2 = SeqBatchNorm2d(4), nn.BatchNorm2d(4)
    torch.testing.assert_close(seq2(x2), ref2(x2.reshape(6, 4, 5, 5)).reshape(3, 2, 4, 5, 5))
    with pytest.raises(ValueError, match="SeqBatchNorm1d"):
        seq(torch.randn(2, 3, 4, 5))


def test_time_distributed_matches_loop() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(4, 2, 2, 8, 8)
    y = TimeDistributed(conv)(x)
    torch.testing.assert_close(y, torch.stack([conv(x[t]) for t in range(4)]))


def test_leaky_integrator_recurrence() -> None:
    x = torch.randn(5, 2, 3)
    y = LeakyIntegrator(tau=4.0)(x)
    v = torch.zeros(2, 3)
    for t in range(5):
        v = v + (x[t] - v) / 4.0
        torch.testing.assert_close(y[t], v)
    with pytest.raises(ValueError, match="tau"):
        LeakyIntegrator(tau=1.0)


@pytest.mark.parametrize("name, in_shape, kwargs, x_shape, expected_neurons", [
    ("mlp", (12,), {"hidden": (16, 8)}, (6, 3, 12), 2),
    ("vgg", (2, 8, 8), {"cfg": (8, "M", 8, 8)}, (4, 2, 2, 8, 8), 3),
])
def test_every_hidden_layer_of_a_registry_model_emits_binary_spikes(name, in_shape, kwargs, x_shape, expected_neurons):
    """One snnkit neuron per hidden layer, each emitting spikes (0/1 only, some of each): a model whose neurons were
    replaced by ReLU, or whose neuron returned its potential, fails here."""
    from snnkit.neurons import StatefulNeuron

    torch.manual_seed(0)
    m = models.build(name, in_shape, 5, **kwargs)
    outputs = []
    for mod in m.modules():
        if isinstance(mod, StatefulNeuron) and mod.spiking:
            mod.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach()))
    m(torch.randn(x_shape) + 1.0)
    assert len(outputs) == expected_neurons
    for out in outputs:
        values = set(out.unique().tolist())
        assert values == {0.0, 1.0}, f"neuron layer emitted {sorted(values)[:5]}"


def test_unknown_model_argument_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="model 'mlp' does not accept these arguments \\['bogus'\\]"):
        models.build("mlp", (12,), 3, bogus=1)


def test_seq_batchnorm_names_a_channel_mismatch() -> None:
    with pytest.raises(ValueError, match=r"SeqBatchNorm1d\(4\) expects C = 4"):
        SeqBatchNorm1d(4)(torch.randn(3, 2, 5))
