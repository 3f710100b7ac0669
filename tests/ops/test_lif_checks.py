"""Finiteness checks of the LIF op, and the claim that the CUDA path never synchronises with the host.

The CUDA path is the Triton one; here it runs in Triton's interpreter on CPU tensors, so a synchronisation cannot be
observed as a stall. Instead every way Python code can read a tensor's value back to the host (``bool``, ``item``,
``tolist``, ``int``, ``float``, ``__index__``, ``numpy``... on a torch.Tensor) is made to raise while the op runs forward
and backward with ``check="async"``, the mode ``check="auto"`` picks for CUDA tensors.
"""

import os

import pytest
import torch

import snnkit.ops as ops
from snnkit import surrogate

needs_triton = pytest.mark.skipif(
    not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
    reason="needs CUDA or TRITON_INTERPRET=1",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
HOST_READS = ("__bool__", "item", "tolist", "__int__", "__float__", "__index__")


@pytest.fixture
def no_host_reads(monkeypatch):
    """Make reading a tensor's value on the host an error (only from snnkit's code: Triton's interpreter reads its
    own launch arguments through numpy, which is not a device synchronisation on a GPU)."""
    calls = []

    def forbid(name, original):
        def guarded(self, *a, **k):
            frame = __import__("sys")._getframe(1)
            if "snnkit" in frame.f_code.co_filename and "tests" not in frame.f_code.co_filename:
                calls.append(f"{name} from {frame.f_code.co_filename}:{frame.f_lineno}")
            return original(self, *a, **k)

        return guarded

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, forbid(name, getattr(torch.Tensor, name)))
    return calls


@needs_triton
@pytest.mark.parametrize("spiking", [True, False])
@pytest.mark.parametrize("learn_tau", [False, True])
def test_triton_path_reads_nothing_back_to_the_host(no_host_reads, spiking, learn_tau):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 33, generator=g).to(DEVICE).requires_grad_()
    v0 = torch.randn(4, 33, generator=g).to(DEVICE).requires_grad_()
    tau = torch.tensor(2.0, device=DEVICE, requires_grad=True) if learn_tau else 2.0
    out, v = ops.lif_multistep(x, v0, tau=tau, v_threshold=1.0 if spiking else None, backend="triton",
                               check="async", storage="compact" if spiking else "exact")
    (out.sum() + v.sum()).backward()
    if DEVICE == "cpu":
        # A CPU tensor tau is checked eagerly (there is no device to wait for); a CUDA one by _assert_async.
        no_host_reads[:] = [c for c in no_host_reads if "validation.py" not in c]
    assert no_host_reads == []


def test_guard_detects_a_host_read(no_host_reads):
    # The guard itself works: the CPU path's "sync" check reads its result back (the extremes of x).
    ops.lif_multistep(torch.randn(3, 2), check="sync")
    assert any(c.split()[0] in HOST_READS for c in no_host_reads) and "validation.py" in " ".join(no_host_reads)


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_nonfinite_x_and_v0_in_each_mode(backend):
    x = torch.randn(4, 8, device=DEVICE)
    x[2, 3] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        ops.lif_multistep(x, backend=backend, check="sync")
    with pytest.raises(RuntimeError, match="x contains NaN or inf"):  # _assert_async raises at once on CPU tensors
        ops.lif_multistep(x, backend=backend, check="async")
    ops.lif_multistep(x, backend=backend, check="off")  # the user opted out
    v0 = torch.zeros(8, device=DEVICE)
    v0[1] = float("inf")
    with pytest.raises(ValueError, match="v0 contains NaN or inf"):
        ops.lif_multistep(torch.randn(4, 8, device=DEVICE), v0, backend=backend, check="sync")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_cpu_finiteness_check_is_exact_in_every_dtype(dtype, bad):
    from snnkit.validation import check_finite

    x = torch.randn(5, 7).to(dtype)
    x[3, 1] = bad
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        check_finite("x", x[:, 1::2].t())  # strided too
    x[3, 1] = 1.0
    check_finite("x", x)
    check_finite("x", torch.zeros(0, 3, dtype=dtype))
    # Huge finite values are not mistaken for overflow (a float32 sum of these would be inf).
    big = torch.finfo(dtype).max
    check_finite("x", torch.full((4, 3), big, dtype=dtype))


def test_bad_check_value():
    with pytest.raises(ValueError, match="check must be one of"):
        ops.lif_multistep(torch.randn(3, 2), check="maybe")


@pytest.mark.parametrize("tau", [torch.tensor(0.0), torch.tensor(0.5), torch.tensor(-2.0), torch.tensor(1.0),
                                 torch.tensor(float("nan")), torch.tensor(float("inf"))])
def test_tensor_tau_follows_the_float_rule(tau):
    with pytest.raises(ValueError, match="tau must be finite and > 1"):
        ops.lif_multistep(torch.randn(3, 2), tau=tau)


def test_surrogate_overriding_derivative_is_refused_where_written():
    with pytest.raises(TypeError, match="overrides Surrogate.derivative"):
        class MyATan(surrogate.ATan):  # noqa: F841
            def derivative(self, u):
                return u * 0

    class NoEntry(surrogate.Surrogate):
        pass

    with pytest.raises(TypeError, match="no entry in snnkit.surrogate.SURROGATE_TABLE"):
        NoEntry(alpha=1.0)

    class SteeperATan(surrogate.ATan):  # changing only alpha is fine
        pass

    assert SteeperATan(alpha=3.0).kernel_id == surrogate.ATAN_ID
