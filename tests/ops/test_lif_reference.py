"""The reference LIF op (the CPU path) against independent oracles.

- SpikingJelly 2.0's multi-step ``LIFNode`` with the same parameters: spikes, final potential, input gradients.
- Autograd through the naive step-by-step loop (``lif_multistep_naive``): the hand-written reverse scan.
- ``torch.autograd.gradcheck`` in float64 where the surrogate plays no part (loss on the potentials with a detached
  reset: then the analytic gradient is the true one almost everywhere), including the tau gradient.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import snnkit
import snnkit.ops as ops
from lif_cases import RESETS, SURROGATES, grid
from snnkit.ops.lif import lif_multistep_naive

sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
sj_surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")

SJ_SURROGATE = {"ATan": "ATan", "Sigmoid": "Sigmoid", "Triangle": "PiecewiseQuadratic", "Rectangle": "Rect"}


@pytest.mark.parametrize("cfg", list(grid(
    v_reset=[0.0, -0.25, None], decay_input=[True, False], detach_reset=[False, True], surrogate=SURROGATES,
)), ids=str)
def test_reference_matches_spikingjelly_lifnode(cfg):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 4, 33, generator=g) * 1.5 + 0.3
    w = torch.randn(12, 4, 33, generator=g)
    sur = cfg["surrogate"]
    sj = sj_neuron.LIFNode(
        tau=1.8, decay_input=cfg["decay_input"], v_threshold=1.0, v_reset=cfg["v_reset"],
        surrogate_function=getattr(sj_surrogate, SJ_SURROGATE[type(sur).__name__])(alpha=sur.alpha),
        detach_reset=cfg["detach_reset"], step_mode="m",
    )
    xs = x.clone().requires_grad_()
    s_sj = sj(xs)
    (s_sj * w).sum().backward()
    xo = x.clone().requires_grad_()
    s, v_last = ops.lif_multistep(xo, tau=1.8, backend="torch", **cfg)
    (s * w).sum().backward()
    assert torch.equal(s, s_sj)
    torch.testing.assert_close(v_last, sj.v, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(xo.grad, xs.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cfg", list(grid(
    v_reset=RESETS, decay_input=[True, False], detach_reset=[False, True], surrogate=SURROGATES,
)), ids=str)
def test_reverse_scan_matches_autograd_through_steps(cfg):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(10, 3, 17, generator=g, dtype=torch.float64) * 1.5 + 0.3).requires_grad_()
    v0 = torch.randn(3, 17, generator=g, dtype=torch.float64).requires_grad_()
    tau = torch.tensor(1.6, dtype=torch.float64, requires_grad=True)
    ws, wv = torch.randn(10, 3, 17, generator=g, dtype=torch.float64), torch.randn(10, 3, 17, generator=g,
                                                                                    dtype=torch.float64)
    s, v = ops.lif_multistep(x, v0, tau=tau, store_v_seq=True, **cfg)
    got = torch.autograd.grad((s * ws + v * wv).sum(), (x, v0, tau))
    s2, v2 = lif_multistep_naive(x, v0, tau=tau, **cfg)
    want = torch.autograd.grad((s2 * ws + v2 * wv).sum(), (x, v0, tau))
    assert torch.equal(s, s2)
    torch.testing.assert_close(v, v2, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("cfg", list(grid(v_reset=[0.0, None], decay_input=[True, False])), ids=str)
def test_gradcheck_float64_with_learnable_tau(cfg):
    g = torch.Generator().manual_seed(2)
    x = (torch.randn(6, 2, 5, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    v0 = torch.randn(2, 5, generator=g, dtype=torch.float64).requires_grad_()
    tau = torch.tensor(1.9, dtype=torch.float64, requires_grad=True)

    def potentials(x, v0, tau):
        return ops.lif_multistep(x, v0, tau=tau, detach_reset=True, store_v_seq=True, **cfg)[1]

    assert torch.autograd.gradcheck(potentials, (x, v0, tau), eps=1e-7, atol=1e-6)


def test_parametric_lif_tau_gradient_matches_autograd():
    torch.manual_seed(3)
    plif = snnkit.neurons.ParametricLIF(init_tau=2.5, surrogate=snnkit.surrogate.ATan(), store_v_seq=True)
    x = torch.randn(9, 4, 6, dtype=torch.float64) + 0.4
    plif.double()
    w = torch.randn_like(x)
    (plif(x) * w + plif.v_seq * w.flip(0)).sum().backward()
    got = plif.w.grad.clone()
    tau = 1 / torch.sigmoid(plif.w)
    s, v = lif_multistep_naive(x, tau=tau, surrogate=snnkit.surrogate.ATan())
    want, = torch.autograd.grad((s * w + v * w.flip(0)).sum(), plif.w)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=2, max_size=5),
    transpose=st.booleans(),
    v_reset=st.sampled_from([0.0, None]),
    seed=st.integers(0, 2**16),
)
def test_any_rank_and_noncontiguous_inputs(shape, transpose, v_reset, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    if transpose and x.dim() >= 3:
        x = x.transpose(1, -1)  # non-contiguous view, e.g. [T, C, ..., B]
    x.requires_grad_()
    w = torch.randn(x.shape, generator=g, dtype=torch.float64)
    s, v = ops.lif_multistep(x, v_reset=v_reset, surrogate=SURROGATES[0])
    gx, = torch.autograd.grad((s * w).sum() + v.sum(), x)
    s2, v2 = lif_multistep_naive(x, v_reset=v_reset, surrogate=SURROGATES[0])
    gx2, = torch.autograd.grad((s2 * w).sum() + v2[-1].sum(), x)
    assert s.shape == x.shape and v.shape == x.shape[1:]
    assert torch.equal(s, s2)
    torch.testing.assert_close(v, v2[-1])
    torch.testing.assert_close(gx, gx2)


def test_compact_storage_keeps_spikes_and_gradients_close():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(16, 64, 32, generator=g) + 0.5
    w = torch.randn(x.shape, generator=g)
    grads = {}
    for storage in ("exact", "compact"):
        xr = x.clone().requires_grad_()
        s, v = ops.lif_multistep(xr, storage=storage, surrogate=SURROGATES[0], store_v_seq=True)
        (s * w + v).sum().backward()
        grads[storage] = (s, v, xr.grad)
    assert torch.equal(grads["exact"][0], grads["compact"][0])
    assert torch.equal(grads["exact"][1], grads["compact"][1])  # the forward is identical; only the save differs
    ge, gc = grads["exact"][2], grads["compact"][2]
    assert not torch.equal(ge, gc)  # it really is a different save
    assert ((ge - gc).norm() / ge.norm()).item() < 2e-3


def test_memory_saved_for_backward_per_mode():
    x = torch.randn(8, 100, requires_grad=True)
    sizes = {}
    for storage in ("exact", "compact"):
        s, _ = ops.lif_multistep(x, storage=storage)
        saved = s.grad_fn.saved_tensors
        sizes[storage] = sum(t.numel() * t.element_size() for t in saved if t is not None)
    assert sizes["exact"] == 4 * x.numel() and sizes["compact"] == 2 * x.numel()
    with torch.no_grad():
        s, _ = ops.lif_multistep(x)
    assert s.grad_fn is None


def test_float64_stays_float64_and_bf16_state_stays_float32():
    s, v = ops.lif_multistep(torch.randn(3, 4, dtype=torch.float64))
    assert s.dtype == v.dtype == torch.float64
    s, v = ops.lif_multistep(torch.randn(3, 4).bfloat16(), torch.zeros(4))
    assert s.dtype == torch.bfloat16 and v.dtype == torch.float32


def test_hand_computed_case():
    # tau = 2, decay_input, hard reset to 0, v_th = 1: h = (v + x) / 2.
    x = torch.tensor([[1.0], [1.5], [2.5], [0.0]])
    s, v = ops.lif_multistep(x, tau=2.0, store_v_seq=True)
    # h: 0.5 -> s0, v .5 ; h: (0.5+1.5)/2 = 1.0 -> spike, v 0 ; h: 1.25 -> spike, v 0 ; h: 0 -> v 0
    assert s.flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    assert v.flatten().tolist() == [0.5, 0.0, 0.0, 0.0]
