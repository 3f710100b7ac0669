"""The WKV op's oracle (``naive.py``) and PyTorch path against a direct O(T^2) evaluation of the formula.

``direct_wkv`` evaluates SpikeGPT's equation as written, in float64: ``y_t`` is a softmax-weighted average of the
values, with the exponents ``(t-1-i) w + k_i`` (i < t), ``u + k_t`` and, for a state passed in,
``t w + o_0 + log q_0`` for the value ``p_0 / q_0``; logsumexp keeps it finite for any k and w. It shares no code
or recurrence with the op. Loss terms on the returned state use its shift-free functions ``p/q = a/b`` and
``log q + o = log b`` (the op holds ``o`` constant in the backward, which is exact for those).
The kernel tests (test_wkv_kernel.py) reuse the helpers of this file.
"""

from __future__ import annotations

import pytest
import torch

from snnkit.ops import wkv
from snnkit.ops.wkv import cpu as wkv_cpu
from snnkit.ops.wkv import wkv_naive

F64 = torch.float64


def direct_wkv(w, u, k, v, state=None):
    """``(y [T, B, C], a_T / b_T [B, C], log b_T [B, C])`` straight from the formula, O(T^2), in float64."""
    w, u, k, v = (t.to(F64) for t in (w, u, k, v))
    T = k.shape[0]
    t_idx = torch.arange(T, dtype=F64).view(T, 1, 1, 1)
    i_idx = torch.arange(T, dtype=F64).view(1, T, 1, 1)
    past = (t_idx - 1 - i_idx) * w + k.unsqueeze(0)  # [t, i, B, C]
    now = (u + k).unsqueeze(0).expand(T, T, *k.shape[1:])
    eye = (t_idx == i_idx).expand_as(past)
    expo = torch.where(eye, now, torch.where(i_idx < t_idx, past, torch.full_like(past, -torch.inf)))
    vals = v.unsqueeze(0).expand_as(expo)
    # the state after the last token: the same sums with T in place of t and no bonus term
    last = (T - 1 - torch.arange(T, dtype=F64).view(T, 1, 1)) * w + k
    last_vals = v
    if state is not None:
        p0, q0, o0 = state.to(F64).unbind(0)
        o0 = o0.detach()
        init = (t_idx.view(T, 1, 1) * w + o0 + torch.log(q0)).unsqueeze(1)  # [t, 1, B, C]
        expo = torch.cat([expo, init], 1)
        vals = torch.cat([vals, (p0 / q0).expand(T, 1, *k.shape[1:])], 1)
        last = torch.cat([last, (T * w + o0 + torch.log(q0)).unsqueeze(0)])
        last_vals = torch.cat([last_vals, (p0 / q0).unsqueeze(0)])
    y = (torch.softmax(expo, 1) * vals).sum(1)
    ratio = (torch.softmax(last, 0) * last_vals).sum(0)
    return y, ratio, torch.logsumexp(last, 0)


def make_inputs(T=6, B=2, C=5, *, scale_k=2.0, w_range=(0.05, 3.0), state=True, seed=0, dtype=torch.float32):
    """Random ``w, u, k, v, state`` (a state with ``q > 0`` and a finite shift ``o``, or None)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = w_range
    w = -(lo + (hi - lo) * torch.rand(C, generator=g, dtype=F64))
    u = torch.randn(C, generator=g, dtype=F64)
    k = torch.randn(T, B, C, generator=g, dtype=F64) * scale_k
    v = torch.randn(T, B, C, generator=g, dtype=F64)
    s = None
    if state:
        s = torch.stack([torch.randn(B, C, generator=g, dtype=F64), 0.5 + torch.rand(B, C, generator=g, dtype=F64),
                         torch.randn(B, C, generator=g, dtype=F64) * scale_k])
    acc = F64 if dtype == F64 else torch.float32
    return w.to(dtype), u.to(dtype), k.to(dtype), v.to(dtype), None if s is None else s.to(acc)


def extreme_inputs(T=7, B=2, C=6, state=True, dtype=torch.float32):
    """Keys of +-60 and +-500, decays from -1e-3 to -500 and a bonus of +-100: ``e^k`` overflows even float64."""
    w, u, k, v, s = make_inputs(T, B, C, state=state, seed=3, dtype=F64)
    w = torch.tensor([-1e-3, -0.5, -5.0, -60.0, -500.0, -2.0], dtype=F64)[:C]
    u = torch.tensor([100.0, -100.0, 0.0, 60.0, -3.0, 500.0], dtype=F64)[:C]
    signs = torch.where(torch.rand(T, B, C, generator=torch.Generator().manual_seed(4)) < 0.5, -1.0, 1.0)
    mags = torch.tensor([60.0, 500.0, 1.0, 500.0, 60.0, 0.0, 300.0], dtype=F64)[:T].view(T, 1, 1)
    k = (signs.to(F64) * mags + 0.1 * k)
    if s is not None:
        s[2] = torch.tensor(400.0, dtype=F64)
    acc = F64 if dtype == F64 else torch.float32
    return w.to(dtype), u.to(dtype), k.to(dtype), v.to(dtype), None if s is None else s.to(acc)


def weights_for(T, B, C, seed=9):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(T, B, C, generator=g, dtype=F64), torch.randn(B, C, generator=g, dtype=F64),
            torch.randn(B, C, generator=g, dtype=F64))


def run_with_grads(fn, w, u, k, v, s, weights):
    """Outputs ``(y, a/b, log b)`` and the gradients of a fixed random loss for w, u, k, v and (p, q) of s."""
    leaves = [t.detach().clone().requires_grad_() for t in (w, u, k, v)]
    pq = None
    if s is not None:
        pq = s[:2].detach().clone().requires_grad_()
        s = torch.cat([pq, s[2:].detach()])
    y, ratio, logb = fn(*leaves, s)
    gy, gr, gl = weights
    loss = (y.to(F64) * gy).sum() + (ratio.to(F64) * gr).sum() + (logb.to(F64) * gl).sum()
    grads = torch.autograd.grad(loss, leaves + ([pq] if pq is not None else []))
    return [y, ratio, logb, *grads]


def op_as_direct(**kw):
    """The op (or the oracle) returning what ``direct_wkv`` returns."""
    def fn(w, u, k, v, s):
        y, st = wkv(w, u, k, v, s, **kw) if kw.get("backend") != "naive" else wkv_naive(w, u, k, v, s)
        return y, st[0] / st[1], torch.log(st[1]) + st[2]
    return fn


NAMES = ["y", "a/b", "log b", "dw", "du", "dk", "dv", "d(p,q)"]


def assert_close_to_direct(got, ref, tol, names=NAMES):
    for name, a, b in zip(names, got, ref):
        assert a.shape == b.shape, name
        a = a.to(F64)
        assert torch.isfinite(a).all(), f"{name} has NaN/inf"
        scale = b.abs().max().clamp_min(1.0)
        err = ((a - b).abs().max() / scale).item()
        assert err <= tol, f"{name}: error {err:.3g} relative to max |ref| > {tol}"


@pytest.mark.parametrize("path", ["naive", "torch"])
@pytest.mark.parametrize("state", [False, True])
@pytest.mark.parametrize("dtype,tol", [(F64, 1e-12), (torch.float32, 2e-5)], ids=["f64", "f32"])
def test_matches_direct_formula(path, state, dtype, tol):
    ins = make_inputs(state=state, dtype=dtype)
    weights = weights_for(*ins[2].shape)
    ref = run_with_grads(direct_wkv, *make_inputs(state=state, dtype=F64), weights)
    got = run_with_grads(op_as_direct(backend=path), *ins, weights)
    assert got[0].dtype == dtype
    assert_close_to_direct(got, ref, tol)


@pytest.mark.parametrize("path", ["naive", "torch"])
@pytest.mark.parametrize("state", [False, True])
def test_large_keys_and_decays_do_not_overflow(path, state):
    # e^500 overflows float64 and e^60 is 1e26, past float16 and near float32's edge once summed: the exponents
    # only ever enter as differences with the running maximum.
    weights = weights_for(7, 2, 6)
    ref = run_with_grads(direct_wkv, *extreme_inputs(state=state, dtype=F64), weights)
    for dtype, tol in ((F64, 1e-10), (torch.float32, 1e-4)):
        got = run_with_grads(op_as_direct(backend=path), *extreme_inputs(state=state, dtype=dtype), weights)
        assert_close_to_direct(got, ref, tol)


@pytest.mark.parametrize("chunk", [4, 7, None], ids=["chunk4", "chunk7", "default"])
def test_paths_agree_with_the_oracle_on_a_longer_sequence(chunk, monkeypatch):
    # the PyTorch path works in blocks of cpu.CHUNK tokens: small blocks put many block edges into 40 tokens
    if chunk is not None:
        monkeypatch.setattr(wkv_cpu, "CHUNK", chunk)
    ins = make_inputs(T=40, B=3, C=4, seed=5)
    weights = weights_for(40, 3, 4)
    ref = run_with_grads(op_as_direct(backend="naive"), *ins, weights)
    got = run_with_grads(op_as_direct(backend="torch"), *ins, weights)
    assert_close_to_direct(got, [r.to(F64) for r in ref], 1e-5)


@pytest.mark.parametrize("chunks", [[6], [2, 4], [1] * 6, [3, 1, 2]], ids=str)
def test_chunked_calls_with_carried_state_equal_one_call(chunks, monkeypatch):
    monkeypatch.setattr(wkv_cpu, "CHUNK", 4)  # block edges inside the calls too
    w, u, k, v, s = make_inputs(T=6, dtype=F64)
    weights = weights_for(6, 2, 5)

    def chunked(w, u, k, v, s):
        ys, start = [], 0
        for n in chunks:
            y, s = wkv(w, u, k[start:start + n], v[start:start + n], s, backend="torch")
            ys.append(y)
            start += n
        return torch.cat(ys), s[0] / s[1], torch.log(s[1]) + s[2]

    for state in (s, None):
        whole = run_with_grads(op_as_direct(backend="torch"), w, u, k, v, state, weights)
        parts = run_with_grads(chunked, w, u, k, v, state, weights)
        for name, a, b in zip(NAMES, parts, whole):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_gradcheck_float64():
    w, u, k, v, s = make_inputs(T=5, B=2, C=3, dtype=F64, seed=7)
    pq, o = s[:2].clone().requires_grad_(), s[2:]

    def fn(w, u, k, v, pq):
        y, st = wkv(w, u, k, v, torch.cat([pq, o]), backend="torch")
        return y, st[0] / st[1], torch.log(st[1]) + st[2]

    leaves = [t.clone().requires_grad_() for t in (w, u, k, v)] + [pq]
    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradcheck(lambda *a: wkv(*a, backend="torch")[0], leaves[:4])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_inputs_accumulate_in_float32(dtype):
    w, u, k, v, s = make_inputs(T=32, B=2, C=8, seed=11)
    half = [t.to(dtype) for t in (w, u, k, v)]
    weights = weights_for(32, 2, 8)
    ref = run_with_grads(op_as_direct(backend="torch"), *[t.float() for t in half], s, weights)
    got = run_with_grads(op_as_direct(backend="torch"), *half, s, weights)
    assert got[0].dtype == dtype and got[3].dtype == dtype
    # the same rounded inputs in float32: only the roundings of y, of the gradient arriving at y and of the
    # gradients returned to the input dtype differ (two or three roundings of 2^-9 / 2^-12 each)
    eps = 2**-7 if dtype == torch.bfloat16 else 2**-10
    for name, a, b in zip(NAMES, got, ref):
        err = ((a.to(F64) - b.to(F64)).abs().max() / b.abs().max().clamp_min(1.0).to(F64)).item()
        assert err <= eps, f"{name}: {err:.3g}"
    _, st = wkv(*half, s)
    assert st.dtype == torch.float32


def test_state_shift_is_free():
    # the same (a, b) written with another shift o gives the same outputs: the state is (a, b) up to e^o
    w, u, k, v, s = make_inputs(dtype=F64)
    shifted = torch.stack([s[0] * torch.e**-3, s[1] * torch.e**-3, s[2] + 3])
    y1, s1 = wkv(w, u, k, v, s)
    y2, s2 = wkv(w, u, k, v, shifted)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(s1[0] / s1[1], s2[0] / s2[1])


def test_double_backward_is_refused():
    w, u, k, v, _ = make_inputs(T=3, B=1, C=2, state=False)
    k = k.requires_grad_()
    y, _ = wkv(w, u, k, v)
    (gk,) = torch.autograd.grad(y.sum(), k, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        torch.autograd.grad(gk.sum(), k)


def test_token_by_token_is_bitwise_the_whole_call():
    # SpikeGPT's RNN mode feeds y into spiking neurons: a last-bit difference can flip a spike, so streaming must give
    # exactly the numbers of one call (here across a block edge of the PyTorch path, T > cpu.CHUNK)
    w, u, k, v, s = make_inputs(T=wkv_cpu.CHUNK + 3, B=3, C=5, seed=13)
    for state in (None, s):
        y, last = wkv(w, u, k, v, state)
        ys = []
        for t in range(k.shape[0]):
            y_t, state = wkv(w, u, k[t:t + 1], v[t:t + 1], state)
            ys.append(y_t)
        assert torch.equal(torch.cat(ys), y) and torch.equal(state, last)


@pytest.mark.parametrize("B,C", [(0, 3), (2, 0)])
def test_no_lanes(B, C):
    k = torch.randn(3, B, C, requires_grad=True)
    w = -torch.ones(C, requires_grad=True)
    y, s = wkv(w, torch.zeros(C), k, torch.randn(3, B, C))
    assert y.shape == (3, B, C) and s.shape == (3, B, C)
    gk, gw = torch.autograd.grad(y.sum(), (k, w))
    assert gk.shape == k.shape and (gw == 0).all()
