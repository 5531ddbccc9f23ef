"""Measures on hand-computed cases, on invariant models, and against reference implementations."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ginv.errors import GinvError
from ginv.groups import R4, T3, FlipH, get_group
from ginv.measures import (
    SaliencyConfig,
    aligned_orbit_maps,
    input_jacobians,
    integrated_gradients,
    jacobian_spectral_norm,
    measure,
    quadrature,
    saliency_map,
    saliency_similarity,
    weight_spectral_norms,
)
from ginv.models import MLP, WeightTiedMLP

PLAIN = SaliencyConfig(threshold=0.0, blur_size=1)  # no threshold, no filter: hand-computable


def first_two_pixels(x: torch.Tensor) -> torch.Tensor:
    """f(x) = (x₀, x₁): a classifier whose logits are its first two pixels."""
    return x.flatten(1)[:, :2]


def test_accuracy_di_li_by_hand() -> None:
    # FlipH on a 1×1×2 image swaps the pixels: f(x) = (1, 3), f(gx) = (3, 1)
    x = torch.tensor([[[[1.0, 3.0]]]])
    report = measure(
        first_two_pixels, x, torch.tensor([1]), FlipH(), metrics=("accuracy", "di", "li")
    )
    assert report.metrics["li"] == pytest.approx(0.5 * (2**2 + 2**2))
    assert report.metrics["di"] == pytest.approx(2 * math.tanh(1.0))  # (p₂ − p₁)·log(p₂/p₁)
    assert report.metrics["accuracy"] == pytest.approx(0.5)
    assert report.per_element["li"] == pytest.approx([0.0, 4.0])


def test_si_by_hand_for_a_linear_model() -> None:
    # For f(x) = Wx, IG from 0 is exactly x ⊙ W_t; FlipH swaps the two pixels.
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 3.0], [0.5, 0.5]]))
    model = nn.Sequential(nn.Flatten(), linear)
    x, y = torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([0])
    # m(x) = (1, 6); m(gx) = |(2, 1) ⊙ (1, 3)| = (2, 3), realigned (3, 2)
    sim = saliency_similarity(aligned_orbit_maps(model, x, y, FlipH(), PLAIN))
    assert float(sim[1, 0]) == pytest.approx(15 / math.sqrt(37 * 13), abs=1e-6)
    # with the 0.9·max threshold: m(x) = (0, 6), realigned m(gx) = (3, 0): orthogonal
    thresholded = SaliencyConfig(blur_size=1)
    sim = saliency_similarity(aligned_orbit_maps(model, x, y, FlipH(), thresholded))
    assert float(sim[1, 0]) == pytest.approx(0.0, abs=1e-9)
    assert measure(model, x, y, FlipH(), metrics=("si",), saliency=PLAIN).metrics[
        "si"
    ] == pytest.approx(15 / math.sqrt(37 * 13), abs=1e-6)


class OrbitMean(nn.Module):
    """f(x) = h(mean over the orbit of x): exactly invariant for any h."""

    def __init__(self, group, h: nn.Module) -> None:
        super().__init__()
        self.group, self.h = group, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(self.group.orbit(x).view(len(self.group), *x.shape).mean(0))


@pytest.mark.parametrize("group_name", ["R4", "T3", "D4"])
def test_invariant_models_score_perfectly(group_name: str) -> None:
    group = get_group(group_name)
    torch.manual_seed(0)
    x, y = torch.randn(12, 1, 12, 12, dtype=torch.float64), torch.randint(9, (12,))
    models = [
        WeightTiedMLP(group, in_features=144, width=32, depth=2).double(),
        OrbitMean(group, MLP(144, 32, 2)).double(),
    ]
    for model in models:
        report = measure(model, x, y, group, metrics=("di", "li", "si"))
        assert report.metrics["li"] == pytest.approx(0.0, abs=1e-12)
        assert report.metrics["di"] == pytest.approx(0.0, abs=1e-12)
        assert report.metrics["si"] == pytest.approx(1.0, abs=1e-9)
    plain = measure(MLP(144, 32, 2).double(), x, y, group, metrics=("li", "si"))
    assert plain.metrics["li"] > 1e-4 and plain.metrics["si"] < 0.99


def _completeness_error(model: nn.Module, steps: int, rule: str) -> torch.Tensor:
    """Per sample |Σ attributions − (f_t(x) − f_t(b))| / |f_t(x) − f_t(b)|."""
    torch.manual_seed(1)
    x, t = 3 * torch.randn(20, 1, 12, 12, dtype=torch.float64), torch.randint(9, (20,))
    baseline = torch.zeros(1, 12, 12, dtype=torch.float64)
    attributions = integrated_gradients(model, x, t, baseline, steps=steps, rule=rule)
    with torch.no_grad():
        gap = model(x).gather(1, t[:, None])[:, 0] - model(baseline[None])[0, t]
    return (attributions.flatten(1).sum(1) - gap).abs() / gap.abs()


def test_integrated_gradients_completeness() -> None:
    """Σ attributions = f(x) − f(baseline): within 1% at 50 Gauss–Legendre steps on a smooth
    network. A ReLU network's gradient jumps along the path, which slows every quadrature
    (up to 8% off at 50 steps here), so it is checked with a fine midpoint rule, on average."""
    torch.manual_seed(0)
    smooth = nn.Sequential(
        nn.Flatten(), nn.Linear(144, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 9)
    ).double()
    assert float(_completeness_error(smooth, 50, "gausslegendre").max()) < 0.01
    relu = MLP(144, 64, 3).double()
    assert float(_completeness_error(relu, 4000, "riemann_middle").mean()) < 0.01


def test_quadrature_rules_integrate_exactly_what_they_should() -> None:
    for rule in (
        "gausslegendre",
        "riemann_left",
        "riemann_right",
        "riemann_middle",
        "riemann_trapezoid",
    ):
        alphas, weights = quadrature(50, rule)
        assert float(weights.sum()) == pytest.approx(1.0)
        assert float((weights * alphas).sum()) == pytest.approx(0.5, abs=0.011)
    alphas, weights = quadrature(5, "gausslegendre")
    assert float((weights * alphas**9).sum()) == pytest.approx(0.1, abs=1e-12)  # exact to degree 9


# Captum's names and definitions, but for riemann_trapezoid (textbook weights here, see README)
@pytest.mark.parametrize(
    "rule", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle"]
)
def test_integrated_gradients_agree_with_captum(rule: str) -> None:
    captum = pytest.importorskip("captum.attr")
    torch.manual_seed(0)
    model = MLP(144, 64, 3).eval()
    x, t = torch.randn(16, 1, 12, 12), torch.randint(9, (16,))
    reference = captum.IntegratedGradients(model).attribute(
        x, baselines=0.0, target=t, n_steps=50, method=rule
    )
    ours = integrated_gradients(model, x, t, torch.zeros(1, 12, 12), steps=50, rule=rule)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)


def test_saliency_map_is_the_identity_column_of_the_aligned_orbit_maps() -> None:
    torch.manual_seed(0)
    model = MLP(144, 16, 2)
    x, y = torch.randn(3, 1, 12, 12), torch.randint(9, (3,))
    aligned = aligned_orbit_maps(model, x, y, R4())
    assert torch.allclose(saliency_map(model, x, y), aligned[0], atol=1e-6)
    assert float(aligned.min()) >= 0.0


def test_a_moved_baseline_is_refused() -> None:
    model = MLP(144, 8, 1)
    x, y = torch.randn(2, 1, 12, 12), torch.zeros(2, dtype=torch.long)
    gradient = torch.linspace(0, 1, 144).view(1, 12, 12)
    with pytest.raises(GinvError, match="baseline is moved"):
        aligned_orbit_maps(model, x, y, R4(), baseline=gradient)
    aligned_orbit_maps(model, x, y, R4(), baseline=torch.full((1, 12, 12), -0.4))


def test_sensitivity_matches_the_full_jacobian() -> None:
    torch.manual_seed(0)
    model = MLP(144, 32, 2).double()
    x = torch.randn(5, 1, 12, 12, dtype=torch.float64)
    sigma = jacobian_spectral_norm(model, x)
    for i in range(5):
        full = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x[i])
        assert float(sigma[i]) == pytest.approx(
            float(torch.linalg.svdvals(full.flatten(1))[0]), rel=1e-10
        )
    power = jacobian_spectral_norm(model, x, method="power", iterations=200)
    assert torch.allclose(power, sigma, rtol=1e-4)
    assert input_jacobians(model, x).shape == (5, 9, 144)


def test_power_sensitivity_differentiates_chunks_not_the_whole_split(monkeypatch) -> None:
    """Forward AD sizes a view's tangent by its base's storage: every tensor that jvp/vjp
    see must own a chunk-sized storage, not the 2,000-image split it was cut from."""
    from ginv.measures import sensitivity

    seen: list[int] = []
    jvp, vjp = sensitivity.jvp, sensitivity.vjp

    def recording_jvp(f, primals, tangents):
        seen.extend(p.untyped_storage().nbytes() for p in (*primals, *tangents))
        return jvp(f, primals, tangents)

    def recording_vjp(f, *primals):
        seen.extend(p.untyped_storage().nbytes() for p in primals)
        return vjp(f, *primals)

    monkeypatch.setattr(sensitivity, "jvp", recording_jvp)
    monkeypatch.setattr(sensitivity, "vjp", recording_vjp)
    split = torch.randn(2000, 1, 12, 12)
    chunk_bytes = 8 * split[0].numel() * split.element_size()
    model = MLP(144, 16, 2)
    whole = jacobian_spectral_norm(model, split[:16], method="power", iterations=3, chunk=8)
    assert seen and max(seen) == chunk_bytes
    copied = jacobian_spectral_norm(model, split[:16].clone(), "power", iterations=3, chunk=8)
    assert torch.equal(whole, copied)


def test_sensitivity_of_a_linear_model_is_its_spectral_norm() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(144, 9).double()
    model = nn.Sequential(nn.Flatten(), linear)
    x = torch.randn(4, 1, 12, 12, dtype=torch.float64)
    expected = float(torch.linalg.svdvals(linear.weight.detach())[0])
    assert torch.allclose(
        jacobian_spectral_norm(model, x), torch.full((4,), expected, dtype=torch.float64)
    )
    assert weight_spectral_norms(model)["1.weight"] == pytest.approx(expected)


def test_report_json_and_table(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MLP(144, 16, 2)
    x, y = torch.randn(10, 1, 12, 12), torch.randint(9, (10,))
    report = measure(model, x, y, T3(), si_subset=4, sensitivity_subset=3, batch_size=4)
    assert report.subsets == {"si": 4, "sigma_j": 3}
    assert len(report.per_element["si"]) == 3 and report.per_element["li"][0] == 0.0
    report.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["metrics"]) == {"accuracy", "di", "li", "si", "sigma_j"}
    assert "SI" in report.table() and model.training
    with pytest.raises(GinvError, match="unknown measures"):
        measure(model, x, y, T3(), metrics=("nope",))


def test_cli_measure_on_a_trained_run(tmp_path: Path, real_data_dir: Path) -> None:
    base = [sys.executable, "-m", "ginv.cli"]
    train = [
        *base,
        "train",
        "--epochs",
        "1",
        "--n-train",
        "512",
        "--n-val",
        "64",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(train, check=True, capture_output=True, timeout=300)
    run_dir = tmp_path / "mnist-R4-mlp-seed0"
    out = tmp_path / "m.json"
    cmd = [
        *base,
        "measure",
        "--checkpoint",
        str(run_dir),
        "--subset",
        "64",
        "--si-subset",
        "8",
        "--out",
        str(out),
        "--quiet",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "SI" in done.stdout and json.loads(out.read_text())["n_samples"] == 64
    bad = subprocess.run(
        [*base, "measure", "--checkpoint", str(tmp_path / "none")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_cli_measure_normalises_another_dataset_as_the_run_was_trained(
    tmp_path: Path, real_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MNIST-trained run measured on FMNIST sees FMNIST's pixels normalised with MNIST's
    training statistics, the convention of the drift experiment."""
    import ginv.measures
    from ginv.cli import main
    from ginv.data import load_transforming

    train = ["train", "--epochs", "1", "--n-train", "64", "--n-val", "16", "--depth", "1"]
    assert main([*train, "--width", "8", "--quiet", "--out", str(tmp_path)]) == 0
    seen = []

    def recording_measure(model, images, *args, **kwargs):
        seen.append(images.cpu())
        return real_measure(model, images, *args, **kwargs)

    real_measure = ginv.measures.measure
    monkeypatch.setattr(ginv.measures, "measure", recording_measure)
    out = tmp_path / "m.json"
    run = str(tmp_path / "mnist-R4-mlp-seed0")
    argv = ["measure", "--checkpoint", run, "--dataset", "fmnist", "--subset", "32"]
    assert (
        main([*argv, "--metrics", "accuracy", "--quiet", "--out", str(out), "--device", "cpu"]) == 0
    )
    mnist, fmnist = load_transforming("mnist"), load_transforming("fmnist")
    pixels = fmnist.to_pixels(fmnist.test.images[:32])
    assert torch.allclose(seen[0], (pixels - mnist.mean) / mnist.std, atol=1e-5)
    assert not torch.allclose(seen[0], fmnist.test.images[:32], atol=1e-2)
    settings = json.loads(out.read_text())["settings"]
    assert settings["normalisation"] == {"dataset": "mnist", "mean": mnist.mean, "std": mnist.std}
