"""Bad input to ``snnkit.ops.wkv``: a clear error naming the argument, raised before any computation."""

import pytest
import torch

from snnkit.ops import wkv

T, B, C = 4, 2, 3


def good():
    return dict(w=-torch.ones(C), u=torch.zeros(C), k=torch.randn(T, B, C), v=torch.randn(T, B, C))


def call(**over):
    args = good()
    state = over.pop("state", None)
    kw = {k: over.pop(k) for k in ("backend", "check", "recompute") if k in over}
    args.update(over)
    return wkv(args["w"], args["u"], args["k"], args["v"], state, **kw)


@pytest.mark.parametrize("over,err,match", [
    (dict(k=torch.randn(T, B)), ValueError, r"k must be time-first \[T, B, C\]"),
    (dict(k=torch.randn(T, B, C, 1)), ValueError, r"k must be time-first \[T, B, C\]"),
    (dict(v=torch.randn(T, B, C + 1)), ValueError, "v must have the shape of k"),
    (dict(k=torch.randn(0, B, C), v=torch.randn(0, B, C)), ValueError, "k has T = 0"),
    (dict(w=-torch.ones(C + 1)), ValueError, r"w must have shape \[C\] = \[3\]"),
    (dict(u=torch.zeros(1, C)), ValueError, r"u must have shape \[C\]"),
    (dict(k=torch.randn(T, B, C).int()), TypeError, "k must be a floating tensor"),
    (dict(w=[-1.0] * C), TypeError, "w must be a torch.Tensor"),
    (dict(state=torch.zeros(2, B, C)), ValueError, r"state must have shape \[3, B, C\]"),
    (dict(state=torch.zeros(3, B, C, dtype=torch.bfloat16)), TypeError, "state must be float32"),
    (dict(backend="cuda"), ValueError, "backend must be one of"),
    (dict(check="maybe"), ValueError, "check must be one of"),
    (dict(recompute="yes"), TypeError, "recompute must be True or False"),
])
def test_bad_shapes_and_types(over, err, match):
    with pytest.raises(err, match=match):
        call(**over)


@pytest.mark.parametrize("name", ["w", "u", "k", "v"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs(name, bad):
    t = good()[name].clone()
    t.view(-1)[1] = bad
    with pytest.raises(ValueError, match=f"{name} contains NaN or inf"):
        call(**{name: t})
    call(**{name: t}, check="off")  # the check can be turned off


def test_state_values():
    s = torch.zeros(3, B, C)
    s[2] = float("-inf")  # an empty state written with -inf is fine
    y, _ = call(state=s)
    assert torch.isfinite(y).all()
    s[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"p, q\) contains NaN"):
        call(state=s)
    s = torch.zeros(3, B, C)
    s[2, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"state\[2\] \(o\) contains NaN or \+inf"):
        call(state=s)


def test_float64_is_torch_only_and_triton_needs_cuda_or_the_interpreter(monkeypatch):
    a = {k: t.double() for k, t in good().items()}
    with pytest.raises(ValueError, match="backend='torch' for float64"):
        wkv(**a, backend="triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA tensor"):
            call(backend="triton")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_devices_must_match():
    with pytest.raises(ValueError, match="w is on"):
        call(k=torch.randn(T, B, C, device="cuda"), v=torch.randn(T, B, C, device="cuda"))


def test_async_check_is_a_device_assert():
    # "async" queues torch._assert_async (no host synchronisation on CUDA); on CPU it fails at once
    k = good()["k"].clone()
    k[0, 0, 0] = float("nan")
    with pytest.raises(RuntimeError):
        call(k=k, check="async")
    call(check="async")


def test_huge_finite_values_pass_the_check():
    # their sum overflows float32: the one-read check must fall back to the exact one, not raise
    k = good()["k"].clone()
    k[:, 0, 0] = 3e38
    y, s = call(k=k)
    assert torch.isfinite(y).all() and torch.isfinite(s).all()
