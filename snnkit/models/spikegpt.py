"""SpikeGPT: a spiking RWKV language model (Zhu, Zhao, Li, Eshraghian 2023, "SpikeGPT: Generative Pre-trained
Language Model with Spiking Neural Networks"; reference code ridgerchu/SpikeGPT).

Not in the classifier registry :func:`snnkit.models.build`: that table holds classifiers ``[T, B, ...] -> [T, B, K]``
trained with ``snnkit train``; a language model takes token ids ``[B, T]`` and is trained with ``snnkit train-lm``
(:func:`snnkit.training.lm.train_lm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
from torch import nn

from ..layers.rwkv import RWKVState, SpikingRWKVBlock
from ..surrogate import ATan
from ..validation import check_positive_int, check_real

__all__ = ["SpikeGPT", "SpikeGPTState", "generate", "check_token_ids"]

#: The RNN state of a whole :class:`SpikeGPT`: one :class:`~snnkit.layers.rwkv.RWKVState` per block.
SpikeGPTState = list[RWKVState]


def check_token_ids(name: str, idx: torch.Tensor, vocab_size: int) -> None:
    """``idx`` is an integer tensor of token ids in ``[0, vocab_size)`` (checked on the host for CPU tensors, with a
    device-side assert on a GPU)."""
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}")
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of token ids, got {idx.dtype}")
    if idx.numel() == 0:
        return
    if idx.device.type == "cpu" and not torch.compiler.is_compiling():
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds the token id {bad}, outside the vocabulary [0, {vocab_size})")
    else:
        torch._assert_async(((idx >= 0) & (idx < vocab_size)).all(), f"{name}: token id outside [0, {vocab_size})")


class SpikeGPT(nn.Module):
    """The SpikeGPT language model: binary embedding, ``n_layer`` spiking RWKV blocks, ``ln_out``, linear head.

    Input spikes ``s = H(emb(idx))`` (Heaviside with the ATan(alpha=2) surrogate,
    :class:`snnkit.surrogate.ATan`), then :class:`~snnkit.layers.SpikingRWKVBlock` ``x n_layer`` over the token axis,
    ``logits = head(ln_out(x))``.

    Two modes with the same numbers (to float32 rounding):

    - parallel (training): ``model(idx [B, T]) -> logits [B, T, vocab_size]``, ``T <= ctx_len``; the blocks run
      time-first ``[T, B, C]`` inside;
    - RNN (streaming): ``logits, state = model.step(tok, state)`` with ``tok`` a ``[B]`` tensor or an int; ``state``
      (a list with one :class:`~snnkit.layers.rwkv.RWKVState` per block) is ``None`` at the start; any length.

    Args:
        vocab_size: tokens (256 for the byte-level tokenizer).
        n_layer, n_embd: depth and width (the paper's 46M model: 12 x 512 at ctx 1024).
        ctx_len: longest training window; parallel calls with more tokens are refused (the recurrence has no length
            limit: stream longer texts with :meth:`step` or :meth:`forward_state`).
        dropout: after each block (the reference code uses 0.03).
        wkv_backend, lif_backend: ``backend`` of :func:`snnkit.ops.wkv` and :func:`snnkit.ops.lif_multistep`.

    Initialisation: the paper's (per layer, see :class:`~snnkit.layers.SpikingTimeMix`); embedding orthogonal with
    gain ``1e-4 sqrt(max(V, C))`` (only its signs matter after the Heaviside), head orthogonal with gain 0.5.
    """

    def __init__(self, vocab_size: int = 256, n_layer: int = 12, n_embd: int = 512, ctx_len: int = 1024,
                 dropout: float = 0.0, wkv_backend: str = "auto", lif_backend: str = "auto") -> None:
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.n_layer = check_positive_int("n_layer", n_layer)
        self.n_embd = check_positive_int("n_embd", n_embd)
        self.ctx_len = check_positive_int("ctx_len", ctx_len)
        self.dropout = check_real("dropout", dropout)
        self.emb = nn.Embedding(vocab_size, n_embd)
        self.spike = ATan(alpha=2.0)
        self.blocks = nn.ModuleList(
            SpikingRWKVBlock(n_embd, i, n_layer, dropout=dropout, wkv_backend=wkv_backend, lif_backend=lif_backend)
            for i in range(n_layer)
        )
        self.ln_out = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self._init_embedding_and_head()

    @torch.no_grad()
    def _init_embedding_and_head(self) -> None:
        V, C = self.vocab_size, self.n_embd
        nn.init.orthogonal_(self.emb.weight, gain=1e-4 * math.sqrt(max(V, C)))
        nn.init.orthogonal_(self.head.weight, gain=0.5 * (math.sqrt(V / C) if V > C else 1.0))

    def config(self) -> dict:
        """The constructor arguments (JSON-able): ``SpikeGPT(**model.config())`` builds the same architecture."""
        return {"vocab_size": self.vocab_size, "n_layer": self.n_layer, "n_embd": self.n_embd,
                "ctx_len": self.ctx_len, "dropout": self.dropout}

    def forward_state(self, idx: torch.Tensor, state: Optional[SpikeGPTState] = None
                      ) -> tuple[torch.Tensor, SpikeGPTState]:
        """Logits ``[B, T, vocab]`` of ``idx [B, T]`` starting from ``state`` (None: from rest), and the state after
        the last token. No ``ctx_len`` limit: a long text may be fed in chunks."""
        check_token_ids("idx", idx, self.vocab_size)
        if idx.dim() != 2 or idx.shape[1] == 0:
            raise ValueError(f"idx must be token ids [B, T] with T >= 1, got shape {tuple(idx.shape)}")
        if state is not None and (not isinstance(state, (list, tuple)) or len(state) != self.n_layer):
            raise ValueError(f"state must be None or the list of {self.n_layer} per-layer states that step() returns")
        x = self.spike(self.emb(idx.t()))  # [T, B, C] binary
        new_state: SpikeGPTState = []
        for i, block in enumerate(self.blocks):
            x, s = block(x, None if state is None else state[i])
            new_state.append(s)
        return self.head(self.ln_out(x)).transpose(0, 1), new_state

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Parallel (training) mode: ids ``[B, T]`` (``T <= ctx_len``) -> logits ``[B, T, vocab_size]``."""
        if isinstance(idx, torch.Tensor) and idx.dim() == 2 and idx.shape[1] > self.ctx_len:
            raise ValueError(f"idx has {idx.shape[1]} tokens, more than ctx_len = {self.ctx_len}; train on windows "
                             "of at most ctx_len tokens (or stream with step()/forward_state())")
        return self.forward_state(idx)[0]

    def step(self, tok: int | torch.Tensor, state: Optional[SpikeGPTState] = None
             ) -> tuple[torch.Tensor, SpikeGPTState]:
        """RNN (streaming) mode: one token per sequence (``tok`` an int or ids ``[B]``) -> logits ``[B, vocab]``
        and the new state; the same logits as the parallel forward at that position."""
        if isinstance(tok, bool):
            raise TypeError("tok must be an int or an integer tensor [B], got a bool")
        if isinstance(tok, int):
            tok = torch.tensor([tok], device=self.emb.weight.device)
        if not isinstance(tok, torch.Tensor):
            raise TypeError(f"tok must be an int or an integer tensor [B], got {type(tok).__name__}")
        if tok.dim() != 1:
            raise ValueError(f"tok must be one token per sequence [B], got shape {tuple(tok.shape)}")
        logits, state = self.forward_state(tok.unsqueeze(1), state)
        return logits[:, 0], state


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of tokens whose probability sums to ``top_p``."""
    probs = torch.softmax(logits, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    # A token stays if the mass before it is below top_p, so the most likely token always stays.
    before = sorted_p.cumsum(-1) - sorted_p
    keep_sorted = before < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


@torch.no_grad()
def generate(model: SpikeGPT, prompt_ids: Sequence[int] | torch.Tensor, tokens: int, temperature: float = 1.0,
             top_p: float = 1.0, generator: Optional[torch.Generator] = None) -> list[int]:
    """Sample ``tokens`` new token ids after ``prompt_ids`` in RNN mode; returns only the new ids.

    The prompt is read in one parallel call (the state after it equals token-by-token reading), then each token is
    drawn from ``softmax(logits / temperature)`` restricted to the nucleus of mass ``top_p``. ``temperature = 0``
    picks the most likely token. Randomness comes only from ``generator`` (a ``torch.Generator`` on the CPU; None
    uses torch's global one).
    """
    if not isinstance(model, SpikeGPT):
        raise TypeError(f"model must be a SpikeGPT, got {type(model).__name__}")
    tokens = int(tokens)
    if tokens < 0:
        raise ValueError(f"tokens must be >= 0, got {tokens}")
    temperature = check_real("temperature", temperature)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    top_p = check_real("top_p", top_p)
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    device = model.emb.weight.device
    ids = torch.as_tensor(prompt_ids, dtype=torch.long).reshape(-1)
    if ids.numel() == 0:
        raise ValueError("prompt_ids is empty; give at least one token")
    was_training = model.training
    model.eval()
    try:
        logits, state = model.forward_state(ids.unsqueeze(0).to(device))
        last = logits[:, -1].float().cpu()
        out: list[int] = []
        for _ in range(tokens):
            if temperature == 0:
                nxt = int(last.argmax(-1))
            else:
                probs = torch.softmax(_top_p_filter(last / temperature, top_p), dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=generator))
            out.append(nxt)
            if len(out) < tokens:  # the last token's logits are never used
                logits, state = model.step(torch.tensor([nxt], device=device), state)
                last = logits.float().cpu()
        return out
    finally:
        model.train(was_training)
