"""Spiking VGG for event-camera frames ``[T, B, 2, H, W]`` (CIFAR10-DVS).

Blocks ``Conv3x3 -> SeqBatchNorm2d -> LIF`` with 2x2 pooling between stages, then ``Flatten -> Dropout -> Linear``
giving per-step logits ``[T, B, num_classes]`` (the loss averages over time). The structure follows the VGG-11
used for DVS-CIFAR10 in SLTT (Meng et al. ICCV 2023) with far fewer channels by default, so a CPU epoch at 48x48
takes minutes rather than hours; pass ``cfg`` for the full width.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from snnkit.layers import SeqBatchNorm2d, TimeDistributed
from snnkit.neurons import LIF
from snnkit.surrogate import ATan, Surrogate

from .registry import register

__all__ = ["SpikingVGG", "DEFAULT_CFG"]

#: Channels per conv layer, "M" = 2x2 pooling. Small on purpose (CPU-feasible); VGG-11 is
#: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M").
DEFAULT_CFG: tuple[int | str, ...] = (16, "M", 32, "M", 64, "M", 128, "M")


class SpikingVGG(nn.Module):
    """Conv-BN-LIF stages with pooling and a linear classifier.

    Args:
        in_shape: ``(C, H, W)`` of one frame (``(2, 48, 48)`` for CIFAR10-DVS at size 48).
        num_classes: output logits.
        cfg: conv widths and "M" pooling markers.
        pool: "avg" (default; keeps a gradient to every input spike) or "max".
        dropout: before the classifier.
        tau, v_threshold, surrogate, detach_reset: LIF options.

    Input ``[T, B, C, H, W]``; output ``[T, B, num_classes]``.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        cfg: Sequence[int | str] = DEFAULT_CFG,
        pool: str = "avg",
        dropout: float = 0.2,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
    ) -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"SpikingVGG: in_shape must be (C, H, W), got {tuple(in_shape)}")
        if pool not in ("avg", "max"):
            raise ValueError(f"SpikingVGG: pool must be 'avg' or 'max', got {pool!r}")
        surrogate = surrogate if surrogate is not None else ATan(alpha=2.0)
        c, h, w = (int(s) for s in in_shape)
        self.in_shape = (c, h, w)
        layers: list[nn.Module] = []
        for item in cfg:
            if item == "M":
                if h < 2 or w < 2:
                    raise ValueError(f"SpikingVGG: too many pooling stages for input {tuple(in_shape)}")
                p = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)
                layers.append(TimeDistributed(p))
                h, w = h // 2, w // 2
                continue
            out = int(item)
            layers += [
                TimeDistributed(nn.Conv2d(c, out, 3, padding=1, bias=False)),
                SeqBatchNorm2d(out),
                LIF(tau=tau, v_threshold=v_threshold, surrogate=surrogate, detach_reset=detach_reset, step_mode="m"),
            ]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(2), nn.Dropout(dropout), nn.Linear(c * h * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(
                f"SpikingVGG expects [T, B, {', '.join(map(str, self.in_shape))}]; got shape {tuple(x.shape)}"
            )
        return self.classifier(self.features(x))


@register("vgg")
def _build_vgg(in_shape: tuple[int, ...], num_classes: int, **kw) -> SpikingVGG:
    return SpikingVGG(in_shape, num_classes, **kw)
