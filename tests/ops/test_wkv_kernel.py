"""The WKV Triton kernels against the direct O(T^2) formula and the PyTorch path, forward and every gradient.

Without CUDA the kernels run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1), on small shapes.
C = 37 spans two channel blocks (32 lanes each), the second one mostly masked. float32 tolerances: the kernels
mirror ``cpu.py`` operation by operation; against the float64 formula a few float32 roundings per step.
"""

import os

import pytest
import torch

from test_wkv_reference import (F64, NAMES, assert_close_to_direct, direct_wkv, extreme_inputs, make_inputs,
                                op_as_direct, run_with_grads, weights_for)
from triton_aot import compile_for_gpus

from snnkit.ops import wkv

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs CUDA or TRITON_INTERPRET=1",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _dev(ins):
    return [None if t is None else t.to(DEVICE) for t in ins]


def _cpu(outs):
    return [t.cpu() for t in outs]


@pytest.mark.parametrize("state", [False, True])
@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("recompute", [False, True], ids=["saved", "recompute"])
def test_kernel_matches_direct_formula(state, extreme, recompute):
    make = extreme_inputs if extreme else (lambda **kw: make_inputs(T=6, B=2, C=37, **kw))
    ref_in = make(state=state, dtype=F64)
    weights = weights_for(*ref_in[2].shape)
    ref = run_with_grads(direct_wkv, *ref_in, weights)
    got = _cpu(run_with_grads(op_as_direct(backend="triton", recompute=recompute), *_dev(make(state=state)),
                              [w.to(DEVICE) for w in weights]))
    assert_close_to_direct(got, ref, 1e-4 if extreme else 1e-5)


def test_kernel_matches_the_pytorch_path():
    ins = make_inputs(T=9, B=3, C=37, seed=2)
    weights = weights_for(9, 3, 37)
    ref = run_with_grads(op_as_direct(backend="torch"), *ins, weights)
    got = _cpu(run_with_grads(op_as_direct(backend="triton"), *_dev(ins), [w.to(DEVICE) for w in weights]))
    for name, a, b in zip(NAMES, got, ref):
        scale = b.abs().max().clamp_min(1.0)
        assert ((a - b).abs().max() / scale).item() <= 2e-6, name


@pytest.mark.parametrize("recompute", [False, True], ids=["saved", "recompute"])
def test_only_one_output_needs_a_gradient(recompute):
    w, u, k, v, s = _dev(make_inputs(T=5, B=2, C=6, seed=4))
    leaves = [t.clone().requires_grad_() for t in (w, u, k, v, s)]
    for which in (0, 1):
        grads = {}
        for backend in ("torch", "triton"):
            y, st = wkv(*leaves[:4], leaves[4], backend=backend, recompute=recompute)
            out = y.sum() if which == 0 else st[:2].sum()
            grads[backend] = torch.autograd.grad(out, leaves)
        for a, b in zip(grads["torch"], grads["triton"]):
            torch.testing.assert_close(a, b, rtol=2e-6, atol=2e-6)


def test_kernel_chunked_and_token_by_token_equal_one_call():
    w, u, k, v, s = _dev(make_inputs(T=8, B=2, C=5, seed=6))
    weights = [x.to(DEVICE) for x in weights_for(8, 2, 5)]

    def chunked(sizes):
        def fn(w, u, k, v, s):
            ys, start = [], 0
            for n in sizes:
                y, s = wkv(w, u, k[start:start + n], v[start:start + n], s, backend="triton")
                ys.append(y)
                start += n
            return torch.cat(ys), s[0] / s[1], torch.log(s[1]) + s[2]
        return fn

    for state in (s, None):
        y, last = wkv(w, u, k, v, state, backend="triton")
        st, ys = state, []
        for t in range(8):  # streaming: exactly the numbers of one call (spiking layers downstream)
            y_t, st = wkv(w, u, k[t:t + 1], v[t:t + 1], st, backend="triton")
            ys.append(y_t)
        assert torch.equal(torch.cat(ys), y) and torch.equal(st, last)
        whole = run_with_grads(op_as_direct(backend="triton"), w, u, k, v, state, weights)
        for sizes in ([3, 5], [1] * 8):
            parts = run_with_grads(chunked(sizes), w, u, k, v, state, weights)
            for name, a, b in zip(NAMES, parts, whole):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_kernel_half_inputs_accumulate_in_float32(dtype):
    w, u, k, v, s = make_inputs(T=24, B=2, C=8, seed=12)
    half = _dev([t.to(dtype) for t in (w, u, k, v)])
    weights = [x.to(DEVICE) for x in weights_for(24, 2, 8)]
    s = s.to(DEVICE)
    ref = run_with_grads(op_as_direct(backend="triton"), *[t.float() for t in half], s, weights)
    got = run_with_grads(op_as_direct(backend="triton"), *half, s, weights)
    assert got[0].dtype == dtype and got[5].dtype == dtype and got[1].dtype == torch.float32
    eps = 2**-7 if dtype == torch.bfloat16 else 2**-10
    for name, a, b in zip(NAMES, got, ref):
        err = ((a.double() - b.double()).abs().max() / b.abs().max().clamp_min(1.0).double()).item()
        assert err <= eps, f"{name}: {err:.3g}"


def _fwd(d, T, hs, save, check=True):
    sig = {"w_ptr": "*fp32", "u_ptr": "*fp32", "k_ptr": d, "v_ptr": d, "y_ptr": d, "s0_ptr": "*fp32",
           "s_out_ptr": "*fp32", "states_ptr": "*fp32", "bad_ptr": "*i32", "T": T, "BC": "i32", "C": "i32",
           "HAS_STATE": "constexpr", "SAVE": "constexpr", "CHECK": "constexpr", "BLOCK_C": "constexpr"}
    consts = {"HAS_STATE": hs, "SAVE": save, "CHECK": check, "BLOCK_C": 32}
    return "wkv_forward_kernel", sig, dict(consts, T=1) if T == "constexpr" else consts


def _bwd(d, T, hs, gy, gs, rec, end="i32"):
    sig = {"w_ptr": "*fp32", "u_ptr": "*fp32", "k_ptr": d, "v_ptr": d, "gy_ptr": d, "s0_ptr": "*fp32",
           "gs_ptr": "*fp32", "states_ptr": "*fp32", "gk_ptr": d, "gv_ptr": d, "gw_ptr": "*fp32", "gu_ptr": "*fp32",
           "gs0_ptr": "*fp32", "T": T, "BC": "i32", "C": "i32", "END": end, "STATES_END": end,
           "HAS_STATE": "constexpr", "HAS_GY": "constexpr", "HAS_GS": "constexpr", "RECOMPUTE": "constexpr",
           "BLOCK_C": "constexpr"}
    return "wkv_backward_kernel", sig, {"HAS_STATE": hs, "HAS_GY": gy, "HAS_GS": gs, "RECOMPUTE": rec, "BLOCK_C": 32}


def test_every_kernel_variant_compiles_for_sm80_and_sm90():
    # The interpreter accepts code a GPU compile rejects; lower both values of every flag (float32, sm_90: flag sets
    # where every flag takes both values and meets each other flag in both states at least once) and a sample of
    # dtypes, int64 offsets, the T = 1 specialisation and sm_80 to a cubin (tests/ops/triton_aot.py).
    jobs = []
    for flags in ((True, True, True), (False, False, False), (False, True, True), (True, False, False)):
        jobs.append((*_fwd("*fp32", "i32", *flags), 90))
    for flags in ("TTTT", "FFFF", "FTTF", "TFFT", "TTFF", "FFTT"):
        jobs.append((*_bwd("*fp32", "i32", *[f == "T" for f in flags]), 90))
    for d in ("*bf16", "*fp16"):
        jobs.append((*_fwd(d, "constexpr", False, False), 90))  # streaming: T = 1 is specialised to a constexpr
        jobs.append((*_bwd(d, "i32", True, True, False, False, end="i64"), 90))  # offsets beyond int32
    jobs.append((*_fwd("*bf16", "i32", True, True), 80))
    jobs.append((*_bwd("*bf16", "i32", False, True, True, True), 80))
    assert len(jobs) == 16
    compile_for_gpus("wkv", jobs)


@pytest.mark.parametrize("name", ["k", "v"])
def test_kernel_flags_non_finite_keys_and_values(name):
    w, u, k, v, _ = _dev(make_inputs(T=4, B=2, C=37, state=False))
    bad = {"k": k, "v": v}[name]
    bad[2, 1, 33] = float("nan")
    with pytest.raises(ValueError, match=f"{name} contains NaN or inf"):
        wkv(w, u, k, v, backend="triton", check="sync")
    bad[2, 1, 33] = float("-inf")
    with pytest.raises(ValueError, match=f"{name} contains NaN or inf"):
        wkv(w, u, k, v, backend="triton", check="sync")
    wkv(w, u, k, v, backend="triton", check="off")


@pytest.mark.parametrize("B,C", [(0, 3), (2, 0)])
def test_no_lanes(B, C):
    k = torch.randn(3, B, C, device=DEVICE, requires_grad=True)
    w = -torch.ones(C, device=DEVICE, requires_grad=True)
    y, s = wkv(w, torch.zeros(C, device=DEVICE), k, torch.randn(3, B, C, device=DEVICE), backend="triton")
    assert y.shape == (3, B, C) and s.shape == (3, B, C)
    gk, gw = torch.autograd.grad(y.sum(), (k, w), allow_unused=True)
    assert gk.shape == k.shape and (gw is None or (gw == 0).all())
