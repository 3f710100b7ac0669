"""Language-model pieces for :func:`snnkit.training.fit`: the next-token loss, bits per token, the paper's optimiser
and learning-rate schedule, per-layer firing rates and synaptic operations, and the ``snnkit train-lm`` runs.

No second training loop: :func:`train_lm` builds a :class:`~snnkit.models.SpikeGPT`, the text windows and these
pieces and hands them to :func:`~snnkit.training.fit`, which owns checkpoints, resume, gradient clipping and bf16
autocast. SpikeGPT's training recipe (Zhu et al. 2023, reference code ridgerchu/SpikeGPT): Adam with betas
(0.9, 0.99), no weight decay, learning rate 6e-4 decayed to 1e-5, gradient norm clipped to 1.0.

Bits. ``bits per token = mean next-token cross-entropy (nats) / ln 2`` on the held-out split. With the byte tokenizer
a token is a byte, so this is bits per byte (bits per character for ASCII text, the enwik8 "BPC"); with the
character tokenizer it is bits per character. With a tokenizers file a token spans several bytes: the record's
``test_bpc`` is then bits per *token*, and ``test_bpb`` converts it to bits per byte of held-out text
(``bpt * held-out tokens / held-out bytes``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnkit.atomic import atomic_write_text

from .callbacks import Callback
from .losses import LOSSES
from .metrics import METRICS, Metric, is_neuron

__all__ = ["lm_cross_entropy", "BitsPerToken", "adam_betas_optimizer", "WarmupExpDecay", "LayerStats",
           "count_synops", "LMConfig", "LMConfigError", "train_lm", "resume_lm", "load_lm_run", "LM_CONFIG_NAME",
           "PAPER_BETAS"]

#: Adam's betas in SpikeGPT's training (ridgerchu/SpikeGPT train.py).
PAPER_BETAS = (0.9, 0.99)
#: The run directory file that describes an LM run (model config, tokenizer, data, training settings).
LM_CONFIG_NAME = "lm_config.json"


def _check_lm_pair(logits: torch.Tensor, target: torch.Tensor, who: str) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(f"{who}: logits must be [B, T, vocab], got "
                         f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"{who}: target must be an integer tensor of next-token ids [B, T]")
    if tuple(target.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"{who}: target must have shape [B, T] = {list(logits.shape[:2])}, got {list(target.shape)}")


def lm_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy in nats, the mean over every token of the batch; ``logits [B, T, V]``, ``target
    [B, T]``. Computed in float32 for half-precision logits (a bf16 forward does not round the loss)."""
    _check_lm_pair(logits, target, "lm-ce")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


@LOSSES.register("lm-ce")
def _lm_ce():
    return lm_cross_entropy


@METRICS.register("bpc")
class BitsPerToken(Metric):
    """Bits per token, ``sum of next-token cross-entropy (nats) / (ln 2 * tokens)``: bits per byte for the byte
    tokenizer, bits per character for the character tokenizer (see the module docstring for tokenizer files).
    Sums ``[nats, tokens]`` on the device, so the epoch's value is exact over the whole split."""

    name = "bpc"
    key = "bpc"
    num_sums = 2
    label = "bits per token"

    def batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_lm_pair(logits, target, "bpc")
        nats = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")
        nats = nats.to(torch.float64)
        return torch.stack([nats, nats.new_full((), target.numel())])

    def result(self, sums: torch.Tensor) -> float:
        nats, tokens = sums.tolist()
        return nats / (math.log(2) * tokens) if tokens else float("nan")


def adam_betas_optimizer(lr: float = 6e-4, betas: tuple[float, float] = PAPER_BETAS, eps: float = 1e-8,
                         weight_decay: float = 0.0):
    """An optimiser factory for ``fit(optimizer=...)``: Adam with SpikeGPT's betas (0.9, 0.99) and no weight decay
    (the paper's), or AdamW when ``weight_decay > 0``."""
    def build(params):
        if weight_decay > 0:
            return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)

    return build


class WarmupExpDecay:
    """Learning-rate factor at optimiser step ``s`` (a ``LambdaLR`` lambda; a plain object so the scheduler's state
    is checkpointable): linear warm-up ``(s + 1) / warmup`` for ``s < warmup``, then exponential decay from 1 to
    ``final_ratio`` at step ``total`` (RWKV's ``lr_init -> lr_final``, 6e-4 -> 1e-5 in SpikeGPT), constant after."""

    def __init__(self, warmup: int, total: int, final_ratio: float) -> None:
        if warmup < 0 or total < 1 or not 0 < final_ratio <= 1:
            raise ValueError(f"need warmup >= 0, total >= 1 and final_ratio in (0, 1], got {warmup}, {total}, "
                             f"{final_ratio}")
        self.warmup, self.total, self.final_ratio = int(warmup), int(total), float(final_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(self.total - self.warmup, 1)
        progress = min((step - self.warmup) / span, 1.0)
        return self.final_ratio ** progress


def _linear_ops(mod: nn.Linear, x: torch.Tensor) -> tuple[float, float]:
    """``(MACs, ACs)`` of one call of ``mod`` on ``x``: ACs when ``x`` holds only 0 and 1 (spike-driven), else MACs."""
    x = x.detach()
    if bool(((x == 0) | (x == 1)).all()):
        return 0.0, float((x != 0).sum()) * mod.out_features
    return float(x.numel()) * mod.out_features, 0.0


def count_synops(model: nn.Module, run) -> dict[str, float]:
    """Synaptic operations of ``run()`` (a forward pass of ``model``), measured with forward hooks.

    Every ``nn.Linear`` call whose input holds only 0 and 1 is spike-driven: it costs one accumulate (AC) per
    non-zero input and output unit (``nnz * out_features``); any other input costs ``tokens * in * out``
    multiply-accumulates (MAC). Each spike a neuron emits into a residual stream adds one AC. This counts what the
    code computes: in SpikeGPT (as in the reference code) a LayerNorm sits between every LIF and the next linear
    layer, so the linear layers read real values and count as MACs, and the spikes' cost is their accumulation
    into the residual stream.

    Returns ``{"mac": ..., "ac": ...}`` totals over the pass.
    """
    totals = {"mac": 0.0, "ac": 0.0}

    def linear_hook(mod: nn.Linear, inputs, _out) -> None:
        mac, ac = _linear_ops(mod, inputs[0])
        totals["mac"] += mac
        totals["ac"] += ac

    def neuron_hook(_mod, _inputs, out) -> None:
        s = out[0] if isinstance(out, (tuple, list)) else out
        totals["ac"] += float(s.detach().sum())

    handles = [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    handles += [m.register_forward_hook(neuron_hook) for m in model.modules() if is_neuron(m)]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return totals


class LayerStats(Callback):
    """Adds to every epoch's record the firing rate of each LIF layer and the synaptic operations per token, both
    measured on the held-out evaluation that ends the epoch (``fit`` runs it in eval mode right before
    :meth:`on_epoch_end`).

    Record keys: ``firing_rates`` (``{layer name: spikes per neuron per token}``), ``synops_per_token``
    (``{"mac": ..., "ac": ...}``, see :func:`count_synops`). ``fit``'s own ``spike_rate`` is the training batches'
    rate over all LIF layers together.
    """

    def __init__(self) -> None:
        self._handles: list[Any] = []
        self._spikes: dict[str, torch.Tensor] = {}
        self._steps: dict[str, int] = {}
        self._ops = {"mac": 0.0, "ac": 0.0}
        self._tokens = 0

    def on_train_start(self, trainer) -> None:
        self.close()
        model = trainer.model
        for name, m in model.named_modules():
            if is_neuron(m):
                self._handles.append(m.register_forward_hook(self._neuron_hook(name)))
            elif isinstance(m, nn.Linear):
                self._handles.append(m.register_forward_hook(self._linear_hook))
        if hasattr(model, "emb"):
            self._handles.append(model.emb.register_forward_hook(self._token_hook))

    def _neuron_hook(self, name: str):
        def hook(mod, _inputs, out) -> None:
            if mod.training:
                return
            s = (out[0] if isinstance(out, (tuple, list)) else out).detach()
            total = s.float().sum()
            self._spikes[name] = self._spikes[name] + total if name in self._spikes else total
            self._steps[name] = self._steps.get(name, 0) + s.numel()
            self._ops["ac"] += float(total)

        return hook

    def _linear_hook(self, mod: nn.Linear, inputs, _out) -> None:
        if mod.training:
            return
        mac, ac = _linear_ops(mod, inputs[0])
        self._ops["mac"] += mac
        self._ops["ac"] += ac

    def _token_hook(self, mod, inputs, _out) -> None:
        if not mod.training:
            self._tokens += inputs[0].numel()

    def on_epoch_end(self, trainer) -> None:
        if self._steps:
            trainer.history[-1]["firing_rates"] = {n: float(self._spikes[n]) / self._steps[n] for n in self._steps}
        if self._tokens:
            trainer.history[-1]["synops_per_token"] = {k: v / self._tokens for k, v in self._ops.items()}
        self._spikes, self._steps, self._ops, self._tokens = {}, {}, {"mac": 0.0, "ac": 0.0}, 0
        if trainer.epoch + 1 >= trainer.epochs:  # the last epoch: leave no hooks on the trained model
            self.close()

    def close(self) -> None:
        """Remove the hooks (done after the last epoch; :meth:`on_train_start` adds them again)."""
        for h in self._handles:
            h.remove()
        self._handles = []


class LMConfigError(ValueError):
    """An invalid :class:`LMConfig` setting; ``field`` names it (the CLI maps it to its flag)."""

    def __init__(self, field_name: str, problem: str) -> None:
        self.field, self.problem = field_name, problem
        super().__init__(f"{field_name} {problem}")


@dataclass
class LMConfig:
    """Settings of a ``snnkit train-lm`` run (saved as ``lm_config.json`` in the run directory).

    The defaults train a small SpikeGPT on the built-in corpus (:func:`snnkit.data.text.default_corpus`) in a few
    minutes on a 2-core CPU; the paper's enwik8 model is ``n_layer=12, n_embd=512, ctx_len=1024`` with ``lr=6e-4``
    (``final_lr=1e-5``, Adam betas (0.9, 0.99), gradient clip 1.0: the other defaults here).
    """

    data: str | None = None  #: text file; None: the built-in corpus
    tokenizer: str = "byte"  #: "byte", "char" or a tokenizers file path
    n_layer: int = 2
    n_embd: int = 128
    ctx_len: int = 64
    dropout: float = 0.0
    batch_size: int = 16
    epochs: int = 6  #: evaluation (held-out bits per token) after each
    steps_per_epoch: int = 200
    lr: float = 2e-3  #: for the small default model; the paper's 46M model used 6e-4
    final_lr: float = 1e-5
    warmup: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0  #: the paper's
    held_out: float = 0.1
    eval_tokens: int | None = 16384  #: held-out tokens evaluated each epoch (from its start); None: all
    seed: int = 0
    device: str = "auto"
    amp: bool = True  #: bf16 autocast on CUDA (no effect on CPU)
    ckpt_every: int = 100
    out: str = "runs"
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  #: written by train_lm: model config, tokenizer spec, ...

    def check(self) -> None:
        """Raise :class:`LMConfigError` (a ValueError) naming the first invalid setting by its field name."""
        def bad(name: str, problem: str) -> None:
            raise LMConfigError(name, problem)

        for name in ("n_layer", "n_embd", "ctx_len", "batch_size", "epochs", "steps_per_epoch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(name, f"must be an integer >= 1, got {v!r}")
        for name in ("warmup", "ckpt_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(name, f"must be an integer >= 0, got {v!r}")
        if self.eval_tokens is not None and (isinstance(self.eval_tokens, bool) or not isinstance(self.eval_tokens, int)
                                             or self.eval_tokens < 1):
            bad("eval_tokens", f"must be an integer >= 1 or None, got {self.eval_tokens!r}")
        for name in ("lr", "final_lr", "dropout", "held_out", "grad_clip", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(name, f"must be a finite number, got {v!r}")
        if self.lr <= 0:
            bad("lr", f"must be > 0, got {self.lr}")
        if not 0 < self.final_lr <= self.lr:
            bad("final_lr", f"must be in (0, lr = {self.lr}], got {self.final_lr}")
        if not 0 <= self.dropout < 1:
            bad("dropout", f"must be in [0, 1), got {self.dropout}")
        if not 0 < self.held_out < 1:
            bad("held_out", f"must be a fraction in (0, 1), got {self.held_out}")
        if self.grad_clip <= 0:
            bad("grad_clip", f"must be > 0, got {self.grad_clip}")
        if self.weight_decay < 0:
            bad("weight_decay", f"must be >= 0, got {self.weight_decay}")
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            bad("device", f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            bad("device", f"is {self.device!r} but CUDA is not available on this machine (use cpu or auto)")
        if not isinstance(self.tokenizer, str) or not self.tokenizer:
            bad("tokenizer", f"must be 'byte', 'char' or a tokenizers file path, got {self.tokenizer!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LMConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class LMData:
    """Tokenized text of a run: the tokenizer, train and held-out ids, and the held-out text's size in bytes."""

    tokenizer: Any
    train_ids: torch.Tensor
    test_ids: torch.Tensor
    test_bytes: int


def prepare_text(cfg: LMConfig, tokenizer=None) -> LMData:
    """Read, tokenize and split the corpus of ``cfg`` (a given ``tokenizer`` is reused, as on resume)."""
    from snnkit.data import text

    kind = cfg.tokenizer if cfg.tokenizer in text.TOKENIZER_KINDS else "file"
    corpus = text.read_corpus(cfg.data, "byte" if kind == "byte" else "char" if kind == "char" else "file")
    tok = tokenizer if tokenizer is not None else text.make_tokenizer(cfg.tokenizer, corpus)
    if isinstance(corpus, bytes) and isinstance(tok, text.ByteTokenizer):
        # the bytes are the ids: no Python list of a hundred million ints for enwik8
        ids = torch.frombuffer(bytearray(corpus), dtype=torch.uint8).to(torch.long)
    else:
        ids = torch.tensor(tok.encode(corpus), dtype=torch.long)
    if ids.numel() == 0:
        raise ValueError("the corpus holds no tokens")
    train_ids, test_ids = text.split_ids(ids, float(cfg.held_out))
    if cfg.eval_tokens is not None:
        test_ids = test_ids[: cfg.eval_tokens + 1]
    test_bytes = len(tok.decode(test_ids[1:].tolist()).encode("utf-8")) if kind == "file" else test_ids.numel() - 1
    return LMData(tok, train_ids, test_ids, test_bytes)


def _loaders(cfg: LMConfig, d: LMData, vocab_size: int):
    from torch.utils.data import DataLoader

    from snnkit.data.text import LMWindows

    train = LMWindows(d.train_ids, cfg.ctx_len, vocab_size=vocab_size, name="the training split")
    test = LMWindows(d.test_ids, cfg.ctx_len, vocab_size=vocab_size, name="the held-out split")
    # fit re-creates a shuffling loader over a map-style dataset with its resumable sampler: the order is a function
    # of (seed, epoch), so a killed run resumes exactly.
    return (DataLoader(train, batch_size=cfg.batch_size, shuffle=True, drop_last=True),
            DataLoader(test, batch_size=cfg.batch_size, shuffle=False))


class _BitsPerByte(Callback):
    """For a tokenizers file: converts the held-out bits per token into bits per byte (``test_bpb``)."""

    def __init__(self, tokens_per_byte: float) -> None:
        self.tokens_per_byte = tokens_per_byte

    def on_epoch_end(self, trainer) -> None:
        rec = trainer.history[-1]
        if "test_bpc" in rec:
            rec["test_bpb"] = rec["test_bpc"] * self.tokens_per_byte


def _build(cfg: LMConfig, d: LMData, run_dir: Path | None, resume: bool, progress: bool,
           extra_callbacks: Sequence[Any] = ()):
    from snnkit.models.spikegpt import SpikeGPT

    from .batches import seed_all
    from .loop import fit

    seed_all(cfg.seed)  # the initial weights
    model = SpikeGPT(vocab_size=d.tokenizer.vocab_size, n_layer=cfg.n_layer, n_embd=cfg.n_embd,
                     ctx_len=cfg.ctx_len, dropout=cfg.dropout)
    train, test = _loaders(cfg, d, model.vocab_size)
    steps = min(cfg.steps_per_epoch, len(train))
    if steps == 0:
        raise ValueError(f"the training split has {len(train.dataset)} windows of ctx_len {cfg.ctx_len}, fewer than "
                         f"one batch of {cfg.batch_size}; use a longer text, a smaller ctx_len or batch_size")
    total = steps * cfg.epochs
    schedule = WarmupExpDecay(min(cfg.warmup, total), total, cfg.final_lr / cfg.lr)
    callbacks: list[Any] = [LayerStats(), *extra_callbacks]
    if cfg.tokenizer not in ("byte", "char"):
        n_tok = d.test_ids.numel() - 1
        callbacks.append(_BitsPerByte(n_tok / max(d.test_bytes, 1)))
    return fit(
        model, train, test_data=test, epochs=cfg.epochs,
        optimizer=adam_betas_optimizer(cfg.lr, PAPER_BETAS, weight_decay=cfg.weight_decay),
        lr=cfg.lr, weight_decay=cfg.weight_decay,
        scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule), grad_clip=cfg.grad_clip,
        loss="lm-ce", metrics=[BitsPerToken()], callbacks=callbacks, batch_size=cfg.batch_size,
        max_train_batches=steps, seed=cfg.seed, device=cfg.device, amp=cfg.amp and _on_cuda(cfg.device),
        run_dir=run_dir, resume=resume, ckpt_every=cfg.ckpt_every, plot_every=0, progress=progress,
    )


def _on_cuda(device: str) -> bool:
    # amp is on by default for GPU runs; asking fit for it on a CPU would only print a note
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _new_run_dir(cfg: LMConfig) -> Path:
    from .runs import create_run_dir

    if cfg.name:
        return create_run_dir(cfg.out, cfg.name, unique=False)
    return create_run_dir(cfg.out, "lm-" + datetime.now().strftime("%Y%m%d-%H%M%S"), unique=True)


def train_lm(cfg: LMConfig, *, progress: bool = True, run_dir: str | os.PathLike | None = None,
             callbacks: Sequence[Any] = ()):
    """Train a SpikeGPT language model as ``cfg`` says, through :func:`~snnkit.training.fit`, in a new run directory
    (``cfg.out/cfg.name`` or ``cfg.out/lm-<time>``; or ``run_dir``). The directory holds fit's checkpoint and
    ``metrics.jsonl``, plus ``lm_config.json`` (settings, model config, tokenizer spec) and, for a tokenizers file,
    a copy of it: everything :func:`load_lm_run` and ``snnkit generate`` need.

    ``callbacks`` are passed on to ``fit`` (after the firing-rate and synaptic-operation recorder).

    Returns fit's :class:`~snnkit.training.TrainResult` (``history[-1]["test_bpc"]`` is the held-out bits per token).
    """
    cfg.check()
    d = prepare_text(cfg)
    path = Path(run_dir) if run_dir is not None else _new_run_dir(cfg)
    path.mkdir(parents=True, exist_ok=True)
    spec = d.tokenizer.spec()
    if spec["kind"] == "file":  # keep the run self-contained
        shutil.copyfile(spec["path"], path / "tokenizer.json")
        spec = {"kind": "file", "path": "tokenizer.json"}
    cfg.extra = {
        "model": {"vocab_size": d.tokenizer.vocab_size, "n_layer": cfg.n_layer, "n_embd": cfg.n_embd,
                  "ctx_len": cfg.ctx_len, "dropout": cfg.dropout},
        "tokenizer": spec,
        "train_tokens": int(d.train_ids.numel()),
        "test_tokens": int(d.test_ids.numel() - 1),
        "test_bytes": int(d.test_bytes),
    }
    atomic_write_text(path / LM_CONFIG_NAME, json.dumps(cfg.to_dict(), indent=2) + "\n")
    return _build(cfg, d, path, resume=False, progress=progress, extra_callbacks=callbacks)


def _read_config(run_dir: Path) -> LMConfig:
    p = run_dir / LM_CONFIG_NAME
    if not p.is_file():
        raise FileNotFoundError(f"{run_dir} is not a train-lm run directory ({LM_CONFIG_NAME} not found)")
    return LMConfig.from_dict(json.loads(p.read_text(encoding="utf-8")))


def resume_lm(run_dir: str | os.PathLike, *, progress: bool = True, callbacks: Sequence[Any] = ()):
    """Continue the ``train-lm`` run in ``run_dir`` from its last checkpoint with its saved settings, exactly where
    it stopped (fit's exact resume); a run killed before its first checkpoint starts over in place."""
    from snnkit.data.text import tokenizer_from_spec

    run_dir = Path(run_dir)
    cfg = _read_config(run_dir)
    tok = tokenizer_from_spec(cfg.extra["tokenizer"], base=run_dir)
    d = prepare_text(cfg, tokenizer=tok)
    return _build(cfg, d, run_dir, resume=True, progress=progress, extra_callbacks=callbacks)


def load_lm_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(model, tokenizer, config)`` of a ``train-lm`` run: the SpikeGPT with the checkpoint's weights (eval mode)."""
    from snnkit.data.text import tokenizer_from_spec
    from snnkit.models.spikegpt import SpikeGPT

    from .checkpoint import CHECKPOINT_NAME, load_checkpoint

    run_dir = Path(run_dir)
    cfg = _read_config(run_dir)
    tok = tokenizer_from_spec(cfg.extra["tokenizer"], base=run_dir)
    model = SpikeGPT(**cfg.extra["model"])
    payload = load_checkpoint(run_dir / CHECKPOINT_NAME)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), tok, cfg
