"""snnkit.encoding: Poisson and latency coding, LZ76 complexity against a plain Kaspar-Schuster loop, LZCClassifier."""

import math

import pytest
import torch

from snnkit import encoding
from snnkit.encoding import LZCClassifier, latency, lempel_ziv_complexity, poisson


def kaspar_schuster(s):
    """LZ76 complexity of a 0/1 list, the loop of Kaspar & Schuster (1987), Phys. Rev. A 36, 842, as published."""
    n = len(s)
    if n == 1:
        return 1
    c, l, i, k, k_max = 1, 1, 0, 1, 1
    while True:
        if s[i + k - 1] == s[l + k - 1]:
            k += 1
            if l + k > n:
                c += 1
                break
        else:
            k_max = max(k_max, k)
            i += 1
            if i == l:
                c += 1
                l += k_max
                if l + 1 > n:
                    break
                i, k, k_max = 0, 1, 1
            else:
                k = 1
    return c


def bits(text):
    return torch.tensor([int(ch) for ch in text], dtype=torch.float32)


# ------------------------------------------------------------------------------------------------ LZ76


def test_textbook_sequence_has_complexity_6():
    assert kaspar_schuster([int(ch) for ch in "0001101001000101"]) == 6  # the reference itself
    c = lempel_ziv_complexity(bits("0001101001000101"), normalize=False)
    assert c.shape == () and c.item() == 6
    torch.testing.assert_close(lempel_ziv_complexity(bits("0001101001000101")), torch.tensor(6 * 4 / 16))


@pytest.mark.parametrize("text, c", [("0", 1), ("01", 2), ("0000", 2), ("0101010101", 3), ("1001111011000010", 6)])
def test_short_known_sequences(text, c):
    assert kaspar_schuster([int(ch) for ch in text]) == c
    assert lempel_ziv_complexity(bits(text), normalize=False).item() == c


def test_constant_trains_are_near_zero():
    n = 1024
    x = torch.stack([torch.zeros(n), torch.ones(n)], dim=1)
    c = lempel_ziv_complexity(x, normalize=False)
    assert c.tolist() == [2.0, 2.0]  # "0 | 000...0"
    assert lempel_ziv_complexity(x).max().item() == pytest.approx(2 * math.log2(n) / n)
    assert lempel_ziv_complexity(x).max().item() < 0.03


def test_periodic_trains_are_low_and_exact():
    g = torch.Generator().manual_seed(1)
    n = 2000
    trains = []
    for period in [2, 3, 5, 8, 13, 30, 64]:
        motif = (torch.rand(period, generator=g) < 0.5).float()
        motif[0], motif[-1] = 1.0, 0.0  # not constant
        trains.append(motif.repeat(n // period + 1)[:n])
    x = torch.stack(trains, dim=1)
    c = lempel_ziv_complexity(x, normalize=False)
    assert c.tolist() == [kaspar_schuster(x[:, j].long().tolist()) for j in range(x.shape[1])]
    assert lempel_ziv_complexity(x).max().item() < 0.25  # a fair-coin train of this length scores about 1.05


def test_random_trains_normalise_near_one():
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(4096, 16, generator=g) < 0.5).float()
    c = lempel_ziv_complexity(x)
    assert c.shape == (16,)
    assert (c - 1).abs().max().item() < 0.1
    assert abs(c.mean().item() - 1) < 0.06


@pytest.mark.parametrize("n", [1, 2, 3, 7, 23, 24, 25, 26, 60, 257])
@pytest.mark.parametrize("p", [0.5, 0.15, 0.03])
def test_batched_parse_equals_plain_loop(n, p):
    g = torch.Generator().manual_seed(1000 * n + int(100 * p))
    x = (torch.rand(n, 40, generator=g) < p).float()
    got = lempel_ziv_complexity(x, normalize=False)
    want = [kaspar_schuster(x[:, j].long().tolist()) for j in range(x.shape[1])]
    assert got.tolist() == want


def test_long_matches_resolved_exactly():
    """Trains whose repeats are far longer than the batched refinement depth (the on-demand exact search)."""
    g = torch.Generator().manual_seed(3)
    n = 1500
    noise = (torch.rand(300, generator=g) < 0.5).float()
    sparse = (torch.rand(n, generator=g) < 0.02).float()  # long runs of silence
    copy = torch.cat([noise, noise[:200], (torch.rand(400, generator=g) < 0.5).float(), noise, noise[:300]])
    runs = torch.zeros(n)
    runs[[10, 200, 205, 900, 1400]] = 1.0
    x = torch.stack([sparse, copy[:n], runs], dim=1)
    got = lempel_ziv_complexity(x, normalize=False)
    assert got.tolist() == [kaspar_schuster(x[:, j].long().tolist()) for j in range(3)]


def test_shapes_dtypes_and_devices():
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(50, 2, 3, 4, generator=g) < 0.3)
    c = lempel_ziv_complexity(x)  # bool input
    assert c.shape == (2, 3, 4) and c.dtype == torch.float32
    torch.testing.assert_close(lempel_ziv_complexity(x.to(torch.uint8)), c)
    torch.testing.assert_close(lempel_ziv_complexity(x.double()), c.double())
    flat = lempel_ziv_complexity(x.reshape(50, -1), normalize=False)
    assert flat.tolist() == [kaspar_schuster(x.reshape(50, -1)[:, j].long().tolist()) for j in range(24)]
    assert lempel_ziv_complexity(torch.zeros(10, 0)).shape == (0,)


@pytest.mark.parametrize(
    "bad, err, match",
    [
        (torch.tensor([0.0, 0.5, 1.0]), ValueError, "binary"),
        (torch.tensor([0, 2, 1]), ValueError, "binary"),
        (torch.tensor([0.0, float("nan"), 1.0]), ValueError, "binary"),
        (torch.tensor([0.0, -1.0]), ValueError, "binary"),
        ([0, 1, 1], TypeError, "spikes"),
        (torch.zeros(0, 3), ValueError, "T = 0"),
        (torch.tensor(1.0), ValueError, "spikes"),
        (torch.ones(1, 3), ValueError, "T >= 2"),
    ],
)
def test_lzc_bad_input(bad, err, match):
    with pytest.raises(err, match=match):
        lempel_ziv_complexity(bad)


def test_lzc_normalize_must_be_bool():
    with pytest.raises(TypeError, match="normalize"):
        lempel_ziv_complexity(torch.zeros(4), normalize="yes")
    assert lempel_ziv_complexity(torch.ones(1, 3), normalize=False).tolist() == [1.0, 1.0, 1.0]


# ------------------------------------------------------------------------------------------------ Poisson


def test_poisson_rate_matches_and_is_binary():
    x = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
    g = torch.Generator().manual_seed(5)
    T, B, max_rate = 4000, 8, 0.8
    s = poisson(x.expand(B, -1), T, max_rate=max_rate, generator=g)
    assert s.shape == (T, B, 6) and s.dtype == torch.float32
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    p = x * max_rate
    rate = s.mean(dim=(0, 1))
    se = torch.sqrt(p * (1 - p) / (T * B)).clamp_min(1e-6)
    assert ((rate - p).abs() <= 4 * se).all(), (rate, p)
    assert rate[0] == 0 and rate[-1] > 0.7  # x = 0 never fires


def test_poisson_reproducible_with_generator():
    x = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    a = poisson(x, 20, max_rate=0.5, generator=torch.Generator().manual_seed(7))
    b = poisson(x, 20, max_rate=0.5, generator=torch.Generator().manual_seed(7))
    c = poisson(x, 20, max_rate=0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert poisson(x.double(), 3).dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"x": torch.tensor([0.5, 1.2])}, ValueError, r"x \* max_rate"),
        ({"x": torch.tensor([-0.1, 0.5])}, ValueError, r"x \* max_rate"),
        ({"x": torch.tensor([0.6]), "max_rate": 2.0}, ValueError, r"x \* max_rate"),
        ({"x": torch.tensor([0.5, float("nan")])}, ValueError, "NaN"),
        ({"x": torch.tensor([1, 0])}, TypeError, "x must be a floating"),
        ({"x": [0.5]}, TypeError, "x must be a torch.Tensor"),
        ({"time_steps": 0}, ValueError, "time_steps"),
        ({"time_steps": 2.0}, TypeError, "time_steps"),
        ({"max_rate": -0.1}, ValueError, "max_rate"),
        ({"max_rate": float("nan")}, ValueError, "max_rate"),
        ({"generator": 7}, TypeError, "generator"),
    ],
)
def test_poisson_bad_input(kwargs, err, match):
    args = {"x": torch.tensor([0.2, 0.4]), "time_steps": 5}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        poisson(**args)


# ------------------------------------------------------------------------------------------------ latency


@pytest.mark.parametrize(
    "method, T, tau, threshold", [("linear", 50, 5.0, 0.01), ("linear", 50, 5.0, 0.0), ("log", 200, 100.0, 0.04)]
)
def test_latency_one_spike_earlier_for_stronger_input(method, T, tau, threshold):
    x = torch.tensor([[1.0, 0.8, 0.6, 0.4, 0.2, 0.05], [0.0, 0.9, 0.3, 0.7, 0.1, 0.5]])
    s = latency(x, T, method=method, tau=tau, threshold=threshold)
    assert s.shape == (T, 2, 6)
    counts = s.sum(dim=0)
    assert torch.equal(counts, (x > 0).float())  # one spike per (nonzero) input, none for x = 0
    t_first = torch.where(counts > 0, s.argmax(dim=0).float(), torch.tensor(float("inf")))
    order = x[0].argsort(descending=True)
    assert (t_first[0][order].diff() > 0).all()  # well-separated inputs fire in order of strength
    assert t_first[0, 0] == t_first.min()  # the strongest input fires first


def test_latency_formulas():
    T = 11
    x = torch.tensor([1.0, 0.5, 0.25, 0.001])
    lin = latency(x, T, method="linear", threshold=0.0)
    assert lin.argmax(dim=0).tolist() == [0, 5, 7, 9]  # floor(10 (1 - x))
    log = latency(x, T, method="log", tau=2.0, threshold=0.2)
    want = [math.floor(2.0 * math.log(v / (v - 0.2))) for v in (1.0, 0.5, 0.25)]
    assert log[:, :3].argmax(dim=0).tolist() == want and log[:, 3].sum() == 0
    # too weak to reach threshold within the window: silent
    assert latency(torch.tensor([0.21]), 3, method="log", tau=2.0, threshold=0.2).sum() == 0


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"x": torch.tensor([1.5])}, ValueError, "x must lie in"),
        ({"x": torch.tensor([float("nan")])}, ValueError, "NaN"),
        ({"x": torch.tensor([1])}, TypeError, "x must be a floating"),
        ({"time_steps": 0}, ValueError, "time_steps"),
        ({"method": "exp"}, ValueError, "method"),
        ({"tau": 0.0}, ValueError, "tau"),
        ({"threshold": 1.0}, ValueError, "threshold"),
        ({"threshold": "0.1"}, TypeError, "threshold"),
    ],
)
def test_latency_bad_input(kwargs, err, match):
    args = {"x": torch.tensor([0.2, 0.4]), "time_steps": 5}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        latency(**args)


# ------------------------------------------------------------------------------------------------ classifier


def two_classes(B, N=4, T=300, seed=0):
    """Class 0: periodic trains (random period and phase); class 1: fair-coin trains."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(B) % 2
    period = torch.randint(2, 12, (B, N), generator=g)
    phase = torch.randint(0, 12, (B, N), generator=g)
    periodic = ((torch.arange(T).view(T, 1, 1) + phase) % period == 0).float()
    random = (torch.rand(T, B, N, generator=g) < 0.5).float()
    return torch.where((y == 0).view(1, B, 1), periodic, random), y


@pytest.mark.parametrize("method", ["nearest_mean", "logistic"])
def test_classifier_separates_periodic_from_random(method):
    if method == "logistic":
        pytest.importorskip("sklearn")
    train, y_train = two_classes(40, seed=0)
    test, y_test = two_classes(30, seed=1)
    clf = LZCClassifier(method=method).fit(train, y_train)
    assert clf.features(train).shape == (40, 4)
    assert clf.score(train, y_train) == 1.0
    assert clf.score(test, y_test) == 1.0
    pred = clf.predict(test)
    assert pred.dtype == torch.int64 and pred.shape == (30,)


def test_classifier_keeps_label_values():
    spikes, y = two_classes(10, N=2, seed=2)
    labels = torch.where(y == 0, 3, 7)
    clf = LZCClassifier().fit(spikes, labels.tolist())
    assert clf.classes_.tolist() == [3, 7]
    assert torch.equal(clf.predict(spikes), labels)


def test_classifier_errors():
    spikes, y = two_classes(6, N=3, T=64)
    clf = LZCClassifier()
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict(spikes)
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.score(spikes, y)
    with pytest.raises(TypeError, match="integer"):
        clf.fit(spikes, y.float())
    with pytest.raises(TypeError, match="integer"):
        clf.fit(spikes, [0.0, 1.0] * 3)
    with pytest.raises(ValueError, match="B = 6"):
        clf.fit(spikes, y[:5])
    with pytest.raises(ValueError, match="two classes"):
        clf.fit(spikes, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="binary"):
        clf.fit(spikes * 0.5, y)
    with pytest.raises(ValueError, match="at least 2 dims"):
        clf.fit(spikes[:, 0, 0], y)
    clf.fit(spikes, y)
    with pytest.raises(ValueError, match="N = 2"):
        clf.predict(spikes[:, :, :2])
    with pytest.raises(ValueError, match="method"):
        LZCClassifier(method="svm")


def test_public_names():
    assert set(encoding.__all__) == {"poisson", "latency", "lempel_ziv_complexity", "LZCClassifier"}
