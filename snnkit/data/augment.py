"""Batch augmentations for padded time-first frames ``x [T, B, ...]``, on whatever device the batch lives on.

They act on a whole batch as a binned-frame store delivers it (:mod:`snnkit.data.store`), so a batch gathered on a
GPU is augmented there without a round trip. All randomness comes from the ``torch.Generator`` passed in (on the
batch's device): seeding it from the run's seed and the step, e.g. ``torch.Generator(device).manual_seed(
epoch_seed + step)``, makes an augmented run repeatable and a resumed run exact.

* :func:`random_crop`: a window of ``steps`` frames at a random start inside each sample (SHD/SSC recordings last
  up to ~1.4 s; crops are a common regulariser for the delay networks of Hammouamri et al., ICLR 2024).
* :func:`time_jitter`: shift each sample by a random whole number of frames, zero-filled (small misalignments).
* :func:`channel_dropout`: silence whole input channels per sample (dim 2: the cochlear channels of SHD/SSC, the
  polarities of DVS frames), without rescaling, since the values are spike counts.
"""

from __future__ import annotations

import torch

from snnkit.validation import check_tensor

__all__ = ["channel_dropout", "random_crop", "time_jitter"]


def _check(x: torch.Tensor, lengths: torch.Tensor | None, generator: torch.Generator) -> None:
    check_tensor("x", x, min_dim=3, time_first=True)
    if lengths is not None and (lengths.dim() != 1 or lengths.shape[0] != x.shape[1]):
        raise ValueError(f"lengths must be [B] = [{x.shape[1]}], got {tuple(lengths.shape)}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device}, x on {x.device}: create it on the batch's device")


def _rows(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``out[t, b] = x[source[t, b], b]`` where ``0 <= source < T``, else zeros; ``source`` is ``[T', B]``."""
    steps, batch = x.shape[:2]
    valid = (source >= 0) & (source < steps)
    row = torch.where(valid, source, 0) * batch + torch.arange(batch, device=x.device)[None]
    out = x.reshape(steps * batch, -1).index_select(0, row.reshape(-1)).view(*source.shape, *x.shape[2:])
    return out * valid.view(*source.shape, *([1] * (x.dim() - 2)))


def random_crop(
    x: torch.Tensor, lengths: torch.Tensor, steps: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A window of ``steps`` frames per sample, starting uniformly in ``[0, max(length - steps, 0)]``.

    Args:
        x: padded frames ``[T, B, ...]``.
        lengths: each sample's frames ``[B]`` (long, on x's device).
        steps: window length, >= 1; a shorter sample keeps all its frames, zero-padded.
        generator: the source of the starts, on x's device.

    Returns:
        ``(x [steps, B, ...], lengths [B])``, the new lengths ``min(steps, length - start)``.
    """
    _check(x, lengths, generator)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    room = (lengths - steps).clamp(min=0)
    start = (torch.rand(x.shape[1], generator=generator, device=x.device) * (room + 1)).long().clamp(max=room)
    source = start[None] + torch.arange(steps, device=x.device)[:, None]
    return _rows(x, source), torch.minimum(lengths - start, torch.full_like(lengths, steps))


def time_jitter(
    x: torch.Tensor, lengths: torch.Tensor, max_shift: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each sample by a uniform whole number of frames in ``[-max_shift, max_shift]``, keeping ``T``.

    Frames shifted before 0 or past ``T`` are dropped, the vacated frames are zeros.

    Returns:
        ``(x [T, B, ...], lengths [B])``, lengths moved with the shift and kept in ``[1, T]``.
    """
    _check(x, lengths, generator)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0, got {max_shift!r}")
    steps, batch = x.shape[:2]
    shift = torch.randint(-max_shift, max_shift + 1, (batch,), generator=generator, device=x.device)
    source = torch.arange(steps, device=x.device)[:, None] - shift[None]
    return _rows(x, source), (lengths + shift).clamp(1, steps)


def channel_dropout(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero each channel (dim 2) of each sample with probability ``p``, at every time step; no rescaling."""
    _check(x, None, generator)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"p must be a number in [0, 1), got {p!r}")
    keep = torch.rand(x.shape[1], x.shape[2], generator=generator, device=x.device) >= p
    return x * keep.view(1, x.shape[1], x.shape[2], *([1] * (x.dim() - 3))).to(x.dtype)
