"""The regularisers: the orbit structure's projection and the saliency penalty, by their
defining properties and by hand on small cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import synthetic_dataset
from torch import nn

from ginv.errors import GinvError
from ginv.groups import get_group
from ginv.models import Ensemble, build_model
from ginv.regularizers import REGULARIZERS, OrbitStructure, SaliencyInvariance, get_regularizer
from ginv.testing import assert_invariant
from ginv.training import TrainConfig, Trainer, load_run

SHAPE = torch.Size((1, 6, 6))


def _mlps(group: str, first_width: int, members: int = 2) -> Ensemble:
    g = get_group(group)
    models = [
        build_model("mlp", g, SHAPE, 8, 2, num_classes=3, first_width=first_width)
        for _ in range(members)
    ]
    return Ensemble(models).double()


def _member(ensemble: Ensemble, i: int, first_width: int) -> nn.Module:
    model = build_model(
        "mlp", get_group("R4"), SHAPE, 8, 2, num_classes=3, first_width=first_width
    ).double()
    model.load_state_dict(ensemble.member_state(i))
    return model


# first widths: orbits only, and orbits plus single units (10 = 2·4 + 2, 10 = 3·3 + 1)
@pytest.mark.parametrize(("group", "first_width"), [("R4", 8), ("R4", 10), ("T3", 10)])
def test_the_orbit_projection_is_an_orthogonal_projection_onto_invariant_mlps(
    group: str, first_width: int
) -> None:
    torch.manual_seed(0)
    ensemble = _mlps(group, first_width)
    reg = OrbitStructure(get_group(group))
    theta = {k: v.detach().clone() for k, v in ensemble.weights().items()}
    proj = {**theta, **reg.projection(theta, SHAPE)}
    # idempotent, zero penalty on the subspace, R = ½‖θ − Πθ‖²
    again = reg.projection(proj, SHAPE)
    assert all(torch.allclose(again[k], proj[k], atol=1e-15) for k in again)
    assert reg.penalty(proj, SHAPE).abs().max() < 1e-24
    half_distance = sum(0.5 * (theta[k] - proj[k]).pow(2).flatten(1).sum(1) for k in theta)
    assert torch.allclose(reg.penalty(theta, SHAPE), half_distance, rtol=1e-12)
    # orthogonal: θ − Πθ ⟂ Πψ for any ψ
    psi = {k: torch.randn_like(v) for k, v in theta.items()}
    psi_proj = {**psi, **reg.projection(psi, SHAPE)}
    inner = sum(((theta[k] - proj[k]) * psi_proj[k]).flatten(1).sum(1) for k in theta)
    assert inner.abs().max() < 1e-10
    # the projected MLPs are exactly invariant
    for k, v in proj.items():
        ensemble.weights()[k].data.copy_(v)
    x = torch.randn(16, *SHAPE, dtype=torch.float64)
    for i in range(ensemble.size):
        assert_invariant(_member(ensemble, i, first_width), get_group(group), x, atol=1e-12)


def test_the_orbit_units_of_a_projected_layer_permute_under_the_group() -> None:
    torch.manual_seed(1)
    ensemble = _mlps("R4", 8, members=1)
    reg = OrbitStructure(get_group("R4"))
    for k, v in reg.projection(ensemble.weights(), SHAPE).items():
        ensemble.weights()[k].data.copy_(v)
    model = _member(ensemble, 0, 8)
    x = torch.randn(5, *SHAPE, dtype=torch.float64)
    units = torch.relu(model.first(x.flatten(1))).view(5, 2, 4)  # (B, orbit j, k)
    turned = torch.relu(model.first(get_group("R4").act(1, x).flatten(1))).view(5, 2, 4)
    # each orbit's activations are a cyclic shift of themselves, whatever the sample
    assert any(torch.allclose(turned, units.roll(s, -1)) for s in range(4))
    assert not torch.allclose(turned, units)


def test_a_decoupled_orbit_step_moves_rate_of_the_way_to_the_subspace() -> None:
    torch.manual_seed(2)
    ensemble = _mlps("R4", 10, members=3)
    reg = OrbitStructure(get_group("R4"))
    before = reg.penalty(ensemble.weights(), SHAPE)
    rates = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    reg.after_step(ensemble, rates, SHAPE)
    after = reg.penalty(ensemble.weights(), SHAPE)
    # the distance scales by 1 − rate, R by (1 − rate)²
    assert torch.allclose(after, before * (1 - rates) ** 2, rtol=1e-10, atol=1e-24)


def test_the_saliency_penalty_by_hand_for_a_linear_model() -> None:
    """``f(x) = W·x``: ``∇f_y = W_y``, so ``R = mean_h ‖W_y − h⁻¹·W_y‖² / ‖W_y‖²``."""
    torch.manual_seed(3)
    group = get_group("R4")
    linear = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).double()
    ensemble = Ensemble([linear])
    x = torch.randn(5, *SHAPE, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1, 0])
    orbit = group.orbit(x).unsqueeze(0)  # (1, |G|·B, ...)
    logits, penalty = SaliencyInvariance(group)(ensemble, orbit, y.unsqueeze(0))
    expected = []
    for label in y:
        w = linear[1].weight[label].detach().view(SHAPE)
        for h in range(1, 4):
            diff = w - group.act_inverse(h, w)
            expected.append(diff.pow(2).sum() / w.pow(2).sum())
    assert torch.allclose(penalty, torch.stack(expected).mean().view(1), rtol=1e-10)
    assert torch.allclose(logits[0], linear(x))


def test_the_saliency_penalty_vanishes_on_invariant_models_and_has_a_gradient() -> None:
    torch.manual_seed(4)
    group = get_group("R4")
    x = torch.randn(6, *SHAPE, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2]).unsqueeze(0)
    tied = Ensemble([build_model("wt", group, SHAPE, 8, 2, num_classes=3).double()])
    _, penalty = SaliencyInvariance(group)(tied, group.orbit(x).unsqueeze(0), y)
    assert float(penalty.detach()) < 1e-20
    free = Ensemble([build_model("mlp", group, SHAPE, 8, 2, num_classes=3).double()])
    _, penalty = SaliencyInvariance(group)(free, group.orbit(x).unsqueeze(0), y)
    assert float(penalty.detach()) > 1e-3
    penalty.sum().backward()
    # every weight matrix gets a gradient (biases move ∇ₓf only through ReLU kinks: none)
    weights = [p for name, p in free.weights().items() if name.endswith("weight")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_orbit_regularised_training_with_full_steps_gives_an_exactly_invariant_mlp(
    tmp_path: Path,
) -> None:
    """At ``lr·ν = 1`` every step ends on the subspace, so the selected MLP is invariant."""
    config = TrainConfig(
        model="mlp", reg="orbit", nu=1 / 8e-3, lr=8e-3, group="R4", epochs=2, batch_size=32,
        depth=2, width=16, first_width=32, n_train=256, n_val=64,
    )  # fmt: skip
    trainer = Trainer([config], synthetic_dataset(), tmp_path, "cpu", progress=False)
    trainer.fit()
    model, record = load_run(trainer.member_dir(0))
    assert record["model_args"]["first_width"] == 32
    assert model.first.out_features == 32
    x = synthetic_dataset().val.images[:16]
    assert_invariant(model, get_group("R4"), x, atol=1e-10, rtol=1e-8)


def test_regularizer_settings_are_checked() -> None:
    assert set(REGULARIZERS) >= {"logit", "kl", "nlogit", "jsd", "orbit", "saliency"}
    with pytest.raises(GinvError, match="unknown regularizer"):
        get_regularizer("l2", get_group("R4"))
    with pytest.raises(GinvError, match="applies to mlp models only"):
        TrainConfig(model="wt", reg="orbit", nu=1.0).validate()
    with pytest.raises(GinvError, match="lr·ν ≤ 1"):
        TrainConfig(reg="orbit", nu=2000.0).validate()
    with pytest.raises(GinvError, match="first_width"):
        TrainConfig(first_width=-1).validate()
