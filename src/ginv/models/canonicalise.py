"""Learned canonicalisation: a classifier made exactly invariant by a learned choice of pose.

``f(x) = c(g*(x)·x)`` with ``g*(x) = argmax_g s(g·x)``: a small scorer ``s`` rates every
image of the orbit of ``x``, and the unconstrained classifier ``c`` sees only the best one,
the *canonical* image (Kaba et al. 2023, "Equivariance with learned canonicalization
functions"; Mondal et al. 2023, "Equivariant adaptation of large pretrained models"). The
scorer rates images, not group elements, so the choice is made on the orbit as a set: the
orbit of ``h·x`` is the orbit of ``x``, the same image wins, and ``f(h·x) = f(x)``.

Exactness needs a unique winner. Scores of distinct images can tie exactly (a scorer whose
ReLUs are all off on an orbit, zero weights), so the order is *(score, image)*: the highest
score, and among equal scores the image with the larger raw bits at the first place where
the two differ (see :func:`canonical_pose`). That is a function of the images alone, so ties
are broken the same way whatever the order in which the orbit comes (a "first maximum" rule
would not be: the orbit of ``h·x`` lists the same images in another order). Identical images (an image with a symmetry) tie on both keys and are the same
canonical image. What remains is floating point: two scores that are equal up to the
rounding of the scorer can be ordered differently when the same image is scored in another
batch shape (see :func:`pose_margin` to count such near ties). Scores are computed on the
images themselves, pixel order unchanged, so an image gets the same score wherever it sits in
one batch.

Default size on ``1×36×36`` images (the ``canon`` model): the MLP's 233,225 parameters and a
scorer ``1296 → 8 → 1`` of 10,385, 243,610 in all (+4.5 %); 0.55 MFLOP per image on R4
(0.47 for the classifier, 4 × 0.02 for the scorer on the orbit), against the MLP's 0.47.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.groups import Group, PermutationGroup
from ginv.models.base import Network, Pool

Relaxation = Literal["straight-through", "soft"]
"""How gradients reach the scorer in training mode (see :class:`Canonicaliser`)."""

DEFAULT_SCORER_WIDTH = 8
"""Hidden units of the default scorer: 10,385 parameters on 36×36 images, +4.5 % on the MLP."""


class Scorer(nn.Module):
    """``s(x) = v·relu(W x + b) + c``: one pose score per (flattened) image, ``(N,)``."""

    def __init__(self, in_features: int, width: int = DEFAULT_SCORER_WIDTH) -> None:
        super().__init__()
        if in_features < 1 or width < 1:
            raise GinvError(f"a scorer needs in_features ≥ 1 and width ≥ 1, got {in_features}")
        self.hidden = nn.Linear(in_features, width)
        self.out = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.relu(self.hidden(x.flatten(1)))).squeeze(-1)


_BITS = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.uint8}


@torch.no_grad()
def canonical_pose(scores: Tensor, orbit: Tensor) -> Tensor:
    """The winner ``(B,)`` of each orbit: the element whose image has the highest score, ties
    broken by the images, for scores ``(B, |G|)`` and flattened orbit images ``(B, |G|, D)``.

    The order is *(score, image)*: a higher score wins; on equal scores, the image whose bits
    are larger at the first word where the two differ (the lexicographic order of the raw
    bits: a strict total order on distinct images, NaN and ``-0.0`` pixels included). NaN
    scores count as ``-inf``. The maximum of a strict total order does not depend on the
    order in which the orbit is listed, so the same image wins for ``x`` and every ``h·x``;
    copies of one image tie on both keys and any of them is that image. A knock-out over the
    orbit (``|G| − 1`` comparisons, ``torch.where``, no branching on values): runs in ``vmap``.
    """
    scores = scores.nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    orbit = orbit.contiguous()
    # the raw bits, packed into 64-bit words where they fill them (half the work in float32)
    size = 8 if (orbit.shape[-1] * orbit.element_size()) % 8 == 0 else orbit.element_size()
    bits = orbit.view(_BITS[size])
    best = torch.zeros_like(scores[:, 0], dtype=torch.long)
    best_score, best_bits = scores[:, 0], bits[:, 0]
    for h in range(1, scores.shape[1]):
        score, image = scores[:, h], bits[:, h]
        first = (image != best_bits).to(torch.uint8).argmax(-1, keepdim=True)  # 0 if equal
        larger = (image.gather(-1, first) > best_bits.gather(-1, first)).squeeze(-1)
        better = (score > best_score) | ((score == best_score) & larger)
        best = torch.where(better, h, best)
        best_score = torch.where(better, score, best_score)
        best_bits = torch.where(better.unsqueeze(-1), image, best_bits)
    return best


@torch.no_grad()
def pose_margin(scores: Tensor, orbit: Tensor, pose: Tensor) -> Tensor:
    """Per sample ``(B,)``: the winner's score minus the highest score of an orbit image that
    differs from the winner's image (``inf`` when the whole orbit is one image), for scores
    ``(B, |G|)``, orbit images ``(B, |G|, D)`` and winners ``(B,)``. 0 is an exact tie (broken
    by the images); a margin within the scorer's rounding (~1e-6 relative in float32) is a
    near tie, which a change of batch shape could resolve the other way."""
    scores = scores.nan_to_num(nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    winner = orbit.gather(1, pose.view(-1, 1, 1).expand(-1, 1, orbit.shape[-1]))  # (B, 1, D)
    best = scores.gather(1, pose.view(-1, 1)).squeeze(1)
    other = (orbit != winner).any(-1)  # (B, |G|): an image other than the winner's
    runner_up = scores.masked_fill(~other, -math.inf).amax(1)
    return (best - runner_up).where(other.any(1), math.inf)


class Canonicaliser(nn.Module):
    """``f(x) = c(g*(x)·x)``, ``g*(x) = argmax_g s(g·x)``: ``classifier`` ``c`` on the image of
    the orbit that ``scorer`` ``s`` rates highest (ties: module docstring). In eval mode
    (validation, :func:`ginv.measures.measure`) the choice is hard, and ``f`` is exactly
    ``group``-invariant; the same image goes through ``c``, so ``f(h·x) = f(x)`` bitwise for
    a batch of one shape.

    In training mode the argmax, which has no gradient, is relaxed with the softmax
    ``p = softmax(s(g·x)/temperature)`` over the orbit:

    * ``"straight-through"`` (default): forward exactly as in eval mode, ``c`` of the
      canonical image; backward as if that image were ``Σ_g p_g (g·x)`` (the hard one-hot
      ``e + p − stop_gradient(p)``, as for the discrete groups of Mondal et al.), so the
      scorer learns which pose moves ``c``'s loss down. Training sees the eval-mode model,
      at the cost of one pass of ``c``.
    * ``"soft"``: ``Σ_g p_g c(g·x)``, the softmax-weighted mean of ``c`` over the orbit: every
      pose trains ``c`` in proportion to its weight; ``|G|`` passes of ``c``; the model
      trained is not the one evaluated (they meet as the temperature goes to 0).

    No prior pulls the poses towards the identity (Mondal et al.'s regulariser): training
    images come in random poses (data augmentation), so no pose is the data's own. The
    training loss is itself invariant, so augmentation leaves a canonicaliser's training
    unchanged but for rounding.

    Argument order, as every ginv wrapper: the wrapped module (``classifier``) first, then
    the group, then what this wrapper adds (``scorer``); see :class:`~ginv.models.WeightTied`.
    """

    def __init__(
        self,
        classifier: nn.Module,
        group: Group,
        scorer: nn.Module,
        relaxation: Relaxation = "straight-through",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if relaxation not in get_args(Relaxation):
            raise GinvError(
                f"relaxation must be one of {', '.join(get_args(Relaxation))}, got {relaxation!r}"
            )
        if not (temperature > 0 and math.isfinite(temperature)):
            raise GinvError(f"temperature must be positive and finite, got {temperature}")
        self.classifier = classifier
        self.scorer = scorer
        self.group = group
        self.relaxation = relaxation
        self.temperature = temperature
        # orbit gather indices by image shape and device: plain tensors, not buffers (Ensemble)
        self._index: dict[tuple[int, int, int, str], Tensor] = {}

    def extra_repr(self) -> str:
        return f"group={self.group.name}, relaxation={self.relaxation}, T={self.temperature:g}"

    def _orbit(self, x: Tensor) -> Tensor:
        """The orbit of each image, flattened: ``(B, |G|, C·H·W)``, identity first."""
        if not isinstance(self.group, PermutationGroup):  # interpolated rotations: no pixel map
            orbit = self.group.orbit(x).view(len(self.group), x.shape[0], -1)
            return orbit.transpose(0, 1).contiguous()
        # One row gather of the (B, C·H·W) batch, straight into the (B, |G|, D) layout
        # (several times faster on CPU than the element-major group.orbit and a transpose).
        c, h, w = x.shape[-3:]
        key = (c, h, w, str(x.device))
        if key not in self._index:
            perms = self.group.permutations(x)  # (|G|, H·W): (g·x).flat[i] = x.flat[p_g[i]]
            channels = torch.arange(c, device=x.device).view(1, c, 1) * (h * w)
            self._index[key] = (perms.unsqueeze(1) + channels).flatten()
        index = self._index[key]
        return x.flatten(1).index_select(1, index).view(x.shape[0], len(self.group), -1)

    def _scored_orbit(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The flattened orbit ``(B, |G|, D)``, its scores ``(B, |G|)``, the winners ``(B,)``."""
        orbit = self._orbit(x)
        b, n = orbit.shape[:2]
        scores = self.scorer(orbit.view(b * n, *x.shape[1:])).reshape(b, n)
        pose = canonical_pose(scores.detach(), orbit.detach())
        return orbit, scores, pose

    @staticmethod
    def _take(orbit: Tensor, pose: Tensor, shape: tuple[int, ...]) -> Tensor:
        """The images ``(B, *shape)`` of the orbit ``(B, |G|, D)`` at ``pose`` ``(B,)``."""
        chosen = torch.take_along_dim(orbit, pose.view(-1, 1, 1), dim=1)
        return chosen.view(orbit.shape[0], *shape)

    def pose(self, x: Tensor) -> Tensor:
        """The canonicalising element ``g*(x)`` of each image ``(B,)``: the canonical image is
        ``group.act(pose, x)``."""
        return self._scored_orbit(x)[2]

    def canonicalise(self, x: Tensor) -> Tensor:
        """The canonical images ``g*(x)·x`` ``(B, C, H, W)``: one per orbit, whichever ``x``."""
        orbit, _, pose = self._scored_orbit(x)
        return self._take(orbit, pose, x.shape[1:])

    def margin(self, x: Tensor) -> Tensor:
        """:func:`pose_margin` of each image ``(B,)``: how far it is from a tie."""
        orbit, scores, pose = self._scored_orbit(x)
        return pose_margin(scores.detach(), orbit.detach(), pose)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, K)`` of images ``(B, C, H, W)``; relaxed in training mode (class doc)."""
        orbit, scores, pose = self._scored_orbit(x)
        if not self.training:
            return self.classifier(self._take(orbit, pose, x.shape[1:]))
        b, n = scores.shape
        p = torch.softmax(scores / self.temperature, dim=1)
        if self.relaxation == "soft":
            logits = self.classifier(orbit.view(b * n, *x.shape[1:])).view(b, n, -1)
            return (p.unsqueeze(-1) * logits).sum(1)
        # Straight-through: the canonical image plus Σ_g (p_g − stop_gradient(p_g)) g·x, which
        # is exactly 0 (p − p, times anything, in any matmul precision), so the forward value
        # is eval mode's; backward, the scorer gets ⟨∇c, g·x⟩ through p.
        zero = torch.bmm((p - p.detach()).unsqueeze(1), orbit).view(b, *x.shape[1:])
        return self.classifier(self._take(orbit, pose, x.shape[1:]) + zero)

    def features(self, x: Tensor) -> Tensor:
        """The classifier's penultimate representation of the canonical images (invariant)."""
        features = getattr(self.classifier, "features", None)
        if not callable(features):
            raise GinvError(f"{type(self.classifier).__name__} has no features() method")
        return features(self.canonicalise(x))


def canonicalised(
    model: Network, group: PermutationGroup, in_shape: tuple[int, ...], pool: Pool = "mean"
) -> Canonicaliser:
    """``model`` behind a learned canonicalisation with the default :class:`Scorer` for images
    of ``in_shape`` ``(C, H, W)`` (the registry's ``canon`` wrapper; ``pool`` is WT's, unused).
    The scorer is drawn after ``model``, so ``model`` starts as its plain twin would."""
    if len(in_shape) != 3:
        raise GinvError(f"a canonicaliser needs images shaped (C, H, W), got {tuple(in_shape)}")
    return Canonicaliser(model, group, Scorer(math.prod(in_shape), DEFAULT_SCORER_WIDTH))
