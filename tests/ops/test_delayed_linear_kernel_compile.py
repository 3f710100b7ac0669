"""Compile the delayed_linear kernels for real GPUs (sm_80, sm_90) on a machine without one.

The interpreter that runs test_delayed_linear_kernel.py accepts code a GPU compile rejects, so each kernel is
lowered through Triton's whole pipeline to a cubin, each kernel with another input dtype and architecture (three
compiles keep the test to a few seconds; the dtypes only change the loads' conversions). It needs
the triton package, not a GPU; the compiles run in a subprocess without the session's TRITON_INTERPRET=1.
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton")

from triton_aot import PTR, compile_for_gpus  # noqa: E402  (after the skip: it needs triton only to run)

SCALARS = {"T": "i32", "B": "i32", "C_in": "i32", "C_out": "i32", "W": "i32"}


def _jobs():
    jobs = []
    for arch, dtype in ((90, "float32"), (80, "bfloat16"), (90, "float16")):
        p = PTR[dtype]
        fwd = {"x_ptr": p, "c_ptr": "*fp32", "s_ptr": "*i32", "y_ptr": p, **SCALARS,
               "BLOCK_J": "constexpr", "BLOCK_B": "constexpr"}
        gx = {"dy_ptr": p, "c_ptr": "*fp32", "s_ptr": "*i32", "dx_ptr": p, **SCALARS,
              "BLOCK_I": "constexpr", "BLOCK_B": "constexpr"}
        gc = {"dy_ptr": p, "x_ptr": p, "s_ptr": "*i32", "dc_ptr": "*fp32",
              **{k: v for k, v in SCALARS.items() if k != "C_out"}, "BLOCK_I": "constexpr", "BLOCK_B": "constexpr"}
        jobs += [("tap_conv_forward_kernel", fwd, {"BLOCK_J": 32, "BLOCK_B": 64}, arch),
                 ("tap_conv_grad_x_kernel", gx, {"BLOCK_I": 32, "BLOCK_B": 16}, arch),
                 ("tap_conv_grad_c_kernel", gc, {"BLOCK_I": 32, "BLOCK_B": 64}, arch)]
    return [jobs[0], jobs[4], jobs[8]]  # forward fp32 sm_90, grad x bf16 sm_80, grad c fp16 sm_90


def test_every_delayed_linear_kernel_compiles_for_sm80_and_sm90():
    compile_for_gpus("delayed_linear", _jobs())
