"""Differentiable functional ops, one folder per op (``snnkit/ops/<op>/``): the readable oracle (``naive.py``), the
CPU path, the Triton launchers (kernels in ``triton_kernels/<op>.py``), the custom ops and autograd.Function, and the
validated public function in the folder's ``__init__.py``. The ``backend`` rules they share live in ``_dispatch.py``.
See ``docs/architecture.md``."""

from .delayed_linear import delayed_linear
from .lif import BACKENDS, CHECKS, STORAGES, LIFConfig, lif_multistep
from .wkv import wkv

__all__ = ["delayed_linear", "lif_multistep", "wkv", "LIFConfig", "BACKENDS", "STORAGES", "CHECKS"]
