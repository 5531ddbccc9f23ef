"""The measure registry: every registered measure through one loop, a third-party measure
from a file outside the package (API and CLI), attribute access, and misuse refused."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ginv.measures
from ginv.errors import GinvError
from ginv.groups import R4, FlipH
from ginv.measures import MEASURES, METRICS, MeasureReport, SaliencyConfig, measure
from ginv.models import MLP, OrbitAverage
from ginv.testing import assert_invariant

PLUGINS = Path(__file__).parent / "plugins"
FAST = SaliencyConfig(steps=4)


def first_two_pixels(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)[:, :2]


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch):
    """Import tests/plugins/toy_measure.py (which registers ``mean_logit``); unregister after."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    saved = dict(MEASURES)
    sys.modules.pop("toy_measure", None)
    yield importlib.import_module("toy_measure")
    MEASURES.clear()
    MEASURES.update(saved)
    sys.modules.pop("toy_measure", None)


@pytest.mark.parametrize("name", list(MEASURES))
def test_every_registered_measure_runs_merges_and_round_trips(name: str, tmp_path: Path) -> None:
    """Each measure: finite values for every sample, the report of two halves merged equals
    the report of the whole, and JSON keeps it."""
    torch.manual_seed(0)
    model = MLP(36, 8, 2, num_classes=3).double()
    x, y = torch.randn(6, 1, 6, 6, dtype=torch.float64), torch.randint(3, (6,))
    kw = dict(metrics=name, saliency=FAST)
    whole = measure(model, x, y, R4(), **kw)
    assert set(whole.metrics) == {name} and whole.subsets[name] == 6
    assert whole.per_sample[name].shape == (6,) and bool(
        torch.isfinite(whole.per_sample[name]).all()
    )
    assert getattr(whole, name) == whole[name] == whole.metrics[name]
    merged = MeasureReport.merge(
        measure(model, x[:2], y[:2], R4(), **kw), measure(model, x[2:], y[2:], R4(), **kw)
    )
    assert merged.metrics[name] == pytest.approx(whole.metrics[name], rel=1e-9, abs=1e-12)
    assert merged.std_over_samples[name] == pytest.approx(
        whole.std_over_samples[name], rel=1e-9, abs=1e-12
    )
    whole.write_json(tmp_path / "r.json")
    back = MeasureReport.from_dict(json.loads((tmp_path / "r.json").read_text()))
    assert back.metrics == pytest.approx(whole.metrics)
    label = MEASURES[name].label or name
    assert label in whole.table()


def test_orbit_measures_share_one_orbit_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ginv.measures.run.orbit_logits

    def counting(model, x, group):
        calls.append(len(x))
        return real(model, x, group)

    monkeypatch.setattr(ginv.measures.run, "orbit_logits", counting)
    x, y = torch.randn(5, 1, 4, 4), torch.randint(2, (5,))
    measure(first_two_pixels, x, y, R4(), metrics=("accuracy", "di", "li"))
    assert calls == [5]


def test_a_third_party_measure_is_one_file_and_one_call(toy) -> None:
    assert "mean_logit" in MEASURES and METRICS == ("accuracy", "di", "li", "si", "sensitivity")
    x = torch.tensor([[[[1.0, 3.0]]], [[[2.0, 6.0]]]])
    report = measure(
        first_two_pixels, x, torch.tensor([0, 1]), FlipH(), metrics=("li", "mean_logit")
    )
    assert report.mean_logit == pytest.approx((2.0 + 4.0) / 2)  # means of (1, 3) and (2, 6)
    assert report.li == pytest.approx((4.0 + 16.0) / 2)  # ½‖(1,3) − (3,1)‖², ½‖(2,6) − (6,2)‖²
    assert list(report.metrics) == ["li", "mean_logit"] and "mean logit" in report.table()
    with pytest.raises(GinvError, match="registered already"):
        ginv.measures.register_measure(type("Other", (toy.MeanLogit,), {})())


def test_attribute_access_and_dataframe() -> None:
    x = torch.tensor([[[[1.0, 3.0]]]])
    report = measure(first_two_pixels, x, torch.tensor([1]), FlipH(), metrics=("accuracy", "li"))
    assert report.li == report["li"] == 4.0 and report.accuracy == 0.5
    with pytest.raises(AttributeError, match=r"no measure 'si'.*accuracy, li"):
        _ = report.si
    with pytest.raises(KeyError):
        report["si"]
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(report)).li == 4.0 and copy.deepcopy(report).li == 4.0
    pd = pytest.importorskip("pandas")
    assert isinstance(report.to_dataframe(), pd.DataFrame)


# --- misuse: one GinvError before the work -------------------------------------------


def test_sensitivity_of_a_nan_model_is_one_error() -> None:
    x, y = torch.randn(3, 1, 2, 2), torch.tensor([0, 1, 0])
    with pytest.raises(GinvError, match=r"sensitivity: .*non-finite"):
        measure(lambda v: first_two_pixels(v) * float("nan"), x, y, FlipH(), metrics="sensitivity")


def test_si_of_a_model_without_gradients_is_one_error() -> None:
    def frozen(v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return first_two_pixels(v)

    x, y = torch.randn(3, 1, 2, 2), torch.tensor([0, 1, 0])
    for name in ("si", "sensitivity"):
        with pytest.raises(GinvError, match=r"do not require grad"):
            measure(frozen, x, y, FlipH(), metrics=name)


def test_every_batch_of_a_loader_is_checked() -> None:
    y = torch.tensor([0, 1])
    loader = [(torch.randn(2, 1, 4, 4), y), (torch.randn(2, 1, 6, 6), y)]
    with pytest.raises(GinvError, match=r"batch 1 has images of shape \(1, 6, 6\), the first"):
        measure(first_two_pixels, loader, None, FlipH(), metrics="li")
    with pytest.raises(GinvError, match="batch 1 has images"):
        ginv.measures.layer_equivariance(nn.Sequential(nn.Flatten()), loader, FlipH())


def test_subsets_larger_than_the_data_are_refused() -> None:
    x, y = torch.randn(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(GinvError, match="si_subset=3 is larger than the data \\(2 samples\\)"):
        measure(first_two_pixels, x, y, FlipH(), metrics="si", si_subset=3)
    with pytest.raises(GinvError, match="sensitivity_subset=5 is larger"):
        measure(first_two_pixels, [(x, y)], None, FlipH(), metrics="li", sensitivity_subset=5)
    assert measure(first_two_pixels, x, y, FlipH(), metrics="si", si_subset=2).subsets["si"] == 2


def test_layer_invariance_takes_numpy_images() -> None:
    torch.manual_seed(0)
    model, x = MLP(16, 4, 2, num_classes=9).double(), torch.randn(3, 1, 4, 4, dtype=torch.float64)
    values = ginv.measures.layer_invariance(model, x.numpy(), R4(), ["first"])
    assert values == ginv.measures.layer_invariance(model, x, R4(), ["first"])
    with pytest.raises(GinvError, match="images must be a tensor"):
        ginv.measures.layer_invariance(model, 3.0, R4(), ["first"])


def test_assert_invariant_refuses_an_empty_batch_and_checks_float32_callables() -> None:
    with pytest.raises(GinvError, match="non-empty batch"):
        assert_invariant(MLP(16, 4, 1, num_classes=9), R4(), torch.zeros(0, 1, 4, 4))
    average = OrbitAverage(MLP(16, 4, 1, num_classes=9), R4())  # float32, bitwise invariant
    x = torch.randn(4, 1, 4, 4)
    assert_invariant(lambda v: average(v), R4(), x, atol=0, rtol=0)  # was a dtype error
    with pytest.raises(AssertionError, match="worst element"):
        plain = MLP(16, 4, 1, num_classes=9)
        assert_invariant(lambda v: plain(v), R4(), x, atol=1e-6, rtol=0)


# --- the command line ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, real_data_dir: Path) -> Path:
    from ginv.cli import main

    out = tmp_path_factory.mktemp("runs")
    train = ["train", "--epochs", "1", "--n-train", "64", "--n-val", "16", "--depth", "2"]
    assert main([*train, "--width", "8", "--quiet", "--out", str(out), "--device", "cpu"]) == 0
    return out / "mnist-R4-mlp-seed0"


def test_cli_measures_a_plugin_measure(toy, tiny_run: Path, tmp_path: Path, capsys) -> None:
    from ginv.cli import main

    sys.modules.pop("toy_measure", None)
    MEASURES.pop("mean_logit")  # registered again by --plugin
    out = tmp_path / "m.json"
    argv = ["measure", "--checkpoint", str(tiny_run), "--subset", "8", "--quiet", "--device", "cpu"]
    capsys.readouterr()
    assert (
        main([*argv, "--plugin", "toy_measure", "--metrics", "li,mean_logit", "--out", str(out)])
        == 0
    )
    assert "mean logit" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert set(data["metrics"]) == {"li", "mean_logit"} and data["subsets"]["mean_logit"] == 8
    assert main([*argv, "--metrics", "nope"]) == 2
    assert "unknown measures: nope" in capsys.readouterr().err
    assert main([*argv, "--plugin", "no_such_module_xyz"]) == 2
    assert (
        main(["measure", "--checkpoint", str(tiny_run), "--si-subset", "999999", "--subset", "10"])
        == 2
    )
    assert "larger than the data" in capsys.readouterr().err


def test_cli_help_shows_the_dataclass_defaults(capsys) -> None:
    from ginv.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["measure", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (("steps", SaliencyConfig.steps), ("threshold", SaliencyConfig.threshold),
                          ("blur-sigma", SaliencyConfig.blur_sigma)):  # fmt: skip
        assert f"--{flag}" in text and f"(default: {default})" in text
    assert "(default: 1024)" in text and "(default: 256)" in text and "--plugin" in text
    args = build_parser().parse_args(["measure", "--checkpoint", "x"])
    assert (args.steps, args.rule, args.batch_size) == (50, "gausslegendre", 1024)


def test_numpy_and_tensors_agree_through_the_registry() -> None:
    x, y = torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 0, 1])
    a = measure(first_two_pixels, x.numpy(), y.numpy(), FlipH(), metrics=("li", "di"))
    b = measure(first_two_pixels, x, y, FlipH(), metrics=("li", "di"))
    assert a.metrics == b.metrics and isinstance(np.float64(a.li), np.floating)
