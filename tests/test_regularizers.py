"""The regularisers: the orbit structure's projection, the saliency penalty and the new
input-only methods, by their defining properties and by hand on small cases; and
``ginv.invariance_loss``, the trainer's IR penalty for one's own loop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import synthetic_dataset
from torch import Tensor, nn

import ginv
from ginv.errors import GinvError
from ginv.groups import get_group
from ginv.losses import INVARIANCE_ERRORS, distribution_invariance
from ginv.models import Ensemble, build_model
from ginv.regularizers import (
    REGULARIZERS,
    USES,
    FeatureInvariance,
    OrbitDistillation,
    OrbitStructure,
    OrbitTeacher,
    SaliencyInvariance,
    VicinalInvariance,
    WarmedUpInvariance,
    get_regularizer,
    regularizer_class,
)
from ginv.regularizers.teacher import teacher_distillation
from ginv.regularizers.vicinal import mix_orbits
from ginv.testing import assert_invariant
from ginv.training import TrainConfig, Trainer, load_run
from ginv.training.trainer import model_for

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


# --- ginv.invariance_loss: the trainer's IR penalty, for any model --------------------------


@pytest.mark.parametrize("loss", list(INVARIANCE_ERRORS))
def test_invariance_loss_is_the_penalty_the_trainer_adds(loss: str, tmp_path: Path) -> None:
    """A one-member trainer's IR penalty on a batch, and ``invariance_loss`` of that member on
    the same augmented batch: the same number (float32, one forward each)."""
    config = TrainConfig(
        reg=loss, nu=1.0, group="R4", depth=2, width=16, epochs=1, batch_size=16,
        n_train=64, n_val=16,
    )  # fmt: skip
    data = synthetic_dataset(n_train=64, n_val=16)
    trainer = Trainer([config], data, tmp_path, "cpu", progress=False)
    orders, elements = trainer._draws()
    idx, el = orders[:, :16], elements[:, :16]
    _, inv = trainer._loss(idx, el)
    member = model_for(config, args=trainer.model_args)
    member.load_state_dict(trainer.model.member_state(0))
    augmented = trainer._batch(idx, el, with_orbit=False)[0]  # x̃ = g·x, (B, C, H, W)
    mine = ginv.invariance_loss(member, augmented, get_group("R4"), loss=loss)
    assert mine.dtype == torch.float32 and mine.requires_grad
    theirs, ours = float(inv[0].detach()), float(mine.detach())
    assert theirs > 0 and abs(ours - theirs) <= 1e-6 * max(1.0, theirs), (ours, theirs)


def test_invariance_loss_by_hand_in_float64_and_its_sampled_estimate() -> None:
    """``f = W·x`` on a 2-pixel image under the flip: ``I = mean_b ½‖W(x_b − s·x_b)‖²``; with
    ``sample=True`` the one non-identity element is the flip, so the estimate is exact."""
    group = get_group("FlipH")
    linear = nn.Sequential(nn.Flatten(), nn.Linear(2, 3)).double()
    x = torch.randn(7, 1, 1, 2, dtype=torch.float64)
    w = linear[1].weight.detach()
    diff = (x - x.flip(-1)).flatten(1) @ w.T
    expected = 0.5 * diff.pow(2).sum(1).mean()
    assert torch.allclose(ginv.invariance_loss(linear, x, group), expected, rtol=1e-14)
    sampled = ginv.invariance_loss(linear, x, group, sample=True)
    assert torch.allclose(sampled, expected, rtol=1e-14)


def test_the_sampled_invariance_loss_draws_one_element_per_image_reproducibly() -> None:
    group = get_group("R4")
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4)).double()
    x = torch.randn(9, *SHAPE, dtype=torch.float64)
    one = ginv.invariance_loss(model, x, group, "kl", True, torch.Generator().manual_seed(5))
    two = ginv.invariance_loss(model, x, group, "kl", True, torch.Generator().manual_seed(5))
    assert torch.equal(one, two)
    g = torch.randint(1, 4, (9,), generator=torch.Generator().manual_seed(5))
    by_hand = distribution_invariance(model(x), model(group.act(g, x))).mean()
    assert torch.allclose(one, by_hand, rtol=1e-14)
    # the whole orbit is the mean of the per-element errors
    per = [distribution_invariance(model(x), model(group.act(h, x))).mean() for h in (1, 2, 3)]
    full = ginv.invariance_loss(model, x, group, "kl")
    assert torch.allclose(full, torch.stack(per).mean(), rtol=1e-14)


def test_invariance_loss_checks_its_arguments() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    x = torch.randn(4, *SHAPE)
    r4 = get_group("R4")
    with pytest.raises(GinvError, match="unknown invariance loss"):
        ginv.invariance_loss(model, x, r4, loss="l1")
    with pytest.raises(GinvError, match=r"\(B, C, H, W\)"):
        ginv.invariance_loss(model, x[0], r4)
    with pytest.raises(GinvError, match="floating-point"):
        ginv.invariance_loss(model, x.long(), r4)
    with pytest.raises(GinvError, match="empty batch"):
        ginv.invariance_loss(model, x[:0], r4)
    with pytest.raises(GinvError, match="ginv group"):
        ginv.invariance_loss(model, x, "R4")  # type: ignore[arg-type]
    with pytest.raises(GinvError, match="sample must be"):
        ginv.invariance_loss(model, x, r4, sample=1)  # type: ignore[arg-type]
    with pytest.raises(GinvError, match="generator"):
        ginv.invariance_loss(model, x, r4, sample=True, generator=0)  # type: ignore[arg-type]
    with pytest.raises(GinvError, match="module or function"):
        ginv.invariance_loss(None, x, r4)  # type: ignore[arg-type]


def test_a_plain_pytorch_loop_with_invariance_loss_learns_and_becomes_invariant() -> None:
    torch.manual_seed(0)
    group = get_group("R4")
    data = synthetic_dataset(n_train=128, n_val=16, size=6)
    x, y = data.train.images, data.train.labels
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 3))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)

    def losses() -> tuple[float, float]:
        with torch.no_grad():
            ce = nn.functional.cross_entropy(model(x), y)
            return float(ce), float(ginv.invariance_loss(model, x, group))

    ce0, inv0 = losses()
    for step in range(60):
        batch = slice(32 * (step % 4), 32 * (step % 4 + 1))
        xb, yb = x[batch], y[batch]
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss = loss + 10.0 * ginv.invariance_loss(model, xb, group, sample=True)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    ce1, inv1 = losses()
    assert ce1 < 0.5 * ce0 and inv1 < 0.5 * inv0, (ce0, ce1, inv0, inv1)


# --- the new input-only methods, by hand on a 2-pixel image under the flip -----------------

FLIP = torch.Size((1, 1, 2))


def _flip_batch() -> tuple[nn.Module, Tensor]:
    """A 2-input linear model with fixed weights, and three 2-pixel images."""
    linear = nn.Sequential(nn.Flatten(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        linear[1].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        linear[1].bias.copy_(torch.tensor([0.1, -0.2]))
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]], dtype=torch.float64)
    return linear, x.view(3, *FLIP)


def _on_flip_batch(name: str, cls: type) -> tuple[Tensor, Tensor, Tensor, Ensemble]:
    """Regulariser ``name`` (a ``cls``, an ``inputs`` method) of the flip batch's linear model
    as a one-member ensemble: its logits and penalty, the images and the ensemble."""
    linear, x = _flip_batch()
    group = get_group("FlipH")
    reg = get_regularizer(name, group)
    assert isinstance(reg, cls) and reg.uses == "inputs"
    ensemble = Ensemble([linear])
    logits, penalty = reg(ensemble, group.orbit(x).unsqueeze(0), None)
    return logits, penalty, x, ensemble


def _linear_weights(ensemble: Ensemble) -> tuple[Tensor, Tensor]:
    """``W`` and ``c`` of the flip batch's linear model, detached."""
    weights = ensemble.weights()
    return weights["1.weight"][0].detach(), weights["1.bias"][0].detach()


def test_the_orbit_distillation_by_hand_with_its_stop_gradient() -> None:
    """Orbit ``{x, s·x}``: ``R = mean_{b,g} KL(q_g ‖ p̄)``, ``p̄ = (q_e + q_s)/2`` held fixed, so
    ``∂R/∂z_{g,b} = q(log q − log p̄ − KL)/(2B)`` and ``∂R/∂W = Σ ∂R/∂z ⊗ (g·x_b)``."""
    logits, penalty, x, ensemble = _on_flip_batch("distill", OrbitDistillation)
    w, c = _linear_weights(ensemble)
    images = [x.flatten(1), x.flip(-1).flatten(1)]  # e·x, s·x: (B, 2)
    q = [torch.exp(v @ w.T + c) / torch.exp(v @ w.T + c).sum(1, keepdim=True) for v in images]
    p = 0.5 * (q[0] + q[1])
    kl = [(qg * (qg.log() - p.log())).sum(1) for qg in q]
    expected = 0.5 * (kl[0] + kl[1]).mean()
    assert torch.allclose(penalty, expected.view(1), rtol=1e-13)
    assert torch.allclose(logits[0], x.flatten(1) @ w.T + c, rtol=1e-14)
    penalty.sum().backward()
    dz = [qg * (qg.log() - p.log() - k.unsqueeze(1)) / (2 * 3) for qg, k in zip(q, kl, strict=True)]
    grad_w = sum(d.T @ v for d, v in zip(dz, images, strict=True))
    grad_c = sum(d.sum(0) for d in dz)
    grads = ensemble.weights()
    assert torch.allclose(grads["1.weight"].grad[0], grad_w, rtol=1e-10)
    assert torch.allclose(grads["1.bias"].grad[0], grad_c, rtol=1e-10, atol=1e-15)
    # without the stop-gradient the same value is the orbit's JSD, whose gradient differs
    jsd = ginv.losses.jensen_shannon_invariance(images[0] @ w.T + c, images[1] @ w.T + c)
    assert torch.allclose(penalty.detach(), jsd.mean().view(1), rtol=1e-12)


def _scheduled(name: str) -> tuple[WarmedUpInvariance, nn.Module, Tensor, Tensor]:
    """Regulariser ``name`` on the flip batch: it, the model, the orbit and the logit IR at
    full strength by hand, ``½ mean_b ‖W(x_b − s·x_b)‖²``."""
    linear, x = _flip_batch()
    group = get_group("FlipH")
    reg = get_regularizer(name, group)
    assert isinstance(reg, WarmedUpInvariance) and reg.uses == "inputs"
    w = linear[1].weight.detach()
    full = 0.5 * ((x - x.flip(-1)).flatten(1) @ w.T).pow(2).sum(1).mean()
    return reg, linear, group.orbit(x).unsqueeze(0), full


def _fit_scheduled(name: str, epochs: int, out: Path) -> dict:
    """A small R4 MLP trained ``epochs`` epochs with regulariser ``name``: its run record."""
    config = TrainConfig(
        reg=name, nu=5.0, group="R4", depth=2, width=16, epochs=epochs, batch_size=32,
        n_train=64, n_val=16,
    )  # fmt: skip
    trainer = Trainer([config], synthetic_dataset(n_train=64, n_val=16), out, "cpu",
                      progress=False)  # fmt: skip
    (record,) = trainer.fit()
    return record


def test_the_warmed_up_ir_ramps_by_hand_and_the_trainer_tells_it_the_epoch(
    tmp_path: Path,
) -> None:
    reg, linear, orbit, full = _scheduled("logit-warmup")
    _, untouched = reg(Ensemble([linear]), orbit, None)  # never told the epoch: scale 1
    assert torch.allclose(untouched, full.view(1), rtol=1e-13)
    # 10 epochs: k = ⌈0.2·10⌉ = 2, s = 0, ½, 1, 1, ...
    for epoch, scale in [(0, 0.0), (1, 0.5), (2, 1.0), (9, 1.0)]:
        reg.start_epoch(epoch, 10)
        _, penalty = reg(Ensemble([linear]), orbit, None)
        assert torch.allclose(penalty, scale * full.view(1), rtol=1e-13)
    reg.start_epoch(1, 10)
    ensemble = Ensemble([linear])
    _, penalty = reg(ensemble, orbit, None)
    penalty.sum().backward()
    grad = ensemble.weights()["1.weight"].grad
    assert grad is not None and grad.abs().sum() > 0
    # in training: 2 epochs, k = 1, the first epoch is the cross-entropy alone
    record = _fit_scheduled("logit-warmup", 2, tmp_path)
    first, second = record["history"]
    assert first["inv"] == 0.0 and first["loss"] == first["ce"]
    assert second["inv"] > 0 and second["loss"] > second["ce"]
    # the selected epoch is one at full strength, whatever the ramp's validation accuracy
    assert record["selected_epoch"] == 2
    assert [reg.selectable(e, 10) for e in range(10)] == [False, False] + [True] * 8


def test_the_late_ir_is_da_for_half_the_epochs_then_ramps_by_hand(tmp_path: Path) -> None:
    reg, linear, orbit, full = _scheduled("logit-late")
    # 20 epochs: d = ⌈0.5·20⌉ = 10 epochs of DA, then k = ⌈0.1·20⌉ = 2: s = 0, ½, 1 from epoch 10
    for epoch, scale in [(0, 0.0), (9, 0.0), (10, 0.0), (11, 0.5), (12, 1.0), (19, 1.0)]:
        reg.start_epoch(epoch, 20)
        _, penalty = reg(Ensemble([linear]), orbit, None)
        assert torch.allclose(penalty, scale * full.view(1), rtol=1e-13)
    assert [reg.selectable(e, 20) for e in range(20)] == [False] * 12 + [True] * 8
    # 4 epochs: d = 2, k = 1: epochs 0-2 are DA (epoch 2 at s = 0), the last is at full ν and
    # is the one selected
    record = _fit_scheduled("logit-late", 4, tmp_path)
    history = record["history"]
    assert [h["inv"] == 0.0 for h in history] == [True, True, True, False]
    assert all(h["loss"] == h["ce"] for h in history[:3]) and history[3]["loss"] > history[3]["ce"]
    assert record["selected_epoch"] == 4


def test_the_teacher_distillation_by_hand_against_the_orbit_averaged_teacher() -> None:
    """Orbit ``{x, s·x}``, student ``W``, teacher ``T``: ``p̄ = (softmax T x + softmax T s·x)/2``
    and ``R = mean_{b,g} KL(p̄ ‖ q_g)``, ``q_g = softmax W g·x``, so ``∂R/∂z_{g,b} = (q_g − p̄)/(2B)``;
    the teacher gets no gradient."""
    student, x = _flip_batch()
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        teacher[1].weight.copy_(torch.tensor([[2.0, 0.5], [-1.0, 1.0]]))
        teacher[1].bias.copy_(torch.tensor([0.3, 0.0]))
    group = get_group("FlipH")
    reg = get_regularizer("teacher", group)
    assert isinstance(reg, OrbitTeacher) and reg.uses == "inputs" and reg.needs_teacher
    ensemble = Ensemble([student])
    with pytest.raises(GinvError, match="needs a teacher"):
        reg(ensemble, group.orbit(x).unsqueeze(0), None)
    reg.teacher = Ensemble([teacher]).requires_grad_(False)
    logits, penalty = reg(ensemble, group.orbit(x).unsqueeze(0), None)
    images = [x.flatten(1), x.flip(-1).flatten(1)]
    w, c = student[1].weight.detach(), student[1].bias.detach()
    t, d = teacher[1].weight.detach(), teacher[1].bias.detach()
    p = 0.5 * sum(torch.softmax(v @ t.T + d, 1) for v in images)
    q = [torch.softmax(v @ w.T + c, 1) for v in images]
    expected = 0.5 * sum((p * (p.log() - qg.log())).sum(1) for qg in q).mean()
    assert expected > 0.1
    assert torch.allclose(penalty, expected.view(1), rtol=1e-12)
    assert torch.allclose(logits[0], images[0] @ w.T + c, rtol=1e-14)
    penalty.sum().backward()
    dz = [(qg - p) / (2 * 3) for qg in q]
    grad_w = sum(g.T @ v for g, v in zip(dz, images, strict=True))
    assert torch.allclose(ensemble.weights()["1.weight"].grad[0], grad_w, rtol=1e-10)
    assert all(v.grad is None for v in reg.teacher.weights().values())
    # on logits: ½ mean_{b,g} ‖W g·x_b − t̄_b‖², t̄ = (T x + T s·x)/2 the orbit-averaged teacher
    on_logits = get_regularizer("teacher-logit", group)
    on_logits.teacher = reg.teacher
    _, penalty = on_logits(Ensemble([student]), group.orbit(x).unsqueeze(0), None)
    target = 0.5 * sum(v @ t.T + d for v in images)
    by_hand = 0.25 * sum((v @ w.T + c - target).pow(2).sum(1) for v in images).mean()
    assert torch.allclose(penalty, by_hand.view(1), rtol=1e-12) and by_hand > 1
    # vicinal: the same on the mixed images z_b = λ_b x_b + (1 − λ_b) x_{b−1} too, halves each
    vicinal = get_regularizer("teacher-vicinal", group)
    vicinal.teacher = reg.teacher
    logits_v, penalty_v = vicinal(Ensemble([student]), group.orbit(x).unsqueeze(0), None)
    lam = torch.tensor([1 / 6, 1 / 2, 5 / 6], dtype=torch.float64).unsqueeze(1)
    z = lam * images[0] + (1 - lam) * images[0][[2, 0, 1]]
    mixed = [z, z.flip(-1)]
    target_z = 0.5 * sum(v @ t.T + d for v in mixed)
    on_z = 0.25 * sum((v @ w.T + c - target_z).pow(2).sum(1) for v in mixed).mean()
    assert torch.allclose(penalty_v, (0.5 * by_hand + 0.5 * on_z).view(1), rtol=1e-12)
    assert torch.allclose(logits_v, logits, rtol=1e-14) and on_z > 0.1
    # a student equal to an invariant teacher (the orbit average of any model) scores 0
    same = logits.detach()[:1].expand(2, 3, 2)  # one prediction on the whole orbit
    assert float(teacher_distillation(same, same)) == pytest.approx(0, abs=1e-15)


def test_a_run_distils_from_its_teacher_run_found_by_key(tmp_path: Path) -> None:
    from ginv.training.trainer import teacher_key

    data = synthetic_dataset(n_train=64, n_val=16)
    small = {"group": "R4", "depth": 2, "width": 16, "epochs": 2, "batch_size": 32,
             "n_train": 64, "n_val": 16}  # fmt: skip
    teachers = Trainer([TrainConfig(**small, seed=s) for s in (0, 1)], data, tmp_path / "t",
                       "cpu", progress=False)  # fmt: skip
    teachers.fit()
    folders = [teachers.member_dir(i) for i in range(2)]
    keys = [teacher_key(f) for f in folders]
    assert keys == [TrainConfig(**small, seed=s).key() for s in (0, 1)]
    students = [TrainConfig(**small, reg="teacher", nu=3.0, seed=s, teacher=k)
                for s, k in zip((0, 1), keys, strict=True)]  # fmt: skip
    assert students[0].batchable_with(students[1])  # each member its own teacher
    assert students[0].key() != replace(students[0], teacher=keys[1]).key()
    with pytest.raises(GinvError, match="folder of each member's teacher"):
        Trainer(students, data, tmp_path / "s", "cpu", progress=False)
    with pytest.raises(GinvError, match=r"is not .*'s teacher"):
        Trainer(students, data, tmp_path / "s", "cpu", progress=False,
                teacher_dirs=folders[::-1])  # fmt: skip
    trainer = Trainer(students, data, tmp_path / "s", "cpu", progress=False,
                      teacher_dirs=folders)  # fmt: skip
    records = trainer.fit()
    assert all(r["history"][0]["inv"] > 0 for r in records)
    # the teachers were read, not trained: their weights are as saved
    for i, folder in enumerate(folders):
        saved, _ = load_run(folder)
        state = trainer.regularizer.teacher.member_state(i)
        assert all(torch.equal(state[k], v) for k, v in saved.state_dict().items())
    for bad, match in [
        ({"reg": "teacher"}, "needs a teacher"),
        ({"reg": "logit", "teacher": keys[0]}, "only by a regularizer that needs one"),
        ({"reg": "teacher", "teacher": "../x"}, "16 hex digits"),
    ]:  # fmt: skip
        with pytest.raises(GinvError, match=match):
            TrainConfig(**small, **bad).validate()


def test_the_feature_ir_by_hand_is_scale_free_and_leaves_the_head_alone() -> None:
    """A depth-1 MLP, ``φ(x) = relu(W₁x + b₁)``: ``R = mean_b ‖φ(x_b) − φ(s·x_b)‖² /
    (½‖φ(x_b)‖² + ½‖φ(s·x_b)‖²)``."""
    group = get_group("FlipH")
    mlp = build_model("mlp", group, FLIP, 2, 1, num_classes=2).double()
    with torch.no_grad():
        mlp.first.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        mlp.first.bias.copy_(torch.tensor([0.5, 1.0]))
    _, x = _flip_batch()
    reg = get_regularizer("features", group)
    assert isinstance(reg, FeatureInvariance) and reg.uses == "inputs"
    ensemble = Ensemble([mlp])
    logits, penalty = reg(ensemble, group.orbit(x).unsqueeze(0), None)
    w1, b1 = mlp.first.weight.detach(), mlp.first.bias.detach()
    phi = torch.relu(x.flatten(1) @ w1.T + b1)
    phi_s = torch.relu(x.flip(-1).flatten(1) @ w1.T + b1)
    size = 0.5 * (phi.pow(2).sum(1) + phi_s.pow(2).sum(1))
    expected = ((phi - phi_s).pow(2).sum(1) / size).mean()
    assert expected > 0.1
    assert torch.allclose(penalty, expected.view(1), rtol=1e-12)
    assert torch.allclose(logits[0], mlp(x), rtol=1e-13)
    penalty.sum().backward()
    grads = dict(zip(ensemble.names, (p.grad for p in ensemble.stacked), strict=True))
    assert grads["first.weight"] is not None and grads["first.weight"].abs().sum() > 0
    assert all(grads[k] is None or grads[k].abs().sum() == 0 for k in ("head.weight", "head.bias"))
    # scale-free: the first layer scaled by 3 scales φ by 3 and leaves R unchanged
    for p in ensemble.stacked:
        p.grad = None
    with torch.no_grad():
        for k in ("first.weight", "first.bias"):
            ensemble.weights()[k].mul_(3.0)
    _, scaled = reg(ensemble, group.orbit(x).unsqueeze(0), None)
    assert torch.allclose(scaled, penalty, rtol=1e-12)


def test_the_vicinal_ir_by_hand_on_mixed_images_and_their_orbits() -> None:
    """A linear model on the flip batch ``x_1, x_2, x_3``: the mixed images are
    ``z_b = λ_b x_b + (1 − λ_b) x_{b−1}``, ``λ = (1/6, 1/2, 5/6)``, ``x_0 = x_3``, and
    ``R = ½·½ mean_b ‖W(x_b − s·x_b)‖² + ½·½ mean_b ‖W(z_b − s·z_b)‖²``; the logits are
    the clean images'."""
    logits, penalty, x, ensemble = _on_flip_batch("vicinal", VicinalInvariance)
    w, c = _linear_weights(ensemble)
    v = x.flatten(1)  # (3, 2)
    lam = torch.tensor([1 / 6, 1 / 2, 5 / 6], dtype=torch.float64).unsqueeze(1)
    z = lam * v + (1 - lam) * v[[2, 0, 1]]
    assert torch.allclose(z[1], 0.5 * (v[1] + v[0]), rtol=1e-15)

    def ir(u: Tensor) -> Tensor:
        return 0.5 * ((u - u.flip(-1)) @ w.T).pow(2).sum(1).mean()

    expected = 0.5 * ir(v) + 0.5 * ir(z)
    assert ir(z) > 0.1 and not torch.allclose(ir(z), ir(v))
    assert torch.allclose(penalty, expected.view(1), rtol=1e-13)
    assert torch.allclose(logits[0], v @ w.T + c, rtol=1e-14)
    # the orbit of a mixed image is the mix of the orbits: any pixel permutation is linear
    r4 = get_group("R4")
    images = torch.randn(5, 1, 6, 6, dtype=torch.float64)
    orbit = r4.orbit(images).view(len(r4), 5, 1, 6, 6)
    lam5 = ((torch.arange(5, dtype=torch.float64) + 0.5) / 5).view(5, 1, 1, 1)
    mixed = lam5 * images + (1 - lam5) * images.roll(1, 0)
    got = mix_orbits(orbit.unsqueeze(0))[0]
    assert torch.allclose(got, r4.orbit(mixed).view(len(r4), 5, 1, 6, 6), rtol=0, atol=1e-14)


def test_every_regularizer_says_what_it_knows_of_the_group() -> None:
    uses = {name: regularizer_class(name).uses for name in REGULARIZERS}
    assert set(uses.values()) <= set(USES)
    assert uses["orbit"] == "weights"
    assert all(uses[n] == "inputs" for n in REGULARIZERS if n != "orbit")
    with pytest.raises(GinvError, match="applies to mlp, cnn models only"):
        TrainConfig(model="wt", reg="features", nu=1.0).validate()
