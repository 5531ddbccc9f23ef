"""SI: ``cos(m(x), g⁻¹ m(g·x))``, the saliency invariance similarity."""

from __future__ import annotations

from torch import Tensor

from ginv.measures.base import Classifier, Measure, Setting, require_gradients
from ginv.measures.saliency import _aligned_orbit_maps, saliency_similarity, si_sample_bytes


class SaliencyInvariance(Measure):
    """Cosine similarity of the saliency map and each realigned orbit map ``(|G|, n)``
    (:func:`ginv.measures.saliency_similarity` of the aligned orbit maps).

    Example: ``ginv.measure(model, x, y, ginv.R4(), metrics="si", si_subset=100).si``.
    """

    name = "si"
    label = "SI  cos(m(x), g⁻¹m(gx))"

    def check(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> None:
        """Refuse a model without gradients to its input."""
        require_gradients(model, x, self.name)

    def sample_bytes(self, setting: Setting) -> int:
        """Every path point of every orbit image, its forward and backward, and the maps."""
        return si_sample_bytes(setting.footprint, setting.group, setting.saliency)

    def compute(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> Tensor:
        """SI of each element and sample."""
        maps = _aligned_orbit_maps(
            model, x, y, setting.group, setting.saliency, setting.baseline,
            setting.footprint, setting.budget_mb,
        )  # fmt: skip
        return saliency_similarity(maps)
