"""Shared configuration grid for the LIF op tests."""

import itertools

from snnkit import surrogate

SURROGATES = [surrogate.ATan(2.0), surrogate.Sigmoid(4.0), surrogate.Triangle(1.0), surrogate.Rectangle(1.0)]
RESETS = [0.0, -0.25, None]  # hard to 0, hard to a non-zero v_reset, soft


def grid(**axes):
    keys = list(axes)
    for values in itertools.product(*(axes[k] for k in keys)):
        yield dict(zip(keys, values))
