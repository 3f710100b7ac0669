"""SLTT and SLTT-K: online training whose memory does not grow with the number of time steps.

Meng et al., ICCV 2023, "Towards Memory- and Time-Efficient Backpropagation for Training Spiking Neural Networks"
(reference code qymeng94/SLTT). BPTT keeps the graph of all T steps for one backward. SLTT drops the temporal
gradient routes: the membrane potential carried from step t-1 into step t is detached, so each step's loss can be
back-propagated right after its forward and its graph freed; gradients accumulate over the steps and the optimiser
steps once per batch. SLTT-K back-propagates only K steps drawn per batch (``randperm(T)[:K]``); the others run
under ``no_grad``.

Per batch, for ``t = 0 .. T-1`` (the model unchanged, run on one-step slices ``x[t:t+1]`` inside
:func:`snnkit.neurons.online`)::

    out_t = model(x[t:t+1])
    L_t   = [(1 - lamb) CE(out_t, y) + lamb MSE(out_t, target)] / T          lamb = 0.05
    L_t.backward()                                                              (SLTT-K: only for the K chosen t)

``CE`` is the run's loss (``fit(loss=...)``, rate cross-entropy by default, which on one step is the plain
cross-entropy). The MSE target follows the reference code's default (``mse_n_reg=False, loss_means=1.0``): a tensor
of ones, i.e. a regulariser pulling every logit towards 1, not a one-hot; ``mse_target="one-hot"`` selects the
reference's other option. The prediction is the sum (equivalently the mean) of ``out_t`` over t. BatchNorm is per
step: :class:`snnkit.layers.SeqBatchNorm1d` on a one-step slice normalises over the batch, as in the paper.

Under DDP the gradients are all-reduced once per batch (``no_sync`` for every backward but the last). The K steps of
SLTT-K come from the global torch RNG, which checkpoints save and restore, so a resumed run draws the same steps.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from snnkit.neurons import check_stepwise, online
from snnkit.validation import check_positive_int, check_real

from .methods import METHODS, StepContext, StepOutput, TrainingMethod

__all__ = ["SLTT", "SLTTK", "MSE_TARGETS"]

MSE_TARGETS = ("ones", "one-hot")


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@METHODS.register("sltt")
class SLTT(TrainingMethod):
    """Spatial learning through time: one backward per time step, the temporal routes dropped.

    Args:
        lamb: weight of the MSE term (the paper's 0.05).
        mse_target: "ones" (the reference code's default regulariser) or "one-hot".
    """

    name = "sltt"

    def __init__(self, lamb: float = 0.05, mse_target: str = "ones") -> None:
        self.lamb = check_real("lamb", lamb)
        if not 0.0 <= self.lamb <= 1.0:
            raise ValueError(f"lamb must be in [0, 1], got {lamb}")
        if mse_target not in MSE_TARGETS:
            raise ValueError(f"mse_target must be one of {MSE_TARGETS}, got {mse_target!r}")
        self.mse_target = mse_target

    def check_model(self, model: nn.Module) -> None:
        check_stepwise(_unwrap(model))

    def trained_steps(self, T: int) -> Optional[list[int]]:
        """The steps that get a backward this batch; None for all of them."""
        return None

    def step_loss(self, out_t: torch.Tensor, y: torch.Tensor, T: int, ctx: StepContext) -> torch.Tensor:
        """``L_t`` for one step's logits ``out_t [B, K]``."""
        logits = out_t.float() if out_t.dtype in (torch.float16, torch.bfloat16) else out_t  # autocast: in fp32
        loss = (1 - self.lamb) * ctx.loss_fn(logits, y)
        if self.lamb > 0:
            if self.mse_target == "ones":
                target = torch.ones_like(logits)
            else:
                target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
            loss = loss + self.lamb * F.mse_loss(logits, target)
        return loss / T

    def train_step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        T = x.shape[0]
        chosen = self.trained_steps(T)
        trained = set(range(T)) if chosen is None else set(chosen)
        last = max(trained)
        ddp = isinstance(model, nn.parallel.DistributedDataParallel)
        ctx.zero_grad()
        outs, losses = [], []
        with online(_unwrap(model)):
            for t in range(T):
                if t in trained:
                    # All-reduce once per batch: every backward but the last accumulates locally.
                    sync = contextlib.nullcontext() if (not ddp or t == last) else model.no_sync()
                    with sync:
                        with ctx.autocast():
                            out = model(x[t : t + 1])
                        out_t = out[0] if out.dim() == 3 else out
                        loss = self.step_loss(out_t, y, T, ctx)
                        loss.backward()
                else:
                    with torch.no_grad(), ctx.autocast():
                        out = model(x[t : t + 1])
                    out_t = out[0] if out.dim() == 3 else out
                    loss = self.step_loss(out_t, y, T, ctx)
                outs.append(out_t.detach())
                losses.append(loss.detach())
        ctx.step(model)
        return StepOutput(loss=torch.stack(losses).sum(), logits=torch.stack(outs))


@METHODS.register("sltt-k")
class SLTTK(SLTT):
    """SLTT with the backward at only ``k`` of the T steps, drawn per batch as ``randperm(T)[:k]``.

    Args:
        k: steps back-propagated per batch (the paper uses 2 or 4); must be <= T.
        lamb, mse_target: as in :class:`SLTT`.
    """

    name = "sltt-k"

    def __init__(self, k: int = 2, lamb: float = 0.05, mse_target: str = "ones") -> None:
        super().__init__(lamb=lamb, mse_target=mse_target)
        self.k = check_positive_int("k", k)

    def trained_steps(self, T: int) -> list[int]:
        if self.k > T:
            raise ValueError(f"sltt-k: k = {self.k} exceeds the batch's T = {T} time steps; use k <= T")
        # The global RNG: saved in checkpoints, so a resumed run draws the same steps.
        return torch.randperm(T)[: self.k].tolist()
