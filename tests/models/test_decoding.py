"""Class scores: a model's own decoding where it has one (the delay SNN's softmax sum), else the rate decoding; the
attacks score models through it, so an attack on a delay SNN ascends the loss it was trained with."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from snnkit.attacks.model import scores
from snnkit.models import DelaySNN, SpikingMLP, class_scores
from snnkit.training.losses import softmax_sum_cross_entropy


def test_delay_snn_scores_are_its_softmax_sum_and_give_its_training_loss() -> None:
    torch.manual_seed(0)
    model = DelaySNN(6, 3, hidden=(8,), max_delay=4, dropout=0.0).eval()
    x = (torch.rand(10, 5, 6) < 0.3).float()
    y = torch.tensor([0, 1, 2, 0, 1])
    out = model(x)
    expected = out.softmax(-1).sum(0)
    torch.testing.assert_close(class_scores(model, out), expected)
    torch.testing.assert_close(scores(model, x), expected)
    # The attacks' cross-entropy of these scores is the paper's loss, not the rate loss.
    torch.testing.assert_close(F.cross_entropy(scores(model, x), y), softmax_sum_cross_entropy(out, y))
    assert not torch.allclose(scores(model, x), out.mean(0))


def test_models_without_their_own_decoding_use_the_time_mean() -> None:
    model = SpikingMLP(in_features=6, num_classes=3, hidden=[8]).eval()
    x = torch.rand(4, 2, 6)
    out = model(x)
    torch.testing.assert_close(class_scores(model, out), out.mean(0))
    torch.testing.assert_close(class_scores(model, out.mean(0)), out.mean(0))
    with pytest.raises(ValueError, match=r"logits \[T, B, K\] or \[B, K\]"):
        class_scores(model, out[0, 0])
