"""Compile the LIF kernels for real GPUs (sm_80, sm_90) on a machine without one.

Triton's CPU interpreter runs kernels as plain Python, so it accepts code a GPU compile rejects (non-constexpr
globals, Python builtins in kernels, constexpr-specialised arguments equal to 1). This test lowers each flag of both
kernels through Triton's whole pipeline to a cubin for two architectures, with the input dtypes and the ``T == 1``
specialisation a launch can produce. It needs the triton package, not a GPU. The compiles run in a subprocess:
the test session has Triton in interpreter mode (tests/conftest.py), which a compile must not inherit
(tests/ops/triton_aot.py).
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton")

from triton_aot import PTR, compile_for_gpus  # noqa: E402  (after the skip: it needs triton only to run)

FWD_FLAGS = ["SPIKING", "HAS_V0", "TAU_FROM_PTR", "HARD_RESET", "DECAY_INPUT", "STORE_V_SEQ", "SAVE", "COMPACT"]
BWD_FLAGS = ["SPIKING", "HAS_GS", "HAS_GV", "HAS_V0", "TAU_FROM_PTR", "HARD_RESET", "DETACH_RESET", "DECAY_INPUT",
             "STORE_V_SEQ", "COMPACT", "TAU_GRAD", "UNIFORM_GS", "UNIFORM_GV", "WRITE_GV0"]
ARCHS = (90, 80)


def _variants(flags):
    """All flags on, all off, and each flag alone flipped from each of those two: 2 + 2 * len(flags) variants."""
    out = [dict.fromkeys(flags, True), dict.fromkeys(flags, False)]
    for base in (True, False):
        for f in flags:
            v = dict.fromkeys(flags, base)
            v[f] = not base
            out.append(v)
    return out


def _fwd_signature(dtype, scalar_T, flags, block=1024):
    sig = {"x_ptr": PTR[dtype], "v0_ptr": "*fp32", "tau_ptr": "*fp32", "spikes_ptr": PTR[dtype],
           "v_out_ptr": PTR[dtype], "saved_ptr": "*fp16" if flags["COMPACT"] else "*fp32", "bad_ptr": "*i32",
           "T": "constexpr" if scalar_T else "i32", "N": "i32", "inv_tau": "fp32", "v_threshold": "fp32",
           "v_reset": "fp32"}
    sig.update(dict.fromkeys(list(flags) + ["BLOCK"], "constexpr"))
    consts = dict(flags, BLOCK=block)
    if scalar_T:
        consts["T"] = 1
    return sig, consts


def _bwd_signature(dtype, scalar_T, flags, sg_id, block=1024):
    sig = {"grad_s_ptr": PTR[dtype], "grad_v_ptr": PTR[dtype], "saved_ptr": "*fp16" if flags["COMPACT"] else "*fp32",
           "v0_ptr": "*fp32", "tau_ptr": "*fp32", "grad_x_ptr": PTR[dtype], "grad_v0_ptr": "*fp32",
           "grad_k_ptr": "*fp32", "inv_sigma_ptr": "*fp32", "T": "constexpr" if scalar_T else "i32", "N": "i32",
           "inv_tau": "fp32", "v_threshold": "fp32", "v_reset": "fp32", "c1": "fp32", "c2": "fp32", "C": "i32",
           "INNER": "i32"}
    sig.update(dict.fromkeys(["SG_ID"] + list(flags) + ["BLOCK"], "constexpr"))
    consts = dict(flags, SG_ID=sg_id, BLOCK=block)
    if scalar_T:
        consts["T"] = 1
    return sig, consts


def _jobs():
    jobs = []
    for flags in _variants(FWD_FLAGS):
        for dtype, scalar_T in (("float32", False), ("bfloat16", True), ("float16", False)):
            jobs.append(("lif_forward_kernel", *_fwd_signature(dtype, scalar_T, flags)))
    for flags in _variants(BWD_FLAGS):
        # ids 0-3 with the dtypes below; 4 (PDSG) reads a per-channel 1 / sigma
        for sg_id, (dtype, scalar_T) in enumerate((("float32", False), ("bfloat16", True), ("float16", False),
                                                    ("float32", True), ("bfloat16", False))):
            jobs.append(("lif_backward_kernel", *_bwd_signature(dtype, scalar_T, flags, sg_id)))
    return jobs


def test_every_kernel_variant_compiles_for_sm80_and_sm90():
    compile_for_gpus("lif", [(name, sig, consts, arch) for name, sig, consts in _jobs() for arch in ARCHS])
