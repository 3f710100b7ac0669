"""Spiking MLP for spike-train inputs ``[T, B, C]`` (SHD, SSC, bundled spoken digits).

Block (as in the DCLS delay SNN of Hammouamri et al. ICLR 2024, without the delays):
``Linear -> SeqBatchNorm1d -> LIF -> Dropout``, repeated per hidden layer (``norm="none"``: ``Linear`` with a bias,
no BatchNorm). Readout: ``Linear`` followed by either a
non-spiking leaky integrator (``readout="integrator"``, default) or nothing (``readout="linear"``). Either way the
output is per-step logits ``[T, B, num_classes]``; the training loss averages them over time
(:func:`snnkit.training.losses.rate_cross_entropy`), so both readouts are "mean of logits over time" at the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

import torch
from torch import nn

from snnkit.layers import LeakyIntegrator, SeqBatchNorm1d
from snnkit.neurons import LIF
from snnkit.surrogate import ATan, Surrogate

from .registry import register

__all__ = ["SpikingMLP"]

_READOUTS = ("integrator", "linear")
_NORMS = ("batch", "none")


class SpikingMLP(nn.Module):
    """Fully connected spiking network with a non-spiking readout.

    Args:
        in_features: input channels per step (140 for SHD pooled by 5).
        num_classes: output logits.
        hidden: width of each hidden layer; its length is the depth. Default 2 x 256 as the DCLS SHD network.
        dropout: dropout after each LIF layer (DCLS: 0.4 on SHD for 150 epochs; 0.1 here, tuned for short runs).
        tau: LIF membrane time constant in steps.
        v_threshold: LIF firing threshold.
        surrogate: surrogate gradient of the spike (ATan(alpha=2) as in PLIF/SpikeGPT).
        detach_reset: detach the reset path from the gradient (DCLS does).
        readout: "integrator" (leaky-integrator membrane, tau ``readout_tau``) or "linear" (raw per-step logits).
        readout_tau: leaky integrator time constant.
        norm: normalisation before each LIF layer: "batch" (``SeqBatchNorm1d``, the Linear without bias; default) or
            "none" (no normalisation, the Linear with a bias). Without BatchNorm the membrane potentials keep
            scales of their own per layer and feature instead of a standard deviation near 1 everywhere: such
            victims are what the robustness study of PDSG (potential-dependent surrogate gradients) needs.

    Input ``[T, B, in_features]`` (extra trailing dims are flattened); output ``[T, B, num_classes]``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        dropout: float = 0.1,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
        readout: str = "integrator",
        readout_tau: float = 2.0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if readout not in _READOUTS:
            raise ValueError(f"SpikingMLP: readout must be one of {_READOUTS}, got {readout!r}")
        if norm not in _NORMS:
            raise ValueError(f"SpikingMLP: norm must be one of {_NORMS}, got {norm!r}")
        if not hidden:
            raise ValueError("SpikingMLP: hidden must name at least one layer width")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"SpikingMLP: dropout must be in [0, 1), got {dropout}")
        surrogate = surrogate if surrogate is not None else ATan(alpha=2.0)
        self.in_features = int(in_features)
        self.norm = norm
        layers: list[nn.Module] = []
        width = self.in_features
        for h in hidden:
            if norm == "batch":
                # No bias: the BatchNorm right after has its own shift.
                layers += [nn.Linear(width, int(h), bias=False), SeqBatchNorm1d(int(h))]
            else:
                layers.append(nn.Linear(width, int(h), bias=True))
            layers += [
                LIF(tau=tau, v_threshold=v_threshold, surrogate=surrogate, detach_reset=detach_reset, step_mode="m"),
                nn.Dropout(dropout),
            ]
            width = int(h)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)
        self.readout = LeakyIntegrator(readout_tau) if readout == "integrator" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"SpikingMLP expects time-first [T, B, C]; got shape {tuple(x.shape)}")
        x = x.flatten(2)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"SpikingMLP built for {self.in_features} input features, got {x.shape[-1]}")
        return self.readout(self.classifier(self.features(x)))


@register("mlp")
def _build_mlp(in_shape: tuple[int, ...], num_classes: int, **kw) -> SpikingMLP:
    return SpikingMLP(prod(in_shape), num_classes, **kw)
