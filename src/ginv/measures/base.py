"""The measure protocol: what one invariance measure declares and computes.

A measure is one object with a ``name``, a row ``label`` for tables, the working memory it
needs per sample (:meth:`Measure.sample_bytes`) and :meth:`Measure.compute`, which turns one
pass of samples into values: ``(|G|, n)`` per element and sample (identity first) or ``(n,)``
per sample. :class:`OrbitMeasure` is a measure read off the orbit logits ``f(g·x)``, which
the loop (:func:`ginv.measures.measure`) computes once for every orbit measure asked for.
Registered in :data:`ginv.measures.MEASURES` (:func:`ginv.measures.register_measure`), a
measure is computed by ``ginv.measure(..., metrics=(name,))`` and ``ginv measure --metrics``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ginv.errors import GinvError
from ginv.groups import Group
from ginv.measures.memory import Footprint
from ginv.measures.orbit import orbit_logits
from ginv.measures.saliency import SaliencyConfig

Classifier = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Setting:
    """What every measure's pass may read: the group, the saliency and sensitivity settings,
    the model's :class:`~ginv.measures.memory.Footprint` (probed on the first batch), the
    saliency baseline image ``(C, H, W)`` and the working-memory budget in MiB."""

    group: Group
    saliency: SaliencyConfig
    sensitivity_method: str
    footprint: Footprint
    baseline: Tensor
    budget_mb: int


class Measure(ABC):
    """One invariance measure.

    Contract: ``compute(model, x, y, setting)`` returns finite values for the ``n`` samples
    ``x`` ``(n, C, H, W)`` with labels ``y`` ``(n,)``: ``(|G|, n)`` per element (identity
    first; the report's mean is over samples and ``g ≠ e``, or over the whole orbit when
    ``includes_identity``) or ``(n,)`` per sample. ``sample_bytes(setting)`` is the working
    memory of one sample in a pass, which sizes the passes to the budget. ``check`` runs once
    on the first batch, before any work, and raises :class:`~ginv.errors.GinvError` on a
    model or data the measure cannot handle.

    Example::

        class MeanLogit(Measure):
            name, label = "mean_logit", "mean logit"

            def sample_bytes(self, setting):
                return setting.footprint.forward()

            def compute(self, model, x, y, setting):
                with torch.no_grad():
                    return model(x).double().mean(1)

        register_measure(MeanLogit())
    """

    name: str
    """Key in ``metrics=``, in the report and on the command line."""
    label: str = ""
    """Row label in :meth:`MeasureReport.table` (the name if empty)."""
    includes_identity: bool = False
    """Whether the per-sample value averages the identity too (orbit accuracy does)."""
    orbit: bool = False
    """Whether it is read off the orbit logits (:class:`OrbitMeasure`)."""

    @property
    def timer(self) -> str:
        """Key of its time in ``MeasureReport.seconds`` (orbit measures share ``orbit``)."""
        return "orbit" if self.orbit else self.name

    def check(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> None:
        """Refuse, before any work, a model or data this measure cannot handle (default: none)."""
        return None

    @abstractmethod
    def sample_bytes(self, setting: Setting) -> int:
        """Working memory, in bytes, of one sample in one pass."""

    @abstractmethod
    def compute(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> Tensor:
        """Values ``(|G|, n)`` or ``(n,)`` of the samples ``x`` with labels ``y``."""


class OrbitMeasure(Measure):
    """A measure read off the orbit logits ``f(g·x)`` ``(|G|, n, K)``: :meth:`from_orbit`.
    The loop evaluates the orbit once per pass for all orbit measures asked for."""

    orbit = True

    def sample_bytes(self, setting: Setting) -> int:
        """The orbit's two copies of the image and its forward pass, ``|G|`` times."""
        fp = setting.footprint
        return len(setting.group) * (fp.forward() + fp.input_bytes)

    def compute(self, model: Classifier, x: Tensor, y: Tensor, setting: Setting) -> Tensor:
        """:meth:`from_orbit` of ``x``'s orbit logits (the loop shares them instead)."""
        return self.from_orbit(orbit_logits(model, x, setting.group), y)

    @abstractmethod
    def from_orbit(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Values ``(|G|, n)`` from orbit logits ``(|G|, n, K)`` and labels ``(n,)``."""


def require_gradients(model: Classifier, x: Tensor, name: str, finite: bool = False) -> None:
    """Refuse a model whose logits on ``x[:1]`` do not depend differentiably on the input
    (one that runs under ``torch.no_grad()`` or detaches), or, if ``finite``, are not finite.

    Example: ``require_gradients(torch.no_grad()(model), x, "si")`` raises a GinvError."""
    probe = x[:1].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        try:
            logits = model(probe)
        except RuntimeError as e:
            raise GinvError(f"{name}: the model fails on these images: {e}") from None
    grad = None
    if isinstance(logits, Tensor) and logits.requires_grad:
        with torch.enable_grad():
            try:
                (grad,) = torch.autograd.grad(logits.sum(), probe, allow_unused=True)
            except RuntimeError:
                grad = None
    if grad is None:
        raise GinvError(
            f"{name}: the model's logits do not require grad (does it run under "
            "torch.no_grad() or detach?); it needs gradients of the logits to the input"
        )
    if finite and not bool(torch.isfinite(logits).all()):
        raise GinvError(
            f"{name}: the model returns non-finite logits on the first image; "
            "its gradients, and the measure, are undefined"
        )
