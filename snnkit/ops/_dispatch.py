"""Which implementation runs an op call: the one home of the ``backend`` rules every op folder follows.

``backend="auto"``: the Triton kernels for CUDA tensors (except float64), the PyTorch path otherwise;
``"torch"``: always the PyTorch path; ``"triton"``: the kernels, on CUDA or on CPU under Triton's interpreter
(``TRITON_INTERPRET=1``, how the tests run them without a GPU), never for float64. Ops with further choices (the
LIF op's ``"fused"``) handle those before asking here.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import torch

__all__ = ["interpreting", "load_kernels", "use_triton"]


def interpreting() -> bool:
    """Whether Triton's CPU interpreter is switched on (Triton's own environment variable)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def load_kernels(op: str) -> ModuleType:
    """``snnkit.kernels.<op>``, imported on first use so that ``import snnkit`` never imports triton."""
    try:
        return importlib.import_module(f"snnkit.kernels.{op}")
    except ImportError as e:  # pragma: no cover - triton is a dependency on Linux
        raise RuntimeError(f"backend='triton' needs the triton package ({e}); use backend='torch'") from e


def use_triton(backend: str, x: torch.Tensor, *, op: str, choices: tuple[str, ...], name: str = "x",
               float64: bool | None = None) -> bool:
    """True when the Triton kernels of ``snnkit.kernels.<op>`` run this call (loading them then).

    Args:
        backend: the caller's ``backend`` argument, one of ``choices``.
        x: the tensor whose device decides (named ``name`` in messages).
        float64: whether the call computes in float64 (default: ``x``'s dtype is float64).

    Raises:
        ValueError: an unknown backend; ``"triton"`` for float64, or for CPU tensors without the interpreter.
    """
    if backend not in choices:
        raise ValueError(f"backend must be one of {choices}, got {backend!r}")
    if float64 is None:
        float64 = x.dtype == torch.float64
    if backend == "torch":
        return False
    if backend == "auto":
        return x.is_cuda and not float64
    if float64:
        raise ValueError("backend='triton' supports float16, bfloat16 and float32 inputs; use backend='torch' for "
                         "float64")
    if not x.is_cuda and not interpreting():
        raise ValueError(f"backend='triton' needs a CUDA tensor ({name} is on {x.device}); set TRITON_INTERPRET=1 to "
                         "run the kernels on CPU through Triton's interpreter, or use backend='torch'")
    load_kernels(op)
    return True
