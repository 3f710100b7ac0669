"""LIF / ParametricLIF modules: step modes agree, state conventions hold, forgetting a reset does not bite."""

import warnings

import pytest
import torch

import snnkit
from snnkit import surrogate
from snnkit.neurons import LIF, ParametricLIF


@pytest.mark.parametrize("v_reset", [0.0, None])
def test_single_step_equals_multi_step(v_reset):
    x = torch.randn(7, 3, 5) + 0.5
    multi = LIF(v_reset=v_reset, step_mode="m")
    single = LIF(v_reset=v_reset, step_mode="s")
    xm, xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    ym = multi(xm)
    ys = torch.stack([single(xs[t]) for t in range(7)])
    assert torch.equal(ym, ys)
    torch.testing.assert_close(multi.v, single.v)
    w = torch.randn_like(x)
    (ym * w).sum().backward()
    (ys * w).sum().backward()
    torch.testing.assert_close(xm.grad, xs.grad)


def test_multi_step_starts_from_rest_each_call():
    lif = LIF()
    x = torch.randn(5, 2, 4) + 1
    assert torch.equal(lif(x), lif(x))


def test_carry_state_streams_like_one_long_sequence():
    x = torch.randn(12, 2, 4) + 0.6
    whole = LIF(surrogate=surrogate.ATan())(x)
    stream = LIF(surrogate=surrogate.ATan(), carry_state=True)
    parts = torch.cat([stream(x[:5]), stream(x[5:9]), stream(x[9:])])
    assert torch.equal(whole, parts)


def test_store_v_seq():
    lif = LIF(store_v_seq=True)
    x = torch.randn(4, 3)
    lif(x)
    _, v_seq = snnkit.ops.lif_multistep(x, store_v_seq=True)
    assert torch.equal(lif.v_seq, v_seq) and torch.equal(lif.v, v_seq[-1])


def test_forgotten_reset_after_backward_starts_from_rest():
    lif = LIF(step_mode="s")
    lin = torch.nn.Linear(4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two batches, no snnkit.reset in between
            out = sum(lif(lin(torch.randn(3, 4))) for _ in range(3))
            out.sum().backward()  # would raise "backward through the graph a second time" if the state were reused
    assert any("snnkit.reset" in str(w.message) for w in caught)


def test_batch_size_change_starts_from_rest():
    lif = LIF(step_mode="s")
    lif(torch.randn(3, 4))
    with pytest.warns(UserWarning, match="does not match"):
        y = lif(torch.randn(5, 4))
    assert y.shape == (5, 4) and lif.v.shape == (5, 4)


def test_reset_clears_every_neuron():
    model = torch.nn.Sequential(LIF(step_mode="s"), torch.nn.Sequential(ParametricLIF(step_mode="s")))
    model(torch.randn(2, 3))
    assert all(m.v is not None for m in model.modules() if isinstance(m, LIF))
    assert snnkit.reset(model) is model
    assert all(m.v is None for m in model.modules() if isinstance(m, LIF))
    with pytest.raises(TypeError, match="nn.Module"):
        snnkit.reset("model")


def test_parametric_lif_learns_tau():
    torch.manual_seed(0)
    # decay_input=False: h = v (1 - 1/tau) + x, so a longer time constant (less leak) integrates to more spikes.
    plif = ParametricLIF(init_tau=2.0, decay_input=False, surrogate=surrogate.ATan())
    assert abs(plif.tau.item() - 2.0) < 1e-6
    x = torch.rand(20, 8, 16) * 0.6
    opt = torch.optim.SGD(plif.parameters(), lr=0.5)
    rate0 = plif(x).mean().item()
    for _ in range(20):  # ask for more spikes
        opt.zero_grad()
        (-plif(x).mean()).backward()
        opt.step()
    assert plif.tau.item() > 2.0 and plif(x).mean().item() > rate0
    assert plif.tau.item() > 1.0


def test_module_validation():
    with pytest.raises(ValueError, match="step_mode must be"):
        LIF(step_mode="multi")
    with pytest.raises(ValueError, match="tau must be > 1"):
        LIF(tau=0.9)
    with pytest.raises(ValueError, match="init_tau must be > 1"):
        ParametricLIF(init_tau=1.0)
    with pytest.raises(TypeError, match="pass init_tau"):
        ParametricLIF(tau=3.0)
    with pytest.raises(ValueError, match="time-first"):
        LIF(step_mode="m")(torch.randn(5))


def test_bf16_single_step_keeps_fp32_state():
    lif = LIF(step_mode="s")
    lif(torch.randn(2, 3).bfloat16())
    assert lif.v.dtype == torch.float32


@pytest.mark.parametrize("decay_input", [True, False])
def test_parametric_lif_gradcheck_through_w(decay_input):
    # Loss on the potentials with a detached reset: there the surrogate plays no part, so the analytic gradient
    # (dL/dtau from the backward scan, chained through tau = 1 / sigmoid(w)) must equal the numerical one.
    plif = ParametricLIF(init_tau=2.2, decay_input=decay_input, detach_reset=True, store_v_seq=True).double()
    x = torch.randn(6, 2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) + 0.5

    def potentials(w):
        torch.func.functional_call(plif, {"w": w}, (x,))
        return plif.v_seq

    w = plif.w.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(potentials, (w,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("step_mode", ["m", "s"])
def test_truncated_bptt_chunks_fire_as_the_whole_sequence(step_mode):
    """One backward per chunk with carry_state: the next chunk continues from the carried state, detached."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(12, 2, 4) + 0.6
    whole = LIF(surrogate=surrogate.ATan())(lin(x)).detach()
    stream = LIF(surrogate=surrogate.ATan(), carry_state=True, step_mode=step_mode)
    chunks = [(0, 5), (5, 9), (9, 12)] if step_mode == "m" else [(t, t + 1) for t in range(12)]
    outs = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "starting from rest" warning
        for a, b in chunks:
            y = lin(x[a:b]) if step_mode == "m" else lin(x[a])
            out = stream(y)
            out.sum().backward()  # frees this chunk's graph
            outs.append(out.detach() if step_mode == "m" else out.detach().unsqueeze(0))
    assert torch.equal(torch.cat(outs), whole)
    assert lin.weight.grad is not None


@pytest.mark.parametrize("store_v_seq", [False, True])
def test_carried_state_is_float32_under_bf16(store_v_seq):
    x = torch.randn(10, 2, 6) + 0.6
    ref = LIF(carry_state=True, store_v_seq=store_v_seq)
    lif = LIF(carry_state=True, store_v_seq=store_v_seq)
    ref(x[:5].bfloat16().float())
    lif(x[:5].bfloat16())
    assert lif.v.dtype == torch.float32
    # The bf16 stream carries exactly the float32 state of the same (bf16-rounded) inputs.
    torch.testing.assert_close(lif.v, ref.v, rtol=0, atol=0)
    assert torch.equal(lif(x[5:].bfloat16()).float(), ref(x[5:].bfloat16().float()))


def test_state_of_the_wrong_dtype_is_not_reused():
    lif = LIF(step_mode="s")
    lif(torch.randn(3, 4))
    lif.v = lif.v.bfloat16()  # e.g. restored from an old half-precision checkpoint
    with pytest.warns(UserWarning, match="dtype"):
        lif(torch.randn(3, 4))
    assert lif.v.dtype == torch.float32


@pytest.mark.parametrize("tau", [torch.tensor(0.0), torch.tensor(0.5), torch.tensor(-2.0), torch.tensor(float("nan"))])
def test_tensor_tau_module_follows_the_float_rule(tau):
    with pytest.raises(ValueError, match="tau must be finite and > 1"):
        LIF(tau=tau)
