"""Layer-wise equivariance: exact zeros on models equivariant by construction, an
independent computation of one layer's error, the actions chosen per feature shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from ginv.errors import GinvError
from ginv.groups import R4, T3, Rotations
from ginv.measures import LayerReport, layer_equivariance
from ginv.measures.layers import commutes_with_stride
from ginv.models import build_model


def cnn(symmetric: bool) -> nn.Module:
    """Stride-1, padding-1 3×3 convolutions; with ``symmetric`` every kernel is averaged
    over the four rotations, so each convolution (and ReLU) commutes with R4 exactly."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    ).double()  # fmt: skip
    if symmetric:
        with torch.no_grad():
            for conv in (model[0], model[2]):
                w = conv.weight
                w.copy_(sum(torch.rot90(w, k, (-2, -1)) for k in range(4)) / 4)
    return model


def test_an_r4_equivariant_cnn_scores_zero_at_every_layer() -> None:
    x = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    report = layer_equivariance(cnn(True), x, R4())
    for name in ("0", "1", "2", "3"):
        assert report[name]["action"] == "spatial" and report[name]["exact_action"]
        assert report[name]["equivariance"] <= 1e-10
        assert report[name]["invariance"] > 1e-3  # the maps move with the rotation
    for name in ("5", "6"):  # pooled and flattened, then the head: invariant
        assert report[name]["action"] == "trivial" and report[name]["equivariance"] <= 1e-10
    plain = layer_equivariance(cnn(False), x, R4(), layers=["0", "2"])
    assert plain["0"]["equivariance"] > 1e-3 and plain["2"]["equivariance"] > 1e-3
    assert report.n_samples == 5 and report["0"]["samples"] == 5


def test_one_layers_error_equals_a_direct_computation() -> None:
    model, group = cnn(False), R4()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    conv = model[0]
    with torch.no_grad():
        h = conv(x)
        errors = [
            (
                (conv(group.act(g, x)) - group.act(g, h)).flatten(1).pow(2).sum(1)
                / h.flatten(1).pow(2).sum(1)
            )
            for g in (1, 2, 3)
        ]
        invariance = [
            ((conv(group.act(g, x)) - h).flatten(1).pow(2).sum(1) / h.flatten(1).pow(2).sum(1))
            for g in (1, 2, 3)
        ]
    report = layer_equivariance(model, x, group, layers="0", eps=0.0)
    assert report["0"]["equivariance"] == pytest.approx(
        float(torch.stack(errors).mean()), rel=1e-12
    )
    assert report["0"]["invariance"] == pytest.approx(
        float(torch.stack(invariance).mean()), rel=1e-12
    )


def test_weight_tied_lifted_features_permute_their_group_axis() -> None:
    x = torch.randn(4, 1, 6, 6, dtype=torch.float64)
    wt = build_model("wt", R4(), 36, 8, 2, num_classes=9).double()
    report = layer_equivariance(wt, x, R4(), layers=["first.lifted", "first"])
    lifted = report["first.lifted"]
    assert lifted["action"] == "group axis" and lifted["equivariance"] <= 1e-10
    assert lifted["invariance"] > 1e-3
    assert report.first["invariance"] <= 1e-10  # pooled: invariant


def test_a_module_called_twice_is_measured_at_each_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Conv2d(1, 1, 3, padding=1).double()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(torch.relu(self.block(x))).flatten(1)

    report = layer_equivariance(
        Twice(), torch.randn(2, 1, 6, 6, dtype=torch.float64), R4(), "block"
    )
    assert list(report) == ["block#1", "block#2"]


def test_user_actions_translations_and_strides() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Flatten()).double()
    x = torch.randn(3, 1, 12, 12, dtype=torch.float64)
    report = layer_equivariance(model, x, T3(), actions={"1": lambda g, h: h})
    assert report["0"]["action"] == "spatial" and report["0"]["exact_action"]  # shift 4 → 2
    assert report["1"]["action"] == "user"
    assert report["1"]["equivariance"] == pytest.approx(report["1"]["invariance"])
    assert commutes_with_stride(T3(), (36, 36), (9, 9))  # a 12-pixel shift is 3 at stride 4
    assert not commutes_with_stride(R4(), (36, 36), (18, 18))  # the centre moves at stride 2
    assert not commutes_with_stride(T3(), (12, 12), (5, 5))
    with pytest.raises(GinvError, match="no layer named 'nope'"):
        layer_equivariance(model, x, T3(), ["nope"])


def test_an_inexact_group_reports_the_interpolation_floor(tmp_path: Path) -> None:
    x = torch.randn(3, 1, 9, 9, dtype=torch.float64)
    report = layer_equivariance(cnn(True), x, Rotations(8), layers=["0", "5"])
    assert not report.exact_group and not report["0"]["exact_action"]
    assert report["0"]["floor_equivariance"] > 0 and report["5"]["floor_invariance"] > 0
    assert "floor" in report.table() and "inexact" in report.table()
    report.write_json(tmp_path / "l.json")
    report.write_csv(tmp_path / "l.csv")
    data = json.loads((tmp_path / "l.json").read_text())
    assert set(data["layers"]) == {"0", "5"} and data["layers"] == report.to_dict()
    back = LayerReport.from_dict(data)
    assert back["0"]["equivariance"] == pytest.approx(report["0"]["equivariance"])
    assert (tmp_path / "l.csv").read_text().splitlines()[0].startswith("layer,action")


def test_cli_measure_layers_all(tmp_path: Path, real_data_dir: Path, capsys) -> None:
    from ginv.cli import main

    train = ["train", "--epochs", "1", "--n-train", "64", "--n-val", "16", "--depth", "1"]
    assert main([*train, "--width", "8", "--quiet", "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = tmp_path / "m.json"
    run = str(tmp_path / "mnist-R4-mlp-seed0")
    argv = ["measure", "--checkpoint", run, "--subset", "8", "--metrics", "li", "--quiet"]
    capsys.readouterr()
    assert main([*argv, "--layers", "all", "--out", str(out), "--device", "cpu"]) == 0
    assert "equivariance" in capsys.readouterr().out
    layers = json.loads(out.read_text())["layers"]
    assert {"first", "head"} <= set(layers) and layers["first"]["invariance"] > 0
