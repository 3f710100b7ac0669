"""Bad input to lif_multistep gets a ValueError/TypeError naming the argument, before any kernel runs."""


import pytest
import torch

import snnkit.ops as ops
from snnkit import surrogate


@pytest.mark.parametrize("x, exc, words", [
    (torch.randn(5), ValueError, "at least 2 dims"),
    (torch.randn(0, 3), ValueError, "T = 0"),
    (torch.randint(0, 2, (4, 3)), TypeError, "floating"),
    (torch.randn(4, 3).bool(), TypeError, "floating"),
    ([[1.0, 2.0]], TypeError, "torch.Tensor"),
])
def test_bad_x(x, exc, words):
    with pytest.raises(exc, match=words):
        ops.lif_multistep(x)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_x(bad):
    x = torch.randn(4, 3)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        ops.lif_multistep(x)


@pytest.mark.parametrize("tau, exc, words", [
    (1.0, ValueError, "tau must be > 1"),
    (0.5, ValueError, "tau must be > 1"),
    (float("nan"), ValueError, "tau must be finite"),
    (float("inf"), ValueError, "tau must be finite"),
    ("2", TypeError, "tau must be a real number"),
    (torch.tensor([2.0, 3.0]), ValueError, "tau as a tensor must hold one value"),
    (torch.tensor(2), TypeError, "tau as a tensor must be floating"),
])
def test_bad_tau(tau, exc, words):
    with pytest.raises(exc, match=words):
        ops.lif_multistep(torch.randn(4, 3), tau=tau)


def test_bad_v0():
    x = torch.randn(4, 3, 2)
    with pytest.raises(ValueError, match=r"v0 must have shape x.shape\[1:\] = \(3, 2\)"):
        ops.lif_multistep(x, torch.zeros(3))
    with pytest.raises(TypeError, match="v0 must be a floating tensor"):
        ops.lif_multistep(x, torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="v0 is on meta"):
        ops.lif_multistep(x, torch.zeros(3, 2, device="meta"))


def test_bad_options():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="backend must be one of"):
        ops.lif_multistep(x, backend="cupy")
    with pytest.raises(ValueError, match="storage must be one of"):
        ops.lif_multistep(x, storage="fp8")
    with pytest.raises(TypeError, match="surrogate must be a snnkit.surrogate.Surrogate"):
        ops.lif_multistep(x, surrogate=torch.sigmoid)
    with pytest.raises(ValueError, match="v_threshold must be finite"):
        ops.lif_multistep(x, v_threshold=float("nan"))
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        surrogate.ATan(alpha=-1.0)


def test_triton_backend_on_cpu_without_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="backend='triton' needs a CUDA tensor"):
        ops.lif_multistep(x, backend="triton")
    with pytest.raises(ValueError, match="float64"):
        ops.lif_multistep(x.double(), backend="triton")


def test_empty_batch_is_fine():
    x = torch.randn(4, 0, 3, requires_grad=True)
    s, v = ops.lif_multistep(x)
    assert s.shape == (4, 0, 3) and v.shape == (0, 3)
    s.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("flag", ["decay_input", "detach_reset", "store_v_seq"])
def test_flags_must_be_bools(flag):
    # A string such as "no" is truthy: silently taking it as True would run a different neuron.
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        ops.lif_multistep(torch.randn(3, 2), **{flag: "no"})
