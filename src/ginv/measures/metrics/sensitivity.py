"""Sensitivity: ``σmax(J)``, the spectral norm of the input–logit Jacobian per input."""

from __future__ import annotations

from torch import Tensor

from ginv.measures.base import Classifier, Measure, Setting, require_gradients
from ginv.measures.memory import samples_per_pass
from ginv.measures.sensitivity import jacobian_spectral_norm, sensitivity_sample_bytes


class Sensitivity(Measure):
    """``σmax(∂f(x)/∂x)`` per sample ``(n,)`` (:func:`ginv.measures.jacobian_spectral_norm`,
    exact or by power iteration as ``sensitivity_method`` says).

    Example: ``ginv.measure(model, x, y, ginv.R4(), metrics="sensitivity").sensitivity``.
    """

    name = "sensitivity"
    label = "σmax(J) per input"

    def check(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> None:
        """Refuse a model without gradients to its input, or with non-finite logits."""
        require_gradients(model, x, self.name, finite=True)

    def sample_bytes(self, setting: Setting) -> int:
        """The Jacobian's passes (:func:`~ginv.measures.sensitivity.sensitivity_sample_bytes`)."""
        return sensitivity_sample_bytes(setting.footprint, setting.sensitivity_method)

    def compute(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> Tensor:
        """σmax(J) of each sample, in chunks that fit the budget."""
        chunk = samples_per_pass(setting.budget_mb, self.sample_bytes(setting), len(x))
        return jacobian_spectral_norm(model, x, setting.sensitivity_method, chunk=chunk)
