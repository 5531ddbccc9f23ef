"""Orbit measures of any classifier ``f: images → logits``: accuracy, DI and LI.

Every test image is evaluated under every group element; the invariance errors compare
``f(x)`` with ``f(g·x)`` and leave the identity out of the mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ginv.groups import Group
from ginv.losses import distribution_invariance, logit_invariance
from ginv.measures.memory import check_logits

Classifier = Callable[[Tensor], Tensor]


@torch.no_grad()
def orbit_logits(model: Classifier, images: Tensor, group: Group) -> Tensor:
    """``f(g·x)`` for every element and image: ``(|G|, N, K)``, identity first."""
    logits = check_logits(model(group.orbit(images)), len(group) * len(images))
    return logits.view(len(group), len(images), -1)


@dataclass
class OrbitValues:
    """Per element and sample values ``(|G|, N)``; the identity row is 0 for DI and LI."""

    correct: Tensor
    di: Tensor
    li: Tensor


def orbit_values(logits: Tensor, labels: Tensor) -> OrbitValues:
    """Accuracy, DI ``KL(softmax f(x) ‖ softmax f(g·x))`` and LI ``½‖f(x) − f(g·x)‖²``
    from orbit logits ``(|G|, N, K)``."""
    logits = logits.double()  # the errors of an invariant model are differences of equals
    ref = logits[:1]
    return OrbitValues(
        correct=(logits.argmax(-1) == labels).double(),
        di=distribution_invariance(ref, logits),
        li=logit_invariance(ref, logits),
    )
