"""How the report renders what experiments leave: settings as flat rows, TeX-style maths as
Unicode (Markdown) or sub/superscripts (HTML), and long tables after the figures, collapsed."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ginv.reports import write_report
from ginv.reports.report import LONG, _maths_html, _maths_text, _settings_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_settings_rows_flatten_nested_objects_and_join_lists() -> None:
    config = {"profile": "smoke", "seeds": [0, 1], "train": {"epochs": 3, "lr": 0.0008},
              "saliency": {"blur": {"sigma": 1.5}}, "empty": {}}  # fmt: skip
    assert _settings_rows(config) == [
        ["profile", "smoke"], ["seeds", "0, 1"], ["train.epochs", "3"], ["train.lr", "0.0008"],
        ["saliency.blur.sigma", "1.5"], ["empty", "{}"],
    ]  # fmt: skip


def test_maths_subscripts_but_not_identifiers() -> None:
    text = "σmax(W_{k+1}) ≤ σmax(W_k), x^{T}; stopped (nu_max_rounds), val_si, W_{ab}"
    assert _maths_text(text) == "σmax(Wₖ₊₁) ≤ σmax(Wₖ), xᵀ; stopped (nu_max_rounds), val_si, W_{ab}"
    assert _maths_html("W_{k+1} and nu_max_rounds") == "W<sub>k+1</sub> and nu_max_rounds"


def test_report_renders_maths_settings_and_long_tables_after_figures(tmp_path: Path) -> None:
    out = tmp_path / "results"
    (out / "exp").mkdir(parents=True)
    (out / "exp" / "f.png").write_bytes(PNG_MAGIC + b"image")
    long_rows = [[i, f"{i / 7:.3f}"] for i in range(LONG + 1)]
    results = {
        "title": "E", "description": "Along W_{k+1}.", "notes": ["σmax(W_k) fell"],
        "tables": [{"caption": "short", "columns": ["a"], "rows": [["W_k"]]},
                   {"caption": "every point", "columns": ["i", "v"], "rows": long_rows}],
        "figures": [{"png": "f.png", "pdf": "f.pdf", "caption": "the figure"}], "files": [],
    }  # fmt: skip
    (out / "exp" / "results.json").write_text(json.dumps(results))
    (out / "config.json").write_text(json.dumps({"seeds": [0], "train": {"epochs": 3}}))
    md_path, html_path = write_report(out)
    md, page = md_path.read_text(), html_path.read_text()
    assert "Along Wₖ₊₁." in md and "> σmax(Wₖ) fell" in md and "| Wₖ |" in md
    assert "Along W<sub>k+1</sub>." in page and "<td>W<sub>k</sub></td>" in page
    assert "W_{" not in md and "W_{" not in page
    assert "| train.epochs | 3 |" in md and "<td>train.epochs</td><td>3</td>" in page
    assert "{'epochs'" not in md and "seeds 0." in md
    # the short table before the figure, the long one after it, collapsed
    for text in (md, page):
        assert text.index("short") < text.index("the figure") < text.index("every point")
    assert f"<details><summary><i>every point</i> ({LONG + 1} rows)</summary>" in page
    assert f"<details><summary>every point ({LONG + 1} rows)</summary>" in md


def test_the_report_names_the_commit_that_computed_the_results(tmp_path: Path) -> None:
    from ginv.experiments.reproduce import environment
    from ginv.provenance import source_commit

    out = tmp_path / "results"
    (out / "exp").mkdir(parents=True)
    results = {"title": "E", "description": "", "tables": [], "figures": [], "files": []}
    (out / "exp" / "results.json").write_text(json.dumps(results))
    (out / "config.json").write_text(json.dumps({"seeds": [0], "train": {"epochs": 3}}))
    env = environment(torch.device("cpu"))
    # this test runs from the project's checkout, so the environment records its commit
    assert env["commit"].split(" ")[0] == source_commit() and len(source_commit() or "") == 40
    sha = "0123456789abcdef0123456789abcdef01234567"
    (out / "environment.json").write_text(
        json.dumps(env | {"commit": f"{sha} + uncommitted changes"})
    )
    md, page = (p.read_text() for p in write_report(out))
    assert f"Results computed at git commit {sha[:12]} + uncommitted changes; report written" in md
    assert f"Results computed at git commit {sha[:12]}" in page
    (out / "environment.json").write_text(json.dumps({"torch": "2.13.0"}))  # an older folder
    md, _ = (p.read_text() for p in write_report(out))
    assert "Results computed" not in md and "Report written" in md
