"""Test-wide setup. Without CUDA, Triton kernels run through Triton's CPU interpreter (TRITON_INTERPRET=1); the
variable must be set before ``triton.jit`` decorates the kernels, i.e. before ``snnkit.kernels`` is imported."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
