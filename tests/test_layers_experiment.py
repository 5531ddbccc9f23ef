"""The `layers` experiment: where each method's invariance appears, layer by layer."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ginv.errors import GinvError
from ginv.experiments import profile
from ginv.experiments.layers import (
    EXACT,
    TIDY_COLUMNS,
    invariant_from,
    layer_methods,
    measure_layers,
    on_architecture,
    stages,
)
from ginv.experiments.registry import study_experiments
from ginv.groups import get_group
from ginv.models import OrbitAverage, build_model
from ginv.training import TrainConfig


def test_stages_and_architecture_swaps() -> None:
    assert stages("mlp", 5) == ["input", "canon", "fc1", "pool", "fc2", "fc3", "fc4", "fc5",
                                "logits", "avg"]  # fmt: skip
    assert stages("cnn", 3)[-3:] == ["gap", "logits", "avg"]
    assert on_architecture(TrainConfig(model="wt"), "cnn").model == "wt-cnn"
    cnn = on_architecture(TrainConfig(model="canon"), "cnn")
    assert (cnn.model, cnn.depth, cnn.width) == ("canon-cnn", 3, 64)  # the CNN's defaults
    # the orbit-structure regulariser reads a dense first layer: no CNN twin
    assert on_architecture(TrainConfig(reg="orbit", nu=100.0), "cnn") is None
    assert "layers" in study_experiments()
    order = list(study_experiments())
    assert order.index("spectral") < order.index("layers") < order.index("prop31")


def test_layers_settings_are_validated() -> None:
    assert profile("smoke").layers_samples < profile("quick").layers_samples
    assert profile("quick", ["layers_architectures=cnn"]).layers_architectures == ("cnn",)
    for bad in ("layers_architectures=vit", "layers_architectures=mlp,mlp", "layers_samples=0"):
        with pytest.raises(GinvError):
            profile("smoke", [bad])


def test_invariance_appears_at_the_first_stage_from_which_all_are_at_the_floor() -> None:
    rows = [{"layer": s, "invariance": v, "floor": EXACT}
            for s, v in zip("abcd", [1.0, 0.0, 0.5, 1e-12], strict=True)]  # fmt: skip
    assert invariant_from(rows)["layer"] == "d"  # b is at the floor, c is not
    assert invariant_from(rows[:2])["layer"] == "b"
    assert invariant_from(rows[:1]) is None


@pytest.mark.parametrize("group_name", ["R4", "T3"])
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_each_wrapper_is_read_at_its_stages(group_name: str, arch: str) -> None:
    """Untrained models: WT from its pool, the canonicaliser from the canonical image, the
    orbit average at its average are invariant; the plain network nowhere; lifted features
    (WT's before the pool, the orbit average's stacks) are equivariant under ρ."""
    group = get_group(group_name)
    x = torch.rand(6, 1, 36, 36)
    twin = {"mlp": "wt", "cnn": "wt-cnn"}[arch]
    canon = {"mlp": "canon", "cnn": "canon-cnn"}[arch]
    net = build_model(arch, group, (1, 36, 36), num_classes=9)
    plain = measure_layers(net, x, group, arch, 256)
    axis = stages(arch, 5 if arch == "mlp" else 3)
    assert [r["layer"] for r in plain] == [s for s in axis if s not in ("canon", "pool", "avg")]
    assert invariant_from(plain) is None
    assert plain[0]["equivariance"] == 0.0 and plain[0]["invariance"] > 0.1  # the image
    wt = measure_layers(build_model(twin, group, (1, 36, 36), num_classes=9), x, group, arch, 256)
    assert invariant_from(wt)["layer"] == "pool"
    assert wt[1]["action"] == "group axis" and wt[1]["equivariance"] <= 1e-10
    ca = measure_layers(build_model(canon, group, (1, 36, 36), num_classes=9), x, group, arch, 256)
    assert invariant_from(ca)["layer"] == "canon"
    assert all(r["invariance"] == 0.0 for r in ca[1:])  # the same image, bitwise
    oa = measure_layers(OrbitAverage(net, group), x, group, arch, 256)
    assert invariant_from(oa)["layer"] == "avg" and oa[-1]["invariance"] == 0.0
    inner = oa[1:-1]
    assert all(r["action"] == "group axis" and r["equivariance"] == 0.0 for r in inner)
    # the stack over the orbit is the same network's: its invariance is about the plain one's
    assert oa[-2]["invariance"] == pytest.approx(plain[-1]["invariance"], rel=0.5)


@pytest.mark.slow
def test_reproduce_layers_smoke(tmp_path: Path, real_data_dir: Path) -> None:
    out = tmp_path / "study"
    done = subprocess.run(
        [sys.executable, "-m", "ginv.cli", "reproduce", "layers", "--profile", "smoke",
         "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(out / "layers" / "layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == TIDY_COLUMNS
    smoke = profile("smoke")
    names = {m.name for m in layer_methods(smoke)}
    for group in smoke.groups:
        for arch in smoke.layers_architectures:
            mine = [r for r in rows if r["group"] == group and r["architecture"] == arch]
            by = {m: [r for r in mine if r["method"] == m] for m in names}
            assert all(by[m] for m in names if not (m == "orbit" and arch != "mlp"))
            for r in mine:
                float(r["invariance"]), int(r["layer_index"]), float(r["floor"])
                assert int(float(r["samples"])) == smoke.layers_samples and r["seed"] == "0"

            def at(method: str, stage: str, by=by) -> list[float]:
                order = [r["layer"] for r in by[method]]
                return [float(r["invariance"]) for r in by[method][order.index(stage) :]]

            assert max(at("WT", "pool")) <= 1e-6 and float(by["WT"][1]["invariance"]) > 1e-3
            assert max(at("canonicalise", "canon")) <= 1e-6
            assert at("orbit-average", "avg") == [0.0]
            assert min(float(r["invariance"]) for r in by["DA"]) > 1e-6
    results = json.loads((out / "layers" / "results.json").read_text())
    appears = results["data"]["appears"]
    assert appears["R4/mlp/WT"]["layer"] == "pool" and appears["T3/cnn/DA"]["layer"] is None
    assert any("WT from pool" in n for n in results["notes"])
    assert (out / "layers" / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Layer by layer" in (out / "report.md").read_text()
