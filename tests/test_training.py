"""The trainer: batched members equal lone runs, resume after SIGKILL is exact, divergence stops."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from conftest import synthetic_dataset

from ginv.cli import main
from ginv.errors import GinvError
from ginv.groups import get_group
from ginv.models import build_model
from ginv.training import TrainConfig, Trainer, TrainingDiverged, load_run

TOY = dict(epochs=3, batch_size=32, depth=2, width=16, n_train=256, n_val=64)


@pytest.mark.parametrize(
    ("model", "reg"),
    [
        ("mlp", "logit"),
        ("mlp", "none"),
        ("wt", "none"),
        ("cnn", "logit"),
        ("wt-cnn", "none"),
        ("mlp", "orbit"),
        ("mlp", "saliency"),
    ],
)
def test_members_trained_together_equal_members_trained_alone(tmp_path: Path, model, reg) -> None:
    data = synthetic_dataset()
    configs = [
        TrainConfig(
            model=model, reg=reg, group="R4", nu=nu if reg != "none" else 0.0, seed=s, **TOY
        )
        for s, nu in ((0, 0.1), (1, 3.0), (2, 1.0))
    ]
    together = Trainer(configs, data, tmp_path / "together", device="cpu", progress=False)
    runs = together.fit()
    for i, config in enumerate(configs):
        alone = Trainer([config], data, tmp_path / f"alone{i}", device="cpu", progress=False)
        alone_run = alone.fit()[0]
        for k, v in alone.model.member_state(0).items():
            assert torch.allclose(together.model.member_state(i)[k], v, atol=1e-5), k
        assert [h["val_acc"] for h in runs[i]["history"]] == pytest.approx(
            [h["val_acc"] for h in alone_run["history"]], abs=1e-3
        )
    # the selected model is the best-validation epoch and loads back as a plain model
    model_0, run = load_run(together.member_dir(0))
    assert run["selected_epoch"] == 1 + max(
        range(3), key=lambda e: (run["history"][e]["val_acc"], -e)
    )
    assert isinstance(model_0, torch.nn.Module)


def test_tracked_validation_si_is_the_measure_of_each_epoch_and_changes_no_weight(
    tmp_path: Path,
) -> None:
    """``track_si`` adds each epoch's validation SI to the history: at the selected epoch it is
    ``measure``'s SI of the saved model on the same images, and the weights are those of the
    same run trained without it (the measure draws nothing from the members' generators)."""
    from ginv.measures import measure

    data = synthetic_dataset()
    configs = [TrainConfig(reg="logit", nu=nu, seed=s, **TOY) for s, nu in ((0, 1.0), (1, 3.0))]
    tracked = [replace(c, track_si=12) for c in configs]
    plain = Trainer(configs, data, tmp_path / "plain", device="cpu", progress=False)
    plain.fit()
    trainer = Trainer(tracked, data, tmp_path / "tracked", device="cpu", progress=False)
    runs = trainer.fit()
    x, y = data.val.images[:12], data.val.labels[:12]
    for i, run in enumerate(runs):
        curve = [h["val_si"] for h in run["history"]]
        assert len(curve) == TOY["epochs"] and all(0 <= v <= 1 for v in curve)
        assert len(set(curve)) > 1  # the model changes, so does its SI
        model, _ = load_run(trainer.member_dir(i))
        expected = measure(model.double(), x.double(), y, get_group("R4"), metrics="si").si
        assert curve[run["selected_epoch"] - 1] == pytest.approx(expected, abs=1e-4)
        for k, v in plain.model.member_state(i).items():
            assert torch.equal(trainer.model.member_state(i)[k], v), k
    assert "val_si" not in plain.fit()[0]["history"][0]
    assert tracked[0].key() != configs[0].key() and replace(tracked[0], track_si=0) == configs[0]


def test_track_si_beyond_the_validation_split_is_refused() -> None:
    with pytest.raises(GinvError, match="track_si must lie in"):
        TrainConfig(track_si=65, **TOY).validate()


@pytest.mark.parametrize("model", ["mlp", "wt", "cnn", "wt-cnn"])
def test_initialisation_leaves_the_global_rng_alone(tmp_path: Path, model: str) -> None:
    """Building a trainer or loading a run does not reseed the caller's RNG, and a seed's
    initial weights are still those of ``torch.manual_seed(seed)`` (cached runs rely on it)."""
    config = TrainConfig(model=model, group="R4", seed=3, **{**TOY, "epochs": 1})
    torch.manual_seed(3)
    expected = build_model(
        model, get_group("R4"), (1, 12, 12), TOY["width"], TOY["depth"], num_classes=3
    )
    torch.manual_seed(123)
    before = torch.get_rng_state()
    trainer = Trainer([config], synthetic_dataset(), tmp_path, "cpu", progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    for k, v in expected.state_dict().items():
        assert torch.equal(trainer.model.member_state(0)[k], v), k
    trainer.fit()
    before = torch.get_rng_state()
    load_run(trainer.member_dir(0))
    assert torch.equal(torch.get_rng_state(), before)


def test_training_learns_the_toy_task(tmp_path: Path) -> None:
    config = TrainConfig(group="T3", seed=0, **{**TOY, "epochs": 8})
    run = Trainer([config], synthetic_dataset(), tmp_path, "cpu", progress=False).fit()[0]
    assert run["best_val_acc"] > 0.9


def _run_toy(out: Path, epochs: int, *flags: str) -> subprocess.Popen:
    script = Path(__file__).parent / "_train_toy.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out), str(epochs), *flags], env=env)


def _results(out: Path) -> tuple[list[dict], list[dict]]:
    states, histories = [], []
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        states.append(torch.load(folder / "model.pt", weights_only=True))
        run = json.loads((folder / "run.json").read_text())
        histories.append([{k: v for k, v in h.items() if k != "seconds"} for h in run["history"]])
    return states, histories


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_results(tmp_path: Path) -> None:
    epochs = 60
    assert _run_toy(tmp_path / "whole", epochs).wait(timeout=300) == 0
    proc = _run_toy(tmp_path / "killed", epochs)
    deadline = time.time() + 120
    while not list((tmp_path / "killed").glob("checkpoint-*.pt")) and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    checkpoint = next((tmp_path / "killed").glob("checkpoint-*.pt"))
    killed_at = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= killed_at < epochs, "the run must be killed mid-way"
    assert _run_toy(tmp_path / "killed", epochs, "--resume").wait(timeout=300) == 0
    whole, killed = _results(tmp_path / "whole"), _results(tmp_path / "killed")
    assert killed[1] == whole[1]
    for a, b in zip(killed[0], whole[0], strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    trainer = Trainer([TrainConfig(**TOY)], synthetic_dataset(), tmp_path, "cpu", progress=False)
    original, calls = trainer.train_epoch, []

    def poisoned() -> dict:
        calls.append(1)
        if len(calls) == 2:
            trainer.train_split.images[:] = float("nan")
            if trainer.train_orbit is not None:
                trainer.train_orbit[:] = float("nan")
        return original()

    trainer.train_epoch = poisoned  # type: ignore[method-assign]
    with pytest.raises(TrainingDiverged, match=r"non-finite values at epoch 2: .*\(loss"):
        trainer.fit()
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize(
    ("poison", "what", "epoch"),
    [
        (float("nan"), "weights, validation logits", 2),
        (1e38, "validation logits", 2),
        (float("nan"), "weights, validation logits", 1),
    ],
)
def test_a_member_whose_weights_turn_non_finite_is_caught(
    tmp_path: Path, poison: float, what: str, epoch: int
) -> None:
    """Weights poisoned after the epoch's last step leave its mean loss finite: NaN weights,
    or finite ones so large that the logits overflow, must still stop the run before that
    member is selected, checkpointed or written."""
    configs = [TrainConfig(seed=s, **TOY) for s in (0, 1)]
    trainer = Trainer(configs, synthetic_dataset(), tmp_path, "cpu", progress=False)
    original, losses = trainer.train_epoch, []

    def poisoned() -> dict:
        losses.append(original())
        if len(losses) == epoch:
            first = trainer.model.stacked[trainer.model.names.index("first.weight")]
            with torch.no_grad():
                first[1].fill_(poison)
        return losses[-1]

    trainer.train_epoch = poisoned  # type: ignore[method-assign]
    with pytest.raises(TrainingDiverged) as error:
        trainer.fit()
    message = str(error.value)
    assert all(torch.isfinite(loss).all() for loss in losses[-1].values())
    assert f"epoch {epoch}: {configs[1].name} ({what})" in message
    assert configs[0].name not in message
    assert not any(p.is_dir() for p in tmp_path.iterdir()), "no run folder is written"
    if epoch == 1:
        assert "no checkpoint was written" in message and "last good" not in message
        assert not trainer.checkpoint_path.exists()
    else:
        assert f"last good checkpoint is {trainer.checkpoint_path} (epoch 1)" in message
        state = torch.load(trainer.checkpoint_path, weights_only=True)
        assert state["epoch"] == 1
        assert all(torch.isfinite(v).all() for v in state["model"].values())


class _Planted:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _plant(path: Path, marker: Path) -> None:
    torch.save({"configs": [], "epoch": 1, "payload": _Planted(marker)}, path)
    torch.load(path, weights_only=False)  # the payload is live: an unrestricted load runs it
    assert marker.exists()
    marker.unlink()


def test_a_planted_resume_checkpoint_is_refused_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    trainer = Trainer([TrainConfig(**TOY)], synthetic_dataset(), tmp_path, "cpu", progress=False)
    _plant(trainer.checkpoint_path, marker)
    with pytest.raises(GinvError, match="refused, it asks to run exec") as error:
        trainer.fit(resume=True)
    assert not marker.exists()
    assert str(trainer.checkpoint_path) in str(error.value) and "\n" not in str(error.value)
    assert trainer.epoch == 0


def test_cli_train_resume_refuses_a_planted_checkpoint(
    tmp_path: Path, real_data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["train", "--n-train", "64", "--n-val", "16", "--depth", "1", "--width", "8"]
    argv += ["--epochs", "1", "--quiet", "--out", str(tmp_path / "runs")]
    assert main(argv) == 0
    marker = tmp_path / "ran"
    _plant(next((tmp_path / "runs").glob("checkpoint-*.pt")), marker)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ginv: error:") and err.count("\n") == 1 and "refused" in err
    assert not marker.exists()


def test_every_torch_load_in_src_is_weights_only() -> None:
    """Unpickling arbitrary objects runs code: every ``torch.load`` must pass
    ``weights_only=True`` (found through the syntax tree, so no call can hide)."""
    import ast

    import ginv

    calls = []
    for path in Path(ginv.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                safe = any(
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                    for k in node.keywords
                )
                calls.append((f"{path.name}:{node.lineno}", safe))
    assert calls, "no torch.load found: the search is broken"
    assert [where for where, safe in calls if not safe] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--group", "Q3"], "unknown group"),
        (["--reg", "logit", "--nu", "-1"], "ν must be ≥ 0"),
        (["--dataset", "cifar10"], "unknown dataset"),
        (["--model", "resnet"], "unknown model"),
        (["--model", "cnn", "--depth", "0"], "depth must be ≥ 1"),
        (["--out", "/proc/forbidden"], "cannot write to"),
        (["--device", "tpu9"], "unknown device"),
        (["--lr", "inf"], "lr must be finite, got inf"),
        (["--lr", "nan"], "lr must be finite, got nan"),
        (["--reg", "logit", "--nu", "inf"], "nu must be finite, got inf"),
    ],
)
def test_bad_training_arguments_are_one_line_errors(argv, message, capsys, tmp_path) -> None:
    argv = [
        "train",
        "--epochs",
        "1",
        *(["--out", str(tmp_path)] if "--out" not in argv else []),
        *argv,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("ginv: error:")


@pytest.mark.parametrize("reg", ["none", "kl"])
def test_precomputed_orbit_and_per_batch_action_train_identically(tmp_path: Path, reg: str) -> None:
    """The orbit table is a speed-up only: without it (no memory budget) nothing changes."""
    config = TrainConfig(group="D4", reg=reg, nu=1.0 if reg != "none" else 0.0, **TOY)
    data = synthetic_dataset()
    fast = Trainer([config], data, tmp_path / "a", "cpu", progress=False)
    slow = Trainer([config], data, tmp_path / "b", "cpu", progress=False, orbit_budget_bytes=0)
    assert fast.train_orbit is not None and slow.train_orbit is None
    fast.fit(), slow.fit()
    for k, v in fast.model.member_state(0).items():
        assert torch.equal(v, slow.model.member_state(0)[k]), k


def _edit_record(change):
    def edit(folder: Path) -> None:
        run = json.loads((folder / "run.json").read_text())
        change(run)
        (folder / "run.json").write_text(json.dumps(run))

    return edit


def _edit_state(change):
    def edit(folder: Path) -> None:
        torch.save(change(torch.load(folder / "model.pt", weights_only=True)), folder / "model.pt")

    return edit


def _cut(name: str):
    def edit(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])

    return edit


CORRUPTIONS = {
    "no run.json": (lambda f: (f / "run.json").unlink(), "no run.json"),
    "no model.pt": (lambda f: (f / "model.pt").unlink(), "model.pt: missing"),
    "empty run.json": (lambda f: (f / "run.json").write_text(""), "run.json: unreadable"),
    "truncated run.json": (_cut("run.json"), "run.json: unreadable"),
    "run.json not JSON": (lambda f: (f / "run.json").write_text("epochs: 3"), "unreadable"),
    "run.json not UTF-8": (lambda f: (f / "run.json").write_bytes(b"\xff\xfe\x00"), "unreadable"),
    "run.json a list": (
        lambda f: (f / "run.json").write_text("[1, 2]"),
        "a run record must be a JSON object, got list",
    ),
    "no config": (_edit_record(lambda r: r.pop("config")), "run.json: 'config' is missing"),
    "config a number": (
        _edit_record(lambda r: r.update(config=3)),
        "run.json: 'config' must be an object, got int",
    ),
    "unknown setting": (
        _edit_record(lambda r: r["config"].update(colour="red")),
        "unknown training settings: colour",
    ),
    "mistyped setting": (
        _edit_record(lambda r: r["config"].update(depth="two")),
        "setting depth must be int, got 'two'",
    ),
    "invalid setting": (_edit_record(lambda r: r["config"].update(group="Q9")), "unknown group"),
    "empty model.pt": (
        lambda f: (f / "model.pt").write_bytes(b""),
        "corrupt, truncated or not a torch file",
    ),
    "truncated model.pt": (_cut("model.pt"), "corrupt, truncated or not a torch file"),
    "model.pt not torch": (lambda f: (f / "model.pt").write_text("weights"), "not a torch file"),
    "model.pt a list": (_edit_state(lambda s: list(s.values())), "not a state dict of tensors"),
    "no head, old record": (
        lambda f: (
            _edit_record(lambda r: r.pop("model_args"))(f),
            _edit_state(lambda s: {**s, "head.weight": s["head.bias"]})(f),
        ),
        "no first.weight",
    ),
    "no head": (
        _edit_state(lambda s: {**s, "head.weight": s["head.bias"]}),
        "does not fit the run's mlp settings (head.weight (3,) ≠ (3, 16))",
    ),
    "model_args a list": (
        _edit_record(lambda r: r.update(model_args=[1])),
        "'model_args' must be an object, got list",
    ),
    "model_args bad shape": (
        _edit_record(lambda r: r["model_args"].update(in_shape=[1, 0, 12])),
        "'model_args.in_shape[1]' must be ≥ 1, got 0",
    ),
    "missing key": (
        _edit_state(lambda s: {k: v for k, v in s.items() if k != "hidden.0.bias"}),
        "does not fit the run's mlp settings (hidden.0.bias)",
    ),
    "other width": (
        _edit_record(lambda r: r["config"].update(width=8)),
        "model_args disagree with the run's settings (width 16 ≠ 8)",
    ),
    "other width, old record": (
        _edit_record(lambda r: (r.pop("model_args"), r["config"].update(width=8))),
        "does not fit the run's mlp settings (first.weight (16, 144) ≠ (8, 144), ",
    ),
    "planted code": (lambda f: _plant(f / "model.pt", f / "ran"), "model.pt: refused"),
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    config = TrainConfig(**{**TOY, "epochs": 1})
    trainer = Trainer([config], synthetic_dataset(), out, "cpu", progress=False)
    trainer.fit()
    return trainer.member_dir(0)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_a_corrupt_run_folder_is_one_error_line_naming_it(
    finished_run: Path, tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    load_run(folder)  # the intact copy loads
    corrupt, message = CORRUPTIONS[kind]
    corrupt(folder)
    with pytest.raises(GinvError) as error:
        load_run(folder)
    text = str(error.value)
    assert str(folder) in text and message in text and "\n" not in text
    assert not (folder / "ran").exists()


def test_run_cache_keys_of_existing_runs_are_unchanged() -> None:
    """Finished runs are cached under ``TrainConfig.key()``: these are the keys of runs
    trained before the model registry; a new setting must not move them."""
    assert TrainConfig().key() == "0ba9145f49efa1e5"
    assert TrainConfig(model="wt").key() == "3c5841707c1638f0"
    assert TrainConfig(model="wt", pool="max", group="T3").key() == "a4bde8b83922b5c1"


def test_a_setting_added_later_keeps_the_keys_at_its_default() -> None:
    @dataclass(frozen=True)
    class Later(TrainConfig):
        extra: int = 0

    assert Later().key() == TrainConfig().key()
    assert Later(model="wt").key() == TrainConfig(model="wt").key()
    assert Later(extra=1).key() != TrainConfig().key()


def test_width_and_depth_default_to_the_architectures() -> None:
    assert (TrainConfig().width, TrainConfig().depth) == (128, 5)
    assert (TrainConfig(model="wt").width, TrainConfig(model="wt").depth) == (128, 5)
    assert (TrainConfig(model="cnn").width, TrainConfig(model="cnn").depth) == (64, 3)
    assert TrainConfig(model="wt-cnn", width=32) == TrainConfig.from_dict(
        {"model": "wt-cnn", "width": 32, "depth": 3}
    )
    assert TrainConfig.from_dict(TrainConfig(model="cnn").to_dict()) == TrainConfig(model="cnn")


@pytest.mark.parametrize("model", ["cnn", "wt-cnn", "canon"])
def test_a_run_records_its_model_args_and_loads_from_them(tmp_path: Path, model: str) -> None:
    config = TrainConfig(model=model, **{**TOY, "epochs": 1})
    trainer = Trainer([config], synthetic_dataset(), tmp_path, "cpu", progress=False)
    run = trainer.fit()[0]
    assert run["model_args"] == {
        "in_shape": [1, 12, 12], "width": 16, "depth": 2, "num_classes": 3, "pool": "mean",
        "first_width": 0,
    }  # fmt: skip
    loaded, record = load_run(trainer.member_dir(0))
    assert record["model_args"] == run["model_args"]
    x = torch.randn(4, 1, 12, 12)
    with torch.no_grad():
        expected = trainer.model(x, shared_input=True)[0]
        assert torch.allclose(loaded(x), expected, atol=1e-6)


def test_an_old_run_without_model_args_still_loads(finished_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    model, _ = load_run(folder)
    _edit_record(lambda r: r.pop("model_args"))(folder)
    old, run = load_run(folder)
    assert "model_args" not in run
    x = torch.randn(4, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(old(x), model(x))


@pytest.mark.parametrize("group", ["R4", "T3"])
def test_cli_trains_an_exactly_invariant_wt_cnn(tmp_path: Path, real_data_dir: Path, group) -> None:
    from ginv.data import DataConfig, load_transforming
    from ginv.testing import assert_invariant

    argv = ["train", "--model", "wt-cnn", "--group", group, "--epochs", "1", "--n-train", "256"]
    argv += ["--n-val", "64", "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    model, run = load_run(next(tmp_path.glob("*/run.json")).parent)
    assert run["model_args"]["in_shape"] == [1, 36, 36] and run["config"]["width"] == 64
    x = load_transforming(DataConfig("mnist"), real_data_dir).test.images[:64]
    assert x.dtype == torch.float32
    assert_invariant(lambda v: model(v), get_group(group), x, atol=1e-5, rtol=0)
    with torch.no_grad():
        assert float(model(x).abs().max()) > 1e-2  # not invariant by being constant


def test_cli_distils_from_a_teacher_run_folder(
    tmp_path: Path, real_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ginv.training.trainer import teacher_key

    small = ["--epochs", "1", "--n-train", "256", "--n-val", "64", "--depth", "1", "--width",
             "16", "--quiet"]  # fmt: skip
    assert main(["train", *small, "--out", str(tmp_path / "t")]) == 0
    (teacher,) = [p.parent for p in (tmp_path / "t").glob("*/run.json")]
    argv = ["train", *small, "--reg", "teacher", "--nu", "3", "--out", str(tmp_path / "s")]
    assert main([*argv, "--teacher", str(teacher)]) == 0
    _, run = load_run(next((tmp_path / "s").glob("*/run.json")).parent)
    assert run["config"]["teacher"] == teacher_key(teacher)
    assert run["history"][0]["inv"] > 0
    capsys.readouterr()
    # no teacher, or a folder that holds no run: one line each
    assert main(argv) == 2 and "needs a teacher" in capsys.readouterr().err
    assert main([*argv, "--teacher", str(tmp_path)]) == 2
    assert "not a finished run" in capsys.readouterr().err


def test_train_flags_are_the_config_fields_with_its_defaults() -> None:
    """`ginv train` restates no default: each flag is a TrainConfig field, left out → the field's."""
    from dataclasses import fields

    from ginv.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train"])
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    assert set(given) == {f.name for f in fields(TrainConfig)} and not any(
        v is not None for v in given.values()
    )
    assert TrainConfig(**{k: v for k, v in given.items() if v is not None}) == TrainConfig()
    args = parser.parse_args(["train", "--reg", "logit", "--seeds", "0,1", "--lr", "0.01"])
    base = TrainConfig(reg=args.reg, lr=args.lr)
    members = base.members(args.seed, args.nu)
    assert [(m.seed, m.nu, m.lr) for m in members] == [(0, 1.0, 0.01), (1, 1.0, 0.01)]
    # DA and WT: ν is 0 whatever was asked for
    assert {m.nu for m in TrainConfig().members((0, 1), [0.5, 2.0])} == {0.0}
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()  # type: ignore[union-attr]
    words = " ".join(help_text.split())  # argparse wraps the lines
    assert "(default: 300)" in words and "mlp, wt, canon, cnn, wt-cnn, canon-cnn" in words


_SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")


def _count_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call that reads a tensor back to the host (a GPU sync), by name, from now on."""
    calls: list[str] = []
    for name in _SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize("reg", ["none", "logit"])
def test_an_epoch_reads_nothing_back_per_step_and_fit_reads_once(
    tmp_path: Path, reg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = synthetic_dataset(n_train=96, n_val=16)
    configs = [TrainConfig(group="R4", reg=reg, nu=0.5, epochs=1, batch_size=8, seed=s,
                           n_train=96, n_val=16) for s in (0, 1)]  # fmt: skip
    trainer = Trainer(configs, data, tmp_path, "cpu", progress=False)
    calls = _count_syncs(monkeypatch)
    trainer.model.train()
    trainer.train_epoch()  # 12 steps
    assert calls == []
    fit = Trainer(configs, data, tmp_path / "fit", "cpu", progress=False)
    calls.clear()
    monkeypatch.setattr(Trainer, "write_results", lambda self: [])
    monkeypatch.setattr(Trainer, "_check_finite", lambda self, loss, acc: None)
    fit.fit(resume=False)
    # the epoch's losses and accuracies at once (the finite check is counted apart: it reads
    # one flag per member)
    assert calls == ["tolist"], calls
