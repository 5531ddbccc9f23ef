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
    MeasureReport,
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
from ginv.models import MLP, build_model

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
        build_model("wt", group, 144, 32, 2, num_classes=9).double(),
        OrbitMean(group, MLP(144, 32, 2, num_classes=9)).double(),
    ]
    for model in models:
        report = measure(model, x, y, group, metrics=("di", "li", "si"))
        assert report.metrics["li"] == pytest.approx(0.0, abs=1e-12)
        assert report.metrics["di"] == pytest.approx(0.0, abs=1e-12)
        assert report.metrics["si"] == pytest.approx(1.0, abs=1e-9)
    plain = measure(MLP(144, 32, 2, num_classes=9).double(), x, y, group, metrics=("li", "si"))
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
    relu = MLP(144, 64, 3, num_classes=9).double()
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
    model = MLP(144, 64, 3, num_classes=9).eval()
    x, t = torch.randn(16, 1, 12, 12), torch.randint(9, (16,))
    reference = captum.IntegratedGradients(model).attribute(
        x, baselines=0.0, target=t, n_steps=50, method=rule
    )
    ours = integrated_gradients(model, x, t, torch.zeros(1, 12, 12), steps=50, rule=rule)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)


def test_saliency_map_is_the_identity_column_of_the_aligned_orbit_maps() -> None:
    torch.manual_seed(0)
    model = MLP(144, 16, 2, num_classes=9)
    x, y = torch.randn(3, 1, 12, 12), torch.randint(9, (3,))
    aligned = aligned_orbit_maps(model, x, y, R4())
    assert torch.allclose(saliency_map(model, x, y), aligned[0], atol=1e-6)
    assert float(aligned.min()) >= 0.0


def test_a_moved_baseline_is_refused() -> None:
    model = MLP(144, 8, 1, num_classes=9)
    x, y = torch.randn(2, 1, 12, 12), torch.zeros(2, dtype=torch.long)
    gradient = torch.linspace(0, 1, 144).view(1, 12, 12)
    with pytest.raises(GinvError, match="baseline is moved"):
        aligned_orbit_maps(model, x, y, R4(), baseline=gradient)
    aligned_orbit_maps(model, x, y, R4(), baseline=torch.full((1, 12, 12), -0.4))


def test_sensitivity_matches_the_full_jacobian() -> None:
    torch.manual_seed(0)
    model = MLP(144, 32, 2, num_classes=9).double()
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
    model = MLP(144, 16, 2, num_classes=9)
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
    model = MLP(144, 16, 2, num_classes=9)
    x, y = torch.randn(10, 1, 12, 12), torch.randint(9, (10,))
    report = measure(model, x, y, T3(), si_subset=4, sensitivity_subset=3, batch_size=4)
    assert report.subsets == {"accuracy": 10, "di": 10, "li": 10, "si": 4, "sensitivity": 3}
    assert len(report.per_element["si"]) == 3 and report.per_element["li"][0] == 0.0
    report.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["metrics"]) == {"accuracy", "di", "li", "si", "sensitivity"}
    assert data["elements"] == ["id", "shiftx", "shiftx²"]
    assert "SI" in report.table() and model.training
    with pytest.raises(GinvError, match="unknown measures"):
        measure(model, x, y, T3(), metrics=("nope",))


def small_cnn(classes: int = 5) -> nn.Module:
    """A CNN on 3×32×32 RGB images with BatchNorm, its running statistics made non-trivial."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    )  # fmt: skip
    with torch.no_grad():
        for _ in range(3):
            model(2 * torch.randn(16, 3, 32, 32) + 0.5)  # train mode: moves the running stats
    return model.eval()


def assert_same_report(a, b, rtol: float = 1e-6) -> None:
    """Equal up to float rounding in every field but the timings."""
    assert (a.group, a.n_samples, a.elements, a.subsets) == (
        b.group,
        b.n_samples,
        b.elements,
        b.subsets,
    )
    assert a.metrics.keys() == b.metrics.keys() and a.per_sample.keys() == b.per_sample.keys()
    for key in a.metrics:
        assert a.metrics[key] == pytest.approx(b.metrics[key], rel=rtol, abs=1e-12), key
        assert a.std_over_samples[key] == pytest.approx(
            b.std_over_samples[key], rel=rtol, abs=1e-12
        )
        assert a.per_element.get(key, []) == pytest.approx(
            b.per_element.get(key, []), rel=rtol, abs=1e-12
        )
        assert a.per_element_std.get(key, []) == pytest.approx(
            b.per_element_std.get(key, []), rel=rtol, abs=1e-12
        )
        assert torch.allclose(a.per_sample[key], b.per_sample[key], rtol=rtol, atol=1e-12), key
    assert a.weight_sigma_max == pytest.approx(b.weight_sigma_max)


FAST = SaliencyConfig(steps=4)


@pytest.mark.parametrize("group_name", ["R4", "FlipH", "D4"])
def test_a_data_loader_gives_the_tensor_paths_report(group_name: str) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    group, model = get_group(group_name), small_cnn()
    x, y = torch.randn(11, 3, 32, 32), torch.randint(5, (11,))
    kwargs = dict(saliency=FAST, si_subset=7, sensitivity_subset=6)
    whole = measure(model, x, y, group, **kwargs)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    assert_same_report(measure(model, loader, None, group, **kwargs), whole)
    numpy_batches = ((a.numpy(), b.numpy()) for a, b in zip(x.split(3), y.split(3), strict=True))
    assert_same_report(measure(model, numpy_batches, None, group, **kwargs), whole)
    # a 1 MiB budget splits every pass, down to groups of integration steps within one image
    assert_same_report(measure(model, x, y, group, memory_budget_mb=1, **kwargs), whole)
    assert whole.elements == group.element_names and len(whole.per_element["si"]) == len(group)
    assert not model.training


def test_reports_merge_into_the_report_of_all_samples(tmp_path: Path) -> None:
    model = small_cnn()
    x, y = torch.randn(9, 3, 32, 32), torch.randint(5, (9,))
    kwargs = dict(saliency=FAST)  # SI on every sample (a subset beyond the data is refused)
    first, second = (
        measure(model, x[:4], y[:4], R4(), **kwargs),
        measure(model, x[4:], y[4:], R4(), **kwargs),
    )
    merged = MeasureReport.merge(first, second)
    assert_same_report(merged, measure(model, x, y, R4(), saliency=FAST))
    # and from JSON, without per-sample values
    first.write_json(tmp_path / "a.json")
    second.write_json(tmp_path / "b.json")
    loaded = [
        MeasureReport.from_dict(json.loads((tmp_path / f).read_text()))
        for f in ("a.json", "b.json")
    ]
    again = MeasureReport.merge(*loaded)
    assert again.metrics == pytest.approx(
        merged.metrics
    ) and again.std_over_samples == pytest.approx(merged.std_over_samples)
    with pytest.raises(GinvError, match="cannot merge"):
        MeasureReport.merge(first, measure(model, x, y, FlipH(), metrics="li"))


def test_pooled_spread_by_hand() -> None:
    a = MeasureReport(
        "G",
        2,
        ["id"],
        metrics={"sensitivity": 1.0},
        std_over_samples={"sensitivity": math.sqrt(2)},
        subsets={"sensitivity": 2},
    )
    b = MeasureReport(
        "G",
        1,
        ["id"],
        metrics={"sensitivity": 4.0},
        std_over_samples={"sensitivity": 0.0},
        subsets={"sensitivity": 1},
    )
    merged = MeasureReport.merge(a, b)  # samples 0, 2 and 4
    assert merged.metrics["sensitivity"] == pytest.approx(2.0)
    assert merged.std_over_samples["sensitivity"] == pytest.approx(2.0)
    assert merged.subsets["sensitivity"] == 3 and merged.n_samples == 3


def test_old_reports_read_sigma_j_as_sensitivity() -> None:
    old = {
        "group": "R4",
        "n_samples": 3,
        "metrics": {"li": 0.5, "sigma_j": 2.0},
        "std_over_samples": {"sigma_j": 0.1},
        "subsets": {"sigma_j": 2},
        "settings_key": {},
    }
    report = MeasureReport.from_dict(old)
    assert report.metrics == {"li": 0.5, "sensitivity": 2.0}
    assert report.subsets == {"li": 3, "sensitivity": 2}


def test_tidy_rows_csv_and_dataframe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.tensor([[[[1.0, 3.0]]]])
    report = measure(first_two_pixels, x, torch.tensor([1]), FlipH(), metrics=("accuracy", "li"))
    report.write_csv(tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines() == [
        "measure,element,value,std,samples",
        "accuracy,mean,0.5,0.0,1",
        "accuracy,id,1.0,0.0,1",
        "accuracy,flipH,0.0,0.0,1",
        "li,mean,4.0,0.0,1",
        "li,id,0.0,0.0,1",
        "li,flipH,4.0,0.0,1",
    ]
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(GinvError, match="needs pandas"):
        report.to_dataframe()
    monkeypatch.undo()
    pytest.importorskip("pandas")
    frame = report.to_dataframe()
    assert list(frame.columns) == ["measure", "element", "value", "std", "samples"]
    assert frame.set_index(["measure", "element"]).loc[("li", "flipH"), "value"] == 4.0


def test_json_has_null_not_nan(tmp_path: Path) -> None:
    report = MeasureReport(
        "R4", 1, metrics={"li": float("nan")}, weight_sigma_max={"w": float("inf")}
    )
    report.write_json(tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["metrics"] == {"li": None}


def test_weight_sigma_max_covers_conv_kernels_reshaped() -> None:
    model = small_cnn()
    norms = weight_spectral_norms(model)
    kernel = model[0].weight.detach()
    assert set(norms) == {"0.weight", "3.weight", "7.weight"}  # not the 1-D BatchNorm weight
    assert norms["0.weight"] == pytest.approx(float(torch.linalg.svdvals(kernel.reshape(6, 27))[0]))


def nan_for_negative(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)[:, :2].log()


MISUSE = {
    "labels out of range": (
        lambda x, y: (first_two_pixels, x, y + 2),
        "labels must lie in \\[0, 2\\)",
    ),
    "float labels": (lambda x, y: (first_two_pixels, x, y.float()), "integer class indices"),
    "(N, 1) labels": (lambda x, y: (first_two_pixels, x, y[:, None]), "shape \\(N,\\)"),
    "uint8 images": (lambda x, y: (first_two_pixels, x.to(torch.uint8), y), "floating point"),
    "a tuple": (lambda x, y: (lambda v: (first_two_pixels(v), v), x, y), "returned a tuple"),
    "wrong shape": (lambda x, y: (lambda v: v.flatten(1)[:, 0], x, y), "returned shape \\(1,\\)"),
    "non-finite images": (
        lambda x, y: (first_two_pixels, (x - 2).log(), y),
        "images contain 2 non-finite",
    ),
    "non-finite logits": (
        lambda x, y: (nan_for_negative, x - 2, y),
        "non-finite logits .* sample 0 under id",
    ),
}


@pytest.mark.parametrize("case", list(MISUSE))
def test_misuse_is_one_clear_error(case: str) -> None:
    x, y = torch.tensor([[[[1.0, 3.0]]], [[[3.0, 1.0]]]]), torch.tensor([1, 0])
    make, message = MISUSE[case]
    with pytest.raises(GinvError, match=message):
        measure(*make(x, y), FlipH(), metrics=("accuracy", "li"))


def test_measure_arguments_are_checked_or_accepted() -> None:
    x, y = torch.tensor([[[[1.0, 3.0]]], [[[3.0, 1.0]]]]), torch.tensor([1, 0])
    with pytest.raises(GinvError, match="batch_size must be a positive"):
        measure(first_two_pixels, x, y, FlipH(), batch_size=0)
    with pytest.raises(GinvError, match="labels are missing"):
        measure(first_two_pixels, x, None, FlipH())
    with pytest.raises(GinvError, match="non-finite target logits"):  # SI alone
        measure(nan_for_negative, x - 2, y, FlipH(), metrics="si", saliency=PLAIN)
    li = measure(first_two_pixels, x, y, FlipH(), metrics="li")  # one name, as a string
    assert set(li.metrics) == {"li"} and li.metrics["li"] == pytest.approx(4.0)
    arrays = measure(first_two_pixels, x.numpy(), y.numpy(), FlipH(), metrics=("accuracy", "li"))
    assert (
        arrays.metrics
        == measure(first_two_pixels, x, y, FlipH(), metrics=("accuracy", "li")).metrics
    )
    assert (
        measure(first_two_pixels, x, y.view(-1), FlipH(), metrics="accuracy").metrics["accuracy"]
        == 0.5
    )


@pytest.mark.slow
def test_measures_stay_within_their_memory_budget() -> None:
    """256 RGB 128×128 images under D4, every measure, a 256 MiB budget: the peak resident
    memory grows by less than 1 GiB (3.4 GiB when the orbit went through in one pass)."""
    script = Path(__file__).parent / "_memory_probe.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    growth_mib = float(done.stdout.split()[0])
    assert growth_mib < 1024


@pytest.mark.slow
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
