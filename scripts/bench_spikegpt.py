"""Benchmark SpikeGPT: training tokens/s and generation tokens/s.

- training: one optimiser step (parallel-mode forward over ``B x ctx_len`` tokens, next-token loss, backward, Adam
  with the paper's betas, gradient clipping 1.0), bf16 autocast on CUDA with ``--amp``; tokens/s = ``B * ctx_len``
  / median step time;
- generation: RNN (streaming) mode, :meth:`SpikeGPT.step` one token at a time for ``B_gen`` sequences (default 1),
  as :func:`snnkit.models.generate` runs it; tokens/s = generated tokens per second (all sequences together).

    python scripts/bench_spikegpt.py                                  # 12 x 512, ctx 1024, B 8 on CUDA (paper's 46M)
    python scripts/bench_spikegpt.py --device cpu --n-layer 2 --n-embd 128 --ctx-len 64 --batch-size 16 --threads 1

Prints a table and writes JSON with the device name.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import torch

from snnkit.benchmark import device_name, environment, median_ms, write_json
from snnkit.models import SpikeGPT
from snnkit.training.lm import PAPER_BETAS, lm_cross_entropy


def bench_training(model: SpikeGPT, batch: int, device: str, amp: bool, warmup: int, repeats: int) -> float:
    """Training tokens per second (one optimiser step per timed call)."""
    opt = torch.optim.Adam(model.parameters(), lr=6e-4, betas=PAPER_BETAS)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, model.vocab_size, (batch, model.ctx_len), generator=g).to(device)
    y = torch.randint(0, model.vocab_size, (batch, model.ctx_len), generator=g).to(device)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device == "cuda"):
            logits = model(x)
        lm_cross_entropy(logits, y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return batch * model.ctx_len / (median_ms(step, device, repeats, warmup) / 1e3)


@torch.no_grad()
def bench_generation(model: SpikeGPT, batch: int, tokens: int, device: str, amp: bool, repeats: int) -> float:
    """Generated tokens per second in RNN mode (``tokens`` steps for ``batch`` sequences per timed call)."""
    model.eval()
    tok = torch.zeros(batch, dtype=torch.long, device=device)

    def run() -> None:
        state = None
        t = tok
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device == "cuda"):
            for _ in range(tokens):
                logits, state = model.step(t, state)
                t = logits.argmax(-1)

    return batch * tokens / (median_ms(run, device, repeats) / 1e3)


def main(argv=None) -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if cuda else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=512)
    p.add_argument("--ctx-len", type=int, default=1024)
    p.add_argument("--vocab-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8, help="training batch")
    p.add_argument("--gen-batch", type=int, default=1, help="sequences generated together")
    p.add_argument("--gen-tokens", type=int, default=256, help="tokens generated per timed call")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 autocast on CUDA")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 10 CUDA, 3 CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--out", default="bench_spikegpt.json", help="JSON output path")
    a = p.parse_args(argv)
    if a.device == "cuda" and not cuda:
        p.error("--device cuda but no CUDA device is available")
    for flag in ("n_layer", "n_embd", "ctx_len", "vocab_size", "batch_size", "gen_batch", "gen_tokens"):
        if getattr(a, flag) < 1:
            p.error(f"argument --{flag.replace('_', '-')}: must be >= 1, got {getattr(a, flag)}")
    if a.threads:
        torch.set_num_threads(a.threads)
    repeats = a.repeats or (10 if a.device == "cuda" else 3)
    torch.manual_seed(0)
    model = SpikeGPT(vocab_size=a.vocab_size, n_layer=a.n_layer, n_embd=a.n_embd, ctx_len=a.ctx_len).to(a.device)
    params = sum(p.numel() for p in model.parameters())
    train_tps = bench_training(model, a.batch_size, a.device, a.amp, warmup=2, repeats=repeats)
    gen_tps = bench_generation(model, a.gen_batch, a.gen_tokens, a.device, a.amp, repeats)
    amp = a.amp and a.device == "cuda"
    print(f"SpikeGPT {a.n_layer} x {a.n_embd}, ctx {a.ctx_len}, vocab {a.vocab_size} ({params / 1e6:.2f}M parameters) "
          f"on {device_name(a.device)}{', bf16 autocast' if amp else ', float32'}")
    print(f"{'':28s}{'tokens/s':>12s}")
    print(f"{'training (B=' + str(a.batch_size) + ')':28s}{train_tps:12.0f}")
    print(f"{'generation (RNN, B=' + str(a.gen_batch) + ')':28s}{gen_tps:12.1f}")
    result = {
        "benchmark": "spikegpt",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(a.device),
        "model": model.config(),
        "parameters": params,
        "amp_bf16": amp,
        "train_batch": a.batch_size,
        "gen_batch": a.gen_batch,
        "gen_tokens": a.gen_tokens,
        "repeats": repeats,
        "train_tokens_per_s": train_tps,
        "generate_tokens_per_s": gen_tps,
    }
    write_json(a.out, result, indent=1)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
