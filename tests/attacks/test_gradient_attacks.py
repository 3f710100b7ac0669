"""FGSM and PGD: the eps ball, the valid range, integer inputs, module modes, bad input, and PDSG against a
mismatched fixed surrogate on a victim trained in the test."""

import pytest
import torch
from torch import nn

from snnkit import attacks, surrogate


def _in_ball_and_range(x_adv, x, eps, lo, hi):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert ((x_adv - x).abs() <= eps + 1e-6).all()
    if lo is not None:
        assert (x_adv >= lo).all()
    if hi is not None:
        assert (x_adv <= hi).all()


@pytest.mark.parametrize("clamp", [(0.0, 1.0), (0.0, None), (0.2, 0.6)])
def test_pgd_stays_in_the_ball_and_the_range(victim, test_data, clamp):
    x, y = test_data
    x = x * 0.5 + 0.25  # interior points too, so that both bounds of the ball matter
    g = torch.Generator().manual_seed(0)
    x_adv = attacks.pgd(victim, x, y, eps=0.15, alpha=0.1, steps=4, clamp=clamp, generator=g)
    x_ref = x.clamp(*clamp)
    _in_ball_and_range(x_adv, x, 0.15, *clamp)
    assert not torch.equal(x_adv, x_ref)  # it moved


def test_fgsm_moves_by_eps_along_the_gradient_sign(victim, test_data):
    x, y = test_data
    x = torch.full_like(x, 0.5)
    x_adv = attacks.fgsm(victim, x, y, eps=0.1)
    step = (x_adv - x).abs()
    assert torch.allclose(step[step > 0], torch.tensor(0.1), atol=1e-6)
    assert (step > 0).float().mean() > 0.5


def test_integer_inputs_stay_integer(victim, test_data):
    x, y = test_data
    counts = x * 3  # event counts 0 or 3
    x_adv = attacks.pgd(victim, counts, y, eps=2, steps=3, clamp=(0.0, None), integer=True,
                        generator=torch.Generator().manual_seed(1))
    assert torch.equal(x_adv, x_adv.round())
    _in_ball_and_range(x_adv, counts, 2, 0.0, None)
    with pytest.raises(ValueError, match="eps"):
        attacks.pgd(victim, counts, y, eps=0.5, integer=True)
    with pytest.raises(ValueError, match="x must hold integers"):
        attacks.pgd(victim, counts + 0.5, y, eps=2, integer=True)


def test_neurons_train_and_batchnorm_eval_during_the_attack_and_restored(victim, test_data):
    x, y = test_data
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, m.training)))
             for m in (victim.bn, victim.lif)]
    victim.train()
    try:
        attacks.fgsm(victim, x, y, eps=0.05)
    finally:
        for h in hooks:
            h.remove()
    assert ("SeqBatchNorm1d", False) in seen and ("LIF", True) in seen
    assert ("SeqBatchNorm1d", True) not in seen
    assert all(m.training for m in victim.modules())  # restored
    victim.eval()


def test_bad_input_is_named(victim, test_data):
    x, y = test_data
    with pytest.raises(ValueError, match="eps must be >= 0"):
        attacks.pgd(victim, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        attacks.fgsm(victim, x, y, eps=-1)
    for steps in (0, -3):
        with pytest.raises(ValueError, match="steps must be >= 1"):
            attacks.pgd(victim, x, y, steps=steps)
    with pytest.raises(ValueError, match="alpha"):
        attacks.pgd(victim, x, y, alpha=0.0)
    with pytest.raises(ValueError, match="y must be integer class indices"):
        attacks.pgd(victim, x, y.float())
    with pytest.raises(TypeError, match="clamp"):
        attacks.pgd(victim, x, y, clamp=1.0)
    ann = nn.Sequential(nn.Linear(24, 3))
    with pytest.raises(ValueError, match="model .* has no spiking neurons"):
        attacks.pgd(ann, x, y)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        attacks.fgsm(lambda v: v, x, y)


def _asr(model, x, y, x_adv):
    with torch.no_grad():
        return (model(x_adv).mean(0).argmax(1) != y).float().mean().item()


def test_pdsg_pgd_beats_pgd_with_a_mismatched_fixed_surrogate(victim, test_data):
    """Victim trained with ATan(alpha=2); the attacker does not know it. Guessing a narrow rectangle (alpha=4:
    window |u| < 1/8) leaves most spikes without gradient; PDSG takes its width from the potentials.

    Measured (eps 0.2, 10 steps, 64 samples, seed 0): PDSG-PGD 37.5% ASR, Rectangle(4) PGD 17.2%, Sigmoid(1)
    23.4% (white box with the true ATan: 37.5%).
    """
    x, y = test_data
    results = {}
    for name, sg in (("pdsg", surrogate.PDSG()), ("rect4", surrogate.Rectangle(4.0)),
                     ("sigmoid1", surrogate.Sigmoid(1.0))):
        with attacks.swap_surrogate(victim, sg):
            x_adv = attacks.pgd(victim, x, y, eps=0.2, steps=10, generator=torch.Generator().manual_seed(0))
        results[name] = _asr(victim, x, y, x_adv)
    assert results["pdsg"] > results["rect4"] + 0.1, results
    assert results["pdsg"] > results["sigmoid1"] + 0.05, results
