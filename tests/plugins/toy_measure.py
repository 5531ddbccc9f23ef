"""A third-party measure, outside the package: one file and one registry call.

``mean_logit``: the mean of the logits of each sample, ``(1/K) Σ_k f(x)_k``, per sample.
Used by tests/test_measure_registry.py (``--plugin toy_measure`` on the command line).
"""

import torch

from ginv.measures import Measure, register_measure


class MeanLogit(Measure):
    name = "mean_logit"
    label = "mean logit"

    def sample_bytes(self, setting):
        return setting.footprint.forward()

    def compute(self, model, x, y, setting):
        with torch.no_grad():
            return model(x).double().mean(1)


register_measure(MeanLogit())
