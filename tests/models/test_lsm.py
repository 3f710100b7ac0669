"""LiquidStateMachine (NALSM): connectivity statistics, sign limits under STDP, astrocyte effect, branching factor,
batched == per-sample, readout, bad input."""

import math

import pytest
import torch

from snnkit.models import LiquidStateMachine, Readout, branching_factor, normalise_rates


def spikes(T, B, n, p, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, n, generator=g) < p).float()


@pytest.fixture(scope="module")
def digits():
    sklearn = pytest.importorskip("sklearn.datasets")
    d = sklearn.load_digits()
    rates = normalise_rates(torch.tensor(d.data, dtype=torch.float32))
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(rates), generator=g)
    return LiquidStateMachine.encode(rates[order[:400]], 250, generator=g), torch.tensor(d.target)[order[:400]]


def test_connectivity_statistics_match_the_configured_probabilities():
    lsm = LiquidStateMachine(50, (8, 8, 8), stdp=False, astrocyte=False, seed=3)
    n = lsm.n_neurons
    exc = lsm.excitatory
    assert int(exc.sum()) == round(0.8 * n)
    # liquid: expected count and variance of every (pre type, post type) block from the distance rule
    d2 = torch.cdist(lsm.positions, lsm.positions).pow(2)
    pre, post = lsm.liquid_adjacency()
    assert not bool((pre == post).any())  # no self-connections
    assert len(set(zip(pre.tolist(), post.tolist()))) == len(pre)  # no duplicates
    for key, c in {"EE": 0.2, "EI": 0.1, "IE": 0.3, "II": 0.05}.items():
        pre_is = exc if key[0] == "E" else ~exc
        post_is = exc if key[1] == "E" else ~exc
        p = c * torch.exp(-d2 / 9.0)  # [pre, post]
        p.fill_diagonal_(0.0)
        p = p[pre_is][:, post_is].double()
        want, sd = float(p.sum()), float((p * (1 - p)).sum().sqrt())
        got = int((pre_is[pre] & post_is[post]).sum())
        assert abs(got - want) < 4 * sd, (key, got, want, sd)
    # the distance profile: connection frequency at distance 1 vs 2 follows exp(-(D/3)^2) for E -> E
    ee = exc[pre] & exc[post]
    dist = (lsm.positions[pre[ee]] - lsm.positions[post[ee]]).norm(dim=1)
    pairs_ee = exc[:, None] & exc[None, :]
    for r in (1.0, 2.0):
        at_r = (d2.sqrt() - r).abs() < 1e-4
        n_pairs = int((at_r & pairs_ee).sum())
        got = int(((dist - r).abs() < 1e-4).sum())
        p_r = 0.2 * math.exp(-(r / 3) ** 2)
        assert abs(got - n_pairs * p_r) < 4 * math.sqrt(n_pairs * p_r * (1 - p_r))
    # input fan-out 15%, weights of magnitude 3 with the sign of their pre-synaptic population
    from_input = lsm.syn_pre >= n
    k = int(from_input.sum())
    assert abs(k - 0.15 * n * 50) < 4 * math.sqrt(n * 50 * 0.15 * 0.85)
    w = lsm.w_ini
    assert torch.all(w.abs() == 3.0)
    liq_pre = lsm.syn_pre.clamp(max=n - 1)
    assert torch.all(w[~from_input & exc[liq_pre]] == 3.0) and torch.all(w[~from_input & ~exc[liq_pre]] == -3.0)
    frac_pos = float((w[from_input] > 0).float().mean())
    assert abs(frac_pos - 0.5) < 4 * math.sqrt(0.25 / k)
    # the same seed builds the same liquid; another seed another one
    again = LiquidStateMachine(50, (8, 8, 8), stdp=False, astrocyte=False, seed=3)
    assert torch.equal(again.syn_pre, lsm.syn_pre) and torch.equal(again.syn_post, lsm.syn_post)
    other = LiquidStateMachine(50, (8, 8, 8), stdp=False, astrocyte=False, seed=4)
    assert other.num_synapses != lsm.num_synapses or not torch.equal(other.syn_post, lsm.syn_post)


@pytest.mark.parametrize("astrocyte", [False, True])
def test_weights_stay_within_their_sign_limits_under_stdp(astrocyte):
    lsm = LiquidStateMachine(40, (6, 6, 6), astrocyte=astrocyte, stdp=True, seed=1)
    x = spikes(150, 3, 40, 0.4, 0)
    run = lsm.simulate(x)
    w = run.weights
    n = lsm.n_neurons
    assert not torch.equal(w, lsm.w_ini.expand_as(w))  # plasticity did something
    assert torch.all(w >= lsm.w_min) and torch.all(w <= lsm.w_max)
    liq_pre = lsm.syn_pre.clamp(max=n - 1)
    is_input = lsm.syn_pre >= n
    assert torch.all(w[:, ~is_input & lsm.excitatory[liq_pre]] >= 0)  # excitatory stays excitatory
    assert torch.all(w[:, ~is_input & ~lsm.excitatory[liq_pre]] <= 0)  # inhibitory stays inhibitory
    assert torch.all(w[:, is_input].abs() <= 3.0)
    # the initialisation carries the same limits into W_INI
    lsm.initialise(x[:, :, :], steps=20)
    assert torch.all(lsm.w_ini >= lsm.w_min) and torch.all(lsm.w_ini <= lsm.w_max)


def test_the_astrocyte_calms_a_liquid_that_fires_more_than_its_input():
    x = spikes(250, 2, 64, 0.2, 1)
    plain = LiquidStateMachine(64, (8, 8, 8), astrocyte=False, stdp=True, seed=0)(x)
    nalsm = LiquidStateMachine(64, (8, 8, 8), astrocyte=True, stdp=True, seed=0)(x)
    assert plain.sum() > x.sum() * 2  # the liquid fires far more than its input ...
    assert nalsm.sum() < 0.5 * plain.sum()  # ... and the astrocyte's depression brings it down


def test_batched_simulation_equals_per_sample_simulation():
    lsm = LiquidStateMachine(30, (6, 6, 5), astrocyte=True, seed=2)
    x = spikes(120, 5, 30, 0.3, 2)
    run = lsm.simulate(x, record=True)
    for b in range(5):
        one = lsm.simulate(x[:, b:b + 1], record=True)
        assert torch.equal(one.spikes[:, 0], run.spikes[:, b])
        assert torch.equal(one.counts[0], run.counts[b])
        torch.testing.assert_close(one.weights[0], run.weights[b], rtol=0, atol=1e-6)
    # a sample's result does not depend on its neighbours in the batch
    shuffled = lsm.simulate(x[:, [4, 2, 0, 1, 3]])
    assert torch.equal(shuffled.counts, run.counts[[4, 2, 0, 1, 3]])
    # nor on the CPU chunking of the batch (chunks of 2 samples here), nor on the threads that run the chunks
    lsm.cpu_chunk_synapses = 2 * lsm.num_synapses
    for threads in (1, 2):
        lsm.cpu_threads = threads
        chunked = lsm.simulate(x, record=True)
        assert torch.equal(chunked.spikes, run.spikes) and torch.equal(chunked.counts, run.counts)
        torch.testing.assert_close(chunked.weights, run.weights, rtol=0, atol=1e-6)


def test_cpu_chunks_split_a_batch_evenly_over_the_threads():
    lsm = LiquidStateMachine(30, (4, 4, 4), seed=0)
    S = lsm.num_synapses
    for batch, per_chunk, threads, expected in ((64, 20, 1, 4), (64, 20, 2, 4), (64, 20, 3, 6), (64, 64, 2, 2),
                                                 (5, 20, 8, 5), (1, 20, 2, 1), (7, 1, 1, 7)):
        lsm.cpu_chunk_synapses, lsm.cpu_threads = per_chunk * S, threads
        bounds, used = lsm._cpu_chunks(batch)
        sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
        assert bounds[0] == 0 and bounds[-1] == batch and len(sizes) == expected, (batch, per_chunk, threads)
        assert max(sizes) - min(sizes) <= 1 and max(sizes) <= max(per_chunk, 1) + 1
        assert used == min(threads, batch)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        lsm.cpu_threads = 2
        lsm(spikes(10, 4, 30, 0.3, 3))
        assert torch.get_num_threads() == 2  # the intra-op setting is restored after a threaded batch
    finally:
        torch.set_num_threads(before)


def test_every_presentation_starts_from_w_ini():
    lsm = LiquidStateMachine(30, (5, 5, 5), astrocyte=True, seed=0)
    x = spikes(100, 2, 30, 0.3, 5)
    assert torch.equal(lsm(x), lsm(x))  # plasticity in one call does not leak into the next
    before = lsm.w_ini.clone()
    history = lsm.initialise(spikes(40, 10, 30, 0.3, 6), steps=20, probe=spikes(60, 2, 30, 0.3, 7), probe_every=5)
    assert [h[0] for h in history] == [0, 5, 10]
    assert not torch.equal(before, lsm.w_ini)
    lsm.reset_weights()
    assert torch.equal(before, lsm.w_ini)
    fixed = LiquidStateMachine(30, (5, 5, 5), astrocyte=False, stdp=False, seed=0)
    fixed.initialise(spikes(40, 4, 30, 0.3, 6))
    assert torch.equal(fixed.w_ini, fixed.w_initial)  # the plain LSM has no plasticity


def test_branching_factor_by_hand():
    # chain 0 -> 1 -> 2 with 3 -> 1 as a second input of neuron 1; window 2, buffer 0
    pre, post = torch.tensor([0, 1, 3]), torch.tensor([1, 2, 1])
    s = torch.zeros(12, 1, 4)
    s[4, 0, 0] = 1  # neuron 0 at 4: no pre-synaptic neuron; post (neuron 1) spikes at 5 and 6 -> bf 2 / 1
    s[5, 0, 1] = s[6, 0, 1] = 1  # neuron 1: pre spikes in [t-2, t): at 5 -> {0@4} = 1; at 6 -> {0@4} = 1
    s[7, 0, 2] = 1  # neuron 2 (post of 1) at 7: in (5, 7] for t=5 -> 1; in (6, 8] for t=6 -> 1
    bf = branching_factor(s, pre, post, 4, window=2, buffer=0, per_sample=True)
    # neuron 0: 2/1 = 2; neuron 1: (1/1 + 1/1) / 2 = 1; neuron 2 at 7: no post-synaptic neurons: 0/max(1, 2) = 0
    assert bf[0].item() == pytest.approx((2 + 1 + 0) / 3)
    # spikes in the buffer are ignored; a sample without counted spikes is NaN and left out of the mean
    s2 = torch.zeros(12, 2, 4)
    s2[:, 0] = s[:, 0]
    assert math.isnan(branching_factor(s2, pre, post, 4, window=2, buffer=0, per_sample=True)[1].item())
    assert branching_factor(s2, pre, post, 4, window=2, buffer=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="T=12"):
        branching_factor(s, pre, post, 4, window=4, buffer=25)


def test_nalsm_branching_factor_ends_near_one_and_stdp_alone_does_not(digits):
    x, _ = digits
    train, probe = x[:, :100], x[:, 300:310]
    # w_astro = 0.03: the paper's 0.015 was chosen for MNIST's 784 inputs; on the 64 inputs of the 8x8 digits it
    # leaves NALSM1000 at ~1.19 (docs/nalsm.md), twice the coupling brings it to ~1.04
    nalsm = LiquidStateMachine(64, (10, 10, 10), astrocyte=True, seed=0, astro_w=0.03)
    h = nalsm.initialise(train, probe=probe, probe_every=100)
    assert 0.85 <= h[-1][1] <= 1.15, h
    stdp_only = LiquidStateMachine(64, (10, 10, 10), astrocyte=False, stdp=True, seed=0)
    h2 = stdp_only.initialise(train[:, :40], probe=probe, probe_every=40)
    assert not 0.85 <= h2[-1][1] <= 1.15, h2


def test_readout_learns_separable_counts():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    states = torch.randn(60, 20, generator=g) + 3 * torch.nn.functional.one_hot(labels, 20).float()
    readout = Readout.fit(states, labels, epochs=200)
    assert readout.accuracy(states, labels) == 1.0
    assert readout.predict(states).shape == (60,)
    lsm = LiquidStateMachine(10, (3, 3, 3), stdp=False, astrocyte=False)
    assert isinstance(lsm.fit_readout(states, labels, epochs=5), Readout)
    with pytest.raises(ValueError, match="labels"):
        Readout.fit(states, labels.float())


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match=r"grid\[1\]"):
        LiquidStateMachine(10, (4, 0, 4))
    with pytest.raises(ValueError, match="grid"):
        LiquidStateMachine(10, (4, 4))
    with pytest.raises(TypeError, match=r"grid\[0\]"):
        LiquidStateMachine(10, (4.5, 4, 4))
    with pytest.raises(ValueError, match="n_inputs"):
        LiquidStateMachine(0, (4, 4, 4))
    with pytest.raises(ValueError, match="stdp"):
        LiquidStateMachine(10, (4, 4, 4), astrocyte=True, stdp=False)
    with pytest.raises(TypeError, match="refractory"):
        LiquidStateMachine(10, (4, 4, 4), refractory=2.5)
    lsm = LiquidStateMachine(10, (4, 4, 4))
    with pytest.raises(ValueError, match="inputs must be binary"):
        lsm(torch.full((20, 2, 10), 0.5))
    with pytest.raises(ValueError, match="n_inputs=10"):
        lsm(spikes(20, 2, 12, 0.3, 0))
    with pytest.raises(ValueError, match=r"\[T, B, n_inputs\]"):
        lsm(torch.zeros(20, 2, 3, 10))
    with pytest.raises(ValueError, match="inputs"):
        lsm(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="steps"):
        lsm.initialise(spikes(20, 2, 10, 0.3, 0), steps=0)
    with pytest.raises(ValueError, match="x"):
        normalise_rates(torch.zeros(5))
