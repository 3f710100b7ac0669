"""Time-distributed batch normalisation for time-first spiking tensors.

``nn.BatchNorm1d/2d`` normalise over the batch axis only. A spiking layer's activations are ``[T, B, ...]``; the
usual choice in SNN training (SpikingJelly's ``SeqToANNContainer``, the DCLS delay SNN, the SLTT VGG baselines) is to
treat every time step of every sample as one more sample, i.e. normalise over ``T * B`` with one set of statistics
shared by all steps. That is what these modules do: flatten ``[T, B]`` into one axis, apply the plain BatchNorm,
restore the shape. A single step ``[B, ...]`` (step mode "s") passes straight through the BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SeqBatchNorm1d", "SeqBatchNorm2d"]


class _SeqBatchNorm(nn.Module):
    """Shared logic: accept ``[T, B, C, *spatial]`` or a single step ``[B, C, *spatial]``."""

    _spatial_dims: int = 0
    _bn_cls: type[nn.modules.batchnorm._BatchNorm]

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True) -> None:
        super().__init__()
        # The wrapped module is called `bn` so that state_dict keys read `...bn.weight`, like a plain BatchNorm.
        self.bn = self._bn_cls(num_features, eps=eps, momentum=momentum, affine=affine)

    @property
    def num_features(self) -> int:
        return self.bn.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step_rank = 2 + self._spatial_dims  # [B, C, *spatial]
        if x.dim() == step_rank:
            return self.bn(x)
        if x.dim() != step_rank + 1:
            raise ValueError(
                f"{type(self).__name__} expects [T, B, C{', H, W' if self._spatial_dims else ''}] or a single step "
                f"without T; got shape {tuple(x.shape)}"
            )
        if x.shape[2] != self.bn.num_features:
            raise ValueError(f"{type(self).__name__}({self.bn.num_features}) expects C = {self.bn.num_features} "
                             f"channels at dim 2 of [T, B, C, ...], got shape {tuple(x.shape)}")
        t, b = x.shape[:2]
        return self.bn(x.flatten(0, 1)).unflatten(0, (t, b))

    def extra_repr(self) -> str:
        return f"{self.bn.num_features}, over T*B"


class SeqBatchNorm1d(_SeqBatchNorm):
    """BatchNorm1d over ``T * B`` for ``[T, B, C]`` (or one step ``[B, C]``); statistics shared across time steps.

    Args:
        num_features: C.
        eps, momentum, affine: as in :class:`torch.nn.BatchNorm1d`.
    """

    _spatial_dims = 0
    _bn_cls = nn.BatchNorm1d


class SeqBatchNorm2d(_SeqBatchNorm):
    """BatchNorm2d over ``T * B`` for ``[T, B, C, H, W]`` (or one step ``[B, C, H, W]``).

    Args:
        num_features: C.
        eps, momentum, affine: as in :class:`torch.nn.BatchNorm2d`.
    """

    _spatial_dims = 2
    _bn_cls = nn.BatchNorm2d
