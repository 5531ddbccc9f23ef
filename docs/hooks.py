"""MkDocs hooks: the command-line reference, generated from ginv's own argparse parser;
MathJax served from the site itself (copied from the django-static-mathjax wheel of
docs/requirements.txt, so the maths renders without a network); and a build error for any
public name of ginv's main modules that the API reference leaves out."""

from __future__ import annotations

import argparse
import importlib
import os
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

MARKER = "<!-- cli-reference -->"


def _commands(
    parser: argparse.ArgumentParser, path: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, f"{path} {name}")
    return found


def _reference() -> str:
    os.environ["COLUMNS"] = "100"  # the same line breaks on every machine
    from ginv.cli import build_parser

    parts = []
    for path, parser in _commands(build_parser(), "ginv"):
        level = "#" * min(2 + path.count(" "), 4)
        parts.append(f"{level} `{path}`\n\n```text\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _reference())
    return markdown


# --- MathJax from a package, not from a CDN or a committed bundle ---------------------------
MATHJAX_DEST = "assets/mathjax"


def _mathjax_root() -> Path:
    try:
        import mathjax  # the django-static-mathjax wheel: MathJax's own release files
    except ImportError:
        raise PluginError(
            "MathJax is missing: pip install -r docs/requirements.txt (django-static-mathjax)"
        ) from None
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def on_files(files: Files, config) -> Files:
    root = _mathjax_root()
    fonts = root / "output" / "chtml" / "fonts" / "woff-v2"
    for path in [root / "tex-mml-chtml.js", *sorted(fonts.glob("*.woff"))]:
        uri = f"{MATHJAX_DEST}/{path.relative_to(root).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


# --- every public name of these modules is in the API reference -----------------------------
DOCUMENTED_MODULES = ("ginv", "ginv.measures", "ginv.groups", "ginv.models", "ginv.testing",
                      "ginv.losses")  # fmt: skip


def public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", module_name) == module_name
                 and not isinstance(v, type(module))]  # fmt: skip
    return [n for n in names if not n.startswith("_") and n != "TYPE_CHECKING"]


def missing_names(site_dir: Path) -> list[str]:
    """``module.name`` for each public name with no anchor in the built API pages."""
    anchors: set[str] = set()
    for page in (site_dir / "api").rglob("*.html"):
        anchors |= set(re.findall(r'id="(ginv[\w.]*)"', page.read_text(encoding="utf-8")))
    short = {a.rsplit(".", 1)[-1] for a in anchors}
    missing = []
    for module_name in DOCUMENTED_MODULES:
        module = importlib.import_module(module_name)
        for name in public_names(module_name):
            value = getattr(module, name)
            home = getattr(value, "__module__", None)
            # where it is defined, or a package above it that re-exports it (ginv.groups.R4)
            parts = (home or module_name).split(".")
            candidates = {f"{module_name}.{name}"} | {
                f"{'.'.join(parts[:i])}.{name}" for i in range(1, len(parts) + 1)
            }
            if name == "__version__" or candidates & anchors:
                continue
            if home is None and name in short:  # a constant, documented where it is defined
                continue
            missing.append(f"{module_name}.{name}")
    return missing


def on_post_build(config) -> None:
    missing = missing_names(Path(config["site_dir"]))
    if missing:
        raise PluginError("the API reference leaves out: " + ", ".join(missing))
