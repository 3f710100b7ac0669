"""SpikeGPT: RNN (streaming) mode equals parallel mode, binary input spikes, generation (greedy, seeded, top-p),
and bad input."""

from __future__ import annotations

import os

import pytest
import torch

from snnkit.models import SpikeGPT, generate
from snnkit.models.spikegpt import _top_p_filter
from snnkit.training.metrics import SpikeCounter


def _tiny(seed: int = 0, n_layer: int = 3, vocab: int = 40) -> SpikeGPT:
    """A tiny model whose zero-initialised projections are made random, so its LIFs fire."""
    torch.manual_seed(seed)
    model = SpikeGPT(vocab_size=vocab, n_layer=n_layer, n_embd=16, ctx_len=32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and not name.startswith("emb"):
                p.normal_(0, 0.5)
    return model.eval()


def test_rnn_mode_equals_parallel_mode() -> None:
    model = _tiny()
    idx = torch.randint(0, 40, (2, 24), generator=torch.Generator().manual_seed(1))
    with SpikeCounter(model) as counter:
        logits = model(idx)
        spikes, steps = counter.totals()
    assert logits.shape == (2, 24, 40)
    assert 0 < spikes < steps, "the LIFs must fire for this test to mean anything"
    state, steps_out = None, []
    for t in range(24):
        out, state = model.step(idx[:, t], state)
        steps_out.append(out)
    torch.testing.assert_close(torch.stack(steps_out, 1), logits, rtol=1e-5, atol=1e-5)
    # chunks with the carried state, and a single sequence fed by ints
    a, s = model.forward_state(idx[:, :10])
    b, _ = model.forward_state(idx[:, 10:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), logits, rtol=1e-5, atol=1e-5)
    state = None
    for t in range(5):
        one, state = model.step(int(idx[1, t]), state)
    torch.testing.assert_close(one[0], logits[1, 4], rtol=1e-5, atol=1e-5)


def test_input_is_binary_spikes_and_the_surrogate_trains_the_embedding() -> None:
    model = _tiny(n_layer=1)
    seen = {}
    def keep_input(_m, inputs, _out) -> None:  # returns None: a forward hook's return value replaces the output
        seen["x"] = inputs[0].detach()

    model.blocks[0].ln0.register_forward_hook(keep_input)
    model.train()
    model(torch.randint(0, 40, (2, 8))).sum().backward()
    x = seen["x"]
    assert torch.all((x == 0) | (x == 1)) and 0 < x.sum() < x.numel()
    assert model.emb.weight.grad is not None and model.emb.weight.grad.abs().sum() > 0


def test_every_block_holds_two_counted_lifs() -> None:
    model = _tiny(n_layer=2)
    with SpikeCounter(model) as counter:
        assert counter.names == ["blocks.0.lif1", "blocks.0.lif2", "blocks.1.lif1", "blocks.1.lif2"]


def test_generate_greedy_seeded_and_top_p() -> None:
    model = _tiny()
    prompt = [3, 1, 4]
    greedy = generate(model, prompt, 6, temperature=0.0)
    # greedy by hand: argmax of the step logits, fed back
    state, ids = None, list(prompt)
    for tok in prompt:
        logits, state = model.step(tok, state)
    for _ in range(6):
        nxt = int(logits[0].argmax())
        ids.append(nxt)
        logits, state = model.step(nxt, state)
    assert greedy == ids[3:]
    a = generate(model, prompt, 20, 1.0, 0.9, torch.Generator().manual_seed(7))
    b = generate(model, prompt, 20, 1.0, 0.9, torch.Generator().manual_seed(7))
    assert a == b and len(a) == 20 and all(0 <= t < 40 for t in a)
    # a nucleus this small holds only the most likely token: sampling is greedy
    assert generate(model, prompt, 6, 1.0, 1e-6, torch.Generator().manual_seed(3)) == greedy


def test_top_p_filter_keeps_the_smallest_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.15, 0.5, 0.05, 0.3]]))
    kept = lambda p: torch.isfinite(_top_p_filter(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.5) == [False, True, False, False]
    assert kept(0.8) == [False, True, False, True]
    assert kept(0.81) == [True, True, False, True]
    assert kept(1.0) == [True, True, True, True]


def test_bad_input() -> None:
    model = _tiny(n_layer=1)
    with pytest.raises(ValueError, match="token id 40, outside the vocabulary"):
        model(torch.tensor([[1, 40]]))
    with pytest.raises(ValueError, match="token id -1"):
        model.step(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer tensor of token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="more than ctx_len = 32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"one token per sequence \[B\]"):
        model.step(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="top_p"):
        generate(model, [1], 3, top_p=0.0)
    with pytest.raises(ValueError, match="prompt_ids is empty"):
        generate(model, [], 3)
    with pytest.raises(ValueError, match="vocab_size must be >= 1"):
        SpikeGPT(vocab_size=0)


def test_bf16_autocast_trains_and_streams_with_float32_state() -> None:
    from snnkit.training.lm import lm_cross_entropy

    model = _tiny(n_layer=2).train()
    idx = torch.randint(0, 40, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(idx)
    assert logits.dtype == torch.bfloat16
    lm_cross_entropy(logits, idx).backward()
    assert model.blocks[1].att.time_decay.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, state = model.step(idx[:, 0])
    for s in state:
        assert s.wkv.dtype == torch.float32 and s.v_att.dtype == torch.float32 and s.v_ffn.dtype == torch.float32



@pytest.mark.skipif(not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
                    reason="needs CUDA or TRITON_INTERPRET=1")
def test_triton_kernels_match_the_torch_path() -> None:
    """The GPU route (Triton WKV and LIF kernels; under the interpreter without CUDA) computes the same logits and
    gradients as the PyTorch path, and its RNN mode matches its parallel mode."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = _tiny(n_layer=2).to(device)
    kern = SpikeGPT(vocab_size=40, n_layer=2, n_embd=16, ctx_len=32, wkv_backend="triton",
                    lif_backend="triton").to(device).eval()
    kern.load_state_dict(ref.state_dict())
    idx = torch.randint(0, 40, (2, 8), generator=torch.Generator().manual_seed(4)).to(device)
    a, b = ref(idx), kern(idx)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    a.square().mean().backward()
    b.square().mean().backward()
    for (name, p), q in zip(ref.named_parameters(), kern.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():
        state, outs = None, []
        for t in range(8):
            out, state = kern.step(idx[:, t], state)
            outs.append(out)
    torch.testing.assert_close(torch.stack(outs, 1), b.detach(), rtol=1e-5, atol=1e-5)
