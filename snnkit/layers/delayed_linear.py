"""``DelayedLinear``: a fully connected layer with one weight and one learnable delay per synapse (DCLS).

Hammouamri, Khalfaoui-Hassani and Masquelier (ICLR 2024), "Learning Delays in Spiking Neural Networks using Dilated
Convolutions with Learnable Spacings": each synapse j <- i has a real-valued delay ``p_ji`` in [0, max_delay - 1],
learned through a Gaussian interpolation over the integer delays whose width ``sigma`` shrinks during training, and
rounded to an integer delay for inference. The op is :func:`snnkit.ops.delayed_linear`.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import nn

from ..ops.delayed_linear import BACKENDS, delayed_linear
from ..validation import check_bool, check_positive_int, check_real

__all__ = ["DelayedLinear"]

#: The constant ``dcls``'s ``version='gauss'`` adds to ``|SIG|`` inside its kernel (its Gaussian width is
#: ``|SIG| + 0.27``).
DCLS_SIGMA_OFFSET = 0.27


class DelayedLinear(nn.Module):
    r"""``y[t, b, j] = bias_j + sum_i w_ji x[t - d_ji, b, i]``, time first, one learnable delay ``d_ji`` per synapse.

    Training mode (delays not rounded): the delay is the continuous position ``p_ji`` spread over the integer delays
    by normalised Gaussian taps of width :attr:`sigma` (see :func:`snnkit.ops.delayed_linear`), so the loss has a
    gradient in ``p_ji``. Eval mode (``model.eval()``) uses the integer delays ``round(p_ji)`` without changing the
    parameters (the paper evaluates with rounded positions); after :meth:`round_delays` both modes use integer
    delays. Call :meth:`clamp_delays` after every optimiser step and :meth:`set_sigma` once per epoch (the paper's
    schedule goes from ``max_delay // 2`` down to 0.23 over the first quarter of training).

    Output length = input length: contributions arriving after the last input step are dropped; pad the input with
    ``max_delay - 1`` zero steps at the end to keep them.

    Mapping to ``DCLS.construct.modules.Dcls1d(C_in, C_out, kernel_count=1, dilated_kernel_size=D,
    version='gauss')`` applied to ``x`` of shape ``[B, C_in, T]`` left-padded with ``D - 1`` zeros (the paper's
    causal use): ``weight = Dcls1d.weight[:, :, 0]``; ``Dcls1d.P[0, :, :, 0]`` is the kernel tap index minus
    ``D // 2`` and conv1d multiplies tap ``k'`` with ``x[t + k' - (D - 1)]``, so the delay is
    ``positions = (D - 1) - (P + D // 2)``; the Gaussian width is ``sigma = |SIG| + 0.27`` (dcls adds 0.27, so its
    ``SIG = 0.23`` is a width of 0.5 here). dcls normalises with ``sum + 1e-7`` (a relative difference below 1e-7).
    The paper's code also right-pads the input by ``(D - 1) // 2`` steps and so keeps that much of the tail.
    :meth:`from_dcls` and :meth:`dcls_parameters` convert both ways.

    Args:
        in_features, out_features: ``C_in``, ``C_out``.
        max_delay: number of integer delays D (0 .. D-1), >= 1.
        bias: add a learnable bias per output (the paper's layers have none).
        sigma: initial Gaussian width in steps, > 0; default ``max_delay // 2`` (the schedule's start; 1 when that
            is 0).
        init_delays: "uniform" (random in [0, max_delay - 1], the paper), "zero", or a tensor ``[out, in]``.
        learn_delays: False freezes the delays (the paper's "fixed random delays" and "no delay" baselines): they
            are rounded at construction (:meth:`round_delays`), since the Gaussian spread only exists to give the
            positions a gradient, so both modes use the integer delays.
        backend: the op's backend ("auto", "torch", "triton").
        generator: a ``torch.Generator`` for the initial weights and delays.
    """

    def __init__(self, in_features: int, out_features: int, max_delay: int, *, bias: bool = False,
                 sigma: Optional[float] = None, init_delays: Union[str, torch.Tensor] = "uniform",
                 learn_delays: bool = True, backend: str = "auto",
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.max_delay = check_positive_int("max_delay", max_delay)
        check_bool("bias", bias)
        check_bool("learn_delays", learn_delays)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.sigma = 0.0
        self.set_sigma(float(max(self.max_delay // 2, 1)) if sigma is None else sigma)
        self.rounded = False
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        # The paper's (and dcls's, and nn.Linear's) initialisation: kaiming uniform with a = sqrt(5), i.e.
        # U(-1/sqrt(C_in), 1/sqrt(C_in)).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        self.positions = nn.Parameter(self._initial_delays(init_delays, generator), requires_grad=learn_delays)
        if bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound, generator=generator))
        else:
            self.register_parameter("bias", None)
        if not learn_delays:
            self.round_delays()

    def _initial_delays(self, init: Union[str, torch.Tensor], generator: Optional[torch.Generator]) -> torch.Tensor:
        shape = (self.out_features, self.in_features)
        if isinstance(init, torch.Tensor):
            if tuple(init.shape) != shape:
                raise ValueError(f"init_delays as a tensor must have shape [out, in] = {shape}, got "
                                 f"{tuple(init.shape)}")
            if not init.is_floating_point() and init.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"init_delays as a tensor must be real (float or integer), got {init.dtype}")
            p = init.detach().to(torch.float32).clone()
            if not bool(torch.isfinite(p).all()) or p.min() < 0 or p.max() > self.max_delay - 1:
                raise ValueError(f"init_delays must be finite delays in [0, max_delay - 1] = [0, {self.max_delay - 1}]")
            return p
        if init == "uniform":
            return torch.rand(shape, generator=generator) * (self.max_delay - 1)
        if init == "zero":
            return torch.zeros(shape)
        raise ValueError(f"init_delays must be 'uniform', 'zero' or a tensor [out, in], got {init!r}")

    @property
    def delays(self) -> torch.Tensor:
        """The current delays in time steps ``[out, in]`` (the positions, detached; rounded ones after
        :meth:`round_delays`)."""
        return self.positions.detach()

    def set_sigma(self, s: float) -> None:
        """Set the Gaussian width in steps used in training mode (> 0)."""
        s = check_real("sigma", s)
        if s <= 0:
            raise ValueError(f"sigma must be > 0 (the Gaussian width in steps), got {s}")
        self.sigma = s

    @torch.no_grad()
    def clamp_delays(self) -> None:
        """Clamp the positions into [0, max_delay - 1]; call after every optimiser step (as the paper does)."""
        self.positions.clamp_(0, self.max_delay - 1)

    @torch.no_grad()
    def round_delays(self) -> None:
        """Positions := round(positions) (clamped); from now on both modes use these integer delays."""
        self.positions.copy_(torch.round(self.positions).clamp_(0, self.max_delay - 1))
        self.rounded = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [T, B, in]`` -> ``[T, B, out]``."""
        sigma = self.sigma if self.training and not self.rounded else None
        y = delayed_linear(x, self.weight, self.positions, self.max_delay, sigma, backend=self.backend)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    # -- state: sigma and the rounded flag travel with the state dict -------------------------------------------
    def get_extra_state(self) -> Any:
        return {"sigma": self.sigma, "rounded": self.rounded}

    def set_extra_state(self, state: Any) -> None:
        self.set_sigma(state["sigma"])
        self.rounded = bool(state["rounded"])

    # -- dcls interoperability (see the class docstring for the mapping) --------------------------------------
    @classmethod
    def from_dcls(cls, dcls_layer: nn.Module, **kwargs: Any) -> "DelayedLinear":
        """A layer computing what ``dcls_layer`` (a ``Dcls1d`` with ``kernel_count=1``, ``version='gauss'``, one
        ``SIG`` value) computes on an input left-padded by ``max_delay - 1`` zeros; ``kwargs`` go to the
        constructor."""
        if getattr(dcls_layer, "version", None) != "gauss" or getattr(dcls_layer, "kernel_count", None) != 1:
            raise ValueError("from_dcls needs a Dcls1d with kernel_count=1 and version='gauss'")
        D = int(dcls_layer.dilated_kernel_size[0])
        sig = dcls_layer.SIG.detach().abs()
        if not bool((sig == sig.flatten()[0]).all()):
            raise ValueError("from_dcls: DelayedLinear has one sigma for all synapses; the Dcls1d's SIG values differ")
        layer = cls(dcls_layer.in_channels, dcls_layer.out_channels, D, bias=dcls_layer.bias is not None,
                    sigma=float(sig.flatten()[0]) + DCLS_SIGMA_OFFSET, **kwargs)
        with torch.no_grad():
            layer.weight.copy_(dcls_layer.weight[:, :, 0])
            layer.positions.copy_((D - 1) - (dcls_layer.P[0, :, :, 0] + D // 2))
            if dcls_layer.bias is not None:
                layer.bias.copy_(dcls_layer.bias)
        return layer

    def dcls_parameters(self) -> dict[str, torch.Tensor]:
        """``{"weight", "P", "SIG"}`` for a ``Dcls1d(in, out, 1, dilated_kernel_size=max_delay, version='gauss')``
        computing this layer's training-mode output (``sigma`` must exceed dcls's offset 0.27)."""
        if self.sigma <= DCLS_SIGMA_OFFSET:
            raise ValueError(f"dcls's Gaussian width is |SIG| + {DCLS_SIGMA_OFFSET}; sigma = {self.sigma} is below it")
        D = self.max_delay
        p = self.positions.detach()
        return {"weight": self.weight.detach().unsqueeze(-1).clone(),
                "P": ((D - 1) - p - D // 2).reshape(1, *p.shape, 1).clone(),
                "SIG": torch.full((1, *p.shape, 1), self.sigma - DCLS_SIGMA_OFFSET, dtype=p.dtype, device=p.device)}

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, max_delay={self.max_delay}, sigma={self.sigma:g}, "
                f"learn_delays={self.positions.requires_grad}, bias={self.bias is not None}"
                + (", rounded=True" if self.rounded else ""))
