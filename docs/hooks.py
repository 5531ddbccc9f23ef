"""MkDocs hook: the command-line reference, generated from ginv's own argparse parser."""

from __future__ import annotations

import argparse
import os

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
