"""Every file ginv reads is untrusted, every setting is checked before work, every misuse is
one GinvError: the record readers (ginv.records), the up-front checks of the study's settings,
the frontier's last step, and planted paths (links, folders named like temporaries)."""

from __future__ import annotations

import copy
import json
import os
import time
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from conftest import synthetic_dataset

from ginv.cli import main
from ginv.errors import GinvError
from ginv.experiments.methods import METHODS
from ginv.records import MAX_BYTES, RECORDS, Field, Schema, check_record, read_cache, read_record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- one reader, every record: a list, a wrong type, a missing key, an oversized value ----
def _wrong(value: Any) -> Any:
    """A JSON value of another type than ``value``'s."""
    return [value] if not isinstance(value, list) else "text"


def _oversized(schema: Schema, record: dict[str, Any]) -> dict[str, Any] | None:
    """``record`` with one value beyond its field's bounds (a number above ``high``, text or
    a list longer than ``max_len``), recursing into nested schemas; None if nothing is bounded."""
    for key, spec in schema.fields.items():
        if key not in record:
            continue
        value = record[key]
        bad: Any = None
        if isinstance(value, dict) and spec.schema is not None:
            inner = _oversized(spec.schema, value)
            bad = inner
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float) and spec.high is not None:
            bad = int(spec.high) * 10 + 1 if isinstance(value, int) else spec.high * 10 + 1
        elif isinstance(value, str):
            bad = "x" * (spec.max_len + 1)
        elif isinstance(value, list):
            bad = [value[0] if value else 0] * (spec.max_len + 1)
        if bad is not None:
            return {**record, key: bad}
    if schema.values is not None:  # a free mapping: a key longer than any of ginv's
        return {**record, "k" * (schema.keys.max_len + 1): next(iter(record.values()))}
    return None


CASES = ["list", "wrong type", "missing key", "oversized"]


def _damaged(schema: Schema, case: str) -> list[Any]:
    example = copy.deepcopy(schema.example)
    required = [k for k, f in schema.fields.items() if f.required]
    if case == "list":
        return [[example], []]
    if case == "wrong type":
        return [{**example, k: _wrong(example[k])} for k in schema.fields if k in example]
    if case == "missing key":
        return [{k: v for k, v in example.items() if k != key} for key in required]
    over = _oversized(schema, example)
    assert over is not None, f"{schema.name}: no bounded field to overflow"
    return [over]


@pytest.mark.parametrize("name", RECORDS)
def test_every_schema_s_example_is_a_valid_record(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(RECORDS[name].example))
    assert read_record(path, name) == RECORDS[name].example


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", RECORDS)
def test_every_record_reader_refuses_damage_in_one_line(
    name: str, case: str, tmp_path: Path
) -> None:
    schema = RECORDS[name]
    variants = _damaged(schema, case)
    if case == "missing key" and not variants:
        pytest.skip(f"{name} has no required key")
    for i, bad in enumerate(variants):
        path = tmp_path / f"{name}-{i}.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(GinvError) as error:
            read_record(path, name)
        message = str(error.value)
        assert message.startswith(f"{path}: ") and "\n" not in message
        if schema.cache:  # a cache is moved aside and computed again
            assert read_cache(path, name) is None
            assert not path.exists() and path.with_name(path.name + ".damaged").is_file()


def test_the_reader_names_the_key_and_refuses_non_finite_numbers(tmp_path: Path) -> None:
    schema = Schema(
        "toy", {"a": Field(dict, schema=Schema("in", {"b": Field(float, high=1)}, {}))}, {}
    )
    with pytest.raises(GinvError, match=r"^x: 'a\.b' must be ≤ 1, got 2$"):
        check_record({"a": {"b": 2}}, schema, "x")
    path = tmp_path / "summary.json"
    path.write_text('{"table": Infinity}')
    with pytest.raises(GinvError, match="'table' must be finite"):
        read_record(path, "summary")
    path.write_text('{"table": true}')  # JSON true is not a number of seconds
    with pytest.raises(GinvError, match="'table' must be a number, got bool"):
        read_record(path, "summary")


def test_deep_and_huge_files_are_refused_before_they_are_parsed(tmp_path: Path) -> None:
    deep = tmp_path / "results.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(GinvError, match="nested too deep"):
        read_record(deep, "results")
    huge = tmp_path / "summary.json"
    with open(huge, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no disk used
    with pytest.raises(GinvError, match="more than any record ginv writes"):
        read_record(huge, "summary")


def test_a_deeply_nested_results_file_is_one_report_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ginv: error:") and "nested too deep" in err and err.count("\n") == 1


@pytest.mark.parametrize("summary", ["[]", '{"table": "slow"}', '[{"table": 1}]'])
def test_a_damaged_summary_is_one_report_error(
    tmp_path: Path, capsys: pytest.CaptureFixture, summary: str
) -> None:
    (tmp_path / "table").mkdir()
    results = {"title": "T", "description": "d"}
    (tmp_path / "table" / "results.json").write_text(json.dumps(results))
    (tmp_path / "summary.json").write_text(summary)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ginv: error: {tmp_path / 'summary.json'}: ") and err.count("\n") == 1


# --- caches: a damaged measure or job record is computed again ----------------------------
@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory):
    from ginv.groups import get_group
    from ginv.runs import MeasureSettings, RunCache
    from ginv.training import TrainConfig

    out = tmp_path_factory.mktemp("cache")
    cache = RunCache(out, device="cpu", progress=False)
    cache._data["mnist"] = synthetic_dataset()
    config = TrainConfig(epochs=1, batch_size=32, depth=1, width=8, n_train=64, n_val=32)
    cache.train_batch([config])
    (run,) = cache.finished_runs([config])
    settings = MeasureSettings(get_group("R4"), ("accuracy", "si"), samples=8, si_samples=4)
    first = cache.measure_run(run, settings)
    return cache, run, settings, first


@pytest.mark.parametrize(
    "damage",
    ["[]", "{}", '{"metrics": 3}', "not json", "[" * 100_000],
    ids=["list", "empty", "metrics a number", "not json", "deep"],
)
def test_a_damaged_measure_record_is_measured_again(measured, damage: str) -> None:
    cache, run, settings, first = measured
    path = cache.measure_path(run.config, settings)
    path.write_text(damage)
    again = cache.measure_run(run, settings)
    assert again["metrics"] == first["metrics"]  # the same numbers, measured again
    assert read_record(path, "measure")["metrics"] == first["metrics"]
    assert path.with_name(path.name + ".damaged").read_text() == damage


def test_a_measure_record_without_the_asked_measure_is_measured_again(measured) -> None:
    cache, run, settings, first = measured
    path = cache.measure_path(run.config, settings)
    record = json.loads(path.read_text())
    for key in ("metrics", "std_over_samples", "subsets"):
        record[key].pop("si")
    path.write_text(json.dumps(record))
    assert cache.measure_run(run, settings)["metrics"] == first["metrics"]


@pytest.mark.parametrize(
    "record",
    [[], {"attempt": 1, "stderr": "x"}, {"job_id": "1", "attempt": "two", "stderr": "x"},
     {"job_id": "1; touch PWNED", "attempt": 1, "stderr": "x"},
     {"job_id": "$(touch PWNED)", "attempt": 1, "stderr": "x"}],
    ids=["list", "no job_id", "attempt text", "shell in job_id", "substitution"],
)  # fmt: skip
def test_a_damaged_slurm_job_record_is_submitted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: Any
) -> None:
    import ginv.cluster.slurm as slurm

    executor = object.__new__(slurm.SlurmExecutor)
    executor.out, executor.folder, executor.live = tmp_path, tmp_path / "slurm", {}
    submitted: list[int] = []
    monkeypatch.setattr(executor, "_submit", lambda cache, task, attempt: submitted.append(attempt))
    monkeypatch.setattr(slurm, "job_states", lambda ids: pytest.fail(f"asked SLURM about {ids}"))
    task = SimpleNamespace(key="train-abc", done=lambda cache: False, label="train x", kind="train")
    path = executor._record_path(task)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    monkeypatch.chdir(tmp_path)
    executor._ensure(None, task)
    assert submitted == [1] and not (tmp_path / "PWNED").exists()
    assert path.with_name(path.name + ".damaged").is_file()


# --- a model is built only once its sizes agree with its weights --------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ginv.training import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(epochs=1, batch_size=32, depth=2, width=16, n_train=64, n_val=32)
    trainer = Trainer([config], synthetic_dataset(), out, "cpu", progress=False)
    trainer.fit()
    return trainer.member_dir(0)


@pytest.mark.parametrize(
    ("width", "message"),
    [(2_000_000, r"'model_args\.width' must be ≤ 1000000, got 2000000"),
     (500_000, "parameters, more than")],
)  # fmt: skip
def test_a_run_claiming_a_huge_width_is_refused_before_allocation(
    finished_run: Path, tmp_path: Path, width: int, message: str
) -> None:
    import shutil

    from ginv.training import load_run

    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    record = json.loads((folder / "run.json").read_text())
    record["model_args"]["width"] = record["config"]["width"] = width
    (folder / "run.json").write_text(json.dumps(record))
    start = time.perf_counter()
    with pytest.raises(GinvError, match=message) as error:
        load_run(folder)
    assert str(error.value).startswith(str(folder / "run.json"))
    assert time.perf_counter() - start < 10  # nothing of 10⁹ weights was allocated


def test_a_run_whose_weights_differ_from_its_sizes_is_compared_unallocated(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import ginv.training.trainer as trainer
    from ginv.training import load_run

    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    record = json.loads((folder / "run.json").read_text())
    record["model_args"]["width"] = record["config"]["width"] = 32
    (folder / "run.json").write_text(json.dumps(record))
    built: list[bool] = []
    real = trainer.model_for
    monkeypatch.setattr(
        trainer,
        "model_for",
        lambda *a, **k: built.append(k.get("shapes_only", False)) or real(*a, **k),
    )
    with pytest.raises(GinvError, match="does not fit the run's mlp settings"):
        load_run(folder)
    assert built == [True]  # only the unallocated skeleton was made


def test_a_model_too_large_to_allocate_is_one_line_before_allocation() -> None:
    from ginv.training import TrainConfig, model_for

    config = TrainConfig(first_width=100_000_000)
    start = time.perf_counter()
    with pytest.raises(GinvError, match=r"parameters, more than 1,000,000,000; lower width"):
        model_for(config, (1, 36, 36), 10)
    assert time.perf_counter() - start < 10


def test_sizing_on_the_meta_device_leaves_the_initialisation_unchanged() -> None:
    from ginv.groups import get_group
    from ginv.models import build_model
    from ginv.training import TrainConfig, model_for

    config = TrainConfig(model="wt", depth=2, width=8, seed=3)
    ours = model_for(config, (1, 12, 12), 3)
    torch.manual_seed(3)
    reference = build_model("wt", get_group("R4"), (1, 12, 12), 8, 2, num_classes=3)
    for (k, a), (_, b) in zip(
        ours.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


# --- settings: every choice is checked against its registry before anything trains -------
def _choice_keys() -> list[str]:
    from ginv.experiments.config import choice_keys

    return choice_keys()


@pytest.mark.parametrize("key", _choice_keys())
def test_every_choice_valued_setting_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, key: str
) -> None:
    out = tmp_path / "X"
    code = main(
        [
            "reproduce",
            "table",
            "--profile",
            "smoke",
            "--set",
            f"{key}=junk",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ginv: error:") and err.count("\n") == 1, err
    assert "junk" in err and not (out / "runs").exists()


def test_every_text_setting_has_a_registry() -> None:
    from ginv.experiments.config import _registries, set_keys

    text = {k for k, t in set_keys().items() if t is str or str in typing.get_args(t)}
    assert text == set(_choice_keys()) and text <= set(_registries())
    assert {"drift_target", "ig_rule", "groups", "frontier_methods", "reg", "dataset"} <= text


def _tuple_keys() -> list[str]:
    from ginv.experiments.config import set_keys

    return [k for k, t in set_keys().items() if typing.get_origin(t) is tuple]


@pytest.mark.parametrize("key", _tuple_keys())
def test_list_settings_refuse_two_values_with_one_label(key: str) -> None:
    from ginv.experiments.config import PROFILES, _setting

    first = (*_setting(PROFILES["smoke"], key), *METHODS)[0]  # frontier_methods: () = all
    # two different numbers with one ":g" label, or one name twice
    twins = f"{first},{first * (1 + 1e-9)}" if isinstance(first, float) else f"{first},{first}"
    from ginv.experiments import profile

    with pytest.raises(GinvError, match=f"{key} must be distinct"):
        profile("smoke", [f"{key}={twins}"])


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "table", "--profile", "smoke", "--out", out]) == 2
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "assignment", ["partition=a\nb", "sbatch.account=x\n#SBATCH --wrap=touch PWNED", "partition=a\rb",
                   "sbatch.comment=\x1b[2J"],
)  # fmt: skip
def test_slurm_settings_with_control_characters_are_refused(assignment: str) -> None:
    from ginv.cluster import SlurmConfig

    with pytest.raises(GinvError, match="control characters"):
        SlurmConfig().with_overrides([assignment])
    with pytest.raises(GinvError, match="control characters"):
        SlurmConfig(sbatch=(("comment", "a\nb"),)).validate()


# --- the frontier's last step: every method may win, and a failure keeps the tables --------
def _best(winner: str) -> dict[tuple[str, str], dict[str, Any]]:
    from ginv.experiments.frontier import COLUMNS

    best = {}
    for name, m in METHODS.items():
        won = name == winner
        best[("R4", name)] = {
            "group": "R4", "method": name, "setting": None if not m.settings else 3.0,
            "setting_name": m.setting_name if m.settings else "", "accuracy": 0.9 if won else 0.5,
            "accuracy_std": 0.01, "si": 0.99, "si_std": 0.0, "val_si": 0.99 if won else 0.1,
            "li": 0.0, "di": 0.0, "params": 10, "inference_flops": 1e6, "single_pass": won,
            "reached": won, "seeds": [0], "uses": m.uses,
            **{f"{k}_std": 0.0 for k in COLUMNS}, "val_acc": 0.9,
        }  # fmt: skip
    return best


@pytest.mark.parametrize("winner", list(METHODS))
def test_the_frontier_notes_name_every_method_that_can_win(winner: str) -> None:
    from ginv.experiments.frontier import _calibrated_table, _goal, _notes

    best = _best(winner)
    notes = _notes(["R4"], best, 0.95)
    assert _goal(["R4"], best)["R4"]["method"] == winner
    assert notes[0].startswith(
        f"R4: the best single-pass method at validation SI ≥ 0.95 is {winner}"
    )
    assert "None" not in notes[0] and ("=" in notes[0]) == (
        best[("R4", winner)]["setting"] is not None
    )
    printed, tidy = _calibrated_table(["R4"], best)
    assert len(printed) == len(tidy) == len(best)


def test_a_failure_after_the_tables_keeps_the_results(tmp_path: Path) -> None:
    from ginv.experiments.results import Results

    results = Results("frontier", "F", "d")
    results.add_table(tmp_path, "t", "c", ["a"], [[1]])
    results.finishing("the notes", lambda: f"{None:g}")  # the TypeError the probe found
    results.write(tmp_path, {}, 1.0, 0)
    written = read_record(tmp_path / "results.json", "results")
    assert written["tables"][0]["rows"] == [[1]] and (tmp_path / "t.csv").is_file()
    assert written["notes"] == [
        "the notes could not be made (TypeError: unsupported format string passed to "
        "NoneType.__format__); the tables above are complete."
    ]


# --- paths: links and folders planted in OUT -----------------------------------------------
def test_a_lock_file_planted_as_a_link_is_refused(tmp_path: Path) -> None:
    from ginv.locks import FileLock

    outside = tmp_path / "outside" / "created-by-ginv"
    (tmp_path / "outside").mkdir()
    lock = tmp_path / "out" / "locks" / "run-x.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(outside)
    with pytest.raises(GinvError, match="a symbolic link, not a lock file"):
        FileLock(lock).acquire()
    assert not outside.exists()


def test_a_section_folder_linked_elsewhere_is_not_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.png").write_bytes(PNG_MAGIC + b"SECRET")
    (elsewhere / "results.json").write_text(json.dumps(
        {"title": "F", "description": "d", "figures": [{"png": "secret.png", "pdf": "s.pdf", "caption": "c"}]}
    ))  # fmt: skip
    out = tmp_path / "out"
    (out / "table").mkdir(parents=True)
    (out / "table" / "results.json").write_text(json.dumps({"title": "T", "description": "d"}))
    (out / "frontier").symlink_to(elsewhere)
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "SECRET" not in page and "U0VDUkVU" not in page  # nor its base64


def test_a_folder_named_like_a_temporary_blocks_no_write(tmp_path: Path) -> None:
    from ginv.io import _tmp, atomic_write_text

    planted = tmp_path / ".frontier.csv.999999.tmp"
    planted.mkdir()
    atomic_write_text("a", tmp_path / "frontier.csv")
    atomic_write_text("b", tmp_path / "other.csv")
    assert (tmp_path / "frontier.csv").read_text() == "a" and planted.is_dir()
    ours = _tmp(tmp_path / "third.csv")  # a folder under this very process's name
    ours.mkdir()
    with pytest.raises(
        GinvError, match=f"cannot write {tmp_path / 'third.csv'}: the folder .* is in the way"
    ):
        atomic_write_text("c", tmp_path / "third.csv")


def test_a_link_at_a_temporary_s_name_is_not_written_through(tmp_path: Path) -> None:
    from ginv.io import _tmp, atomic_write_text

    target = tmp_path / "target"
    target.write_text("theirs")
    _tmp(tmp_path / "f.csv").symlink_to(target)
    atomic_write_text("ours", tmp_path / "f.csv")
    assert target.read_text() == "theirs" and (tmp_path / "f.csv").read_text() == "ours"


def test_a_damaged_calibration_record_is_set_aside_not_a_traceback(tmp_path: Path) -> None:
    from ginv.experiments.calibration import calibration_results

    damaged = tmp_path / "nu-mnist-R4-logit.json"
    damaged.write_text("[]")
    results = calibration_results(tmp_path, 0.95)
    assert results.tables[0].rows == [] and not damaged.exists()
    assert (tmp_path / "nu-mnist-R4-logit.json.damaged").read_text() == "[]"


@pytest.mark.parametrize("text", ["[" * 200_000, "[]", "{", "\x00"])
def test_a_damaged_verification_memo_means_the_files_are_hashed_again(
    tmp_path: Path, text: str
) -> None:
    from ginv.data.sources import _memo_path, _read_memo

    _memo_path(tmp_path).write_text(text)
    assert _read_memo(tmp_path) == {}
