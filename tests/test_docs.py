"""Every Python block of the README and the docs runs; the README stays short and local."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_every_python_block_of_a_page_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's blocks run in order in one namespace (a tutorial builds up), in a scratch
    folder. A block that starts with a ``# src/...`` comment is an excerpt of a file: it is
    compiled, not run. Pages that load MNIST need ``GINV_DATA_DIR``."""
    blocks = python_blocks(page)
    if any("load_transforming(" in b for b in blocks) and not os.environ.get("GINV_DATA_DIR"):
        pytest.skip("GINV_DATA_DIR is unset: the page loads the real MNIST files")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for i, block in enumerate(blocks):
        code = compile(block, f"{page.name}, block {i + 1}", "exec")
        if not block.lstrip().startswith("# src/"):
            exec(code, namespace)


def test_the_readme_is_short_and_names_no_file_outside_the_project() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "../" not in text and "SPEC" not in text
    first_code = text[text.index("make setup") :]
    assert "```python" in first_code and "ginv.measure(" in python_blocks(ROOT / "README.md")[0]
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), link


def test_the_citation_is_the_paper() -> None:
    text = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    for part in ("preferred-citation:", "On genuine invariance learning without weight-tying",
                 "Moskalev", "Sepliarskaia", "Bekkers", "Smeulders", "year: 2023", "2308.03904"):  # fmt: skip
        assert part in text, part


def test_the_hook_finds_every_public_name_of_the_main_modules() -> None:
    """docs/hooks.py fails the build for a public name without an anchor; here its list of
    names is checked to be complete, on a fake site that documents all but one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    assert "measure" in hooks.public_names("ginv") and "R4" in hooks.public_names("ginv.groups")
    assert "assert_invariant" in hooks.public_names("ginv.testing")
    assert "logit_invariance" in hooks.public_names("ginv.losses")


def test_every_docs_page_is_in_the_site_navigation() -> None:
    """Every page but those the site excludes (``exclude_docs``: pypi.md is the wheel's
    readme) is reachable from the navigation."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    excluded = re.search(r"^exclude_docs: \|\n((?:  .*\n)+)", config, re.M)
    skip = set(excluded.group(1).split()) if excluded else set()
    pages = [p.name for p in (ROOT / "docs").glob("*.md") if p.name not in skip]
    assert [name for name in pages if f": {name}\n" not in config] == []
