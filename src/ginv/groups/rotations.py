"""Rotations by ``k·360°/n`` about the image centre: exact for n ∈ {1, 2, 4}, else interpolated."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ginv.errors import GinvError
from ginv.groups.base import GroupShapeError


class Rotations:
    """``n`` rotations by ``k·360°/n`` about the image centre, element k = ``rot<k·360/n>``.

    For n ∈ {1, 2, 4} the rotations are exact (``torch.rot90``, the same action as
    :func:`~ginv.groups.R4`) and ``exact`` is True. Otherwise they are bilinear resamplings
    (``affine_grid`` + ``grid_sample``, zero padding, ``align_corners=False``): **not** a
    group action on pixels — corners are cut, ``g⁻¹·(g·x) ≠ x`` and ``g·(h·x) ≠ (gh)·x`` up
    to interpolation error — so ``exact`` is False and every report made with it says so.
    Implements :class:`~ginv.groups.Group` (``elements``,
    ``element_names``, ``act``, ``act_inverse``, ``orbit``, ``len``, ``name``); no pixel
    permutations, so it cannot be weight-tied with :class:`ginv.models.WeightTied`.
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise GinvError(f"Rotations needs n ≥ 1, got {n}")
        self.n = n
        self.name = f"Rot{n}"
        self.exact = 4 % n == 0
        self.order = n

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"{self.name}(order={self.n}, exact={self.exact})"

    @property
    def elements(self) -> list[int]:
        """Element indices, identity first: element k rotates by k·360°/n."""
        return list(range(self.n))

    @property
    def element_names(self) -> list[str]:
        """``id``, then ``rot<degrees>`` (``rot45``, ``rot22.5``)."""
        return ["id"] + [f"rot{k * 360 / self.n:g}" for k in range(1, self.n)]

    def compose(self, g: int, h: int) -> int:
        """Index of ``g∘h``."""
        return (g + h) % self.n

    def inverse(self, g: int) -> int:
        """Index of ``g⁻¹``."""
        return (-g) % self.n

    def _rotate(self, k: int, x: Tensor) -> Tensor:
        """Rotate ``(..., C, H, W)`` images counter-clockwise by ``k·360°/n``."""
        if x.dim() < 3:
            raise GroupShapeError(f"expected images of shape (..., C, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h != w:
            raise GroupShapeError(f"rotations need square images, got {h}×{w}")
        k %= self.n
        if k == 0:
            return x
        if self.exact:
            return torch.rot90(x, k * 4 // self.n, dims=(-2, -1))
        theta = 2 * math.pi * k / self.n
        c, s = math.cos(theta), math.sin(theta)
        flat = x.reshape(-1, *x.shape[-3:])
        # output pixel (u, v) samples the input at R(−θ)(u, v); y points down, so the
        # counter-clockwise rotation on screen (as torch.rot90) reads [[c, −s], [s, c]].
        mat = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(mat.expand(len(flat), 2, 3), list(flat.shape), align_corners=False)
        out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out.view_as(x)

    def act(self, g: int | Tensor, x: Tensor) -> Tensor:
        """``g·x``; ``g`` one element, or a LongTensor with shape ``x.shape[:-3]``."""
        if isinstance(g, int):
            return self._rotate(g, x)
        if g.shape != x.shape[:-3]:
            raise GroupShapeError(
                f"per-image elements must have shape {tuple(x.shape[:-3])}, got {tuple(g.shape)}"
            )
        out = x.clone()
        flat_g, flat_x, flat_out = (
            g.reshape(-1),
            x.reshape(-1, *x.shape[-3:]),
            out.view(-1, *x.shape[-3:]),
        )
        for k in flat_g.unique().tolist():
            mask = (flat_g == k).to(x.device)
            flat_out[mask] = self._rotate(int(k), flat_x[mask])
        return out

    def act_inverse(self, g: int | Tensor, x: Tensor) -> Tensor:
        """``g⁻¹·x``, the rotation back (only approximately undoes ``g`` when inexact)."""
        if isinstance(g, int):
            return self.act(self.inverse(g), x)
        return self.act((-g) % self.n, x)

    def orbit(self, x: Tensor) -> Tensor:
        """All ``n·B`` rotated images of ``(B, C, H, W)``, element-major, identity first."""
        if x.dim() != 4:
            raise GroupShapeError(f"orbit expects a batch (B, C, H, W), got {tuple(x.shape)}")
        return torch.cat([self._rotate(k, x) for k in range(self.n)])

    def is_fixed(self, x: Tensor) -> bool:
        """Whether every element leaves ``x`` unchanged (exactly)."""
        return all(torch.equal(self.act(g, x), x) for g in self.elements)
