"""SpikeGPT's spiking RWKV layers: the paper's initialisation, the time mix against a direct O(T^2) evaluation, the
LIF against a hand-computed run, RNN (token by token) mode against parallel mode, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from snnkit.layers import RWKVState, SpikingChannelMix, SpikingRWKVBlock, SpikingTimeMix, TokenLIF


def _randomise(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> None:
    """Replace the zero-initialised projections by random ones, so every path carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)


# ------------------------------------------------------------------------------------------------ initialisation
def test_time_mix_init_matches_paper_formulas_for_small_c() -> None:
    # C = 4, layer 0 of 2: r0 = 0, r1 = 1.
    tm = SpikingTimeMix(4, layer_id=0, n_layer=2)
    expected_decay = [-5.0, -5 + 8 * (1 / 3) ** 0.7, -5 + 8 * (2 / 3) ** 0.7, 3.0]
    torch.testing.assert_close(tm.time_decay.data, torch.tensor(expected_decay), rtol=0, atol=1e-6)
    ln03 = math.log(0.3)
    torch.testing.assert_close(tm.time_first.data, torch.tensor([ln03, ln03 + 0.5, ln03 - 0.5, ln03]))
    torch.testing.assert_close(tm.mix_k.data, torch.tensor([0.0, 0.25, 0.5, 0.75]))
    torch.testing.assert_close(tm.mix_v.data, torch.tensor([0.0, 0.25, 0.5, 0.75]))
    torch.testing.assert_close(tm.mix_r.data, torch.tensor([0.0, 0.5, math.sqrt(0.5), math.sqrt(0.75)]))
    for lin in (tm.key, tm.receptance, tm.output):
        assert torch.count_nonzero(lin.weight) == 0
    torch.testing.assert_close(tm.value.weight @ tm.value.weight.T, torch.eye(4), atol=1e-5, rtol=0)

    # C = 4, layer 1 of 2: r0 = 1, r1 = 1/2.
    tm = SpikingTimeMix(4, layer_id=1, n_layer=2)
    torch.testing.assert_close(tm.time_decay.data, torch.tensor([-5 + 8 * (h / 3) ** 2.0 for h in range(4)]))
    root = [math.sqrt(i / 4) for i in range(4)]
    torch.testing.assert_close(tm.mix_k.data, torch.tensor(root))
    torch.testing.assert_close(tm.mix_v.data, torch.tensor([r + 0.3 for r in root]))
    torch.testing.assert_close(tm.mix_r.data, torch.tensor([(i / 4) ** 0.25 for i in range(4)]))


def test_channel_mix_init_matches_paper() -> None:
    cm = SpikingChannelMix(4, layer_id=1, n_layer=2)  # r1 = 1/2
    root = torch.tensor([math.sqrt(i / 4) for i in range(4)])
    torch.testing.assert_close(cm.mix_k.data, root)
    torch.testing.assert_close(cm.mix_r.data, root)
    assert cm.key.weight.shape == (16, 4) and cm.value.weight.shape == (4, 16)
    # orthogonal with gain sqrt(4C / C) = 2: columns orthogonal with norm 2
    torch.testing.assert_close(cm.key.weight.T @ cm.key.weight, 4 * torch.eye(4), atol=1e-5, rtol=0)
    assert torch.count_nonzero(cm.value.weight) == 0 and torch.count_nonzero(cm.receptance.weight) == 0


# ------------------------------------------------------------------------------------------------ time mix
def _wkv_direct(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The WKV formula summed directly, O(T^2), float64."""
    T = k.shape[0]
    out = torch.empty_like(k)
    for t in range(T):
        num = torch.exp(u + k[t]) * v[t]
        den = torch.exp(u + k[t])
        for i in range(t):
            e = torch.exp((t - 1 - i) * w + k[i])
            num = num + e * v[i]
            den = den + e
        out[t] = num / den
    return out


def test_time_mix_matches_direct_formula() -> None:
    torch.manual_seed(1)
    tm = SpikingTimeMix(6, layer_id=1, n_layer=3).double()
    _randomise(tm, std=0.4)
    x = torch.randn(7, 2, 6, dtype=torch.float64)
    out, (last, _) = tm(x)
    xx = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    W = lambda lin, z: z @ lin.weight.T  # noqa: E731
    mk, mv, mr = tm.mix_k, tm.mix_v, tm.mix_r
    k = W(tm.key, x * mk + xx * (1 - mk))
    v = W(tm.value, x * mv + xx * (1 - mv))
    r = W(tm.receptance, x * mr + xx * (1 - mr))
    y = _wkv_direct(-torch.exp(tm.time_decay), tm.time_first, k, v)
    expected = W(tm.output, torch.sigmoid(r) * y)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(last, x[-1])


def test_channel_mix_matches_formula() -> None:
    torch.manual_seed(2)
    cm = SpikingChannelMix(5, layer_id=0, n_layer=2).double()
    _randomise(cm)
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    out, _ = cm(x)
    xx = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    xk = x * cm.mix_k + xx * (1 - cm.mix_k)
    xr = x * cm.mix_r + xx * (1 - cm.mix_r)
    expected = torch.sigmoid(xr @ cm.receptance.weight.T) * (torch.relu(xk @ cm.key.weight.T) ** 2 @ cm.value.weight.T)
    torch.testing.assert_close(out, expected)


# ------------------------------------------------------------------------------------------------ LIF
def test_token_lif_matches_hand_computed_run_and_surrogate() -> None:
    # tau 2, decay_input, threshold 1, hard reset 0:
    # h1 = 0.75 (v 0.75); h2 = 0.75 + (0.5 - 0.75) / 2 = 0.625; h3 = 0.625 + (2.5 - 0.625) / 2 = 1.5625 -> spike,
    # v = 0; h4 = 0.
    lif = TokenLIF()
    x = torch.tensor([1.5, 0.5, 2.5, 0.0], dtype=torch.float64).reshape(4, 1, 1).requires_grad_(True)
    s, v = lif(x)
    torch.testing.assert_close(s.flatten(), torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(v.flatten(), torch.tensor([0.0], dtype=torch.float64))
    s[2].sum().backward()
    # ds3/dx3 = ATan(2)'(h3 - 1) * dh3/dx3 = 1 / (1 + (pi u)^2) * 1/2 with u = 0.5625
    assert x.grad[2].item() == pytest.approx(0.5 / (1 + (math.pi * 0.5625) ** 2), rel=1e-9)
    # carried potential: the last two steps from the state after two steps equal the whole run
    s2, _ = lif(x[:2].detach())
    _, v2 = lif(x[:2].detach())
    s_rest, _ = lif(x[2:].detach(), v2)
    torch.testing.assert_close(torch.cat([s2, s_rest]), s.detach())


def test_block_adds_binary_spikes_to_the_residual_stream() -> None:
    """A block past layer 0 adds exactly the two LIFs' spikes: the increment is 0, 1 or 2 everywhere, and both
    values 0 and >= 1 occur (a block whose LIF were the identity or a ReLU adds real numbers)."""
    torch.manual_seed(3)
    block = SpikingRWKVBlock(8, layer_id=1, n_layer=2)
    _randomise(block, std=1.0)
    x = torch.randn(12, 3, 8)
    y, state = block(x)
    inc = y - x
    counts = inc.round()
    torch.testing.assert_close(inc, counts, rtol=0, atol=1e-5, msg="the residual increment must be spike counts")
    assert torch.all((counts == 0) | (counts == 1) | (counts == 2))
    assert 0 < counts.count_nonzero() < counts.numel()
    assert isinstance(state, RWKVState) and state.wkv.shape == (3, 3, 8)


def test_block_gradients_reach_every_parameter() -> None:
    torch.manual_seed(4)
    block = SpikingRWKVBlock(6, layer_id=0, n_layer=2)
    _randomise(block, std=1.0)
    x = torch.randn(10, 2, 6)
    y, _ = block(x)
    (y * torch.randn_like(y)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------------------------------------ RNN mode
@pytest.mark.parametrize("layer_id", [0, 1])
def test_block_token_by_token_equals_parallel(layer_id: int) -> None:
    torch.manual_seed(5)
    block = SpikingRWKVBlock(8, layer_id=layer_id, n_layer=2).eval()
    _randomise(block, std=1.0)
    x = torch.randn(16, 2, 8)
    y_par, s_par = block(x)
    state, ys = None, []
    for t in range(16):
        y, state = block(x[t: t + 1], state)
        ys.append(y)
    torch.testing.assert_close(torch.cat(ys), y_par, rtol=1e-5, atol=1e-5)
    for a, b in zip(state, s_par, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # uneven chunks too
    y1, s1 = block(x[:5])
    y2, _ = block(x[5:], s1)
    torch.testing.assert_close(torch.cat([y1, y2]), y_par, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input_is_named() -> None:
    block = SpikingRWKVBlock(4, layer_id=0, n_layer=1)
    with pytest.raises(ValueError, match="C = n_embd = 4"):
        block(torch.randn(3, 2, 5))
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        block(torch.randn(3, 4))
    with pytest.raises(ValueError, match="T = 0"):
        block(torch.randn(0, 2, 4))
    with pytest.raises(TypeError, match="x must be a floating tensor"):
        block(torch.zeros(3, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="layer_id"):
        SpikingRWKVBlock(4, layer_id=2, n_layer=2)
    with pytest.raises(ValueError, match="n_embd must be >= 1"):
        SpikingTimeMix(0)
    with pytest.raises(ValueError, match="dropout"):
        SpikingRWKVBlock(4, dropout=1.5)
