"""Models of other packages: ``--model package.module:factory`` (tests/plugins/bn_cnn.py, a
BatchNorm CNN), batched BatchNorm members equal to members trained alone, the rule that no
module named in a file is imported, ``ginv measure --model … --weights …``, and the study
(``reproduce table``) on 3-channel Colour-Digits with a factory's model."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
from conftest import synthetic_dataset
from test_sources import _grey_digits, _script

from ginv.cli import main
from ginv.errors import GinvError
from ginv.io import stable_hash
from ginv.models import (
    build_model,
    get_factory,
    is_factory_model,
    load_factory,
    model_parts,
    register_factory,
)
from ginv.models import factory as factory_module
from ginv.training import TrainConfig, Trainer, load_run

ROOT = Path(__file__).resolve().parents[1]
BN = "tests.plugins.bn_cnn:build"
BN_MLP = "tests.plugins.bn_mlp:build"  # the docs' Colour-Digits table's model


@pytest.fixture(autouse=True)
def _factories(monkeypatch: pytest.MonkeyPatch):
    """The repository root importable (for tests.plugins), and the factory registry and
    tests.plugins.bn_cnn forgotten after each test, as a fresh process would be."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setattr(factory_module, "_FACTORIES", {})
    yield
    sys.modules.pop("tests.plugins.bn_cnn", None)
    sys.modules.pop("tests.plugins.bn_mlp", None)


def test_factory_names_parts_and_keys() -> None:
    assert model_parts(BN) == (BN, None)
    assert model_parts(f"wt-{BN}") == (BN, "wt") and model_parts(f"canon-{BN}") == (BN, "canon")
    assert is_factory_model(f"wt-{BN}") and not is_factory_model("wt-cnn")
    for bad in ("tests.plugins.bn_cnn", "a:b:c", "wt-", "x-a.b:c"):
        assert not is_factory_model(bad)
    load_factory(BN)
    config = TrainConfig(model=BN).validate()
    assert (config.depth, config.width) == (0, 0)  # a factory has no architecture defaults
    # the key is the hash of the settings with the factory's name as the model (the settings
    # added later, at their defaults, left out)
    settings = {
        k: v for k, v in asdict(config).items() if k not in ("first_width", "track_si", "teacher")
    }
    assert config.key() == stable_hash(settings)
    assert TrainConfig().key() != config.key()
    with pytest.raises(GinvError, match="takes no depth"):
        TrainConfig(model=BN, width=8).validate()


def test_a_file_never_imports_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A factory named in a record is refused until the user names it; then it imports."""
    marker = tmp_path / "imported"
    (tmp_path / "planted_factory_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom tests.plugins.bn_cnn import build\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    name = "planted_factory_mod:build"
    with pytest.raises(GinvError, match="not loaded"):
        get_factory(name)
    with pytest.raises(GinvError, match="not loaded"):
        TrainConfig(model=name).validate()
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"config": {"model": name}, "name": "x"}))
    with pytest.raises(GinvError, match="not loaded"):
        load_run(folder)
    with pytest.raises(GinvError, match="not the factory"):
        load_run(folder, factory=BN)
    assert not marker.exists() and "planted_factory_mod" not in sys.modules
    load_factory(name)  # a name the user gave
    assert marker.exists()
    sys.modules.pop("planted_factory_mod", None)
    for bad, message in (("no_such_pkg_q:f", "cannot import"),
                         ("tests.plugins.bn_cnn:nothing", "has no"),
                         ("tests.plugins.bn_cnn:not_a_model", "not a callable")):  # fmt: skip
        with pytest.raises(GinvError, match=message):
            load_factory(bad)


def test_wrappers_need_a_network() -> None:
    from ginv.groups import get_group
    from ginv.models.base import WeightTied

    load_factory(BN)
    load_factory("tests.plugins.bn_cnn:plain")
    wt = build_model(f"wt-{BN}", get_group("R4"), (3, 12, 12), num_classes=4)
    assert isinstance(wt.first, WeightTied)
    x = torch.randn(5, 3, 12, 12)
    wt.eval()
    assert torch.allclose(wt(x), wt(torch.rot90(x, 1, (-2, -1))), atol=1e-5)
    with pytest.raises(GinvError, match="needs a ginv Network"):
        build_model("wt-tests.plugins.bn_cnn:plain", get_group("R4"), (3, 12, 12), num_classes=4)
    register_factory("mine.models:bad", lambda shape, k: "not a module")
    with pytest.raises(GinvError, match=r"not an nn\.Module"):
        build_model("mine.models:bad", get_group("R4"), (3, 12, 12), num_classes=4)


@pytest.mark.parametrize("model", [BN, f"wt-{BN}", BN_MLP, f"wt-{BN_MLP}"])
def test_batchnorm_members_train_as_they_would_alone(tmp_path: Path, model: str) -> None:
    """Two BatchNorm members trained batched equal each trained alone: weights, running
    statistics and batch counts, to 1e-6."""
    load_factory(model.removeprefix("wt-"))
    data = synthetic_dataset(n_train=96, n_val=24, size=12, classes=3)
    base = TrainConfig(model=model, epochs=2, batch_size=32, n_train=96, n_val=24, lr=3e-3)
    configs = [replace(base, seed=s) for s in (0, 1)]
    both = Trainer(configs, data, tmp_path / "both", device="cpu", progress=False)
    both.fit(resume=False)
    for i, c in enumerate(configs):
        alone = Trainer([c], data, tmp_path / f"alone{i}", device="cpu", progress=False)
        alone.fit(resume=False)
        a, b = both.model.member_state(i), alone.model.member_state(0)
        assert a.keys() == b.keys() and any("running_mean" in k for k in a)
        for k in a:
            assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6, rtol=0), k
        counts = [int(v) for k, v in a.items() if k.endswith("num_batches_tracked")]
        assert counts and set(counts) == {2 * 3}  # 2 epochs × 3 steps
    # the selected member reloads, running statistics included, and predicts as trained
    model_, run = load_run(both.member_dir(1))
    assert run["config"]["model"] == model
    state = both.members[1].best_state
    var = next(k for k in state if k.endswith("running_var"))
    assert torch.equal(model_.state_dict()[var], state[var])


@pytest.fixture(scope="module")
def colour(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Colour-Digits in both layouts, built by the script, large enough for the smoke profile
    (300 training, 100 validation and 200 test samples)."""
    script = _script()
    (x, y), (xs, ys) = _grey_digits(700, 0), _grey_digits(300, 1)
    train, test = script.colour_digits(x, y, 600, seed=0), script.colour_digits(xs, ys, 250, seed=1)
    return script.write(tmp_path_factory.mktemp("colour"), train, test)


def test_cli_trains_and_measures_a_factory_model(
    colour: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = str(colour[0])
    common = ["--dataset", npz, "--epochs", "1", "--n-train", "64", "--n-val", "16", "--quiet"]
    assert main(["train", "--model", BN, "--seeds", "0,1", *common, "--out", str(tmp_path)]) == 0
    run = tmp_path / "colour-digits-R4-tests.plugins.bn_cnn-build-seed0"
    assert json.loads((run / "run.json").read_text())["config"]["model"] == BN
    measure = ["measure", "--subset", "16", "--si-subset", "2", "--steps", "4", "--quiet",
               "--metrics", "accuracy,di,si"]  # fmt: skip
    by_run, by_weights = tmp_path / "a.json", tmp_path / "b.json"
    assert main([*measure, "--checkpoint", str(run), "--out", str(by_run)]) == 0
    weights = ["--model", BN, "--dataset", npz, "--group", "R4"]
    assert (
        main([*measure, "--weights", str(run / "model.pt"), *weights, "--out", str(by_weights)])
        == 0
    )
    a, b = (json.loads(p.read_text())["metrics"] for p in (by_run, by_weights))
    assert a == b  # the same model, data and normalisation (the dataset's training stats)
    from safetensors.torch import save_file

    state = torch.load(run / "model.pt", weights_only=True)
    save_file(state, str(tmp_path / "model.safetensors"))
    by_st = tmp_path / "c.json"
    assert main([*measure, "--weights", str(tmp_path / "model.safetensors"), *weights,
                 "--out", str(by_st)]) == 0  # fmt: skip
    assert json.loads(by_st.read_text())["metrics"] == a
    capsys.readouterr()
    # misuse: one line each
    for argv, message in (
        ([*measure, "--weights", str(run / "model.pt"), "--model", BN], "needs --model, --dataset"),
        ([*measure, "--weights", str(run / "model.pt"), "--model", "cnn", "--dataset", npz,
          "--group", "R4"], "does not fit"),
        ([*measure, "--checkpoint", str(run), "--weights", str(run / "model.pt")], "one"),
        (["train", "--model", "wt-tests.plugins.bn_cnn:plain", *common, "--out", str(tmp_path)],
         "needs a ginv Network"),
    ):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["npz", "folder"])
def test_reproduce_table_on_colour_digits(
    colour: tuple[Path, Path], tmp_path: Path, layout: str
) -> None:
    """The smoke table on a 3-channel dataset writes a full table and report; on the npz
    with a factory's BatchNorm CNN (its WT twin for WT)."""
    path = colour[0] if layout == "npz" else colour[1]
    extra = ["--set", f"model={BN}"] if layout == "npz" else []
    argv = ["reproduce", "table", "--profile", "smoke", "--set", f"dataset={path}",
            "--set", "groups=R4", *extra, "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    rows = (tmp_path / "table" / "table.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and all(",R4," in r or r.startswith("R4,") for r in rows[1:])
    report = (tmp_path / "report.md").read_text()
    assert "Transforming-COLOUR-DIGITS test orbit" in report and "| R4 | WT |" in report
    assert (tmp_path / "report.html").is_file()
    runs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/run.json")]
    models = {r["config"]["model"] for r in runs}
    assert models == ({BN, f"wt-{BN}"} if extra else {"mlp", "wt"})
    assert all(r["model_args"]["in_shape"][0] == 3 for r in runs)
    # the calibration is named by the dataset's label, not its path
    assert [p.name for p in (tmp_path / "calibration").glob("nu-*.json")] == [
        "nu-colour-digits-R4-logit.json"
    ]


def test_the_frontier_on_a_factory_s_model_gives_its_evidence_without_layers(
    colour: tuple[Path, Path], tmp_path: Path
) -> None:
    """ginv cannot name a factory model's layers: the evidence keeps σmax(J) and the curves,
    and leaves the layer columns empty rather than failing after the tables."""
    argv = ["reproduce", "frontier", "--profile", "smoke", "--set", f"dataset={colour[0]}",
            "--set", "groups=R4", "--set", "model=tests.plugins.bn_cnn:plain",
            "--set", "frontier_methods=DA,IR-logit",
            "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    with open(tmp_path / "frontier" / "frontier-evidence.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["DA", "IR-logit"]
    for r in rows:
        assert float(r["sigma_max_j"]) > 0 and 0 <= float(r["peak_val_si"]) <= 1
        assert r["first_layer_invariance"] == r["logits_invariance"] == ""
    layers = (tmp_path / "frontier" / "frontier-layers.csv").read_text().splitlines()
    assert len(layers) == 1  # the header
    # no drift on a dataset without a drift target: every figure but the drift's
    results = json.loads((tmp_path / "frontier" / "results.json").read_text())
    assert [f["png"] for f in results["figures"]] == ["frontier.png", "frontier-evidence.png"]
    assert not any("could not" in n for n in results["notes"])
