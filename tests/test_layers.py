"""Per-layer invariance by forward hooks."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ginv.errors import GinvError
from ginv.groups import R4, FlipH, Rotations
from ginv.measures import MeasureReport, layer_invariance, layer_table
from ginv.models import MLP, build_model


def test_weight_tied_layers_after_the_pool_are_invariant_plain_first_layer_is_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 1, 12, 12, dtype=torch.float64)
    names = ["first", "hidden.0", "hidden.1", "head"]
    wt = build_model("wt", R4(), 144, 16, 3, num_classes=9).double()
    assert {n for n, _ in wt.named_modules()} >= set(names)
    values = layer_invariance(wt, x, R4(), names)
    for name in names:
        assert values[name]["li"] <= 1e-10 and values[name]["li_normalised"] <= 1e-10
        assert values[name]["samples"] == 6
    plain = layer_invariance(
        MLP(144, 16, 3, num_classes=9).double(), x, R4(), ["first"], normalised=False
    )
    assert plain["first"]["li"] > 1e-3 and "li_normalised" not in plain["first"]
    assert "hidden.0" in layer_table(values)


def test_tiny_linear_model_by_hand() -> None:
    """h(x) = (x₀₀ + 2·x₀₁): on [[1, 2], [3, 4]] h(x) = 5, h(flipH·x) = 2 + 2 = 4."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 2.0, 0.0, 0.0]]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    values = layer_invariance(model, x, FlipH(), ["1", "0"], eps=0.0)
    assert values["1"]["li"] == pytest.approx(0.5)  # ½·(5 − 4)²
    assert values["1"]["li_normalised"] == pytest.approx(1 / 25)
    # the flattened image: ½‖x − flipH·x‖² = ½·(1 + 1 + 1 + 1)
    assert values["0"]["li"] == pytest.approx(2.0)


def test_errors_and_report_field() -> None:
    model = MLP(144, 8, 2, num_classes=9).double()
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    with pytest.raises(GinvError, match=r"no layer named 'nope'.*hidden\.0"):
        layer_invariance(model, x, R4(), ["nope"])
    with pytest.raises(GinvError, match="at least one"):
        layer_invariance(model, x, R4(), [])
    # works with an inexact group too (values include interpolation error)
    assert layer_invariance(model, x, Rotations(8), ["first"])["first"]["li"] > 0
    values = layer_invariance(model, x, R4(), ["first"])
    report = MeasureReport("R4", 2, layers=values)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["layers"]["first"]["li"] == pytest.approx(values["first"]["li"])
    both = MeasureReport.merge(report, MeasureReport.from_dict(data))
    assert both.layers["first"]["samples"] == 4
    assert both.layers["first"]["li"] == pytest.approx(values["first"]["li"])
    assert model.training  # mode restored


def test_cli_measure_layers(tmp_path, real_data_dir, capsys: pytest.CaptureFixture[str]) -> None:
    from ginv.cli import main

    train = ["train", "--epochs", "1", "--n-train", "64", "--n-val", "16", "--depth", "2"]
    assert main([*train, "--width", "8", "--quiet", "--out", str(tmp_path)]) == 0
    out = tmp_path / "m.json"
    run = str(tmp_path / "mnist-R4-mlp-seed0")
    argv = ["measure", "--checkpoint", run, "--subset", "16", "--metrics", "li", "--quiet"]
    capsys.readouterr()
    assert main([*argv, "--layers", "first,hidden.0", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "hidden.0" in printed and "equivariance" in printed  # the LayerReport table
    layers = json.loads(out.read_text())["layers"]
    assert set(layers) == {"first", "hidden.0"} and layers["first"]["li"] > 0
    assert main([*argv, "--layers", "nope"]) == 2
