"""STDP: exact amounts from hand-computed traces, orientation on nn.Linear, batching, clipping, modulation."""

import math

import pytest
import torch
from torch import nn

from snnkit.plasticity import STDP, STDPTraces, stdp_delta, stdp_traces


def trains(T, times, n=1, batch=1, dtype=torch.float32):
    """[T, batch, n] zeros with ones at (t, b, i) for each entry of ``times``."""
    s = torch.zeros(T, batch, n, dtype=dtype)
    for t, b, i in times:
        s[t, b, i] = 1
    return s


def test_pre_before_post_potentiates_by_the_trace_amount():
    pre, post = trains(10, [(2, 0, 0)]), trains(10, [(5, 0, 0)])
    dw = stdp_delta(pre, post, tau_pre=4.0, tau_post=8.0, a_plus=0.01, a_minus=0.012)
    assert dw.shape == (1, 1)
    assert dw.item() == pytest.approx(0.01 * math.exp(-3 / 4.0), rel=1e-6)  # tau_pre sets the window


def test_post_before_pre_depresses_by_the_trace_amount():
    pre, post = trains(10, [(5, 0, 0)]), trains(10, [(2, 0, 0)])
    dw = stdp_delta(pre, post, tau_pre=4.0, tau_post=8.0, a_plus=0.01, a_minus=0.012)
    assert dw.item() == pytest.approx(-0.012 * math.exp(-3 / 8.0), rel=1e-6)  # tau_post sets the window


def test_mixed_pairs_and_simultaneous_spikes_all_to_all():
    # pre at 2 and 7, post at 5 and 7: pairs (2,5) +, (2,7) +, (7,7) + and -, (5 post, 7 pre) -
    pre, post = trains(10, [(2, 0, 0), (7, 0, 0)]), trains(10, [(5, 0, 0), (7, 0, 0)])
    tp, tq, ap, am = 3.0, 5.0, 0.02, 0.03
    want = (ap * (math.exp(-3 / tp) + math.exp(-5 / tp) + 1.0)
            - am * (1.0 + math.exp(-2 / tq)))
    dw = stdp_delta(pre, post, tau_pre=tp, tau_post=tq, a_plus=ap, a_minus=am, lr=2.0)
    assert dw.item() == pytest.approx(2.0 * want, rel=1e-6)


def test_nalsm_trace_convention_and_nearest_pairing():
    lam = math.exp(-1 / 10)  # 0.9048: NALSM's x <- 0.9048 (x + 0.1 S)
    x = stdp_traces(trains(4, [(0, 0, 0), (2, 0, 0)]), 10.0, increment=0.1, trace_update="add_decay")
    want = [0.1 * lam, 0.1 * lam**2, 0.1 * lam**3 + 0.1 * lam, 0.1 * lam**4 + 0.1 * lam**2]
    torch.testing.assert_close(x[:, 0, 0], torch.tensor(want), rtol=1e-6, atol=0)
    # pre at 1 and 2, post at 5: all-to-all counts both pre spikes, nearest only the latest
    pre, post = trains(8, [(1, 0, 0), (2, 0, 0)]), trains(8, [(5, 0, 0)])
    l20 = math.exp(-1 / 20)
    a2a = stdp_delta(pre, post, a_plus=1.0, a_minus=0.0)
    near = stdp_delta(pre, post, a_plus=1.0, a_minus=0.0, pairing="nearest")
    assert a2a.item() == pytest.approx(l20**4 + l20**3, rel=1e-6)
    assert near.item() == pytest.approx(l20**3, rel=1e-6)
    nalsm = stdp_delta(pre, post, tau_pre=10.0, a_plus=1.0, a_minus=0.0, increment_pre=0.1, trace_update="add_decay")
    assert nalsm.item() == pytest.approx(0.1 * (lam**5 + lam**4), rel=1e-6)


def test_no_spikes_no_change_and_one_sided_spikes_no_change():
    z = torch.zeros(20, 3, 4)
    assert torch.equal(stdp_delta(z, torch.zeros(20, 3, 2)), torch.zeros(2, 4))
    some = (torch.rand(20, 3, 4, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    assert torch.equal(stdp_delta(some, torch.zeros(20, 3, 2)), torch.zeros(2, 4))
    layer = nn.Linear(4, 2)
    before = layer.weight.detach().clone()
    STDP().update(layer, z, torch.zeros(20, 3, 2))
    assert torch.equal(layer.weight, before)


def test_linear_orientation_only_the_paired_synapse_changes():
    layer = nn.Linear(3, 2, bias=False)
    nn.init.zeros_(layer.weight)
    pre = trains(6, [(1, 0, 2)], n=3)   # input 2
    post = trains(6, [(3, 0, 0)], n=2)  # output 0
    stdp = STDP(tau_pre=5.0, a_plus=0.1, a_minus=0.0)
    dw = stdp.update(layer, pre, post)
    want = torch.zeros(2, 3)
    want[0, 2] = 0.1 * math.exp(-2 / 5)
    torch.testing.assert_close(layer.weight.detach(), want)
    torch.testing.assert_close(dw, want)
    assert layer.weight.requires_grad  # still a trainable parameter


def test_batch_is_summed_and_reduce_none_keeps_samples():
    g = torch.Generator().manual_seed(1)
    pre = (torch.rand(30, 5, 7, generator=g) < 0.2).double()
    post = (torch.rand(30, 5, 3, generator=g) < 0.2).double()
    per = [stdp_delta(pre[:, b:b + 1], post[:, b:b + 1]) for b in range(5)]
    total = stdp_delta(pre, post)
    assert total.dtype == torch.float64
    torch.testing.assert_close(total, sum(per))
    torch.testing.assert_close(stdp_delta(pre, post, reduce="none"), torch.stack(per))
    # extra batch dims [T, 5, 1, in] are batch too
    torch.testing.assert_close(stdp_delta(pre.unsqueeze(2), post.unsqueeze(2)), total)


def test_per_sample_weights():
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(12, 4, 5, generator=g) < 0.3).float()
    post = (torch.rand(12, 4, 3, generator=g) < 0.3).float()
    w = torch.zeros(4, 3, 5)
    STDP().update(w, pre, post)
    for b in range(4):
        torch.testing.assert_close(w[b], stdp_delta(pre[:, b:b + 1], post[:, b:b + 1]))


def test_clipping_and_returned_change_is_the_applied_one():
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.95)
    pre, post = trains(5, [(0, 0, 0)]), trains(5, [(1, 0, 0)])
    stdp = STDP(a_plus=0.5, w_min=0.0, w_max=1.0)
    dw = stdp.update(layer, pre, post)
    assert layer.weight.item() == pytest.approx(1.0)
    assert dw.item() == pytest.approx(0.05, abs=1e-6)
    with torch.no_grad():
        layer.weight.fill_(0.1)
    STDP(a_minus=5.0, w_min=0.0, w_max=1.0).update(layer, post, pre)  # depression below w_min
    assert layer.weight.item() == 0.0


def test_amplitudes_change_between_calls_and_per_step():
    pre, post = trains(10, [(2, 0, 0), (6, 0, 0)]), trains(10, [(4, 0, 0)])
    stdp = STDP(tau_pre=4.0, tau_post=4.0, a_plus=0.0, a_minus=0.01)
    first = stdp.delta(pre, post).item()
    assert first == pytest.approx(-0.01 * math.exp(-2 / 4), rel=1e-6)
    stdp.a_minus = 0.03  # a modulator sets the depression amplitude
    assert stdp.delta(pre, post).item() == pytest.approx(3 * first, rel=1e-6)
    # per-step a_minus [T]: the depression of the pre spike at step 6 uses a_minus[6]
    a_minus = torch.zeros(10)
    a_minus[6] = 0.5
    a_minus[2] = 100.0  # the pre spike at 2 has no earlier post spike: no effect
    assert stdp.delta(pre, post, a_minus=a_minus).item() == pytest.approx(-0.5 * math.exp(-2 / 4), rel=1e-6)
    stdp.a_minus = a_minus  # as an attribute too
    assert stdp.delta(pre, post).item() == pytest.approx(-0.5 * math.exp(-2 / 4), rel=1e-6)
    # per-step and per-sample [T, B]
    pre2, post2 = pre.expand(10, 2, 1), post.expand(10, 2, 1)
    a_tb = torch.zeros(10, 2)
    a_tb[6, 0], a_tb[6, 1] = 1.0, 2.0
    got = stdp.delta(pre2, post2, a_minus=a_tb, reduce="none")
    torch.testing.assert_close(got.flatten(), -torch.tensor([1.0, 2.0]) * math.exp(-2 / 4))


def test_mirrored_rule_for_inhibitory_synapses():
    g = torch.Generator().manual_seed(3)
    pre = (torch.rand(25, 2, 4, generator=g) < 0.3).float()
    post = (torch.rand(25, 2, 3, generator=g) < 0.3).float()
    kw = {"tau_pre": 5.0, "tau_post": 7.0, "a_plus": 0.15, "a_minus": 0.2}
    causal = stdp_delta(pre, post, **{**kw, "a_plus": 1.0, "a_minus": 0.0})
    acausal = -stdp_delta(pre, post, **{**kw, "a_plus": 0.0, "a_minus": 1.0})
    torch.testing.assert_close(stdp_delta(pre, post, **kw), 0.15 * causal - 0.2 * acausal)
    mirrored = stdp_delta(pre, post, mirrored=True, **kw)
    torch.testing.assert_close(mirrored, -0.2 * causal + 0.15 * acausal)
    mask = torch.tensor([False, True, False, True])  # inhibitory pre-synaptic inputs
    mixed = stdp_delta(pre, post, mirrored=mask, **kw)
    torch.testing.assert_close(mixed[:, mask], mirrored[:, mask])
    torch.testing.assert_close(mixed[:, ~mask], stdp_delta(pre, post, **kw)[:, ~mask])


def test_traces_carry_across_chunks():
    g = torch.Generator().manual_seed(4)
    pre = (torch.rand(40, 3, 5, generator=g) < 0.2).float()
    post = (torch.rand(40, 3, 2, generator=g) < 0.2).float()
    whole = stdp_delta(pre, post)
    traces, total = None, torch.zeros(2, 5)
    for t in range(40):  # step by step, as a simulation whose spikes depend on the weights would
        dw, traces = stdp_delta(pre[t:t + 1], post[t:t + 1], traces=traces, return_traces=True)
        total += dw
    assert isinstance(traces, STDPTraces) and traces.pre.shape == (3, 5)
    torch.testing.assert_close(total, whole)


def test_bool_and_integer_spikes_and_float64_weights():
    pre, post = trains(10, [(2, 0, 0)]), trains(10, [(5, 0, 0)])
    ref = stdp_delta(pre, post)
    torch.testing.assert_close(stdp_delta(pre.bool(), post.long()), ref)
    w = torch.zeros(1, 1, dtype=torch.float64)
    dw = STDP().update(w, pre.bool(), post)
    assert dw.dtype == torch.float64 and w.item() == pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(5)
    pre = (torch.rand(30, 4, 6, generator=g) < 0.2).float()
    post = (torch.rand(30, 4, 3, generator=g) < 0.2).float()
    a = torch.linspace(0.0, 0.02, 30)
    layer = nn.Linear(6, 3).cuda()
    w0 = layer.weight.detach().cpu().clone()
    STDP(w_min=-1.0, w_max=1.0).update(layer, pre.cuda(), post.cuda(), a_minus=a.cuda())
    torch.testing.assert_close(layer.weight.detach().cpu(),
                               (w0 + stdp_delta(pre, post, a_minus=a)).clamp(-1, 1))


def test_bad_input():
    ok_pre, ok_post = torch.zeros(5, 2, 3), torch.zeros(5, 2, 4)
    with pytest.raises(ValueError, match="pre must be binary"):
        stdp_delta(ok_pre + 0.5, ok_post)
    with pytest.raises(ValueError, match="post"):
        stdp_delta(ok_pre, torch.zeros(6, 2, 4))
    with pytest.raises(TypeError, match="pre"):
        stdp_delta([[0.0]], ok_post)
    with pytest.raises(ValueError, match="tau_pre"):
        stdp_delta(ok_pre, ok_post, tau_pre=0.0)
    with pytest.raises(TypeError, match="a_minus"):
        stdp_delta(ok_pre, ok_post, a_minus="big")
    with pytest.raises(ValueError, match="a_minus"):
        stdp_delta(ok_pre, ok_post, a_minus=torch.zeros(4))
    with pytest.raises(ValueError, match="reduce"):
        stdp_delta(ok_pre, ok_post, reduce="mean")
    with pytest.raises(ValueError, match="pairing"):
        STDP(pairing="nearest_neighbour")
    with pytest.raises(ValueError, match="w_min"):
        STDP(w_min=1.0, w_max=0.0)
    with pytest.raises(ValueError, match="pre has 3 inputs"):
        STDP().update(nn.Linear(5, 4), ok_pre, ok_post)
    with pytest.raises(ValueError, match="mirrored"):
        stdp_delta(ok_pre, ok_post, mirrored=torch.ones(5, dtype=torch.bool))
    with pytest.raises(TypeError, match="layer"):
        STDP().update("layer", ok_pre, ok_post)
