"""Compile the delayed_linear kernels for real GPUs (sm_80, sm_90) on a machine without one.

The interpreter that runs test_delayed_linear_kernel.py accepts code a GPU compile rejects, so each kernel is
lowered through Triton's whole pipeline to a cubin, each kernel with another input dtype and architecture (three
compiles keep the test to a few seconds; the dtypes only change the loads' conversions). It needs
the triton package, not a GPU; the compiles run in a subprocess without the session's TRITON_INTERPRET=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

PTR = {"float32": "*fp32", "bfloat16": "*bf16", "float16": "*fp16"}
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


_WORKER = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import snnkit.kernels.delayed_linear as kernels
failures = []
jobs = json.load(sys.stdin)
for name, sig, consts, arch in jobs:
    try:
        k = triton.compile(ASTSource(getattr(kernels, name), sig, consts), target=GPUTarget("cuda", arch, 32))
        assert k.asm["cubin"], "empty cubin"
    except TypeError as e:
        if "ASTSource" in str(e) or "signature" in str(e):
            print(json.dumps({"skip": str(e)})); sys.exit(0)
        failures.append([name, arch, sig, repr(e)[:400]])
    except Exception as e:
        failures.append([name, arch, sig, repr(e)[:400]])
print(json.dumps({"compiled": len(jobs), "failures": failures}))
"""


def test_every_delayed_linear_kernel_compiles_for_sm80_and_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    jobs = _jobs()
    proc = subprocess.run([sys.executable, "-c", _WORKER], input=json.dumps(jobs), text=True, capture_output=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(f"this triton's AOT compile API differs: {report['skip']}")
    assert report["failures"] == [], json.dumps(report["failures"][:3], indent=1)
    assert report["compiled"] == len(jobs)
