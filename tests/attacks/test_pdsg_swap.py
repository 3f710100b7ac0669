"""attacks.pdsg / swap_surrogate: every neuron swapped inside the block, the victim restored after (also on an
exception), and SpikingJelly 2.0 LIFNode models given the same gradient as snnkit's LIF op."""

import pytest
import torch
from torch import nn

from snnkit import attacks, neurons, surrogate

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")
sj_functional = pytest.importorskip("spikingjelly.activation_based.functional")


def _snn(sg):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), neurons.LIF(surrogate=sg), nn.Linear(5, 4), neurons.LIF(surrogate=sg),
                         nn.Linear(4, 3))


def test_swap_sets_pdsg_and_restores_the_originals():
    sg = surrogate.Sigmoid(4.0)
    model = _snn(sg)
    lifs = [m for m in model if isinstance(m, neurons.LIF)]
    with attacks.pdsg(model) as m:
        assert m is model
        assert all(isinstance(n.surrogate, surrogate.PDSG) for n in lifs)
    assert all(n.surrogate is sg for n in lifs)


def test_swap_restores_on_exception():
    sg = surrogate.ATan(2.0)
    model = _snn(sg)
    with pytest.raises(RuntimeError, match="boom"):
        with attacks.pdsg(model):
            raise RuntimeError("boom")
    assert all(n.surrogate is sg for n in model if isinstance(n, neurons.LIF))


def test_model_without_spiking_neurons_is_refused():
    with pytest.raises(ValueError, match="model .*has no spiking neurons"):
        with attacks.pdsg(nn.Sequential(nn.Linear(3, 3), nn.ReLU())):
            pass
    with pytest.raises(TypeError, match="surrogate must be a snnkit.surrogate.Surrogate"):
        with attacks.swap_surrogate(_snn(surrogate.ATan()), "atan"):
            pass


def _sj(step_mode):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), sj_neuron.LIFNode(surrogate_function=sj_surrogate.ATan(),
                                                             step_mode=step_mode),
                          nn.Linear(5, 4), sj_neuron.LIFNode(surrogate_function=sj_surrogate.ATan(),
                                                             step_mode=step_mode),
                          nn.Linear(4, 3))
    return model


def _grad(model, x, step_mode="m"):
    x = x.clone().requires_grad_()
    if step_mode == "s":  # a model driven one step per call: the loop over T is the caller's
        out = torch.stack([model(x_t) for x_t in x])
    else:
        out = model(x)
    (g,) = torch.autograd.grad((out * torch.linspace(-1, 1, 3)).sum(), x)
    return g


@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_spikingjelly_lifnode_gets_the_same_pdsg_gradient_as_snnkit(step_mode):
    x = torch.randn(7, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 1.5
    ours = _snn(surrogate.ATan()).double()
    with torch.no_grad():  # weights that make both layers fire about a third of the time: gradients of order 1
        for lin in (ours[0], ours[2]):
            lin.weight.mul_(3)
            lin.bias.fill_(0.5)
    theirs = _sj(step_mode).double()
    theirs.load_state_dict(ours.state_dict())
    with attacks.pdsg(ours):
        want = _grad(ours, x)
    with attacks.pdsg(theirs):
        assert isinstance(theirs[1].surrogate_function, attacks.SpikingJellyPDSG)
        sj_functional.reset_net(theirs)
        got = _grad(theirs, x, step_mode)
        sj_functional.reset_net(theirs)
        again = _grad(theirs, x, step_mode)  # the next call of the model starts a new sequence
    assert want.abs().max() > 0.05
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(again, want, rtol=1e-10, atol=1e-12)
    assert isinstance(theirs[1].surrogate_function, sj_surrogate.ATan)  # restored
    assert not any(m._forward_pre_hooks for m in theirs.modules())


def test_pdsg_pgd_runs_on_a_spikingjelly_model():
    model = _sj("m")
    x = torch.rand(5, 3, 6)
    y = torch.tensor([0, 1, 2])
    with attacks.pdsg(model):
        x_adv = attacks.pgd(model, x, y, eps=0.1, steps=2, generator=torch.Generator().manual_seed(0))
    assert ((x_adv - x).abs() <= 0.1 + 1e-6).all() and not torch.equal(x_adv, x)


def test_spike_rates_of_the_equivalence_net_are_moderate():
    """The equivalence test above only means something if the neurons fire neither never nor always."""
    x = torch.randn(7, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 1.5
    net = _snn(surrogate.ATan()).double()
    with torch.no_grad():
        for lin in (net[0], net[2]):
            lin.weight.mul_(3)
            lin.bias.fill_(0.5)
        s1 = net[1](net[0](x))
        s2 = net[3](net[2](s1))
    for s in (s1, s2):
        assert 0.1 < s.mean().item() < 0.9
