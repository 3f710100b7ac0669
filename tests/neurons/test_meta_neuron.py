"""MetaNeuron: firing statistics, the expectation mode against a hand-written float64 loop, gradients, learning,
sampling reproducibility, step modes, streaming, ``online`` and bad input."""

import math
import warnings

import pytest
import torch
from torch import nn

import snnkit
from snnkit.neurons import MetaNeuron, online

ALL = ("tau", "threshold", "beta", "v_rest")


def _params(n, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        tau=1.5 + 3 * torch.rand(n, generator=g, dtype=dtype),
        threshold=0.5 + torch.rand(n, generator=g, dtype=dtype),
        beta=0.1 + 0.4 * torch.rand(n, generator=g, dtype=dtype),
        v_rest=0.3 * torch.randn(n, generator=g, dtype=dtype),
    )


def _reference(x, tau, threshold, beta, v_rest, reset):
    """The equations of docs/meta_neuron.md in expectation mode, written out in float64."""
    v = v_rest.expand(x.shape[1:])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - v_rest)) / tau
        p = 1.0 / (1.0 + torch.exp(-(h - threshold) / beta))
        out.append(p)
        v = (1.0 - p) * h + p * v_rest if reset == "hard" else h - p * (threshold - v_rest)
    return torch.stack(out), v


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- firing statistics --------------------------------------------------------------------------------------------


def test_firing_rate_matches_sigmoid_of_charge():
    n, batch = 5, 40_000
    p0 = _params(n, torch.float32)
    meta = MetaNeuron(n, **p0)
    # drives chosen so that the five neurons should fire with probabilities 0.05 ... 0.9
    logit = torch.tensor([0.05, 0.2, 0.5, 0.7, 0.9]).logit()
    drive = p0["tau"] * (p0["threshold"] - p0["v_rest"] + p0["beta"] * logit)
    x = drive.expand(1, batch, n).contiguous()
    s = meta(x, generator=_gen(1))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    h = p0["v_rest"] + drive / p0["tau"]  # one step from v_0 = v_rest
    p = torch.sigmoid((h - p0["threshold"]) / p0["beta"])
    torch.testing.assert_close(p, logit.sigmoid())
    se = (p * (1 - p) / batch).sqrt()
    assert ((s[0].mean(0) - p).abs() < 4 * se).all(), (s[0].mean(0), p)


def test_second_step_rate_includes_the_sampled_hard_reset():
    # P(s_2 = 1) = p_1 q_reset + (1 - p_1) q_free: the reset acts with the sampled spike, not with p_1.
    n, batch = 4, 40_000
    p0 = _params(n, torch.float32, seed=3)
    meta = MetaNeuron(n, **p0)
    drive = torch.tensor([1.0, 2.0, 2.5, 3.5])
    s = meta(drive.expand(2, batch, n).contiguous(), generator=_gen(2))
    tau, th, beta, vr = p0["tau"], p0["threshold"], p0["beta"], p0["v_rest"]
    h1 = vr + drive / tau
    p1 = torch.sigmoid((h1 - th) / beta)
    q_reset = torch.sigmoid((vr + drive / tau - th) / beta)  # after a spike v_1 = v_rest
    q_free = torch.sigmoid((h1 + (drive - (h1 - vr)) / tau - th) / beta)
    p2 = p1 * q_reset + (1 - p1) * q_free
    se = (p2 * (1 - p2) / batch).sqrt()
    assert ((s[1].mean(0) - p2).abs() < 4 * se).all(), (s[1].mean(0), p2)


# -- expectation mode: exact equations, gradients -----------------------------------------------------------------


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_expectation_mode_equals_float64_loop(reset):
    n = 6
    p0 = _params(n)
    meta = MetaNeuron(n, learn=ALL, mode="expectation", reset=reset, dtype=torch.float64, **p0)
    for name in ALL:  # the parameterisation returns the initial values
        torch.testing.assert_close(getattr(meta, name), p0[name], rtol=1e-12, atol=1e-12)
    x = torch.randn(9, 3, n, dtype=torch.float64) + 1.0
    out = meta(x)
    ref, v_ref = _reference(x, **p0, reset=reset)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(meta.v, v_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_expectation_mode_gradcheck_input_and_all_intrinsic_parameters(reset):
    n = 3
    meta = MetaNeuron(n, learn=ALL, mode="expectation", reset=reset, dtype=torch.float64, **_params(n))
    names = [f"w_{p}" for p in ALL]

    def f(x, *ws):
        return torch.func.functional_call(meta, dict(zip(names, ws)), (x,))

    x = (torch.randn(4, 2, n, dtype=torch.float64) + 1.0).requires_grad_()
    ws = [getattr(meta, name).detach().clone().requires_grad_() for name in names]
    assert torch.autograd.gradcheck(f, (x, *ws))


def test_sample_mode_gradient_is_the_straight_through_gradient_of_p():
    # One step: ds/dx must be dp/dx = p (1 - p) / (beta tau) although s itself is exactly 0 or 1.
    n = 5
    p0 = _params(n)
    meta = MetaNeuron(n, dtype=torch.float64, **p0)
    x = (torch.randn(1, 7, n, dtype=torch.float64) + 1.0).requires_grad_()
    s = meta(x, generator=_gen(0))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    s.sum().backward()
    p = MetaNeuron(n, mode="expectation", dtype=torch.float64, **p0)(x.detach())
    torch.testing.assert_close(x.grad, p * (1 - p) / (p0["beta"] * p0["tau"]))


# -- learning -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["expectation", "sample"])
def test_learning_a_target_rate_moves_every_learned_parameter(mode):
    n = 4
    meta = MetaNeuron(n, learn=ALL, mode=mode, generator=_gen(0))
    target = torch.tensor([0.1, 0.3, 0.6, 0.9])
    x = torch.full((8, 64, n), 0.8)
    before = {name: p.detach().clone() for name, p in meta.named_parameters()}
    opt = torch.optim.SGD(meta.parameters(), lr=1.0)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        rate = meta(x).mean((0, 1))
        loss = ((rate - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(before) == {f"w_{p}" for p in ALL}
    for name, p in meta.named_parameters():
        assert (p.detach() != before[name]).all(), name
    assert losses[-1] < 0.5 * losses[0]
    assert (meta.tau > 1).all() and (meta.beta > 0).all()


def test_parameterisation_keeps_tau_above_one_and_beta_positive():
    meta = MetaNeuron(3, learn=("tau", "beta"), tau=1.01, beta=0.01)
    opt = torch.optim.SGD(meta.parameters(), lr=1e4)
    for _ in range(20):  # push both as far down as plain gradient steps go
        opt.zero_grad()
        (meta.tau.sum() + meta.beta.sum()).backward()
        opt.step()
    assert torch.isfinite(meta.tau).all() and (meta.tau > 1).all()
    assert torch.isfinite(meta.beta).all() and (meta.beta > 0).all()
    assert meta(torch.ones(2, 1, 3)).isfinite().all()


def test_learn_picks_parameters_and_the_rest_are_fixed_buffers():
    meta = MetaNeuron(4, learn="threshold", tau=3.0, beta=0.5, v_rest=-0.2)
    assert [name for name, _ in meta.named_parameters()] == ["w_threshold"]
    assert {"w_tau", "w_beta", "w_v_rest"} <= set(dict(meta.named_buffers()))
    assert set(meta.state_dict()) == {f"w_{p}" for p in ALL}
    torch.testing.assert_close(meta.tau, torch.full((4,), 3.0))
    torch.testing.assert_close(meta.beta, torch.full((4,), 0.5))
    torch.testing.assert_close(meta.v_rest, torch.full((4,), -0.2))
    torch.testing.assert_close(meta.threshold, torch.full((4,), 1.0))


# -- sampling -----------------------------------------------------------------------------------------------------


def test_sampling_is_reproducible_with_a_generator():
    meta = MetaNeuron(8, beta=1.0)
    x = torch.randn(20, 4, 8) + 1.0
    a = meta(x, generator=_gen(5))
    assert torch.equal(a, meta(x, generator=_gen(5)))
    assert not torch.equal(a, meta(x, generator=_gen(6)))
    assert torch.equal(a, MetaNeuron(8, beta=1.0, generator=_gen(5))(x))  # constructor generator, same draws


def test_single_step_equals_multi_step():
    n = 5
    p0 = _params(n, torch.float32)
    x = torch.randn(7, 3, n) + 1.0
    multi = MetaNeuron(n, learn=ALL, mode="expectation", **p0)
    single = MetaNeuron(n, learn=ALL, mode="expectation", step_mode="s", **p0)
    xm, xs = x.clone().requires_grad_(), x.clone().requires_grad_()
    ym = multi(xm)
    ys = torch.stack([single(xs[t]) for t in range(7)])
    torch.testing.assert_close(ym, ys, rtol=0, atol=0)
    torch.testing.assert_close(multi.v, single.v, rtol=0, atol=0)
    w = torch.randn_like(x)
    (ym * w).sum().backward()
    (ys * w).sum().backward()
    torch.testing.assert_close(xm.grad, xs.grad)
    for (name, pm), ps in zip(multi.named_parameters(), single.parameters()):
        torch.testing.assert_close(pm.grad, ps.grad, msg=name)
    # sampled: the same generator draws the same spikes step by step
    ss = MetaNeuron(n, step_mode="s", generator=_gen(3), **p0)
    assert torch.equal(MetaNeuron(n, generator=_gen(3), **p0)(x), torch.stack([ss(x[t]) for t in range(7)]))


@pytest.mark.parametrize("mode", ["expectation", "sample"])
def test_carry_state_streams_like_one_long_sequence(mode):
    x = torch.randn(12, 2, 4) + 1.0
    whole = MetaNeuron(4, mode=mode, generator=_gen(1))(x)
    stream = MetaNeuron(4, mode=mode, generator=_gen(1), carry_state=True)
    parts = torch.cat([stream(x[:5]), stream(x[5:9]), stream(x[9:])])
    assert torch.equal(whole, parts)


def test_multi_step_starts_from_rest_each_call():
    meta = MetaNeuron(4, mode="expectation", v_rest=0.3)
    x = torch.randn(5, 2, 4) + 1
    assert torch.equal(meta(x), meta(x))


def test_online_mode_carries_detached_state_one_step_per_call():
    torch.manual_seed(0)
    n, T = 6, 5
    model = nn.Sequential(nn.Linear(n, n), MetaNeuron(n, learn=ALL, generator=_gen(4)))
    x = torch.randn(T, 3, n) + 1.0
    whole = model(x)
    model[1].generator = _gen(4)
    steps = []
    with online(model):
        for t in range(T):
            model.zero_grad()
            out = model(x[t:t + 1])
            out.sum().backward()  # one backward per step: the carried state must be detached
            steps.append(out.detach())
            assert model[1].v is not None and model[1].w_tau.grad is not None
    assert model[1].v is None and model[1].step_mode == "m"
    assert torch.equal(torch.cat(steps), whole.detach())


# -- state conventions --------------------------------------------------------------------------------------------


def test_forgotten_reset_after_backward_starts_from_rest_and_reset_clears():
    meta = MetaNeuron(4, step_mode="s", mode="expectation")
    lin = nn.Linear(4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # no snnkit.reset between the two batches
            out = sum(meta(lin(torch.randn(3, 4))) for _ in range(3))
            out.sum().backward()
    assert any("snnkit.reset" in str(w.message) for w in caught)
    assert snnkit.reset(meta).v is None


def test_new_batch_shape_starts_from_rest():
    meta = MetaNeuron(4, step_mode="s", mode="expectation")
    meta(torch.ones(3, 4))
    with pytest.warns(UserWarning, match="snnkit.reset"):
        y = meta(torch.ones(2, 4))
    torch.testing.assert_close(y, MetaNeuron(4, step_mode="s", mode="expectation")(torch.ones(2, 4)))


def test_low_precision_input_keeps_a_float32_state():
    meta = MetaNeuron(4, step_mode="s", generator=_gen(0))
    y = meta(torch.ones(2, 4, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and meta.v.dtype == torch.float32


# -- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(beta=0.0), ValueError, "beta"),
        (dict(beta=-1.0), ValueError, "beta"),
        (dict(beta=torch.tensor([0.5, 0.5, -0.1, 0.5])), ValueError, "beta"),
        (dict(tau=1.0), ValueError, "tau"),
        (dict(tau=0.5), ValueError, "tau"),
        (dict(tau=torch.tensor([2.0, 2.0, 1.0, 2.0])), ValueError, "tau"),
        (dict(tau=float("nan")), ValueError, "tau"),
        (dict(threshold=torch.ones(3)), ValueError, "threshold"),
        (dict(threshold="1"), TypeError, "threshold"),
        (dict(learn=("tau", "gain")), ValueError, "learn"),
        (dict(mode="mean"), ValueError, "mode"),
        (dict(reset="none"), ValueError, "reset"),
        (dict(generator=0), TypeError, "generator"),
        (dict(n=0), ValueError, "n"),
        (dict(dtype=torch.int64), TypeError, "dtype"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    kwargs = {"n": 4, **kwargs}
    with pytest.raises(exc, match=match):
        MetaNeuron(**kwargs)


@pytest.mark.parametrize(
    "x, exc, match",
    [
        (torch.ones(3, 2, 5), ValueError, "last dim"),
        (torch.ones(3, 2, 4, dtype=torch.int64), TypeError, "floating"),
        (torch.ones(0, 2, 4), ValueError, "T = 0"),
        (torch.tensor([[[0.0, math.nan, 0.0, 0.0]]]), ValueError, "NaN"),
        (torch.ones(4), ValueError, "time-first"),
        ("x", TypeError, "x"),
    ],
)
def test_bad_input(x, exc, match):
    with pytest.raises(exc, match=match):
        MetaNeuron(4)(x)


def test_bad_forward_keywords():
    with pytest.raises(ValueError, match="mode"):
        MetaNeuron(4)(torch.ones(2, 1, 4), mode="mean")
    with pytest.raises(TypeError, match="generator"):
        MetaNeuron(4)(torch.ones(2, 1, 4), generator=1)
    with pytest.raises(ValueError, match="last dim"):
        MetaNeuron(4, step_mode="s")(torch.ones(2, 3))
