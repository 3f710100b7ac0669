"""MetaNeuron: a LIF-type membrane with stochastic (Bernoulli) firing and per-neuron learned intrinsic parameters.

After Rudnicka, Szczepanski and Pregowska (2025), "Learning Internal Biological Neuron Parameters and
Complexity-Based Encoding for Improved Spiking Neural Networks Performance", arXiv:2508.11674. The paper publishes no
code; the model below is snnkit's design of its probabilistic "meta neuron" (equations in :class:`MetaNeuron` and in
``docs/meta_neuron.md``).

Why there is no fused op (yet): the LIF op's kernels (``snnkit.ops.lif``, CPU loop, fused CPU path, Triton) take one
scalar tau and fire with a deterministic Heaviside step. This neuron needs per-neuron vectors tau, threshold, beta and
v_rest, random numbers drawn inside the step, and gradients for four per-neuron parameters (each a reduction over
batch and time). That is a new op (``snnkit/ops/meta/``: a backward scan that accumulates the four parameter
gradients, counter-based random numbers in the kernel so CPU and GPU sample alike), not a flag of the LIF op. Until
it exists, :func:`meta_step` below is the one place where the equations are written, and the module runs it in a
Python loop over T with autograd doing the backward; it is the readable oracle that such an op would be tested
against.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.lif import state_dtype
from ..validation import check_finite, check_positive_int, check_real, check_tau, check_tensor
from .base import StatefulNeuron

__all__ = ["MetaNeuron", "meta_step", "INTRINSIC", "MODES", "RESETS", "TAU_FLOOR", "BETA_FLOOR"]

#: The per-neuron intrinsic parameters, in the order ``learn=`` names them.
INTRINSIC = ("tau", "threshold", "beta", "v_rest")
MODES = ("sample", "expectation")
RESETS = ("hard", "soft")

#: ``tau = 1 + TAU_FLOOR + softplus(w_tau)``: the floor keeps ``tau > 1`` strict even in float32, where
#: ``1 + softplus(w)`` rounds to exactly 1 once ``softplus(w) < 6e-8``.
TAU_FLOOR = 1e-3
#: ``beta = BETA_FLOOR + softplus(w_beta)``: ``beta > 0`` strictly, and a firing sharpness of at most 1 / BETA_FLOOR.
BETA_FLOOR = 1e-3


def _inv_softplus(y: torch.Tensor) -> torch.Tensor:
    """``w`` with ``softplus(w) = y`` for ``y > 0``: ``log(expm1(y))``, written to neither overflow nor cancel."""
    return y + torch.log(-torch.expm1(-y))


def meta_step(
    x_t: torch.Tensor,
    v: torch.Tensor,
    *,
    tau: torch.Tensor,
    threshold: torch.Tensor,
    beta: torch.Tensor,
    v_rest: torch.Tensor,
    reset: str,
    mode: str,
    generator: Optional[torch.Generator],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One time step of the meta neuron; returns ``(s_t, v_t)``. All tensors broadcast against ``x_t [..., n]``.

    ``h = v + (x_t - (v - v_rest)) / tau``; ``p = sigmoid((h - threshold) / beta)``; ``s = p`` (expectation) or
    ``s = b + (p - sg(p))`` with ``b = [u < p]``, ``u ~ U[0, 1)`` from ``generator`` (sample: the value is the
    Bernoulli draw, the gradient that of ``p``); hard reset ``v_t = h + s (v_rest - h)`` or soft reset
    ``v_t = h - s (threshold - v_rest)``.
    """
    h = v + (x_t - (v - v_rest)) / tau
    p = torch.sigmoid((h - threshold) / beta)
    if mode == "expectation":
        s = p
    else:
        u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        s = (u < p).to(p.dtype)
        if p.requires_grad:  # straight-through: forward value exactly s, backward ds/dp = 1
            s = s + (p - p.detach())
    if reset == "hard":
        v_next = h + s * (v_rest - h)
    else:
        v_next = h - s * (threshold - v_rest)
    return s, v_next


class MetaNeuron(StatefulNeuron):
    """Probabilistic LIF-type neuron with per-neuron learned intrinsic parameters (Rudnicka et al. 2025).

    For neuron ``i`` (the last dim of the input, of size ``n``) and step ``t``:

    - charge: ``h_t = v_{t-1} + (x_t - (v_{t-1} - v_rest)) / tau`` (LIF's ``decay_input`` charge, per-neuron
      ``tau`` and resting potential ``v_rest``; the state starts at ``v_0 = v_rest``);
    - firing probability: ``p_t = sigmoid((h_t - threshold) / beta)``; ``beta`` is the firing sharpness (noise
      temperature): ``beta -> 0`` is the deterministic LIF ``H(h_t - threshold)``;
    - spike: ``mode="sample"``: ``s_t ~ Bernoulli(p_t)``, drawn with a ``torch.Generator`` (constructor argument or
      ``forward(..., generator=g)``; None uses torch's global generator), in training and in inference alike.
      ``mode="expectation"``: ``s_t = p_t``, the deterministic mean-field recursion (spikes replaced by their
      probabilities, in the reset too; the exact expectation of the sampled neuron at the first step only);
    - reset, applied with the (sampled) spike: ``reset="hard"`` (default) ``v_t = h_t + s_t (v_rest - h_t)``, i.e.
      back to the neuron's own resting potential after a spike, as LIF's default hard reset; ``reset="soft"``
      ``v_t = h_t - s_t (threshold - v_rest)`` (subtract the distance from rest to threshold; LIF's soft reset when
      ``v_rest = 0``).

    Gradients: in expectation mode everything is smooth and autograd differentiates the recursion exactly. In
    sample mode the spike is ``s_t = b_t + (p_t - sg(p_t))`` with ``b_t`` the Bernoulli draw: the forward value is
    exactly binary and ``ds_t/dp_t = 1`` (a straight-through estimator; the reset uses the same ``s_t``, so its
    gradient flows too). It is the gradient of the expectation-mode step evaluated on the sampled trajectory:
    biased but of low variance, where REINFORCE (score function) would be unbiased with a variance that grows with
    the number of neurons and steps. ``dp/dh = p (1 - p) / beta`` is exactly SpikingJelly's sigmoid surrogate with
    ``alpha = 1 / beta``, so sample-mode training is surrogate-gradient LIF training whose surrogate width is
    learned per neuron; the default ``beta = 0.25`` is the ``Sigmoid(alpha=4)`` surrogate of snnkit's ``LIF``.

    Intrinsic parameters, each of shape ``[n]`` and kept in range by a parameterisation, never by clamping:

    ====================  ============================================  =======  ================================
    parameter             parameterisation (raw tensor)                 default  range
    ====================  ============================================  =======  ================================
    ``tau``               ``1 + TAU_FLOOR + softplus(w_tau)``           2.0      ``> 1.001``
    ``threshold``         ``w_threshold`` (unconstrained)               1.0      real
    ``beta``              ``BETA_FLOOR + softplus(w_beta)``             0.25     ``> 0.001``
    ``v_rest``            ``w_v_rest`` (unconstrained)                  0.0      real
    ====================  ============================================  =======  ================================

    ``v_rest`` is the one parameter added to the three the paper asks for: a per-neuron resting potential is an
    intrinsic biological parameter in its own right, and it is the neuron's bias: with a hard reset it sets where
    the membrane returns after a spike, and ``threshold - v_rest`` is the drive a neuron needs to fire with
    probability 1/2, so it lets each neuron learn its spontaneous rate. It is not learned by default.

    Args:
        n: number of neurons (the size of the input's last dim).
        learn: names among ``("tau", "threshold", "beta", "v_rest")`` to learn (``nn.Parameter`` raw tensors
            ``w_<name>``); the others are fixed buffers (saved in the ``state_dict``, not trained). A single name may
            be passed as a string. Default ``("tau", "threshold", "beta")``.
        tau, threshold, beta, v_rest: initial values, a number or a 1-D tensor/sequence of ``n`` values. Defaults
            2.0 (snnkit's LIF), 1.0 (LIF's threshold), 0.25 (see above) and 0.0 (LIF's reset potential).
        mode: "sample" (default) or "expectation"; the attribute may be changed later, or overridden per call.
        reset: "hard" (default) or "soft".
        generator: ``torch.Generator`` for the spike draws (on the input's device); a generator passed to
            ``forward`` takes precedence.
        step_mode, carry_state: as for every :class:`~snnkit.neurons.StatefulNeuron` ("m": ``[T, B, ..., n]`` from
            rest unless ``carry_state``; "s": ``[B, ..., n]``, one step, state kept).
        device, dtype: where and in which floating dtype the raw parameters live (default: CPU, torch's default
            dtype); the initial values are converted from float64 once, so ``dtype=torch.float64`` keeps them exact.

    Works inside :func:`snnkit.neurons.online` (one-step slices, state carried detached), like ``LIF``.
    """

    def __init__(
        self,
        n: int,
        learn: Iterable[str] | str = ("tau", "threshold", "beta"),
        *,
        tau: float | torch.Tensor = 2.0,
        threshold: float | torch.Tensor = 1.0,
        beta: float | torch.Tensor = 0.25,
        v_rest: float | torch.Tensor = 0.0,
        mode: str = "sample",
        reset: str = "hard",
        generator: Optional[torch.Generator] = None,
        step_mode: str = "m",
        carry_state: bool = False,
        device: Optional[torch.device | str] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(step_mode=step_mode, carry_state=carry_state)
        self.n = check_positive_int("n", n)
        if isinstance(learn, str):
            learn = (learn,)
        if not isinstance(learn, Iterable):
            raise TypeError(f"learn must be names among {INTRINSIC}, got {type(learn).__name__}")
        learn = tuple(learn)
        for name in learn:
            if name not in INTRINSIC:
                raise ValueError(f"learn: unknown intrinsic parameter {name!r}; choose among {INTRINSIC}")
        self.learn = tuple(name for name in INTRINSIC if name in learn)
        self.mode = self._check_mode(mode)
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        self.reset = reset
        self.generator = self._check_generator(generator)

        raw = {
            "tau": _inv_softplus(self._initial("tau", tau, low=1.0 + TAU_FLOOR) - (1.0 + TAU_FLOOR)),
            "threshold": self._initial("threshold", threshold),
            "beta": _inv_softplus(self._initial("beta", beta, low=BETA_FLOOR) - BETA_FLOOR),
            "v_rest": self._initial("v_rest", v_rest),
        }
        if dtype is None:
            dtype = torch.get_default_dtype()
        elif not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        for name, w in raw.items():
            w = w.to(device=device, dtype=dtype)
            if name in self.learn:
                setattr(self, f"w_{name}", nn.Parameter(w))
            else:
                self.register_buffer(f"w_{name}", w)

    # -- construction checks -----------------------------------------------------------------------------------

    def _initial(self, name: str, value, *, low: Optional[float] = None) -> torch.Tensor:
        """An initial value as a float64 tensor ``[n]``; finite, and ``> low`` when given."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            v = check_tau(name, value) if name == "tau" else check_real(name, value)
            t = torch.full((self.n,), v, dtype=torch.float64)
        elif isinstance(value, (torch.Tensor, list, tuple)):
            t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
            if not t.is_floating_point() and t.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"{name} must be a number or a real tensor of {self.n} values, got {t.dtype}")
            if t.shape != (self.n,):
                raise ValueError(f"{name} must be a number or hold n = {self.n} values (shape [{self.n}]), got shape "
                                 f"{tuple(t.shape)}")
            t = t.to(torch.float64)
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} must be finite, got non-finite values")
            if name == "tau":
                check_tau(name, float(t.min()))  # one home for the rule tau > 1
        else:
            raise TypeError(f"{name} must be a number or a tensor of {self.n} values, got {type(value).__name__}")
        if low is not None and float(t.min()) <= low:
            what = {"tau": "a membrane time constant in steps; the parameterisation's floor is 1 + TAU_FLOOR",
                    "beta": "the firing sharpness; the parameterisation's floor is BETA_FLOOR"}[name]
            raise ValueError(f"{name} must be > {low:g} ({what}), got {float(t.min()):g}")
        return t

    @staticmethod
    def _check_mode(mode) -> str:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        return mode

    @staticmethod
    def _check_generator(generator) -> Optional[torch.Generator]:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        return generator

    # -- the intrinsic parameters in their ranges --------------------------------------------------------------

    @property
    def tau(self) -> torch.Tensor:
        """Membrane time constants ``[n]``, in steps (> 1)."""
        return 1.0 + TAU_FLOOR + F.softplus(self.w_tau)

    @property
    def threshold(self) -> torch.Tensor:
        """Firing thresholds ``[n]`` (the potential at which a neuron fires with probability 1/2)."""
        return self.w_threshold

    @property
    def beta(self) -> torch.Tensor:
        """Firing sharpness ``[n]`` (> 0; the smaller, the closer to a deterministic threshold)."""
        return BETA_FLOOR + F.softplus(self.w_beta)

    @property
    def v_rest(self) -> torch.Tensor:
        """Resting potentials ``[n]``: the initial state and the hard-reset target."""
        return self.w_v_rest

    # -- forward -----------------------------------------------------------------------------------------------

    def _check_input(self, x, generator: Optional[torch.Generator]) -> None:
        multi = self.step_mode == "m"
        check_tensor("x", x, min_dim=2 if multi else 1, time_first=multi)
        if x.shape[-1] != self.n:
            raise ValueError(f"x's last dim must be the number of neurons n = {self.n}, got shape {tuple(x.shape)}")
        if x.numel() == 0:
            raise ValueError(f"x is empty (shape {tuple(x.shape)})")
        if x.device.type == "cpu" and not torch.compiler.is_compiling():
            check_finite("x", x)
        else:
            torch._assert_async(torch.isfinite(x).all(), "x contains NaN or inf")
        if generator is not None and generator.device.type != x.device.type:
            raise ValueError(f"generator is on {generator.device} but x is on {x.device}")

    def _rest(self, like: torch.Tensor, v_rest: torch.Tensor) -> torch.Tensor:
        return v_rest.expand(like.shape)

    def forward(
        self, x: torch.Tensor, *, generator: Optional[torch.Generator] = None, mode: Optional[str] = None
    ) -> torch.Tensor:
        """Spikes (sample mode: 0/1 in ``x.dtype``) or firing probabilities (expectation mode), shaped like ``x``.

        ``generator`` and ``mode`` override the module's for this call.
        """
        mode = self.mode if mode is None else self._check_mode(mode)
        generator = self.generator if generator is None else self._check_generator(generator)
        self._check_input(x, generator)
        sd = state_dtype(x.dtype)
        params = dict(tau=self.tau.to(sd), threshold=self.threshold.to(sd), beta=self.beta.to(sd))
        v_rest = self.v_rest.to(sd)
        step = dict(params, v_rest=v_rest, reset=self.reset, mode=mode, generator=generator)
        if self.step_mode == "s":
            v = self._usable_state(x)
            s, v = meta_step(x.to(sd), self._rest(x, v_rest) if v is None else v, **step)
            self._store_state(v)
            return s.to(x.dtype)
        v = self._usable_state(x[0]) if self.carry_state else None
        if v is None:
            v = self._rest(x[0], v_rest)
        out = []
        for t in range(x.shape[0]):
            s, v = meta_step(x[t].to(sd), v, **step)
            out.append(s)
        self._store_state(v)
        return torch.stack(out).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"n={self.n}, learn={self.learn}, mode={self.mode!r}, reset={self.reset!r}, "
                f"{super().extra_repr()}")
