"""Packaging: the version, a fast `--help` that imports no study dependency, the experiment
registry, the one-line message without `ginv[study]`, and the report's front matter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ginv
from ginv.cli import build_parser, main
from ginv.errors import GinvError
from ginv.experiments import registry
from ginv.reports import write_report

HEAVY = ("matplotlib", "sklearn", "scipy", "ginv.experiments.study")


def test_version_is_written_once_and_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0  # the status, not a SystemExit
    assert capsys.readouterr().out.strip() == f"ginv {ginv.__version__}"
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and ginv.__version__ not in pyproject


def test_help_imports_no_study_dependency() -> None:
    commands = [[], ["data", "check"], ["train"], ["measure"], ["reproduce"], ["calibrate"]]
    code = (
        "import sys, contextlib, io\n"
        "from ginv.cli import build_parser\n"
        f"for argv in {commands!r}:\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        build_parser().parse_args([*argv, '--help'])\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_registry_names_the_reproduce_choices_and_loads_each() -> None:
    parser = build_parser()
    assert parser.parse_args(["reproduce", "all"]).experiment == "all"
    for name in registry.EXPERIMENTS:
        assert parser.parse_args(["reproduce", name]).experiment == name
        assert callable(registry.get_experiment(name).run)
    with pytest.raises(GinvError, match="unknown experiment"):
        registry.get_experiment("figure9")


def test_study_commands_without_the_extra_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(
        registry.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sklearn" else real(name, *a),
    )
    for argv in (["reproduce", "table"], ["calibrate"]):
        assert main([*argv, "--profile", "smoke", "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "scikit-learn" in err
        assert "pip install 'ginv[study]'" in err


def _results_folder(out: Path, profile: str) -> Path:
    (out / "prop31").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"profile": profile, "epochs": 3, "seeds": [0]}))
    section = {
        "experiment": "prop31", "title": "Proposition 3.1", "description": "d",
        "tables": [], "figures": [], "notes": [], "files": [], "passed": True,
    }  # fmt: skip
    (out / "prop31" / "results.json").write_text(json.dumps(section))
    return out


def test_report_marks_a_section_from_other_settings(tmp_path: Path) -> None:
    """A section left by an earlier or different run keeps its own settings' label."""
    out = _results_folder(tmp_path / "r", "paper")
    section = json.loads((out / "prop31" / "results.json").read_text())
    section["config"] = {"profile": "smoke", "epochs": 3, "seeds": [0]}
    (out / "prop31" / "results.json").write_text(json.dumps(section))
    md, page = (p.read_text() for p in write_report(out))
    assert "profile = smoke (report: paper)" in md and "Other settings" in page
    assert "Not the paper's scale" in md and "Proposition 3.1 (smoke)" in md
    (out / "config.json").unlink()  # no finished run: the sections' own settings label it
    md = write_report(out)[0].read_text()
    assert "Profile **smoke**" in md and "Other settings" not in md


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_report_has_contents_scale_banner_and_provenance(tmp_path: Path, profile: str) -> None:
    md_path, html_path = write_report(_results_folder(tmp_path / profile, profile))
    md, page = md_path.read_text(), html_path.read_text()
    assert "- [Proposition 3.1](#proposition-31)" in md and "- [Settings](#settings)" in md
    assert "<a href='#proposition-31'>" in page and "<h2 id='proposition-31'>" in page
    assert f"by ginv {ginv.__version__}" in md and f"by ginv {ginv.__version__}" in page
    assert ("Not the paper's scale" in md) == (profile != "paper")
    assert ("class='scale'" in page) == (profile != "paper")


def test_measures_and_reports_sit_above_io_not_training() -> None:
    """The layers: ``ginv.io`` is the bottom; measuring and reporting never load training."""
    code = (
        "import sys, ginv.measures, ginv.reports, ginv.io; "
        "print([m for m in sys.modules if m.startswith('ginv.training')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
