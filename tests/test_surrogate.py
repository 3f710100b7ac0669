"""The surrogate table: each entry's CPU formula against its closed form, and the ids the kernels use."""

import math

import pytest
import torch

from snnkit import surrogate

# Closed forms written from the papers / SpikingJelly's documentation, independently of the table's op order.
CLOSED_FORMS = {
    surrogate.ATan: lambda u, a: a / 2 / (1 + (math.pi / 2 * a * u) ** 2),
    surrogate.Sigmoid: lambda u, a: a * torch.sigmoid(a * u) * (1 - torch.sigmoid(a * u)),
    surrogate.Triangle: lambda u, a: torch.clamp(a - a * a * u.abs(), min=0),
    surrogate.Rectangle: lambda u, a: (u.abs() < 0.5 / a).double() * a,
    # PDSG without measured potentials: the Gaussian N(u; sigma / 2, sigma) at its fallback width sigma = 1 / alpha.
    surrogate.PDSG: lambda u, a: torch.exp(-((u - 0.5 / a) ** 2) / (2 / a**2)) / (math.sqrt(2 * math.pi) / a),
}


@pytest.mark.parametrize("cls", list(CLOSED_FORMS), ids=lambda c: c.__name__)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
def test_table_formula_equals_closed_form(cls, alpha):
    u = torch.linspace(-3, 3, 2001, dtype=torch.float64)
    got = cls(alpha=alpha).derivative(u)
    torch.testing.assert_close(got, CLOSED_FORMS[cls](u, alpha), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", list(CLOSED_FORMS), ids=lambda c: c.__name__)
def test_spike_function_backward_uses_the_derivative(cls):
    u = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    s = cls(alpha=2.0)(u)
    assert torch.equal(s, (u >= 0).double())
    (g,) = torch.autograd.grad(s.sum(), u)
    torch.testing.assert_close(g, CLOSED_FORMS[cls](u.detach(), 2.0), rtol=1e-12, atol=1e-12)


def test_every_class_has_a_table_entry_and_kernels_use_the_same_ids():
    assert {c.kernel_id for c in CLOSED_FORMS} == set(surrogate.SURROGATE_TABLE)
    kernels = pytest.importorskip("snnkit.kernels.lif")
    assert kernels.SG_ATAN.value == surrogate.ATAN_ID
    assert kernels.SG_SIGMOID.value == surrogate.SIGMOID_ID
    assert kernels.SG_TRIANGLE.value == surrogate.TRIANGLE_ID
    assert kernels.SG_RECTANGLE.value == surrogate.RECTANGLE_ID
    assert kernels.SG_PDSG.value == surrogate.PDSG_ID


def test_unknown_id():
    with pytest.raises(ValueError, match="unknown surrogate id 9"):
        surrogate.surrogate_constants(9, 1.0)
