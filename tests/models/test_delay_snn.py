"""DelaySNN: shapes and tail, the forward against a step-by-step reference, configs, registry and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit import models
from snnkit.layers import DelayedLinear, LeakyIntegrator, SeqBatchNorm1d
from snnkit.models import DelaySNN
from snnkit.models.delay_snn import DATASET_CONFIGS
from snnkit.neurons import LIF


def spikes(*shape: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def small(**kw) -> DelaySNN:
    torch.manual_seed(0)
    args = {"hidden": (6, 5), "max_delay": 5, "dropout": 0.0, "tau": 2.0}
    args.update(kw)
    return DelaySNN(4, 3, **args)


# ---------------------------------------------------------------------------------------------- shapes and tail
@pytest.mark.parametrize(("tail", "expected_t"), [(None, 9 + 3 * 2), (0, 9), (3, 9 + 3 * 3)])
def test_output_is_readout_membrane_with_tail_steps_per_delay_layer(tail, expected_t) -> None:
    m = small(tail=tail)
    out = m(spikes(9, 2, 4))
    assert out.shape == (expected_t, 2, 3)
    assert torch.isfinite(out).all()


def test_flattens_trailing_dims() -> None:
    m = DelaySNN(6, 3, hidden=(4,), max_delay=3, dropout=0.0)
    assert m(spikes(5, 2, 2, 3)).shape == (5 + 2 * 1, 2, 3)


# Independent reference: the architecture written out step by step with integer delays (eval mode), from the
# paper's equations, sharing only the parameters with the model.
def _delay_ref(x: torch.Tensor, w: torch.Tensor, d: torch.Tensor, tail: int) -> torch.Tensor:
    x = torch.cat([x, x.new_zeros(tail, *x.shape[1:])])
    T, B, _ = x.shape
    out = x.new_zeros(T, B, w.shape[0])
    for j in range(w.shape[0]):
        for i in range(w.shape[1]):
            dji = int(d[j, i])
            out[dji:, :, j] += w[j, i] * x[: T - dji, :, i]
    return out


def _lif_ref(x: torch.Tensor, tau: float) -> torch.Tensor:
    v = torch.zeros_like(x[0])
    s_out = []
    for t in range(x.shape[0]):
        v = v - v / tau + x[t]  # decay_input=False
        s = (v >= 1.0).to(x.dtype)
        v = v * (1 - s)  # hard reset to 0
        s_out.append(s)
    return torch.stack(s_out)


def _readout_ref(x: torch.Tensor, tau: float) -> torch.Tensor:
    v = torch.zeros_like(x[0])
    vs = []
    for t in range(x.shape[0]):
        v = v + (x[t] - v) / tau
        vs.append(v)
    return torch.stack(vs)


@pytest.mark.parametrize("tail", [0, 2])
def test_eval_forward_matches_step_by_step_reference(tail: int) -> None:
    m = small(tail=tail)
    m.train()
    m(spikes(9, 8, 4, seed=3))  # move the BatchNorm running statistics away from their initial values
    m.eval()
    with torch.no_grad():
        for block in m.blocks:  # a wide affine BatchNorm so that the hidden neurons fire
            block["norm"].bn.weight.fill_(2.0)
            block["norm"].bn.bias.fill_(0.3)
    x = spikes(9, 2, 4, seed=4)
    got = m(x)
    h = x
    for block in m.blocks:
        layer, bn = block["delay"], block["norm"]
        z = _delay_ref(h, layer.weight.detach(), layer.positions.detach().round(), tail)
        z = (z - bn.bn.running_mean) / torch.sqrt(bn.bn.running_var + bn.bn.eps) * bn.bn.weight.detach() \
            + bn.bn.bias.detach()
        h = _lif_ref(z, 2.0)
        assert 0 < h.mean() < 0.9  # the comparison covers spiking, not a silent network
    ref = _readout_ref(_delay_ref(h, m.readout_delay.weight.detach(), m.readout_delay.positions.detach().round(),
                                  tail), 2.0)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_late_spike_reaches_the_output_through_the_tail() -> None:
    m = small(hidden=(8,), tail=None).eval()  # tail (5 - 1) // 2 = 2 per layer
    with torch.no_grad():
        m.blocks[0]["delay"].weight.fill_(2.0)
        m.blocks[0]["delay"].positions.fill_(2.0)  # hidden neurons see the input 2 steps late
        m.readout_delay.positions.fill_(1.0)  # the readout 1 more step later
    x = torch.zeros(6, 1, 4)
    x[-1, 0, :] = 1.0  # a spike on every channel at the last step only
    diff = (m(x) - m(torch.zeros_like(x))).abs().sum((1, 2))
    assert diff.shape == (10,)
    assert diff[:8].eq(0).all() and diff[8] > 0  # arrives at 5 + 2 + 1 = 8, past the input's end
    m.tail = 0
    assert m(x).shape[0] == 6 and torch.equal(m(x), m(torch.zeros_like(x)))  # without a tail it is dropped


def test_causal_in_eval_mode() -> None:
    # (In training mode BatchNorm normalises with statistics over all steps, as in the paper, so only eval is causal.)
    m = small().eval()
    with torch.no_grad():
        for layer in m.delay_layers():
            layer.weight.mul_(4.0)  # so that the hidden neurons fire without trained BatchNorm statistics
    x = spikes(10, 2, 4, seed=1)
    x2 = x.clone()
    x2[6:] = 1 - x2[6:]
    out, out2 = m(x), m(x2)
    torch.testing.assert_close(out[:6], out2[:6], rtol=0, atol=0)
    assert not torch.equal(out[6:], out2[6:])


def test_gradients_reach_first_layer_weights_and_positions() -> None:
    m = small(hidden=(8,), tau=1.5)
    out = m(spikes(12, 4, 4, p=0.5))
    out.softmax(-1).sum(0)[:, 0].sum().backward()
    first = m.blocks[0]["delay"]
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    assert first.positions.grad is not None and first.positions.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------- architecture
def test_blocks_follow_the_paper() -> None:
    m = DelaySNN(10, 4, hidden=(7, 5), max_delay=9, dropout=0.25, tau=1.5)
    layers = m.delay_layers()
    assert [(d.in_features, d.out_features, d.max_delay) for d in layers] == [(10, 7, 9), (7, 5, 9), (5, 4, 9)]
    assert all(d.bias is None for d in layers)
    for block, width in zip(m.blocks, (7, 5)):
        assert isinstance(block["norm"], SeqBatchNorm1d) and block["norm"].num_features == width
        lif = block["lif"]
        assert isinstance(lif, LIF)
        assert (lif.tau, lif.v_threshold, lif.v_reset, lif.decay_input, lif.detach_reset) == (1.5, 1.0, 0.0, False,
                                                                                                True)
        assert type(lif.surrogate).__name__ == "ATan" and lif.surrogate.alpha == 5.0
        assert block["dropout"].p == 0.25
    assert isinstance(m.readout, LeakyIntegrator) and m.readout.tau == 1.5
    assert m.tail == 4


def test_delay_modes() -> None:
    torch.manual_seed(0)
    learned = DelaySNN(8, 3, hidden=(16,), max_delay=7)
    random = DelaySNN(8, 3, hidden=(16,), max_delay=7, delays="random")
    zero = DelaySNN(8, 3, hidden=(16,), max_delay=7, delays="zero")
    for layer in learned.delay_layers():
        assert layer.positions.requires_grad and not layer.rounded
        assert not torch.equal(layer.delays, layer.delays.round())  # continuous positions
    for layer in random.delay_layers():
        d = layer.delays
        assert not layer.positions.requires_grad
        assert torch.equal(d, d.round()) and d.min() >= 0 and d.max() <= 6 and d.unique().numel() > 3
    for layer in zero.delay_layers():
        assert not layer.positions.requires_grad and layer.delays.eq(0).all()


def test_zero_delays_without_tail_equal_an_undelayed_network() -> None:
    # With every delay 0 the delay layer is a plain linear map: out[t] = W x[t].
    m = DelaySNN(5, 3, hidden=(6,), max_delay=5, delays="zero", tail=0, dropout=0.0).eval()
    x = spikes(7, 2, 5)
    z = torch.einsum("tbi,ji->tbj", x, m.blocks[0]["delay"].weight)
    torch.testing.assert_close(m.blocks[0]["delay"](x), z)


# ---------------------------------------------------------------------------------------------- configs, registry
def test_for_dataset_configs_are_the_papers() -> None:
    shd = DelaySNN.for_dataset("shd")
    assert (shd.in_features, [b["norm"].num_features for b in shd.blocks], shd.max_delay) == (140, [256, 256], 25)
    assert shd.readout_delay.out_features == 20 and shd.blocks[0]["dropout"].p == 0.4
    assert math.isclose(shd.blocks[0]["lif"].tau, 1.005) and shd.tail == 12
    ssc = DelaySNN.for_dataset("ssc")
    assert ([b["norm"].num_features for b in ssc.blocks], ssc.max_delay, ssc.readout_delay.out_features) == (
        [512, 512, 512], 31, 35)
    assert ssc.blocks[0]["dropout"].p == 0.25 and math.isclose(ssc.blocks[0]["lif"].tau, 1.5)
    digits = DelaySNN.for_dataset("spoken-digits", delays="zero", dropout=0.0)
    assert digits.in_features == 140 and digits.readout_delay.out_features == 20 and digits.delay_mode == "zero"
    assert digits.blocks[0]["dropout"].p == 0.0


def test_registry_builds_delay_snn_with_the_matching_paper_config() -> None:
    assert "delay-snn" in models.available()
    shd = models.build("delay-snn", (140,), 20)
    assert isinstance(shd, DelaySNN) and [b["norm"].num_features for b in shd.blocks] == [256, 256]
    ssc = models.build("delay-snn", (140,), 35)
    assert len(ssc.blocks) == 3 and ssc.max_delay == 31
    digits = models.build("delay-snn", (140,), 20, dataset="spoken-digits", hidden=32, delays="random")
    assert [b["norm"].num_features for b in digits.blocks] == [32] and digits.delay_mode == "random"
    other = models.build("delay-snn", (3, 4), 5, hidden=[8], max_delay=3)
    assert other.in_features == 12 and other(spikes(4, 2, 3, 4)).shape == (4 + 2, 2, 5)
    assert DelaySNN.training_recipe == "delay" and models.build("delay-snn", (4,), 2, training_recipe=None,
                                                                hidden=[3]).training_recipe is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delays": "fixed"}, "delays must be one of learned, random, zero"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"hidden": ()}, "hidden must be a non-empty list"),
        ({"hidden": (4, 0)}, "hidden width"),
        ({"tail": -1}, "tail must be an integer >= 0"),
        ({"max_delay": 0}, "max_delay"),
        ({"tau": 1.0}, "tau"),
        ({"sigma": 0.0}, "sigma must be > 0"),
        ({"training_recipe": 3}, "training_recipe must be a recipe name or None"),
    ],
)
def test_bad_config_is_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        DelaySNN(4, 3, **kwargs)


def test_bad_dataset_and_registry_arguments() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'gsc'; known: shd, ssc, spoken-digits"):
        DelaySNN.for_dataset("gsc")
    with pytest.raises(ValueError, match="unknown dataset 'gsc'"):
        models.build("delay-snn", (140,), 20, dataset="gsc")
    with pytest.raises(ValueError, match="does not accept these arguments"):
        models.build("delay-snn", (140,), 20, widht=3)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.zeros(5, 4), "expects time-first x"),
        (torch.zeros(5, 2, 7), "built for 4 input features, got 7"),
        (torch.zeros(0, 2, 4), "T = 0"),
    ],
)
def test_bad_input_is_refused(x, message) -> None:
    with pytest.raises(ValueError, match=message):
        small()(x)


def test_nan_input_is_refused() -> None:
    x = spikes(5, 2, 4)
    x[2, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN|finite"):
        small()(x)


def test_dataset_configs_list_in_and_out_sizes() -> None:
    for name, cfg in DATASET_CONFIGS.items():
        m = DelaySNN.for_dataset(name)
        assert m.in_features == cfg["in_features"] and m.readout_delay.out_features == cfg["num_classes"]
        assert all(isinstance(d, DelayedLinear) for d in m.delay_layers())


def test_refuses_one_step_per_call_training() -> None:
    from snnkit.neurons import online

    with pytest.raises(ValueError, match="cannot run one time step per call: its delay layers read"), online(small()):
        pass
