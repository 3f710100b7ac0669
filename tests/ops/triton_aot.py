"""Ahead-of-time compiles of snnkit's Triton kernels for real GPUs, on a machine without one (a test helper).

Triton's CPU interpreter runs kernels as plain Python, so it accepts code a GPU compile rejects (non-constexpr
globals, Python builtins in kernels, constexpr-specialised arguments equal to 1). :func:`compile_for_gpus` lowers
kernels through Triton's whole pipeline to a cubin. It needs the triton package, not a GPU; the compiles run in a
subprocess because the test session has Triton in interpreter mode (tests/conftest.py), which a compile must not
inherit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: Triton pointer types of the input dtypes.
PTR = {"float32": "*fp32", "bfloat16": "*bf16", "float16": "*fp16"}

_WORKER = """
import importlib, json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
module, jobs = json.load(sys.stdin)
kernels = importlib.import_module("snnkit.kernels." + module)
failures = []
for name, sig, consts, arch in jobs:
    try:
        k = triton.compile(ASTSource(getattr(kernels, name), sig, consts), target=GPUTarget("cuda", arch, 32))
        assert k.asm["cubin"], "empty cubin"
    except TypeError as e:
        if "ASTSource" in str(e) or "signature" in str(e):
            print(json.dumps({"skip": str(e)})); sys.exit(0)
        failures.append([name, arch, repr(consts), repr(e)[:400]])
    except Exception as e:
        failures.append([name, arch, repr(consts), repr(e)[:400]])
print(json.dumps({"compiled": len(jobs), "failures": failures}))
"""


def compile_for_gpus(module: str, jobs: list[tuple[str, dict, dict, int]]) -> None:
    """Compile each ``(kernel name, signature, constexpr values, sm arch)`` of ``snnkit.kernels.<module>`` to a
    cubin; skips the test when this triton's AOT API differs, fails it on any compile error."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    proc = subprocess.run([sys.executable, "-c", _WORKER], input=json.dumps([module, jobs]), text=True,
                          capture_output=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in report:
        pytest.skip(f"this triton's AOT compile API differs: {report['skip']}")
    assert report["failures"] == [], json.dumps(report["failures"][:3], indent=1)
    assert report["compiled"] == len(jobs)
