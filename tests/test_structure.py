"""The package's layout: no import cycle, lower layers never import higher ones, and the
extension points take a new experiment from outside the package (one file, one call)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src"
ROOT = Path(__file__).parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph(typing_too: bool = False) -> dict[str, set[str]]:
    """Module → the ginv modules it imports anywhere in its code (functions included), and
    under ``if TYPE_CHECKING:`` only with ``typing_too``. ``from pkg import name`` is an arrow to ``pkg.name`` where that
    is a module, else to ``pkg``."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and _is_type_checking(node) and not typing_too for n in ast.walk(node)}  # fmt: skip
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("ginv")}
            elif (
                isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ginv")
            ):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {e for e in edges if e in modules} - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle() -> None:
    """Not even through imports made for type checking only."""
    graph = import_graph(typing_too=True)
    assert len(graph) > 50  # the walk found the package
    assert _cycles(graph) == []


@pytest.mark.parametrize("layer", ["ginv.cluster", "ginv.reports", "ginv.runs", "ginv.measures",
                                   "ginv.data", "ginv.models", "ginv.training"])  # fmt: skip
def test_lower_layers_never_import_the_experiments(layer: str) -> None:
    graph = import_graph()
    upward = {m: sorted(e for e in edges if e.startswith("ginv.experiments"))
              for m, edges in graph.items() if m == layer or m.startswith(f"{layer}.")}  # fmt: skip
    assert {m: e for m, e in upward.items() if e} == {}


def test_the_run_cache_is_beneath_the_executors() -> None:
    graph = import_graph()
    runs = {m for m in graph if m.startswith("ginv.runs")}
    assert not any(e.startswith("ginv.cluster") for m in runs for e in graph[m])
    assert any(e.startswith("ginv.runs") for e in graph["ginv.cluster.executor"])


def test_the_experiment_registry_imports_no_plotting_library() -> None:
    code = (
        "import sys\nimport ginv.experiments.registry as r\nimport ginv.experiments.plan\n"
        "print([m for m in ('matplotlib', 'sklearn', 'scipy') if m in sys.modules], len(r.EXPERIMENTS))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # every module that defines an experiment is registered
    defined = [p for p in (SRC / "ginv" / "experiments").glob("*.py")
               if "\nEXPERIMENT = Experiment(" in p.read_text()]  # fmt: skip
    assert done.stdout.split() == ["[]", str(len(defined))] and len(defined) >= 9


def _ginv(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "ginv.cli", *args], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **(env or {})},
        check=False,
    )  # fmt: skip


TOY = ["--plugin", "tests.plugins.toy_experiment"]
SMOKE = ["--profile", "smoke", "--set", "groups=R4"]


@pytest.mark.slow
def test_a_plugin_experiment_is_planned_reproduced_and_reported(
    tmp_path: Path, real_data_dir: Path
) -> None:
    """The toy experiment of tests/plugins (one file, one registry call) in --plan, in
    reproduce and in the report, through the command line."""
    plan = _ginv(*TOY, "reproduce", "toy", *SMOKE, "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "toy DA" in plan.stdout and "toy accuracy" in plan.stdout
    out = tmp_path / "out"
    done = _ginv(*TOY, "reproduce", "toy", *SMOKE, "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "toy" / "results.json").read_text())
    assert results["title"] == "A toy experiment" and len(results["tables"][0]["rows"]) == 1
    assert (out / "toy" / "toy.csv").is_file()
    assert "A toy experiment" in (out / "report.md").read_text()
    # the same through $GINV_PLUGINS; an unknown plugin is one line
    listed = _ginv("reproduce", "--help", env={"GINV_PLUGINS": "tests.plugins.toy_experiment"})
    assert "toy" in listed.stdout
    bad = _ginv("--plugin", "no.such.module", "reproduce", "table", "--plan")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no.such.module" in bad.stderr


def test_the_report_orders_sections_by_the_registry(tmp_path: Path) -> None:
    from ginv.experiments.registry import report_order
    from ginv.experiments.results import Results
    from ginv.reports import write_report

    order = report_order()
    assert order[:3] == ("table", "fidelity", "calibration") and order[-1] == "frontier"
    for name in ("frontier", "drift", "table", "zzz"):  # zzz: no order, an older folder
        (tmp_path / name).mkdir()
        Results(name, f"Section {name}", "…").write(
            tmp_path / name, {}, 0.0, order.index(name) if name in order else None
        )
    text = (write_report(tmp_path)[0]).read_text()
    positions = [text.index(f"Section {n}") for n in ("table", "drift", "frontier", "zzz")]
    assert positions == sorted(positions)


SOURCE = ["--plugin", "tests.plugins.toy_source"]


def test_a_plugin_data_source_is_checked_and_trained_on(tmp_path: Path) -> None:
    """The toy source of tests/plugins (one file, one registry call) in `ginv data check` and
    `ginv train`: its 2-channel 16×16 images, padded to the canvas, train a WT model."""
    check = _ginv(*SOURCE, "data", "check", "--dataset", "stripes", "--cache-dir", str(tmp_path))
    assert check.returncode == 0, check.stderr
    assert "stripes: 2×16×16 images" in check.stdout and "3 classes" in check.stdout
    out = tmp_path / "runs"
    done = _ginv(*SOURCE, "train", "--dataset", "stripes", "--group", "R4", "--model", "wt",
                 "--epochs", "1", "--n-train", "300", "--n-val", "50", "--out", str(out),
                 "--quiet", env={"GINV_CACHE_DIR": str(tmp_path / "cache")})  # fmt: skip
    assert done.returncode == 0, done.stderr
    (record,) = out.glob("*/run.json")
    run = json.loads(record.read_text())
    assert run["config"]["dataset"] == "stripes"
    assert run["model_args"]["in_shape"][0] == 2 and run["model_args"]["num_classes"] == 3


def _public_callables():
    """Every public function, class and method defined in ginv's modules (methods whose
    docstring a base class gives count as documented: ``inspect.getdoc`` inherits it)."""
    import importlib
    import inspect

    for path in sorted(SRC.rglob("*.py")):
        name = _module_name(path)
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if inspect.isfunction(obj):
                yield f"{name}.{attr}", obj
            elif inspect.isclass(obj):
                yield f"{name}.{attr}", obj
                for method, member in vars(obj).items():
                    if method.startswith("_"):
                        continue
                    if isinstance(member, property):
                        member = member.fget
                    if isinstance(member, staticmethod | classmethod):
                        member = member.__func__
                    if inspect.isfunction(member):
                        doc = inspect.getdoc(getattr(obj, method, member)) or member.__doc__
                        yield f"{name}.{attr}.{method}", doc


def test_every_public_function_has_a_docstring() -> None:
    import inspect

    missing = [
        where for where, obj in _public_callables()
        if not (obj if isinstance(obj, str) else inspect.getdoc(obj))
    ]  # fmt: skip
    assert missing == []
