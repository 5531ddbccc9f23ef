"""Every ``ginv … --help`` explains itself: defaults, one example, the --set keys."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from ginv.cli import EXAMPLES, build_parser


def _commands(parser: argparse.ArgumentParser, path: str = "ginv"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


COMMANDS = dict(_commands(build_parser()))


def test_every_command_has_an_example() -> None:
    assert set(COMMANDS) == set(EXAMPLES)


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_help_shows_the_defaults_and_an_example(path: str) -> None:
    parser = COMMANDS[path]
    text = parser.format_help()
    assert f"example:\n  {EXAMPLES[path]}" in text
    for action in parser._actions:
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if action.option_strings and shown:
            assert "(default" in parser._get_formatter()._format_action(action), action.dest


@pytest.mark.parametrize("command", ["reproduce", "calibrate"])
def test_the_set_keys_are_listed_from_the_dataclasses(command: str) -> None:
    from ginv.experiments.config import PROFILES, SALIENCY_KEYS, TRAIN_KEYS, StudyConfig

    text = COMMANDS[f"ginv {command}"].format_help()
    keys = [f.name for f in fields(StudyConfig)
            if f.name not in ("profile", "train", "saliency")]  # fmt: skip
    listed = {
        line.split()[0]: line.split()[1:]
        for line in text.split("--set keys")[1].splitlines()[1:]
        if line.startswith("  ") and not line.startswith("  ginv")
    }
    assert set(listed) == {*keys, *TRAIN_KEYS, *SALIENCY_KEYS}
    assert listed["ig_steps"][:2] == ["int", str(PROFILES["quick"].saliency.steps)]
    # every listed key is one --set takes, with the value the help shows as its default
    for key, (_, default, *_) in listed.items():
        if "(" not in default and "," not in default:  # a plain scalar, as --set writes it
            PROFILES["quick"].with_overrides([f"{key}={default}"])
    assert listed["epochs"][:2] == ["int", str(PROFILES["quick"].epochs)]
    assert listed["seeds"][:2] == ["int,...", "0,1"]
    assert listed["si_target"][:2] == ["float", f"{StudyConfig().si_target:g}"]
