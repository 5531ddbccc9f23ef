"""Rotations(n): exact for n | 4, interpolated (and said to be inexact) otherwise."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ginv.errors import GinvError
from ginv.groups import R4, Rotations, get_group
from ginv.measures import SaliencyConfig, aligned_orbit_maps, measure
from ginv.models import MLP


def disc(size: int) -> torch.Tensor:
    """The pixels whose centres lie well inside the inscribed circle (no corner cropping)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return (r[:, None] ** 2 + r[None, :] ** 2).sqrt() < size / 2 - 2


def smooth_images(n: int = 4, size: int = 16) -> torch.Tensor:
    """Smooth random images (bilinear up-sampling of 4×4 noise): interpolation error small."""
    torch.manual_seed(0)
    coarse = torch.rand(n, 1, 4, 4, dtype=torch.float64)
    return nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")


class OrbitMean(nn.Module):
    """Mean of ``h``'s logits over the orbit: invariant only if the orbit is a group orbit."""

    def __init__(self, group, h: nn.Module) -> None:
        super().__init__()
        self.group, self.h = group, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(self.group.orbit(x)).view(len(self.group), len(x), -1).mean(0)


def test_exactness_flags_and_registry() -> None:
    assert Rotations(8).exact is False and Rotations(3).exact is False
    assert all(Rotations(n).exact for n in (1, 2, 4))
    assert R4().exact is True and get_group("D4").exact is True
    with pytest.raises(GinvError, match="interpolation"):
        get_group("Rot8")  # trainers and WT models need pixel permutations
    rot8 = get_group("Rot8", interpolated=True)
    assert isinstance(rot8, Rotations) and rot8.name == "Rot8" and len(rot8) == 8
    assert rot8.element_names == [
        "id", "rot45", "rot90", "rot135", "rot180", "rot225", "rot270", "rot315"
    ]  # fmt: skip


def test_rotations4_is_r4_exactly() -> None:
    x = torch.rand(3, 2, 12, 12, dtype=torch.float64)
    rot4, r4 = Rotations(4), R4()
    assert torch.equal(rot4.orbit(x), r4.orbit(x))
    for g in rot4.elements:
        assert torch.equal(rot4.act(g, x), r4.act(g, x))
        assert torch.equal(rot4.act_inverse(g, rot4.act(g, x)), x)
    g = torch.tensor([0, 1, 2])
    assert torch.equal(rot4.act(g, x), r4.act(g, x))
    assert torch.equal(rot4.act_inverse(g, x), r4.act_inverse(g, x))


def test_interpolated_rotation_agrees_with_rot90_and_quantified_roundtrip() -> None:
    x = smooth_images()
    rot8 = Rotations(8)
    # two steps of 45° land on pixel centres: rot90 up to rounding
    assert (rot8.act(2, x) - torch.rot90(x, 1, dims=(-2, -1))).abs().max() < 1e-12
    assert torch.equal(rot8.orbit(x)[: len(x)], x)
    inside = disc(x.shape[-1])
    errors = []
    for g in (1, 3):
        back = rot8.act_inverse(g, rot8.act(g, x))
        rel = ((back - x)[..., inside] ** 2).sum() / (x[..., inside] ** 2).sum()
        errors.append(float(rel))
        # measured: 6.0e-4 relative squared error inside the disc (bilinear blur), 0.23 over
        # the whole image: the corners outside the inscribed circle are cut away
        assert 1e-5 < rel < 1e-2
        assert (back - x).abs().max() > 0.1  # corners lost
    # per-image elements agree with one element at a time
    g = torch.tensor([1, 0, 5, 3])
    want = torch.stack([rot8.act(int(k), x[i]) for i, k in enumerate(g)])
    assert torch.allclose(rot8.act(g, x), want)


def test_orbit_mean_over_rot8_is_nearly_but_not_exactly_invariant() -> None:
    torch.manual_seed(1)
    x = smooth_images(8)
    y = torch.zeros(len(x), dtype=torch.long)
    rot8 = Rotations(8)
    h = MLP(256, 32, 2, num_classes=3).double()
    wt = measure(OrbitMean(rot8, h), x, y, rot8, metrics=("li", "si"))
    plain = measure(h, x, y, rot8, metrics=("li",))
    exact = measure(OrbitMean(R4(), h), x, y, R4(), metrics=("li",))
    assert exact.metrics["li"] < 1e-20 and exact.exact_group
    assert not wt.exact_group and not plain.exact_group
    # measured: LI 2.1e-4 for the orbit mean vs 2.3e-3 for the plain MLP
    assert 0 < wt.metrics["li"] < 0.2 * plain.metrics["li"]
    assert wt.per_element["li"][0] == 0  # the identity
    assert "inexact group" in wt.table() and "inexact" not in exact.table()
    data = json.loads(json.dumps(wt.to_dict()))
    assert data["exact_group"] is False
    assert type(wt).from_dict(data).exact_group is False
    assert type(wt).merge(wt, wt).exact_group is False


def test_si_realigns_with_inverse_rotation() -> None:
    x = smooth_images(2)
    rot8 = Rotations(8)
    model = MLP(256, 16, 1, num_classes=2).double()
    maps = aligned_orbit_maps(model, x, torch.zeros(2, dtype=torch.long), rot8, SaliencyConfig())
    assert maps.shape == (8, *x.shape)


@pytest.mark.parametrize("n", [3, 8])
def test_nonzero_constant_baseline_refused_for_interpolated_rotations(n: int) -> None:
    from ginv.measures.saliency import check_baseline

    check_baseline(torch.zeros(1, 8, 8), Rotations(n))
    with pytest.raises(GinvError, match="baseline"):
        check_baseline(torch.ones(1, 8, 8), Rotations(n))


def test_cli_measure_says_the_group_is_inexact(
    tmp_path, real_data_dir, capsys: pytest.CaptureFixture[str]
) -> None:
    from ginv.cli import main

    train = ["train", "--epochs", "1", "--n-train", "64", "--n-val", "16", "--depth", "1"]
    assert main([*train, "--width", "8", "--quiet", "--out", str(tmp_path)]) == 0
    out = tmp_path / "m.json"
    run = str(tmp_path / "mnist-R4-mlp-seed0")
    argv = ["measure", "--checkpoint", run, "--group", "Rot8", "--subset", "16"]
    capsys.readouterr()
    assert main([*argv, "--metrics", "li", "--quiet", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "under Rot8" in printed and "inexact group" in printed
    data = json.loads(out.read_text())
    assert data["exact_group"] is False and data["elements"][1] == "rot45"
