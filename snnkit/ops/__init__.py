"""Differentiable functional ops. Each dispatches to ``snnkit.kernels`` for CUDA tensors and to
``snnkit.ops.reference`` (plain PyTorch, the oracle) otherwise."""

from .lif import BACKENDS, STORAGES, lif_multistep

__all__ = ["lif_multistep", "BACKENDS", "STORAGES"]
