"""Extensions loaded before the command line is built: a module of yours that registers a
measure, an experiment, a data source, a group or a model with one call each.

Name the modules with ``ginv --plugin package.module …`` (repeatable, before the command) or in
``GINV_PLUGINS`` (comma-separated); each is imported once, and its registrations then show in
the command line's choices and help like ginv's own.

Example::

    # mylab/ginv_plugin.py
    from ginv.experiments.registry import register_experiment
    from ginv.experiments.experiment import Experiment
    register_experiment(Experiment("toy", "A toy", run))

    $ ginv --plugin mylab.ginv_plugin reproduce toy --plan
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from ginv.errors import GinvError

ENV = "GINV_PLUGINS"


def plugin_names(argv: Sequence[str]) -> list[str]:
    """The modules named by ``--plugin M`` / ``--plugin=M`` in ``argv`` and by ``GINV_PLUGINS``,
    each once, in order."""
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--plugin" and i + 1 < len(args):
            names.append(args[i + 1])
        elif arg.startswith("--plugin="):
            names.append(arg.removeprefix("--plugin="))
    return list(dict.fromkeys(names))


def load_plugins(names: Sequence[str]) -> None:
    """Import each module of ``names``; one that cannot be imported (or raises while it
    registers) is one :class:`GinvError` line naming it."""
    for name in names:
        try:
            importlib.import_module(name)
        except GinvError as e:
            raise GinvError(f"plugin {name}: {e}") from None
        except Exception as e:  # a plugin's own bug: named, one line, not a traceback
            raise GinvError(f"plugin {name}: {type(e).__name__}: {e}") from None
