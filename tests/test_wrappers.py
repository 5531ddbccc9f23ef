"""The wrappers that are exactly invariant by construction: orbit averaging and learned
canonicalisation (``canon``), measured with ginv's own measures, trained with its Trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import synthetic_dataset

from ginv.cli import build_parser, main
from ginv.errors import GinvError
from ginv.flops import forward_flops
from ginv.groups import D4, R4, T3, PermutationGroup, get_group
from ginv.measures import integrated_gradients, measure
from ginv.models import (
    MLP,
    MODEL_KINDS,
    Canonicaliser,
    Ensemble,
    OrbitAverage,
    Scorer,
    build_model,
)
from ginv.models.canonicalise import canonical_pose, pose_margin
from ginv.testing import assert_invariant
from ginv.training import TrainConfig, Trainer, load_run

SMALL = dict(in_shape=(1, 12, 12), width=16, depth=2, num_classes=3)
TOY = dict(epochs=2, batch_size=32, depth=2, width=16, n_train=256, n_val=64)


def small(kind: str, group: PermutationGroup, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(kind, group, **SMALL)  # type: ignore[arg-type]


def briefly_trained(model: torch.nn.Module, group: PermutationGroup, steps: int = 30):
    """``model`` after a few Adam steps with data augmentation on the toy task, in eval mode."""
    data = synthetic_dataset(n_train=128, n_val=16)
    x, y = data.train.images, data.train.labels
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        g = torch.randint(len(group), (len(x),), generator=generator)
        loss = F.cross_entropy(model(group.act(g, x)), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


# --- orbit averaging -------------------------------------------------------------------


@pytest.mark.parametrize("group", [R4(), T3(), D4()], ids=str)
def test_orbit_average_is_the_orbit_mean_and_bitwise_invariant(group) -> None:
    mlp = small("mlp", group)
    average = OrbitAverage(mlp, group)
    x = torch.randn(8, 1, 12, 12)
    with torch.no_grad():
        expected = torch.stack([mlp(group.act(g, x)) for g in group.elements]).mean(0)
        assert torch.allclose(average(x), expected, atol=1e-6)
        # sorted before the mean: the same numbers in the same order, whatever g
        assert_invariant(lambda v: average(v), group, x, atol=0, rtol=0)
        features = average.features(x)
        assert torch.allclose(mlp.head(features), average(x), atol=1e-5)
        for g in group.elements:
            assert torch.equal(average.features(group.act(g, x)), features)
    assert list(average.state_dict()) == [f"model.{k}" for k in mlp.state_dict()]
    with pytest.raises(GinvError, match="Linear has no features"):
        OrbitAverage(torch.nn.Linear(144, 3), group).features(x)


def test_orbit_average_of_a_trained_run_loads_and_measures(tmp_path: Path) -> None:
    """The frontier's use: a trained DA run wrapped after loading."""
    config = TrainConfig(model="mlp", group="R4", **TOY)
    trainer = Trainer([config], synthetic_dataset(), tmp_path, "cpu", progress=False)
    trainer.fit()
    model, _ = load_run(trainer.member_dir(0))
    average = OrbitAverage(model, get_group("R4"))
    x = synthetic_dataset().val.images[:16]
    assert_invariant(lambda v: average(v), get_group("R4"), x, atol=0, rtol=0)
    with pytest.raises(AssertionError):  # DA is not
        assert_invariant(lambda v: model(v), get_group("R4"), x, atol=1e-3, rtol=0)


# --- canonicalisation ----------------------------------------------------------------


@pytest.mark.parametrize("group", [R4(), T3(), D4()], ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_canonicaliser_picks_one_image_per_orbit(group, dtype) -> None:
    model = small("canon", group).to(dtype).eval()
    x = torch.randn(16, 1, 12, 12, dtype=dtype)
    with torch.no_grad():
        canon = model.canonicalise(x)
        assert torch.equal(canon, group.act(model.pose(x), x))
        assert torch.equal(model(x), model.classifier(canon))
        for g in group.elements:
            gx = group.act(g, x)
            assert torch.equal(model.canonicalise(gx), canon)
            assert torch.equal(model.features(gx), model.features(x))
        # bitwise: the same image goes through the same network
        assert_invariant(lambda v: model(v), group, x, atol=0, rtol=0)
    plain = small("mlp", group).to(dtype)
    plain.load_state_dict(model.classifier.state_dict())
    with pytest.raises(AssertionError):
        assert_invariant(lambda v: plain(v), group, x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("group", [R4(), T3()], ids=str)
@pytest.mark.parametrize("wrapper", ["orbit-average", "canon"])
def test_ginv_measures_find_the_wrappers_exactly_invariant(group, wrapper) -> None:
    """Briefly trained, in float64: accuracy the same on every orbit element, LI = DI = 0 and
    SI = 1 up to round-off (the canonicaliser: exactly), and ``assert_invariant`` passes."""
    if wrapper == "canon":
        model = briefly_trained(small("canon", group), group)
    else:  # the DA MLP, trained, then averaged
        model = OrbitAverage(briefly_trained(small("mlp", group), group), group)
    model = model.double()
    data = synthetic_dataset(n_train=128, n_val=48)  # the patterns trained on, new noise
    x, y = data.val.images.double(), data.val.labels
    report = measure(model, x, y, group, metrics=("accuracy", "di", "li", "si"))
    accuracy = report.per_element["accuracy"]
    assert accuracy == [accuracy[0]] * len(group) and accuracy[0] > 0.5
    assert report.metrics["li"] <= 1e-20 and report.metrics["di"] <= 1e-20
    assert report.metrics["si"] >= 1 - 1e-12
    if wrapper == "canon":  # the same canonical image through the same network
        assert report.metrics["li"] == 0.0 and report.metrics["di"] == 0.0
    assert_invariant(model, group, x, atol=1e-12, rtol=0)


def test_integrated_gradients_of_a_canonicaliser_are_equivariant() -> None:
    """On the path ``α·x`` from the zero image (fixed by every g) the orbit of ``α·g·x`` is
    that of ``α·x``: the same pose is chosen all along, and ``IG(g·x) = g·IG(x)``."""
    group = R4()
    model = briefly_trained(small("canon", group), group).double()
    x = torch.randn(6, 1, 12, 12, dtype=torch.float64)
    targets = torch.arange(6) % 3
    baseline = torch.zeros(1, 12, 12, dtype=torch.float64)
    maps = integrated_gradients(model, x, targets, baseline)
    with torch.no_grad():
        for alpha in torch.linspace(0.01, 1.0, 7, dtype=torch.float64):
            assert bool((model.margin(alpha * x) > 0).all())  # unique maxima along the path
    for g in group.elements:
        rotated = integrated_gradients(model, group.act(g, x), targets, baseline)
        assert torch.allclose(rotated, group.act(g, maps), atol=1e-12, rtol=0)


@pytest.mark.parametrize("relaxation", ["straight-through", "soft"])
def test_training_mode_gives_the_scorer_gradients(relaxation) -> None:
    group = R4()
    torch.manual_seed(0)
    model = Canonicaliser(
        MLP(144, 16, 2, num_classes=3), group, Scorer(144), relaxation, temperature=0.5
    )
    x, y = torch.randn(32, 1, 12, 12), torch.arange(32) % 3
    F.cross_entropy(model.train()(x), y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().max()) > 0, name
    with torch.no_grad():
        relaxed, hard = model.train()(x), model.eval()(x)
    if relaxation == "straight-through":  # the forward pass is eval mode's, exactly
        assert torch.equal(relaxed, hard)
    else:
        assert not torch.allclose(relaxed, hard)
    # eval mode is the hard argmax: no gradient reaches the scorer
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model.eval()(x), y).backward()
    assert model.scorer.hidden.weight.grad is None
    with pytest.raises(GinvError, match="relaxation must be one of straight-through, soft"):
        Canonicaliser(MLP(144, num_classes=9), group, Scorer(144), "gumbel")  # type: ignore[arg-type]
    with pytest.raises(GinvError, match="temperature must be positive"):
        Canonicaliser(MLP(144, num_classes=9), group, Scorer(144), temperature=0.0)


@pytest.mark.parametrize("relaxation", ["straight-through", "soft"])
def test_an_ensemble_of_canonicalisers_equals_its_members_in_both_modes(relaxation) -> None:
    """Members run on the ensemble's meta template: ``train()``/``eval()`` must reach it, or
    the soft relaxation would run in eval mode (and the hard argmax in training)."""
    group = R4()
    members = [small("canon", group, seed) for seed in range(3)]
    for m in members:
        m.relaxation = relaxation
    ensemble = Ensemble(members)
    x = torch.randn(3, 10, 1, 12, 12)
    y = torch.arange(10) % 3
    for training in (False, True):
        ensemble.train(training)
        assert ensemble._template[0].training is training
        with torch.no_grad():
            out, shared = ensemble(x), ensemble(x[0], shared_input=True)
        for i, member in enumerate(members):
            member.train(training)
            with torch.no_grad():
                assert torch.allclose(out[i], member(x[i]), atol=1e-6)
                assert torch.allclose(shared[i], member(x[0]), atol=1e-6)
    # the gradient of the members' summed losses reaches each member's scorer as alone
    ensemble.train()
    loss = F.cross_entropy(ensemble(x).flatten(0, 1), y.repeat(3), reduction="sum")
    loss.backward()
    grads = dict(zip(ensemble.names, (p.grad for p in ensemble.stacked), strict=True))
    for i, member in enumerate(members):
        member.zero_grad()
        F.cross_entropy(member.train()(x[i]), y, reduction="sum").backward()
        expected = member.scorer.hidden.weight.grad
        assert expected is not None
        assert torch.allclose(grads["scorer.hidden.weight"][i], expected, atol=1e-5)
    assert not ensemble.eval()._template[0].training


def test_a_canon_run_trains_saves_and_loads_exactly_invariant(tmp_path: Path) -> None:
    config = TrainConfig(model="canon", group="R4", **TOY)
    assert (TrainConfig(model="canon").width, TrainConfig(model="canon").depth) == (128, 5)
    trainer = Trainer([config], synthetic_dataset(), tmp_path, "cpu", progress=False)
    run = trainer.fit()[0]  # its model_args: test_a_run_records_its_model_args_and_loads_from_them
    assert run["best_val_acc"] > 0.5
    model, record = load_run(trainer.member_dir(0))
    assert isinstance(model, Canonicaliser) and not model.training
    assert record["config"]["model"] == "canon"
    x = synthetic_dataset(seed=2).val.images[:32]
    trainer.model.load_member_state(0, torch.load(trainer.member_dir(0) / "model.pt"))
    with torch.no_grad():
        expected = trainer.model.eval()(x, shared_input=True)[0]
        assert torch.allclose(model(x), expected, atol=1e-6)
    assert_invariant(lambda v: model(v), get_group("R4"), x, atol=0, rtol=0)
    assert_invariant(model, get_group("R4"), x, atol=0, rtol=0)


def test_exact_ties_are_broken_by_the_image_itself() -> None:
    """A scorer with zero weights rates every image alike: the canonical image is then the
    one with the largest bits at the first word where the images differ, whatever the order
    of the orbit, and the model stays exactly invariant. A margin of 0 flags such ties."""
    group = R4()
    model = small("canon", group).double().eval()
    with torch.no_grad():
        for p in model.scorer.parameters():
            p.zero_()
    x = torch.randn(16, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        assert bool((model.margin(x) == 0).all())
        canon = model.canonicalise(x)
        for g in group.elements:
            assert torch.equal(model.canonicalise(group.act(g, x)), canon)
    assert_invariant(lambda v: model(v), group, x, atol=0, rtol=0)
    # the winner by the tie-break: largest raw bits at the first differing word
    orbit = group.orbit(x).view(4, 16, -1).transpose(0, 1)
    words = orbit.contiguous().view(torch.int64).tolist()
    for b in range(16):
        assert words[b][int(model.pose(x)[b])] == max(words[b])
    # an image fixed by every element: one image, no tie to break
    constant = torch.full((1, 1, 12, 12), 0.5, dtype=torch.float64)
    assert float(model.margin(constant)[0]) == float("inf")
    assert torch.equal(model.canonicalise(constant), constant)


def test_canonical_pose_does_not_depend_on_the_order_of_the_orbit() -> None:
    torch.manual_seed(0)
    orbit = torch.randn(5, 6, 20)
    orbit[:, 3] = orbit[:, 1]  # a copy: ties on both keys
    scores = torch.randn(5, 6)
    scores[:, 2] = scores[:, 4] = -5.0  # exact score ties between distinct images
    scores[0] = 1.0  # every score tied
    scores[1, 0] = float("nan")  # NaN counts as -inf
    winner = orbit.gather(1, canonical_pose(scores, orbit).view(-1, 1, 1).expand(-1, 1, 20))
    for _ in range(10):
        perm = torch.randperm(6)
        pose = canonical_pose(scores[:, perm], orbit[:, perm])
        assert torch.equal(orbit[:, perm].gather(1, pose.view(-1, 1, 1).expand(-1, 1, 20)), winner)
    margin = pose_margin(scores, orbit, canonical_pose(scores, orbit))
    assert float(margin[0]) == 0.0 and bool((margin[1:] > 0).all())
    inside = torch.func.vmap(canonical_pose)(scores.expand(2, -1, -1), orbit.expand(2, -1, -1, -1))
    assert torch.equal(inside[1], canonical_pose(scores, orbit))


# --- registry, sizes, command line ----------------------------------------------------


def test_canon_is_a_model_kind_of_every_architecture() -> None:
    assert {"canon", "canon-cnn"} <= set(MODEL_KINDS)
    group = R4()
    torch.manual_seed(4)
    plain = build_model("mlp", group, (1, 36, 36), num_classes=9)
    torch.manual_seed(4)
    canon = build_model("canon", group, (1, 36, 36), num_classes=9)
    assert isinstance(canon, Canonicaliser)
    for k, v in plain.state_dict().items():  # the classifier starts as DA's would
        assert torch.equal(canon.state_dict()[f"classifier.{k}"], v), k
    assert sum(p.numel() for p in canon.parameters()) == 233_225 + 10_385
    assert sum(p.numel() for p in canon.scorer.parameters()) == 10_385
    assert not list(canon.buffers())
    cnn = small("canon-cnn", T3()).eval()
    assert_invariant(lambda v: cnn(v), T3(), torch.randn(4, 1, 12, 12), atol=0, rtol=0)
    with pytest.raises(GinvError, match=r"needs images shaped \(C, H, W\), got \(1296,\)"):
        build_model("canon", group, 1296, num_classes=9)


def test_parameter_counts_and_inference_flops_at_the_default_sizes() -> None:
    group = R4()
    mlp = build_model("mlp", group, (1, 36, 36), num_classes=9)
    shape = (1, 36, 36)
    assert forward_flops(mlp, shape) == 465_152
    assert forward_flops(OrbitAverage(mlp, group), shape) == 4 * 465_152
    # the classifier once, and the 1296 → 8 → 1 scorer on the 4 images of the orbit
    scorer = 2 * (1296 * 8 + 8 * 1)
    assert (
        forward_flops(build_model("canon", group, (1, 36, 36), num_classes=9).eval(), shape)
        == 465_152 + 4 * scorer
    )


def test_ginv_train_accepts_canon() -> None:
    args = build_parser().parse_args(["train", "--model", "canon"])
    assert args.model == "canon"


def test_cli_trains_an_exactly_invariant_canonicaliser(tmp_path: Path, real_data_dir: Path) -> None:
    from ginv.data import DataConfig, load_transforming

    argv = ["train", "--model", "canon", "--group", "T3", "--epochs", "1", "--n-train", "256"]
    argv += ["--n-val", "64", "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    model, run = load_run(next(tmp_path.glob("*/run.json")).parent)
    assert run["model_args"]["in_shape"] == [1, 36, 36] and isinstance(model, Canonicaliser)
    x = load_transforming(DataConfig("mnist"), real_data_dir).test.images[:64]
    assert_invariant(lambda v: model(v), get_group("T3"), x, atol=0, rtol=0)
