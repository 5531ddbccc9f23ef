"""The documentation's code runs: every ```python block of the pages in :data:`RUNNABLE`,
executed in order in one namespace per page, as a reader pasting them would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
RUNNABLE = ["own-loop.md"]
"""Pages whose python blocks are self-contained (synthetic data, no download)."""


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)


@pytest.mark.parametrize("name", RUNNABLE)
def test_the_python_blocks_of_a_page_run(name: str) -> None:
    page = DOCS / name
    blocks = python_blocks(page)
    assert blocks, f"{name} holds no python block"
    namespace: dict[str, object] = {"__name__": "__main__"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page}:block{i}", "exec"), namespace)


def test_the_runnable_pages_are_in_the_site_navigation() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    for name in RUNNABLE:
        assert f": {name}\n" in nav, name
