"""Bad input to delayed_linear: a clear TypeError/ValueError naming the argument, before anything runs."""

import pytest
import torch

from snnkit.ops import delayed_linear


def _ok():
    return torch.zeros(5, 2, 3), torch.zeros(4, 3), torch.ones(4, 3)


@pytest.mark.parametrize("max_delay,err,match", [(0, ValueError, "max_delay"), (-3, ValueError, "max_delay"),
                                                 (2.5, TypeError, "max_delay"), (True, TypeError, "max_delay")])
def test_bad_max_delay(max_delay, err, match):
    x, w, p = _ok()
    with pytest.raises(err, match=match):
        delayed_linear(x, w, p, max_delay)


@pytest.mark.parametrize("shape,match", [((5, 3), "x must be"), ((5, 2, 3, 1), r"x must be time-first \[T, B, C_in\]"),
                                         ((0, 2, 3), "T = 0"), ((5, 2, 4), "input features")])
def test_bad_x_shape(shape, match):
    _, w, p = _ok()
    with pytest.raises(ValueError, match=match):
        delayed_linear(torch.zeros(shape), w, p, 4)


def test_bad_weight_and_positions():
    x, w, p = _ok()
    with pytest.raises(ValueError, match="weight must be"):
        delayed_linear(x, w[0], p, 4)
    with pytest.raises(ValueError, match="positions must have weight's shape"):
        delayed_linear(x, w, p[:3], 4)
    with pytest.raises(TypeError, match="positions must be a floating tensor"):
        delayed_linear(x, w, p.long(), 4)
    with pytest.raises(TypeError, match="weight must be a torch.Tensor"):
        delayed_linear(x, w.tolist(), p, 4)
    with pytest.raises(ValueError, match="positions contains NaN"):
        delayed_linear(x, w, p.clone().fill_(float("nan")), 4)


@pytest.mark.parametrize("sigma,err", [(0.0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                       (float("inf"), ValueError), ("1", TypeError), (torch.tensor(1.0), TypeError)])
def test_bad_sigma(sigma, err):
    x, w, p = _ok()
    with pytest.raises(err, match="sigma"):
        delayed_linear(x, w, p, 4, sigma)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_x(bad):
    x, w, p = _ok()
    x[3, 1, 2] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        delayed_linear(x, w, p, 4, 1.0)


def test_bad_dtype_and_backend():
    x, w, p = _ok()
    with pytest.raises(TypeError, match="x must be a floating tensor"):
        delayed_linear(x.int(), w, p, 4)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        delayed_linear(x.numpy(), w, p, 4)
    with pytest.raises(ValueError, match="backend must be one of"):
        delayed_linear(x, w, p, 4, backend="cuda")
    with pytest.raises(ValueError, match="backend='triton' supports float16"):
        delayed_linear(x.double(), w.double(), p.double(), 4, backend="triton")


def test_empty_batch_or_channels_give_empty_or_zero_outputs():
    w, p = torch.ones(4, 3), torch.ones(4, 3)
    assert delayed_linear(torch.zeros(5, 0, 3), w, p, 4, 1.0).shape == (5, 0, 4)
    y = delayed_linear(torch.ones(5, 2, 0), torch.ones(4, 0), torch.ones(4, 0), 4)
    assert y.shape == (5, 2, 4) and not bool(y.any())
    assert delayed_linear(torch.ones(5, 2, 3), torch.ones(0, 3), torch.ones(0, 3), 4).shape == (5, 2, 0)
