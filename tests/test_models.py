"""The MLP and WT models, their exact invariance, ensembles, and the invariance losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ginv.errors import GinvError
from ginv.groups import D4, R4, T3, get_group
from ginv.losses import (
    INVARIANCE_ERRORS,
    distribution_invariance,
    invariance_penalty,
    jensen_shannon_invariance,
    logit_invariance,
    normalised_logit_invariance,
)
from ginv.models import (
    ARCHITECTURES,
    CNN,
    MLP,
    MODEL_KINDS,
    Ensemble,
    WeightTied,
    build_model,
)
from ginv.testing import assert_invariant


def test_default_mlp_has_the_studys_parameter_count() -> None:
    assert sum(p.numel() for p in MLP(36 * 36, num_classes=9).parameters()) == 233_225
    assert (
        sum(p.numel() for p in build_model("wt", R4(), 36 * 36, num_classes=9).parameters())
        == 233_225
    )
    assert (
        len([m for m in MLP(36 * 36, num_classes=9).modules() if isinstance(m, torch.nn.Linear)])
        == 6
    )
    model = MLP(in_features=64, width=16, depth=2, num_classes=4)
    x = torch.randn(3, 1, 8, 8)
    assert model.features(x).shape == (3, 16) and model(x).shape == (3, 4)


@pytest.mark.parametrize("group", [R4(), T3(), D4()], ids=str)
@pytest.mark.parametrize("pool", ["mean", "max"])
def test_weight_tied_model_is_exactly_invariant(group, pool) -> None:
    model = build_model("wt", group, 36 * 36, num_classes=9, pool=pool).double()
    x = torch.randn(16, 1, 36, 36, dtype=torch.float64)
    assert_invariant(model, group, x, atol=1e-10, rtol=0)
    features = model.features(x)
    for g in group.elements:
        assert torch.allclose(model.features(group.act(g, x)), features, atol=1e-10, rtol=0)
    with pytest.raises(AssertionError, match="worst element"):
        assert_invariant(MLP(36 * 36, num_classes=9), group, x)
    with pytest.raises(AssertionError):
        assert_invariant(MLP(36 * 36, num_classes=9).double(), group, x, atol=1e-3, rtol=0)


def test_assert_invariant_names_the_worst_element() -> None:
    # f(x) = x₀₀ on [[0, 1], [2, 3]]: rot90 brings 1 there, rot90² 3, rot90³ 2
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    corner = lambda v: v.flatten(1)[:, :1]  # noqa: E731
    with pytest.raises(AssertionError) as failure:
        assert_invariant(corner, R4(), x, atol=0.5, rtol=0)
    assert str(failure.value).startswith(
        "not invariant under R4: worst element rot90², |f(g·x) − f(x)| = 3 at sample 0, output 0"
    )
    assert "id 0, rot90 1, rot90² 3, rot90³ 2" in str(failure.value)


def test_assert_invariant_runs_in_float64_on_a_copy() -> None:
    """A float32 WT model is invariant up to float32 rounding; its float64 copy exactly."""
    torch.manual_seed(0)
    model, x = (
        build_model("wt", D4(), 36 * 36, 16, 2, num_classes=9),
        torch.randn(8, 1, 36, 36),
    )
    with pytest.raises(AssertionError):  # float32 rounding
        assert_invariant(lambda v: model(v), D4(), x, atol=1e-9, rtol=0)
    assert_invariant(model, D4(), x, atol=1e-12, rtol=0)
    assert model.first.weight.dtype == torch.float32


def orbit_copy_embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The textbook WT first layer: ``W₁`` applied to all |G|·B copies ``g·x``, then the pool."""
    first = model.first  # a WeightTied layer: its group, pool and the plain layer's weights
    h = torch.nn.functional.linear(first.group.orbit(x).flatten(1), first.weight, first.bias)
    h = torch.relu(h).view(len(first.group), len(x), -1)
    return h.mean(0) if first.pool == "mean" else h.amax(0)


@pytest.mark.parametrize("group", [R4(), T3(), D4()], ids=str)
@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("channels", [1, 2])
def test_permuted_weights_equal_the_orbit_copy(group, pool, dtype, tol, channels) -> None:
    torch.manual_seed(0)
    model = build_model("wt", group, channels * 36 * 36, num_classes=9, pool=pool).to(dtype)
    x = torch.randn(8, channels, 36, 36, dtype=dtype)
    fast = model.embed(x)
    (grad_fast,) = torch.autograd.grad(fast.square().sum(), model.first.weight)
    slow = orbit_copy_embed(model, x)
    (grad_slow,) = torch.autograd.grad(slow.square().sum(), model.first.weight)
    fast, slow = fast.detach(), slow.detach()
    assert float((fast - slow).abs().max()) <= tol * float(slow.abs().max())
    assert float((grad_fast - grad_slow).abs().max()) <= tol * float(grad_slow.abs().max())


def test_weight_tied_state_has_the_mlp_keys_and_no_buffers() -> None:
    model = build_model("wt", R4(), 36 * 36, 8, 2, num_classes=9)
    model(torch.randn(2, 1, 36, 36))  # fills the index cache, which must not enter the state
    assert list(model.state_dict()) == list(
        MLP(36 * 36, width=8, depth=2, num_classes=9).state_dict()
    )
    assert not list(model.buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_weight_tied_model_runs_on_cuda() -> None:
    group = R4()
    model = build_model("wt", group, 36 * 36, 16, 2, num_classes=9)
    x = torch.randn(4, 1, 36, 36)
    expected = model(x)
    model(torch.randn(1, 1, 36, 36))  # a CPU index cached first must not be reused on CUDA
    cuda = model.cuda()
    assert torch.allclose(cuda(x.cuda()).cpu(), expected, atol=1e-5)
    ensemble = Ensemble([cuda, build_model("wt", group, 36 * 36, 16, 2, num_classes=9).cuda()])
    assert ensemble(x.cuda(), shared_input=True).shape == (2, 4, 9)
    cnn = build_model("wt-cnn", group, (1, 36, 36), num_classes=9)
    expected = cnn(x)
    # cuDNN convolutions default to TF32, whose rounding of the body's inputs is coarser
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        ensemble = Ensemble(
            [cnn.cuda(), build_model("wt-cnn", group, (1, 36, 36), num_classes=9).cuda()]
        )
        out = ensemble(x.cuda(), shared_input=True)
        assert torch.allclose(out[0].cpu(), expected, atol=1e-5)
        assert_invariant(lambda v: cnn(v), group, x.cuda(), atol=1e-5, rtol=0)


def test_ensemble_members_match_the_plain_models() -> None:
    group = get_group("T3")
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_model("wt", group, (1, 12, 12), width=8, depth=2, num_classes=3))
    ensemble = Ensemble(models)
    x = torch.randn(3, 5, 1, 12, 12)
    out = ensemble(x)
    shared = ensemble(x[0], shared_input=True)
    for i, model in enumerate(models):
        assert torch.allclose(out[i], model(x[i]), atol=1e-6)
        assert torch.allclose(shared[i], model(x[0]), atol=1e-6)
        restored = build_model("wt", group, (1, 12, 12), width=8, depth=2, num_classes=3)
        restored.load_state_dict(ensemble.member_state(i))
        assert torch.allclose(restored(x[i]), model(x[i]), atol=1e-6)


def test_a_batched_mlp_has_the_plain_models_gradients_in_their_layout() -> None:
    """The ensemble's batched linear layers compute (W xᵀ + b)ᵀ: the same logits and the same
    gradients as each plain MLP, each weight's gradient laid out as the weight."""
    group = get_group("R4")
    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        models.append(build_model("mlp", group, (1, 6, 6), width=8, depth=3,
                                  num_classes=3).double())  # fmt: skip
    ensemble = Ensemble(models)
    x, y = torch.randn(2, 5, 1, 6, 6, dtype=torch.double), torch.randint(3, (2, 5))
    logits = ensemble(x)
    F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").backward()
    for i, model in enumerate(models):
        F.cross_entropy(model(x[i]), y[i], reduction="sum").backward()
        assert torch.allclose(logits[i], model(x[i]), atol=1e-12)
        for name, stacked in ensemble.weights().items():
            plain = dict(model.named_parameters())[name].grad
            assert torch.allclose(stacked.grad[i], plain, atol=1e-12), name
            assert stacked.grad.is_contiguous(), name
    assert type(ensemble._template[0].first) is not nn.Linear  # the batched layer was tested
    # a member alone, and a model that is not one of ginv's, keep PyTorch's own layer
    assert type(ensemble._template[1].first) is nn.Linear
    other = Ensemble([nn.Sequential(nn.Flatten(), nn.Linear(36, 3))])
    assert type(other._template[0][1]) is nn.Linear


def test_pairwise_invariance_errors_by_hand() -> None:
    a = torch.tensor([math.log(3.0), 0.0])
    b = torch.tensor([0.0, 0.0])
    # p = (3/4, 1/4), q = (1/2, 1/2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    m = (0.625, 0.375)
    js = 0.5 * (
        0.75 * math.log(0.75 / m[0]) + 0.25 * math.log(0.25 / m[1])
        + 0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])
    )  # fmt: skip
    assert float(distribution_invariance(a, b)) == pytest.approx(kl, abs=1e-6)
    assert float(jensen_shannon_invariance(a, b)) == pytest.approx(js, abs=1e-6)
    c, d = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert float(logit_invariance(c, d)) == pytest.approx(0.5 * (1 + 4))
    assert float(normalised_logit_invariance(c, d)) == pytest.approx(5 / 5)
    for f in INVARIANCE_ERRORS.values():
        assert float(f(c, c)) == pytest.approx(0.0, abs=1e-7)


def test_invariance_penalty_averages_over_batch_and_non_identity_elements() -> None:
    # |G| = 3, B = 2, K = 2; the identity row is the reference
    orbit = torch.tensor(
        [
            [[0.0, 0.0], [1.0, 1.0]],
            [[1.0, 0.0], [1.0, 3.0]],
            [[0.0, 2.0], [1.0, 1.0]],
        ]
    )
    # ½‖·‖² per (h, b): h=1: 0.5, 2.0; h=2: 2.0, 0.0 → mean 1.125
    assert float(invariance_penalty("logit", orbit)) == pytest.approx(1.125)
    stacked = torch.stack([orbit, 2 * orbit])  # leading member dimension
    assert invariance_penalty("logit", stacked).tolist() == pytest.approx([1.125, 4.5])


def test_the_registry_is_the_list_of_model_names() -> None:
    assert ARCHITECTURES == {"mlp": MLP, "cnn": CNN}
    assert MODEL_KINDS == ("mlp", "wt", "canon", "cnn", "wt-cnn", "canon-cnn")
    known = r"\(known: mlp, wt, canon, cnn, wt-cnn, canon-cnn\)"
    with pytest.raises(GinvError, match=r"unknown model 'resnet' " + known):
        build_model("resnet", R4(), (1, 36, 36), num_classes=9)
    assert isinstance(build_model("wt", R4(), (1, 36, 36), num_classes=9).first, WeightTied)
    assert isinstance(build_model("wt-cnn", R4(), (1, 36, 36), num_classes=9).first, WeightTied)
    assert isinstance(build_model("cnn", R4(), (1, 36, 36), num_classes=9).first, torch.nn.Conv2d)


def test_cnn_shape_and_parameter_count() -> None:
    model = CNN(1, num_classes=9)
    assert sum(p.numel() for p in model.parameters()) == 23_881
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == [
        16,
        32,
        64,
    ]
    x = torch.randn(3, 1, 36, 36)
    assert model.features(x).shape == (3, 64) and model(x).shape == (3, 9)
    assert not list(model.buffers())
    wide = build_model("cnn", R4(), (2, 20, 20), width=40, depth=2, num_classes=4)
    assert wide(torch.randn(2, 2, 20, 20)).shape == (2, 4)
    with pytest.raises(GinvError, match="a CNN needs images shaped"):
        build_model("cnn", R4(), 1296, num_classes=9)


def orbit_copy_cnn_embed(model, x: torch.Tensor) -> torch.Tensor:
    """The textbook WT-CNN first stage: the conv and ReLU of every ``g·x``, one at a time."""
    first, group = model.first, model.first.group
    maps = [
        torch.relu(torch.nn.functional.conv2d(group.act(g, x), first.weight, first.bias,
                                              stride=2, padding=1))
        for g in group.elements
    ]  # fmt: skip
    stacked = torch.stack(maps)
    return stacked.mean(0) if first.pool == "mean" else stacked.amax(0)


@pytest.mark.parametrize("group", [R4(), T3(), D4()], ids=str)
@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_weight_tied_cnn_is_exactly_invariant(group, pool, dtype, tol) -> None:
    """``pool_g relu(conv(g·x))`` pools the same |G| maps for ``x`` and ``g'·x``: the whole
    network is invariant although a strided, padded convolution commutes with no rotation."""
    torch.manual_seed(0)
    model = build_model("wt-cnn", group, (1, 36, 36), pool=pool, num_classes=9).to(dtype)
    x = torch.randn(16, 1, 36, 36, dtype=dtype)
    assert_invariant(lambda v: model(v), group, x, atol=tol, rtol=0)
    features = model.features(x)
    for g in group.elements:
        assert torch.allclose(model.features(group.act(g, x)), features, atol=tol, rtol=0)
    assert torch.allclose(model.embed(x), orbit_copy_cnn_embed(model, x), atol=tol, rtol=0)
    # the plain CNN, with the same weights, is not invariant
    plain = build_model("cnn", group, (1, 36, 36), num_classes=9).to(dtype)
    plain.load_state_dict(model.state_dict())
    with pytest.raises(AssertionError):
        assert_invariant(lambda v: plain(v), group, x, atol=1e-4, rtol=0)


def test_weight_tied_twins_keep_the_plain_keys_and_initialisation() -> None:
    for name, twin in (("mlp", "wt"), ("cnn", "wt-cnn")):
        torch.manual_seed(5)
        plain = build_model(name, R4(), (1, 36, 36), width=16, depth=2, num_classes=9)
        torch.manual_seed(5)
        tied = build_model(twin, R4(), (1, 36, 36), width=16, depth=2, num_classes=9)
        tied(torch.randn(2, 1, 36, 36))
        assert list(tied.state_dict()) == list(plain.state_dict())
        for k, v in plain.state_dict().items():
            assert torch.equal(tied.state_dict()[k], v), k
        assert not list(tied.buffers())


def test_ensemble_of_cnns_matches_the_plain_models() -> None:
    group = R4()
    models = []
    for seed, kind in ((0, "cnn"), (1, "cnn"), (0, "wt-cnn"), (1, "wt-cnn")):
        torch.manual_seed(seed)
        models.append(build_model(kind, group, (1, 12, 12), width=8, depth=2, num_classes=3))
    for members in (models[:2], models[2:]):
        ensemble = Ensemble(members)
        x = torch.randn(2, 5, 1, 12, 12)
        out, shared = ensemble(x), ensemble(x[0], shared_input=True)
        for i, model in enumerate(members):
            assert torch.allclose(out[i], model(x[i]), atol=1e-6)
            assert torch.allclose(shared[i], model(x[0]), atol=1e-6)


def test_ensemble_members_keep_their_own_buffers() -> None:
    """BatchNorm members batched: each normalises by its own batch and updates its own
    running statistics, as it does alone (in training and in eval mode)."""
    import copy

    torch.manual_seed(0)
    members = [torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
               for _ in range(2)]  # fmt: skip
    alone = [copy.deepcopy(m) for m in members]
    ensemble = Ensemble(members).train()
    x = torch.randn(2, 5, 1, 8, 8)
    out = ensemble(x)
    for i, model in enumerate(alone):
        assert torch.allclose(out[i], model.train()(x[i]), atol=1e-6)
        state = ensemble.member_state(i)
        for k, v in model.state_dict().items():
            assert torch.allclose(state[k].double(), v.double(), atol=1e-7), k
        assert int(state["1.num_batches_tracked"]) == 1
    ensemble.eval()
    shared = ensemble(x[0], shared_input=True)
    for i, model in enumerate(alone):
        assert torch.allclose(shared[i], model.eval()(x[0]), atol=1e-6)
    assert {k for k in ensemble.state_dict() if "buffer" in k} == {
        f"member_buffer_{j}" for j in range(3)
    }


def test_tsne_reads_any_model_with_features() -> None:
    tsne = pytest.importorskip("ginv.experiments.tsne")
    x = torch.randn(3, 1, 36, 36)
    assert tsne.penultimate_features(
        build_model("wt-cnn", R4(), (1, 36, 36), num_classes=9), x
    ).shape == (3, 64)
    assert tsne.penultimate_features(MLP(36 * 36, num_classes=9), x).shape == (3, 128)
    with pytest.raises(GinvError, match="Linear has no features"):
        tsne.penultimate_features(torch.nn.Linear(1296, 9), x)
