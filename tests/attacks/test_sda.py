"""SDA on binary frames: binary result, L0 counts exactly the changed entries, success means misclassified (also
after the reduction), failure returns the input unchanged, bad input named."""

import importlib

import pytest
import torch
from torch import nn

from snnkit import attacks
sda_module = importlib.import_module("snnkit.attacks.sda")  # the module (the package exports the function as sda)


def _predict(model, x):
    with torch.no_grad():
        return model(x).mean(0).argmax(1)


@pytest.fixture(scope="module")
def sda_run(victim, test_data):
    x, y = test_data
    x, y = x[:, :12], y[:12]
    right = _predict(victim, x) == y
    return x[:, right], y[right], attacks.sda(victim, x[:, right], y[right], k_init=4, max_iter=60,
                                              generator=torch.Generator().manual_seed(0))


def test_result_is_binary_and_l0_counts_the_changed_entries(sda_run):
    x, y, r = sda_run
    assert r.adversarial.shape == x.shape
    assert ((r.adversarial == 0) | (r.adversarial == 1)).all()
    per_sample = (r.adversarial != x).transpose(0, 1).reshape(x.shape[1], -1).sum(1)
    assert torch.equal(per_sample, r.l0)
    assert r.success.float().mean() >= 0.8  # the sparse attack nearly always succeeds on this victim
    assert (r.l0[r.success] > 0).all()
    assert torch.allclose(r.l0_ratio, r.l0.double() / x[:, 0].numel())


def test_success_means_misclassified_and_failure_returns_the_input(victim, sda_run):
    x, y, r = sda_run
    pred = _predict(victim, r.adversarial)
    assert torch.equal(pred != y, r.success)
    failed = ~r.success
    assert torch.equal(r.adversarial[:, failed], x[:, failed]) and (r.l0[failed] == 0).all()


def test_failure_returns_the_input_unchanged(victim, test_data):
    x, y = test_data
    right = _predict(victim, x) == y
    x, y = x[:, right][:, :2], y[right][:2]
    r = attacks.sda(victim, x, y, k_init=1, max_iter=1)  # one flip cannot fool this victim
    assert not r.success.any()
    assert torch.equal(r.adversarial, x) and (r.l0 == 0).all()


def test_reduction_keeps_it_adversarial_and_only_removes_flips(victim, test_data):
    """The same generation (same seed) with and without the reduction: the reduced frame is still misclassified, its
    flips are a subset of the generated ones, and in total it needs fewer."""
    x, y = test_data
    right = _predict(victim, x) == y
    x, y = x[:, right][:, :6], y[right][:6]
    total_gen = total_red = 0
    with attacks.attack_mode(victim), attacks.pdsg(victim):
        for b in range(x.shape[1]):
            xb = x[:, b : b + 1]
            flat = xb.transpose(0, 1).reshape(-1).contiguous()
            runs = {}
            for reduce in (False, True):
                f = sda_module._Sample(victim, xb.shape, int(y[b]))
                runs[reduce] = sda_module._attack_one(f, flat, 8, 60, 64, torch.Generator().manual_seed(b),
                                                      reduce=reduce)
            (gen, ok_gen, _), (red, ok_red, _) = runs[False], runs[True]
            assert ok_gen and ok_red
            assert int(_predict(victim, f.frames(red[None]))) != int(y[b])
            flipped_gen, flipped_red = gen != flat, red != flat
            assert not (flipped_red & ~flipped_gen).any()  # the reduction only flips entries back
            total_gen += int(flipped_gen.sum())
            total_red += int(flipped_red.sum())
    assert total_red < total_gen, (total_red, total_gen)


def test_bad_input_is_named(victim, test_data):
    x, y = test_data
    with pytest.raises(ValueError, match="x must be binary spikes"):
        attacks.sda(victim, x * 0.5 + 0.25, y)
    with pytest.raises(TypeError, match="x must be a floating tensor"):
        attacks.sda(victim, x.bool(), y)
    with pytest.raises(ValueError, match="k_init must be >= 1"):
        attacks.sda(victim, x, y, k_init=0)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        attacks.sda(victim, x, y, max_iter=0)
    with pytest.raises(ValueError, match=r"y must be integer class indices of shape \[64\]"):
        attacks.sda(victim, x, y[:3])
    with pytest.raises(ValueError, match="model .* has no spiking neurons"):
        attacks.sda(nn.Sequential(nn.Linear(24, 3)), x, y)


def test_refinement_leaves_a_one_minimal_adversarial_frame(victim, test_data):
    """With refine=True no single remaining flip can be undone without the frame being classified correctly, and
    L0 never exceeds the unrefined attack's with the same seed."""
    x, y = test_data
    right = _predict(victim, x) == y
    x, y = x[:, right][:, :5], y[right][:5]
    plain = attacks.sda(victim, x, y, k_init=8, max_iter=60, generator=torch.Generator().manual_seed(4))
    refined = attacks.sda(victim, x, y, k_init=8, max_iter=60, refine=True,
                          generator=torch.Generator().manual_seed(4))
    assert torch.equal(plain.success, refined.success) and refined.success.all()
    assert (refined.l0 <= plain.l0).all()
    assert (_predict(victim, refined.adversarial) != y).all()
    for b in range(x.shape[1]):
        adv = refined.adversarial[:, b : b + 1]
        for idx in (adv != x[:, b : b + 1]).nonzero().tolist():
            undone = adv.clone()
            undone[tuple(idx)] = x[:, b : b + 1][tuple(idx)]
            assert int(_predict(victim, undone)) == int(y[b])
