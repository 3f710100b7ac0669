"""Tempotron: the kernel, the potential against a hand computation, the rule, learning, bad input."""

import math

import pytest
import torch

from snnkit.plasticity import (
    Tempotron,
    psp_kernel,
    psp_norm,
    psp_peak_time,
    tempotron_psp,
)


def test_kernel_peaks_at_one_at_the_analytic_peak_time():
    tau, tau_s = 15.0, 3.75
    tp = psp_peak_time(tau, tau_s)
    assert tp == pytest.approx(5 * math.log(4))  # tau tau_s ln(tau/tau_s)/(tau - tau_s) = 5 ln 4 here
    t = torch.linspace(0, 100, 100001, dtype=torch.float64)
    k = psp_kernel(t, tau, tau_s)
    assert k.max().item() <= 1.0 + 1e-12
    assert k.max().item() == pytest.approx(1.0, abs=1e-8)  # the grid misses the peak by < 5e-4
    assert t[k.argmax()].item() == pytest.approx(tp, abs=2e-3)
    assert psp_kernel(torch.tensor([tp], dtype=torch.float64), tau, tau_s).item() == pytest.approx(1.0, abs=1e-12)
    assert psp_kernel(torch.tensor([-1.0, 0.0]), tau, tau_s).tolist() == [0.0, 0.0]
    other = psp_kernel(torch.tensor([psp_peak_time(20.0, 2.0)], dtype=torch.float64), 20.0, 2.0)
    assert other.item() == pytest.approx(1.0, abs=1e-12)


def test_potential_equals_a_hand_computation():
    tau, tau_s, dt = 10.0, 2.5, 0.5
    v0 = psp_norm(tau, tau_s)

    def k(t):  # t in ms
        return v0 * (math.exp(-t / tau) - math.exp(-t / tau_s)) if t >= 0 else 0.0

    m = Tempotron(3, tau=tau, tau_s=tau_s, dt=dt)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.7, -0.4, 2.0]))
    s = torch.zeros(30, 1, 3)
    s[2, 0, 0] = 1   # input 0 at step 2 (1 ms)
    s[9, 0, 1] = 1   # input 1 at step 9 (4.5 ms)
    s[12, 0, 0] = 1  # input 0 again at step 12 (6 ms)
    v = m(s)
    assert v.shape == (30, 1)
    want = [0.7 * (k((t - 2) * dt) + k((t - 12) * dt)) - 0.4 * k((t - 9) * dt) for t in range(30)]
    torch.testing.assert_close(v[:, 0], torch.tensor(want), rtol=1e-5, atol=1e-6)
    # predict: fires iff the maximum reaches the threshold
    m.threshold = max(want) + 1e-3
    assert m.predict(s).tolist() == [0]
    m.threshold = max(want) - 1e-3
    assert m.predict(s).tolist() == [1]
    torch.testing.assert_close(tempotron_psp(s, tau, tau_s, dt) @ m.weight, v)


def test_rule_moves_weights_by_the_psp_at_the_maximum():
    m = Tempotron(2, lr=0.1)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.5, 0.2]))
    s = torch.zeros(40, 2, 2)
    s[3, :, 0] = 1
    s[10, :, 1] = 1
    p = m.psp(s)[:, 0]                       # both patterns are the same
    v = p @ m.weight
    tmax = int(v.argmax())
    assert v.max() < 1.0                     # does not fire
    before = m.weight.detach().clone()
    errors = m.fit_step(s, torch.tensor([1, 0]))  # pattern 0 is a missed positive, pattern 1 correct
    assert errors == 1
    torch.testing.assert_close(m.weight.detach(), before + 0.1 * p[tmax])
    with torch.no_grad():
        m.weight.copy_(torch.tensor([5.0, 5.0]))
    v = p @ m.weight
    tmax = int(v.argmax())
    assert m.fit_step(s, torch.tensor([0, 1])) == 1  # pattern 0 is a false alarm
    torch.testing.assert_close(m.weight.detach(), torch.tensor([5.0, 5.0]) - 0.1 * p[tmax])
    # no error, no change
    assert m.fit_step(s, torch.tensor([1, 1])) == 0


def test_a_pattern_below_rest_still_learns():
    m = Tempotron(2, lr=0.5)
    with torch.no_grad():
        m.weight.fill_(-1.0)
    s = torch.zeros(30, 1, 2)
    s[5, 0, :] = 1
    for _ in range(20):
        m.fit_step(s, torch.tensor([1]))
    assert m.predict(s).tolist() == [1]


def make_patterns(seed, n=48, T=50, protos=3, per=12, jitter=2):
    """Two classes of ``protos`` random single-spike-per-input patterns each, repeated with +-jitter steps."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, T - 8, (2 * protos, n), generator=g)
    xs, ys = [], []
    for k in range(2 * protos):
        times = (base[k] + torch.randint(-jitter, jitter + 1, (per, n), generator=g)).clamp(0, T - 1)
        x = torch.zeros(per, T, n)
        x.scatter_(1, times.unsqueeze(1), 1.0)
        xs.append(x.transpose(0, 1))
        ys += [k % 2] * per
    return torch.cat(xs, dim=1), torch.tensor(ys)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learns_a_separable_two_class_problem(seed):
    x, y = make_patterns(seed)
    m = Tempotron(x.shape[-1], generator=torch.Generator().manual_seed(seed))
    history = m.fit(x, y, epochs=15, generator=torch.Generator().manual_seed(seed))
    assert history[-1] == 0 and len(history) <= 15
    assert m.score(x, y) == 1.0
    assert m.predict(x).dtype == torch.long


def test_full_batch_steps_learn_too():
    x, y = make_patterns(3)
    m = Tempotron(x.shape[-1], generator=torch.Generator().manual_seed(3))
    m.fit(x, y, epochs=60, batch_size=None)
    assert m.score(x, y) == 1.0


def test_float64_module():
    x, y = make_patterns(4, per=4)
    m = Tempotron(x.shape[-1]).double()
    assert m(x.double()).dtype == torch.float64
    m.fit(x.double(), y, epochs=2)


def test_bad_input():
    m = Tempotron(4)
    s = torch.zeros(10, 2, 4)
    with pytest.raises(ValueError, match="spikes must be binary"):
        m(s + 0.3)
    with pytest.raises(ValueError, match="n_inputs=4"):
        m(torch.zeros(10, 2, 5))
    with pytest.raises(ValueError, match="spikes"):
        m(torch.zeros(10, 4))
    with pytest.raises(ValueError, match="tau must be > tau_s"):
        Tempotron(4, tau=3.0, tau_s=3.75)
    with pytest.raises(ValueError, match="tau must be > tau_s"):
        Tempotron(4, tau=3.0, tau_s=3.0)
    with pytest.raises(TypeError, match="n_inputs"):
        Tempotron(4.0)
    with pytest.raises(ValueError, match="n_inputs"):
        Tempotron(0)
    with pytest.raises(TypeError, match="y must hold integer"):
        m.fit_step(s, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels 0 and 1"):
        m.fit_step(s, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"y must have shape \[B\] = \[2\]"):
        m.fit(s, torch.tensor([0, 1, 1]))
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        m.fit_step(s, [0, 1])
    with pytest.raises(ValueError, match="epochs"):
        m.fit(s, torch.tensor([0, 1]), epochs=0)
    with pytest.raises(ValueError, match="tau_s"):
        psp_kernel(torch.zeros(3), 15.0, 0.0)
