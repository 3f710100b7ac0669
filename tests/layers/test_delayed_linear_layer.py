"""DelayedLinear: its contract (shapes, sigma, clamping, rounding, eval with integer delays, frozen delays, state),
the dcls mapping both ways, and the paper's claim in miniature (learned delays solve a timing task zero delays
cannot)."""

import pytest
import torch
import torch.nn.functional as F

from snnkit.layers import DelayedLinear
from snnkit.ops.delayed_linear import delayed_linear_naive


def _layer(**kw):
    return DelayedLinear(5, 3, 7, generator=torch.Generator().manual_seed(0), **kw)


def test_defaults_shapes_and_init():
    layer = _layer()
    assert layer.sigma == 3.0  # max_delay // 2, the schedule's start
    assert layer.weight.shape == layer.positions.shape == layer.delays.shape == (3, 5)
    assert layer.positions.requires_grad and layer.bias is None
    assert 0 <= float(layer.delays.min()) and float(layer.delays.max()) <= 6
    assert float(layer.weight.detach().abs().max()) <= 1 / 5 ** 0.5  # kaiming uniform (a = sqrt(5)): U(-1/sqrt(in), ..)
    assert not layer.delays.requires_grad
    y = layer(torch.randn(8, 2, 5))
    assert y.shape == (8, 2, 3)
    again = _layer()
    assert torch.equal(again.weight, layer.weight) and torch.equal(again.positions, layer.positions)


def test_training_mode_is_gaussian_eval_mode_is_rounded_without_changing_parameters():
    layer = _layer(bias=True)
    x = torch.randn(10, 2, 5)
    p0 = layer.positions.detach().clone()
    y_train = layer(x)
    ref_train = delayed_linear_naive(x, layer.weight, layer.positions, 7, layer.sigma) + layer.bias
    assert torch.allclose(y_train, ref_train, atol=1e-5)
    layer.eval()
    y_eval = layer(x)
    ref_eval = delayed_linear_naive(x, layer.weight, torch.round(p0), 7, None) + layer.bias
    assert torch.allclose(y_eval, ref_eval, atol=1e-5)
    assert torch.equal(layer.positions.detach(), p0)
    layer.train()
    layer.round_delays()
    assert torch.equal(layer.delays, torch.round(p0))
    assert torch.allclose(layer(x), ref_eval, atol=1e-5)  # training mode now uses the integer delays too


def test_sigma_clamp_and_gradients():
    layer = _layer()
    layer.set_sigma(0.23)
    assert layer.sigma == 0.23
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            layer.set_sigma(bad)
    with torch.no_grad():
        layer.positions.add_(torch.linspace(-20, 20, 15).view(3, 5))
    layer.clamp_delays()
    assert float(layer.delays.min()) == 0 and float(layer.delays.max()) == 6
    layer(torch.randn(6, 2, 5)).square().sum().backward()
    assert layer.positions.grad is not None and layer.weight.grad is not None


def test_frozen_and_given_delays():
    zero = _layer(init_delays="zero", learn_delays=False)
    assert not zero.positions.requires_grad and not bool(zero.delays.any())
    x = torch.randn(6, 2, 5)
    assert zero.rounded  # frozen delays are integer delays in both modes
    assert torch.allclose(zero(x), x @ zero.weight.T, atol=1e-5)  # zero delays = nn.Linear
    fixed = _layer(learn_delays=False)
    assert torch.equal(fixed.delays, fixed.delays.round()) and bool(fixed.delays.any())
    d = torch.randint(0, 7, (3, 5))
    given = _layer(init_delays=d)
    assert torch.equal(given.delays, d.float())
    with pytest.raises(ValueError, match="init_delays"):
        _layer(init_delays=torch.full((3, 5), 7.0))
    with pytest.raises(ValueError, match="init_delays"):
        _layer(init_delays=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="init_delays"):
        _layer(init_delays="normal")
    with pytest.raises(ValueError, match="max_delay"):
        DelayedLinear(5, 3, 0)
    with pytest.raises(ValueError, match="backend"):
        DelayedLinear(5, 3, 4, backend="cuda")


def test_state_dict_carries_sigma_and_rounding():
    layer = _layer()
    layer.set_sigma(1.5)
    layer.round_delays()
    other = DelayedLinear(5, 3, 7)
    other.load_state_dict(layer.state_dict())
    assert other.sigma == 1.5 and other.rounded
    assert torch.equal(other.positions, layer.positions)


def test_dcls_round_trip():
    from DCLS.construct.modules import Dcls1d

    torch.manual_seed(1)
    m = Dcls1d(4, 3, kernel_count=1, dilated_kernel_size=9, version="gauss", bias=True)
    with torch.no_grad():
        m.SIG.fill_(0.9)
        m.P.uniform_(-4, 4)
    layer = DelayedLinear.from_dcls(m)
    assert layer.sigma == pytest.approx(0.9 + 0.27)
    x = torch.randn(12, 2, 4)
    ref = m(F.pad(x.permute(1, 2, 0), (8, 0))).permute(2, 0, 1)
    assert torch.allclose(layer(x), ref, atol=1e-5)
    params = layer.dcls_parameters()
    assert torch.allclose(params["P"], m.P) and torch.allclose(params["SIG"], m.SIG)
    assert torch.equal(params["weight"], m.weight)


def _timing_task(n: int, seed: int, T: int = 14, gap: int = 4):
    """Two input channels spike once each, ``gap`` steps apart at a random time; the class is which one leads."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    t0 = torch.randint(0, T - gap - 4, (n,), generator=g)
    x = torch.zeros(T, n, 2)
    x[t0, torch.arange(n), label] = 1.0
    x[t0 + gap, torch.arange(n), 1 - label] = 1.0
    return x, label


def _train_on_timing_task(learn_delays: bool, steps: int = 80) -> float:
    g = torch.Generator().manual_seed(0)
    layer = DelayedLinear(2, 2, 8, sigma=2.0, init_delays="uniform" if learn_delays else "zero",
                          learn_delays=learn_delays, generator=g)
    groups = [{"params": [layer.weight], "lr": 0.05}]
    if learn_delays:
        groups.append({"params": [layer.positions], "lr": 0.3})
    opt = torch.optim.Adam(groups)
    x, label = _timing_task(64, seed=1)

    def logits(inp):
        # Energy of each output over time: (w0 a + w1 b)^2 has a cross term only where the delayed spikes meet.
        return layer(inp).square().sum(0) * 4

    for step in range(steps):
        layer.set_sigma(max(2.0 * 0.1 ** (step / (0.6 * steps)), 0.23))  # the paper's shrinking width
        loss = F.cross_entropy(logits(x), label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        layer.clamp_delays()
    layer.eval()  # integer delays, as the paper evaluates
    x_test, label_test = _timing_task(256, seed=2)
    with torch.no_grad():
        return (logits(x_test).argmax(1) == label_test).float().mean().item()


def test_learned_delays_solve_a_timing_task_that_zero_delays_cannot():
    """The paper's claim in miniature: the class is the relative timing of two spikes; without delays the two
    classes give every output the same energy (chance), with learned delays the spikes meet for one class."""
    learned = _train_on_timing_task(True)
    none = _train_on_timing_task(False)
    assert learned >= 0.95, learned
    assert none <= 0.65, none
