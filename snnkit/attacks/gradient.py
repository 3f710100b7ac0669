"""Gradient attacks: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018) on spiking networks.

Both ascend the cross-entropy of the time-averaged logits, ``CE(mean_t f(x)_t, y)``, with the victim's neurons in
train mode and every other module in eval mode (Lun et al., CVPR 2025). The gradient through each spike is whatever
surrogate the neurons hold, so ``with attacks.pdsg(model): attacks.pgd(...)`` is PDSG-PGD and
``with attacks.swap_surrogate(model, ATan()): ...`` a fixed-surrogate PGD::

    FGSM  x' = clip(x + eps sign(grad_x L))
    PGD   x_0 = clip(x + U(-eps, eps)) (random start),  x_{i+1} = clip(Proj_{|x' - x|_inf <= eps}(x_i + alpha sign(g_i)))

``clamp = (lo, hi)`` is the valid input range (either bound may be None: Lun et al. leave event-count frames
unbounded above). Integer inputs (event counts, binary frames): ``integer=True`` rounds every iterate to the
nearest integer inside the ball and the range, so the adversarial example is a valid count frame; this needs
``eps >= 1`` (a smaller ball holds no other integer) and ``alpha >= 0.5``. For binary frames the sparse attack
:func:`snnkit.attacks.sda` is the better tool.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import FLOAT_DTYPES, check_bool, check_positive_int, check_real, check_tensor
from .model import attack_mode, require_spiking, scores

__all__ = ["fgsm", "pgd", "check_labels"]

Range = tuple[Optional[float], Optional[float]]


def check_labels(name: str, y, batch: Optional[int], device: torch.device) -> torch.Tensor:
    """``y`` as a long tensor ``[batch]`` of class indices on ``device`` (any length when ``batch`` is None)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.dim() != 1 or (batch is not None and
                                                                               y.shape[0] != batch):
        want = f"[{batch}]" if batch is not None else "[B]"
        raise ValueError(f"{name} must be integer class indices of shape {want} (one per sample), got "
                         f"{y.dtype} {tuple(y.shape)}")
    return y.to(device=device, dtype=torch.long)


def _check_range(clamp) -> Range:
    if not isinstance(clamp, (tuple, list)) or len(clamp) != 2:
        raise TypeError(f"clamp must be a pair (lo, hi) of numbers or None, got {clamp!r}")
    lo = check_real("clamp[0]", clamp[0], allow_none=True)
    hi = check_real("clamp[1]", clamp[1], allow_none=True)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clamp must have lo <= hi, got {clamp!r}")
    return lo, hi


def _check_eps(eps, integer: bool) -> float:
    eps = check_real("eps", eps)
    if eps < 0:
        raise ValueError(f"eps must be >= 0 (the L-inf radius of the perturbation), got {eps}")
    if integer and eps < 1:
        raise ValueError(f"eps must be >= 1 with integer=True (a ball of radius {eps} holds no other integer)")
    return eps


def _common(model, x, y, clamp, integer: bool):
    require_spiking("model", model)
    check_tensor("x", x, min_dim=1, dtypes=FLOAT_DTYPES)
    integer = check_bool("integer", integer)
    if integer and not bool((x == x.round()).all()):
        raise ValueError("x must hold integers (event counts or binary frames) with integer=True")
    # The batch dim is the model's business ([T, B, ...] time-first, or [B, ...] for a self-encoding model).
    return x.detach(), check_labels("y", y, None, x.device), _check_range(clamp), integer


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, rng: Range, integer: bool) -> torch.Tensor:
    lo, hi = rng
    if integer:  # round inside the ball and the range: their integer bounds keep every rounded value inside both
        eps = math.floor(eps)
        lo = None if lo is None else math.ceil(lo)
        hi = None if hi is None else math.floor(hi)
        x_adv = x_adv.round()
    x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    return x_adv.clamp(lo, hi)


def _loss_grad(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(scores(model, x_adv).float(), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255, clamp: Range = (0.0, 1.0),
         integer: bool = False) -> torch.Tensor:
    """Fast gradient sign method: ``x' = clip(x + eps sign(grad_x CE(mean_t f(x), y)))``.

    Args:
        model: a spiking network taking ``x`` and returning logits ``[T, B, K]`` or ``[B, K]``.
        x: input, time-first ``[T, B, ...]`` (or ``[B, ...]`` for a model that encodes it itself), floating point.
        y: labels ``[B]``.
        eps: L-inf radius, >= 0 (8/255 in Lun et al.).
        clamp: valid input range ``(lo, hi)``; None leaves that side open.
        integer: round to integers (see the module docstring).

    Returns:
        The adversarial input, detached, same shape and dtype as ``x``.
    """
    x, y, rng, integer = _common(model, x, y, clamp, integer)
    eps = _check_eps(eps, integer)
    with attack_mode(model):
        grad = _loss_grad(model, x, y)
    return _project(x + eps * grad.sign(), x, eps, rng, integer).detach()


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255, alpha: Optional[float] = None,
        steps: int = 10, random_start: bool = True, clamp: Range = (0.0, 1.0), integer: bool = False,
        generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Projected gradient descent (L-inf) with a random start (Madry et al. 2018; settings of Lun et al. 2025).

    Args:
        model, x, y, eps, clamp, integer: as :func:`fgsm`.
        alpha: step size, > 0; default ``eps / 4`` (Lun et al.), at least 1 with ``integer``.
        steps: iterations, >= 1 (10 in Lun et al.).
        random_start: start from a uniform point of the ball (rounded with ``integer``).
        generator: the random start's generator (default: the global one).

    Returns:
        The adversarial input, detached, inside the ``eps`` ball around ``x`` and the range ``clamp``.
    """
    x, y, rng, integer = _common(model, x, y, clamp, integer)
    eps = _check_eps(eps, integer)
    steps = check_positive_int("steps", steps)
    random_start = check_bool("random_start", random_start)
    if alpha is None:
        alpha = max(eps / 4, 1.0) if integer else eps / 4
    alpha = check_real("alpha", alpha)
    if alpha <= 0 or (integer and alpha < 0.5):
        raise ValueError(f"alpha must be > 0{' and >= 0.5 with integer=True' if integer else ''}, got {alpha}")
    x_adv = x.clone()
    if random_start and eps > 0:
        noise = torch.rand(x.shape, generator=generator, dtype=torch.float32, device="cpu" if generator is None
                           else generator.device).to(x.device, x.dtype)
        x_adv = _project(x + (2 * noise - 1) * eps, x, eps, rng, integer)
    with attack_mode(model):
        for _ in range(steps):
            grad = _loss_grad(model, x_adv, y)
            x_adv = _project(x_adv + alpha * grad.sign(), x, eps, rng, integer).detach()
    return x_adv
