"""Sparse, event-driven STDP equals the dense rule of stdp_delta on the synapses of a mask; the astrocyte equation."""

import math

import pytest
import torch

from snnkit.plasticity import (
    Astrocyte,
    SynapseIndex,
    astrocyte_step,
    sparse_stdp_step,
    stdp_delta,
    update_traces,
)


def random_net(n_pre, n_post, density, seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n_post, n_pre, generator=g) < density
    post, pre = torch.nonzero(mask, as_tuple=True)
    index, _order = SynapseIndex.from_pairs(pre, post, n_pre, n_post)
    return mask, index, g


def run_sparse(pre, post, index, *, a_plus, a_minus, tau, mirrored=None, w0=None):
    """Step-by-step sparse STDP with decay_add traces updated before pairing (= stdp_delta's convention)."""
    T, B, _ = pre.shape
    w = torch.zeros(B, index.num_synapses, dtype=torch.float64) if w0 is None else w0.clone()
    xp = torch.zeros(B, index.n_pre, dtype=torch.float64)
    xq = torch.zeros(B, index.n_post, dtype=torch.float64)
    for t in range(T):
        xp = update_traces(xp, pre[t], tau)
        xq = update_traces(xq, post[t], tau)
        ap = a_plus[t] if isinstance(a_plus, torch.Tensor) else a_plus
        am = a_minus[t] if isinstance(a_minus, torch.Tensor) else a_minus
        sparse_stdp_step(w, index, pre[t], post[t], xp, xq, a_plus=ap, a_minus=am, mirrored=mirrored)
    return w


def test_sparse_step_equals_dense_stdp_delta_on_the_mask():
    _mask, index, g = random_net(9, 7, 0.4, 0)
    pre = (torch.rand(30, 3, 9, generator=g) < 0.25).double()
    post = (torch.rand(30, 3, 7, generator=g) < 0.25).double()
    a_minus = torch.rand(30, 3, generator=g, dtype=torch.float64)  # per step and per sample, as an astrocyte sets it
    dense = stdp_delta(pre, post, tau_pre=5.0, tau_post=5.0, a_plus=0.15, a_minus=a_minus, reduce="none")
    sparse = run_sparse(pre, post, index, a_plus=0.15, a_minus=a_minus, tau=5.0)
    torch.testing.assert_close(sparse, dense[:, index.post, index.pre])
    # mirrored synapses: those from odd pre-synaptic neurons
    mir_pre = torch.arange(9) % 2 == 1
    dense_m = stdp_delta(pre, post, tau_pre=5.0, tau_post=5.0, a_plus=0.15, a_minus=a_minus, reduce="none",
                         mirrored=mir_pre)
    sparse_m = run_sparse(pre, post, index, a_plus=0.15, a_minus=a_minus, tau=5.0, mirrored=mir_pre[index.pre])
    torch.testing.assert_close(sparse_m, dense_m[:, index.post, index.pre])


def test_only_synapses_of_spiking_neurons_change_and_bounds_hold():
    _mask, index, _g = random_net(6, 5, 0.6, 1)
    w = torch.full((2, index.num_synapses), 0.5)
    pre = torch.zeros(2, 6)
    post = torch.zeros(2, 5)
    pre[0, 2] = 1  # sample 0: pre neuron 2 spikes -> only its out-synapses (depression)
    xq = torch.ones(2, 5)
    touched = sparse_stdp_step(w, index, pre, post, torch.ones(2, 6), xq, a_plus=1.0, a_minus=2.0, w_min=0.0,
                               w_max=1.0)
    changed = (w != 0.5)
    assert torch.equal(changed[0], index.pre == 2)
    assert not changed[1].any()
    assert (w >= 0).all() and (w <= 1).all()  # clipped at w_min
    assert set(torch.cat(touched).tolist()) == set(torch.nonzero(changed.view(-1)).flatten().tolist())
    # per-synapse bounds
    lo = torch.where(index.pre % 2 == 0, 0.2, -1.0)
    sparse_stdp_step(w, index, torch.ones(2, 6), post, torch.ones(2, 6), xq, a_plus=0.0, a_minus=5.0, w_min=lo)
    torch.testing.assert_close(w, lo.expand_as(w).clone())


def test_nalsm_trace_pairs_only_strictly_earlier_spikes():
    # one synapse 0 -> 0; pre at 2, post at 2 and 5; previous-step traces (NALSM): the simultaneous pair is ignored
    index, _ = SynapseIndex.from_pairs(torch.tensor([0]), torch.tensor([0]), 1, 1)
    lam = math.exp(-1 / 10)
    w = torch.zeros(1, 1, dtype=torch.float64)
    x = torch.zeros(1, 1, dtype=torch.float64)
    xq = torch.zeros(1, 1, dtype=torch.float64)
    for t in range(8):
        s_pre = torch.tensor([[1.0 if t == 2 else 0.0]], dtype=torch.float64)
        s_post = torch.tensor([[1.0 if t in (2, 5) else 0.0]], dtype=torch.float64)
        sparse_stdp_step(w, index, s_pre, s_post, x, xq, a_plus=1.0, a_minus=1.0)
        x = update_traces(x, s_pre, 10.0, increment=0.1, trace_update="add_decay")
        xq = update_traces(xq, s_post, 10.0, increment=0.1, trace_update="add_decay")
    assert w.item() == pytest.approx(0.1 * lam**3, rel=1e-9)  # only pre(2) -> post(5)


def test_astrocyte_depression_grows_when_the_liquid_fires_more_than_its_input():
    astro = Astrocyte(w=0.015, bias=0.15, initial=0.15, tau=100.0, decay=1.0)
    a0 = astro.reset(3).clone()
    liquid = torch.zeros(3, 100)
    liquid[0, :40] = 1  # sample 0: liquid 40 spikes > input 10
    liquid[1, :10] = 1  # sample 1: balanced
    inp = torch.zeros(3, 20)
    inp[:, :10] = 1  # sample 2: liquid silent < input 10
    for _ in range(50):
        a = astro.step(liquid, inp)
    assert a[0] > a0[0] and a[1] == pytest.approx(0.15) and a[2] < a0[2]
    # the closed form of one step
    torch.testing.assert_close(astrocyte_step(a0, liquid, inp, w=0.015, bias=0.15, tau=100.0),
                               a0 + (0.015 * torch.tensor([30.0, 0.0, -10.0]) + 0.15 - a0) / 100.0)
    # steady state: A = w (liquid - input) + bias
    for _ in range(3000):
        a = astro.step(liquid, inp)
    torch.testing.assert_close(a, 0.015 * torch.tensor([30.0, 0.0, -10.0]) + 0.15, rtol=1e-4, atol=1e-5)


def test_astrocyte_decay_and_reset():
    astro = Astrocyte(decay=0.99)
    astro.reset(2)
    astro.step(torch.ones(2, 10), torch.zeros(2, 5))
    a1 = astro.a.clone()
    astro.decay_step()
    torch.testing.assert_close(astro.a, 0.99 * a1)
    assert astro.w == pytest.approx(0.015 * 0.99) and astro.bias == pytest.approx(0.15 * 0.99)
    astro.reset(2)
    assert astro.w == 0.015 and torch.equal(astro.a, torch.full((2,), 0.15))
    with pytest.raises(RuntimeError, match="reset"):
        astro.step(torch.ones(3, 10), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="decay"):
        Astrocyte(decay=1.5)
    with pytest.raises(ValueError, match="tau"):
        Astrocyte(tau=0.0)


def test_synapse_index_validation():
    with pytest.raises(ValueError, match="pre indices"):
        SynapseIndex.from_pairs(torch.tensor([5]), torch.tensor([0]), 3, 3)
    with pytest.raises(TypeError, match="integer"):
        SynapseIndex.from_pairs(torch.tensor([0.0]), torch.tensor([0]), 3, 3)
