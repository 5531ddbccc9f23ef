"""Layer by layer: where each way of making a classifier invariant makes it invariant.

For each group, architecture (``layers_architectures``: the MLP, the CNN) and method, the
invariance error ``‖h(g·x) − h(x)‖² / ‖h(x)‖²`` and the equivariance error
``‖h(g·x) − ρ(g)·h(x)‖² / ‖h(x)‖²`` of every stage ``h`` from the input to the logits
(:func:`ginv.measures.layer_equivariance`, ρ chosen from the feature's shape), on the test
orbits of the first ``layers_samples`` images, for the study's first seed. Methods:

* ``DA``, ``IR-<reg>`` (the study's calibrated ν), ``WT``: the study's runs; the CNN's IR
  trains at the MLP's calibrated ν (the search is the MLP's alone);
* ``orbit-average``: DA inside :class:`~ginv.models.OrbitAverage`; its inner layers see the
  whole orbit, so each is measured as lifted features ``[h(g·x)]_g`` (ρ permutes the group
  axis), and ``avg`` is the mean over the orbit;
* ``canonicalise``: the ``canon`` model; ``canon`` is the canonical image the classifier sees;
* ``orbit``: the orbit-structure regulariser at the largest ``frontier_orbit_rates`` (the
  MLP only: it regularises a dense first layer).

The stages, shared by every method of an architecture (a method has the ones it computes):
``input``, ``canon``, the first layer (``fc1``/``conv1``; WT's lifted features before their
pool), ``pool`` (WT's pool over the group), the hidden layers, ``gap`` (the CNN's global
average pool), ``logits``, ``avg``. Layers are the modules' outputs (pre-activation).

A method's invariance **appears** at the first stage from which every stage's invariance
error is at the floor: ``≤`` :data:`EXACT` for an exact group, within :data:`FLOOR_FACTOR`
of the interpolation floor for an inexact one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from ginv.errors import GinvError
from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.methods import METHODS
from ginv.experiments.results import Results
from ginv.experiments.spec import CalibratedIR, Measure, Request, Sizes, Train
from ginv.groups import get_group
from ginv.measures import layer_equivariance
from ginv.models import OrbitAverage, model_parts, wrapped_name
from ginv.models.base import Lifted, Network, WeightTied
from ginv.models.canonicalise import Canonicaliser
from ginv.regularizers import regularizer_class

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study
    from ginv.groups import Group
    from ginv.runs import Run
    from ginv.training import TrainConfig

EXACT = 1e-10
"""An invariance error at most this is at the floor, for an exact group: float32 features
that agree to about 1e-5 of their norm (WT's mean pool rounds at ~1e-7, squared ~1e-14)."""
FLOOR_FACTOR = 10.0
"""For an inexact group, at the floor means within this factor of the interpolation floor."""

TIDY_COLUMNS = [
    "group", "architecture", "method", "layer_index", "layer", "module", "action",
    "exact_action", "invariance", "equivariance", "floor", "samples", "seed",
]  # fmt: skip
"""``layers.csv``: one row per group × architecture × method × stage; ``layer_index`` is
the stage's place on the architecture's depth axis (:func:`stages`), ``module`` the
module it is read from; ``floor``: the invariance error at the floor (:data:`EXACT`, or
the interpolation floor times :data:`FLOOR_FACTOR`)."""


@dataclass(frozen=True)
class LayerMethod:
    """One line of the figure: how its run is made (``config(c, group, seed, arch)``, None
    where the method does not apply to ``arch``) and the wrapper it is measured in."""

    name: str
    config: Callable[[StudyConfig, str, int, str], TrainConfig | None]
    wrapper: str | None = None
    calibrated: bool = False  # the run's ν is the calibration's (not known before it)


def on_architecture(config: TrainConfig, architecture: str) -> TrainConfig | None:
    """``config`` with its architecture swapped (``mlp`` → ``cnn``, ``wt`` → ``wt-cnn``,
    ``canon`` → ``canon-cnn``) at that architecture's default size; None where its
    regulariser does not apply to the architecture.

    Example: ``on_architecture(TrainConfig(model="wt"), "cnn").model == "wt-cnn"``.
    """
    current, wrapper = model_parts(config.model)
    if current == architecture:
        return config
    allowed = regularizer_class(config.reg).architectures if config.reg != "none" else None
    if allowed is not None and architecture not in allowed:
        return None
    model = architecture if wrapper is None else wrapped_name(wrapper, architecture)
    return replace(config, model=model, depth=0, width=0).validate()


def _method(name: str, setting: Callable[[StudyConfig], float] | None = None) -> LayerMethod:
    method = METHODS[name]

    def make(c: StudyConfig, group: str, seed: int, arch: str) -> TrainConfig | None:
        value = setting(c) if setting is not None else math.nan
        return on_architecture(method.make(c, group, seed, value), arch)

    return LayerMethod(name, make, method.wrapper)


def _ir(c: StudyConfig, group: str, seed: int, arch: str) -> TrainConfig | None:
    return None  # made from the calibration's ν in run()


def layer_methods(c: StudyConfig) -> list[LayerMethod]:
    """The lines of the figure, in the legend's order."""
    return [
        _method("DA"),
        LayerMethod(f"IR-{c.reg}", _ir, calibrated=True),
        _method("orbit", lambda c: max(c.frontier_orbit_rates)),
        _method("WT"),
        _method("orbit-average"),
        _method("canonicalise"),
    ]


def stages(architecture: str, depth: int) -> list[str]:
    """The depth axis of an architecture with ``depth`` layers before its head.

    Example: ``stages("cnn", 3)`` is ``['input', 'canon', 'conv1', 'pool', 'conv2',
    'conv3', 'gap', 'logits', 'avg']``.
    """
    unit = "fc" if architecture == "mlp" else "conv"
    layers = [f"{unit}{i + 1}" for i in range(depth)]
    pooled = ["gap"] if architecture != "mlp" else []
    return ["input", "canon", layers[0], "pool", *layers[1:], *pooled, "logits", "avg"]


LIFTED = ("axis", "lifted", "lifted-input")


class Probe(nn.Module):
    """``model`` with a tap per stage: ``taps.<stage>`` (an identity) is called from a hook
    on the module the stage is read from, so :func:`layer_equivariance` measures every
    method at the same names. ``feeds``: ``(stage, module, how)``, ``how`` one of
    ``output``, ``input`` (the module's first argument), ``axis`` (an output ``(B, |G|, ...)``
    already), ``lifted`` or ``lifted-input`` (the output or input of a module that runs on
    the ``|G|``-fold orbit batch, seen as ``(B, |G|, ...)``). Lifted features are measured
    with ρ the permutation of their group axis."""

    def __init__(self, model: nn.Module, feeds: list[tuple[str, nn.Module, str]], order: int):
        super().__init__()
        self.model = model
        self.taps = nn.ModuleDict(
            {stage: Lifted() if how in LIFTED else nn.Identity() for stage, _, how in feeds}
        )
        for stage, module, how in feeds:
            tap = self.taps[stage]
            if how.endswith("input"):
                module.register_forward_pre_hook(_feed(tap, how == "lifted-input", order, 0))
            else:
                module.register_forward_hook(_feed(tap, how == "lifted", order, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _feed(tap: nn.Module, lifted: bool, order: int, at: int) -> Callable[..., None]:
    """A hook that calls ``tap`` on argument ``at`` of the hook (0: the module's inputs,
    2: its output), seen as ``(B, |G|, ...)`` if ``lifted``; it changes nothing."""

    def hook(*args: Any) -> None:
        value = args[1][0] if at == 0 else args[2]
        tap(_lift(value, order) if lifted else value)

    return hook


def _lift(out: Tensor, order: int) -> Tensor:
    """Element-major orbit outputs ``(|G|·B, ...)`` as ``(B, |G|, ...)``."""
    return out.view(order, -1, *out.shape[1:]).transpose(0, 1)


def probe(model: nn.Module, group: Group, architecture: str) -> tuple[Probe, dict[str, str]]:
    """``model`` (a :class:`Network` of ``architecture``, its WT twin, a canonicaliser or an
    orbit average of one) in a :class:`Probe`, and the module each stage is read from, in
    depth order."""
    feeds: list[tuple[str, nn.Module, str]] = [("input", model, "input")]
    modules = {"input": "input"}
    net, how, prefix = model, "output", ""
    if isinstance(model, OrbitAverage):
        net, how, prefix = model.model, "lifted", "model."
        feeds.append(("avg", model, "output"))
        modules["avg"] = "orbit mean"
    elif isinstance(model, Canonicaliser):
        net, prefix = model.classifier, "classifier."
        feeds.append(("canon", net, "input"))
        modules["canon"] = "classifier input"
    if not isinstance(net, Network):
        raise GinvError(f"cannot read the layers of a {type(net).__name__}")
    hidden = list(getattr(net, "hidden", []))
    names = stages(architecture, 1 + len(hidden))
    if isinstance(net.first, WeightTied):
        feeds += [(names[2], net.first.lifted, "axis"), ("pool", net.first, "output")]
        modules |= {names[2]: f"{prefix}first.lifted", "pool": f"{prefix}first"}
    else:
        feeds.append((names[2], net.first, how))
        modules[names[2]] = f"{prefix}first"
    for i, layer in enumerate(hidden):
        feeds.append((names[4 + i], layer, how))
        modules[names[4 + i]] = f"{prefix}hidden.{i}"
    if "gap" in names:
        feeds.append(("gap", net.head, "input" if how == "output" else "lifted-input"))
        modules["gap"] = f"{prefix}head input"
    feeds.append(("logits", net.head, how))
    modules["logits"] = f"{prefix}head"
    order = [s for s in names if s in modules]
    return Probe(model, feeds, len(group)), {s: modules[s] for s in order}


def measure_layers(
    model: nn.Module, images: Tensor, group: Group, architecture: str, budget_mb: int
) -> list[dict[str, Any]]:
    """One row per stage the model has (in depth order): its module, action and errors."""
    probed, modules = probe(model, group, architecture)
    report = layer_equivariance(
        probed, images, group, [f"taps.{s}" for s in modules], memory_budget_mb=budget_mb
    )
    rows = []
    for stage, module in modules.items():
        r = report[f"taps.{stage}"]
        floor = EXACT if group.exact else FLOOR_FACTOR * r["floor_invariance"]
        rows.append({"layer": stage, "module": module, "action": r["action"],
                     "exact_action": r["exact_action"], "invariance": r["invariance"],
                     "equivariance": r["equivariance"] if math.isfinite(r["equivariance"])
                     else None, "floor": floor,
                     "samples": r["samples"]})  # fmt: skip
    return rows


def invariant_from(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first row from which every row's invariance error is at its floor (None: the
    logits are not)."""
    first = None
    for row in reversed(rows):
        if not row["invariance"] <= row["floor"]:
            break
        first = row
    return first


def _configs(c: StudyConfig, group: str) -> dict[tuple[str, str], TrainConfig]:
    """The runs known before any result, by (architecture, method)."""
    seed = c.seeds[0]
    out = {}
    for arch in c.layers_architectures:
        for m in layer_methods(c):
            config = m.config(c, group, seed, arch)
            if config is not None:
                out[(arch, m.name)] = config
    return out


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """The first seed's runs of every method on every architecture (IR: the study's
    calibrated family; the CNN's IR, whose ν the calibration decides, is not counted) and
    the layer measures of each, on the orbits of ``layers_samples`` test images."""
    order = len(get_group(group))
    n = min(c.layers_samples, sizes.test)
    requests: list[Request] = [CalibratedIR(c.reg)]
    configs = _configs(c, group)
    for (arch, name), config in configs.items():
        requests.append(Train(f"{name} {arch}", (config,), f"seed {config.seed}"))
    for arch in c.layers_architectures:
        # forward passes over the orbits, |G| per image inside the orbit average
        models = [m for m in layer_methods(c) if m.calibrated or (arch, m.name) in configs]
        passes = sum(order if m.wrapper == "orbit-average" else 1 for m in models)
        requests.append(Measure(f"{arch} layers ({len(models)} models)", arch, 1, n * passes))
    return requests


def _runs(study: Study, group: str) -> dict[tuple[str, str], tuple[Run, str | None]]:
    """The finished run (and wrapper) of each (architecture, method)."""
    c = study.config
    configs = _configs(c, group)
    _, cal = study.ir_family(group, c.reg)
    seed = c.seeds[0]
    ir = c.run(group, "IR", seed, c.reg, cal["chosen_nu"])
    for arch in c.layers_architectures:
        config = on_architecture(ir, arch)
        if config is not None:
            configs[(arch, f"IR-{c.reg}")] = config
    study.runs(list(dict.fromkeys(configs.values())))  # the missing ones, batched
    wrappers = {m.name: m.wrapper for m in layer_methods(c)}
    out = {}
    for arch in c.layers_architectures:
        for m in layer_methods(c):
            if (arch, m.name) in configs:
                (run,) = study.runs([configs[(arch, m.name)]])
                out[(arch, m.name)] = (run, wrappers[m.name])
    return out


def run(study: Study, folder: Path) -> Results:
    """Measure every method's stages on every architecture and group, draw them, and say
    where each method's invariance appears."""
    c = study.config
    seed = c.seeds[0]
    results = Results(
        "layers", "Layer by layer: where invariance is made",
        f"Invariance error ‖h(g·x) − h(x)‖²/‖h(x)‖² and equivariance error "
        f"‖h(g·x) − ρ(g)·h(x)‖²/‖h(x)‖² at each stage h from the input to the logits (module "
        f"outputs, before their activation), mean over g ≠ e and the test orbits of "
        f"{c.layers_samples} images, seed {seed} only (the study's first). ρ is chosen from "
        f"the feature's shape: trivial on vectors, the group's action on maps, the "
        f"permutation of the group axis on lifted features. IR-{c.reg} at the study's "
        f"calibrated ν (the CNN at the MLP's); orbit: the orbit-structure regulariser at "
        f"lr·ν = {max(c.frontier_orbit_rates):g} (MLP only). Invariance appears at the "
        f"first stage from which every stage is at the floor (≤ {EXACT:g}; for an inexact "
        f"group within {FLOOR_FACTOR:g}× the interpolation floor).",
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    axes: dict[str, list[str]] = {}
    for group_name in c.groups:
        group = study.group(group_name)
        images = study.data().test.images[: c.layers_samples]
        for (arch, name), (r, wrapper) in _runs(study, group_name).items():
            study.say(f"layers {group_name} {arch} {name}")
            model = r.model(study.device, wrapper)
            axis = axes.setdefault(arch, stages(arch, r.config.depth))
            for row in measure_layers(model, images.to(study.device), group, arch,
                                      c.memory_budget_mb):  # fmt: skip
                rows.append({"group": group_name, "architecture": arch, "method": name,
                             "layer_index": axis.index(row["layer"]), **row,
                             "seed": r.config.seed})  # fmt: skip
    results.add_csv(folder, "layers", TIDY_COLUMNS, [[r[k] for k in TIDY_COLUMNS] for r in rows])
    found = appearances(rows)
    results.add_table(
        folder, "layers-appear",
        "Where invariance appears: the first stage from which every stage's invariance "
        "error is at the floor ('–': not even the logits are), and the logits' error.",
        ["group", "architecture", "method", "invariant from", "module", "logits' invariance"],
        [[g, a, m, v["layer"] or "–", v["module"] or "–", f"{v['logits']:.3g}"]
         for (g, a, m), v in found.items()],
        tidy=(["group", "architecture", "method", "invariant_from", "module",
               "logits_invariance"],
              [[g, a, m, v["layer"] or "", v["module"] or "", v["logits"]]
               for (g, a, m), v in found.items()]),
    )  # fmt: skip
    results.notes.extend(notes(found))
    results.data = {"rows": rows,
                    "appears": {"/".join(k): v for k, v in found.items()}}  # fmt: skip
    names = [m.name for m in layer_methods(c)]
    results.add_figure(
        folder, "layers", _plot(rows, c.groups, axes, names),
        f"Invariance error (solid) and equivariance error (dashed, hollow markers; drawn only "
        f"where ρ is not trivial, since on vectors the two are equal, and not at the input, "
        f"where it is 0 by definition) at each stage, for the first seed ({seed}); "
        f"log axis, values below {style.FLOOR:g} (exact zeros) drawn at {style.FLOOR:g}. "
        f"Dotted: the floor (≤ {EXACT:g} is exact invariance in float32 features). input: "
        f"the image; canon: the canonical image; pool: WT's pool over the group (before it, "
        f"WT's lifted features); gap: the CNN's global average pool; avg: the orbit average "
        f"of the logits (before it, orbit-average's layers are the stack over the orbit, whose "
        f"equivariance under the permutation of the orbit is 0). The CNN's strided maps "
        f"see R4 only approximately (exact_action in layers.csv).",
    )  # fmt: skip
    return results


def appearances(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (group, architecture, method): the stage and module from which it is invariant
    (None: nowhere) and the invariance error of its output."""
    keys = list(dict.fromkeys((r["group"], r["architecture"], r["method"]) for r in rows))
    out = {}
    for key in keys:
        mine = [r for r in rows if (r["group"], r["architecture"], r["method"]) == key]
        first = invariant_from(mine)
        out[key] = {"layer": first["layer"] if first else None,
                    "module": first["module"] if first else None,
                    "input": mine[0]["invariance"], "logits": mine[-1]["invariance"]}  # fmt: skip
    return out


def notes(found: dict[tuple[str, str, str], dict[str, Any]]) -> list[str]:
    """One line per group × architecture: where each method's invariance appears."""
    lines = []
    for g, a in dict.fromkeys((g, a) for g, a, _ in found):
        parts = []
        for (g2, a2, m), v in found.items():
            if (g2, a2) != (g, a):
                continue
            where = (f"from {v['layer']} ({v['module']})" if v["layer"]
                     else f"nowhere (error {v.get('input', math.nan):.2g} at the input, "
                     f"{v['logits']:.2g} at the output)")  # fmt: skip
            parts.append(f"{m} {where}")
        lines.append(f"{g} {a.upper()}: invariant " + "; ".join(parts) + ".")
    return lines


LOOK_FALLBACK = (style.NEUTRAL, "o", "-")
OWN_LOOK = {"orbit": ("#CC79A7", "*", "-")}
"""The frontier's looks, but the orbit regulariser apart from the canonicaliser (both black
there): here they share the floor."""


@style.styled
def _plot(rows, groups, axes_by_arch, names):
    """Depth along x, errors on a log axis; one panel per architecture (rows) × group
    (columns), one colour per method, invariance solid and equivariance dashed."""
    import matplotlib.pyplot as plt

    from ginv.experiments.methods import LOOK

    architectures = list(axes_by_arch)
    fig, axes = plt.subplots(len(architectures), len(groups), squeeze=False,
                             figsize=(style.PAGE, 2.3 * len(architectures) + 0.4))  # fmt: skip
    for i, arch in enumerate(architectures):
        for j, g in enumerate(groups):
            ax = axes[i, j]
            panel = [r for r in rows if r["group"] == g and r["architecture"] == arch]
            if not panel:
                ax.set_visible(False)
                continue
            axis = axes_by_arch[arch]
            for name in names:
                mine = sorted((r for r in panel if r["method"] == name),
                              key=lambda r: r["layer_index"])  # fmt: skip
                if not mine:
                    continue
                color, mark, _ = {**LOOK, **OWN_LOOK}.get(name, LOOK_FALLBACK)
                xs = [r["layer_index"] for r in mine]
                ax.plot(xs, style.clip_floor([r["invariance"] for r in mine]), color=color,
                        marker=mark, ls="-", lw=1.0, ms=4 if mark == "*" else 3,
                        label=name, alpha=0.9)  # fmt: skip
                # only where ρ is not trivial, joined between neighbouring stages only
                moved = {r["layer_index"]: r["equivariance"] for r in mine
                         if r["action"] not in ("trivial", "none") and r["layer"] != "input"
                         and r["equivariance"] is not None
                         and math.isfinite(r["equivariance"])}  # fmt: skip
                if moved:
                    span = range(min(moved), max(moved) + 1)
                    ax.plot(list(span), [max(moved[x], style.FLOOR) if x in moved else math.nan
                                         for x in span],
                            color=color, marker=mark, ls="--", lw=0.8, ms=2.5,
                            mfc="white", alpha=0.9)  # fmt: skip
            floors = sorted({(r["layer_index"], r["floor"]) for r in panel})
            if len({f for _, f in floors}) == 1:
                ax.axhline(floors[0][1], color=style.NEUTRAL, lw=0.6, ls=":")
            else:
                ax.plot(*zip(*floors, strict=True), color=style.NEUTRAL, lw=0.6, ls=":")
            ax.set_yscale("log")
            ax.set_ylim(style.FLOOR / 3, None)
            ax.set_xticks(range(len(axis)), axis, rotation=45, ha="right")
            ax.set_xlim(-0.4, len(axis) - 0.6)
            ax.set_title(f"{g}, {arch.upper()}")
            if j == 0:
                ax.set_ylabel("error (log)")
    from matplotlib.lines import Line2D

    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [Line2D([], [], color="black", ls="-", lw=1.0),
                Line2D([], [], color="black", ls="--", lw=0.8),
                Line2D([], [], color=style.NEUTRAL, ls=":", lw=0.6)]  # fmt: skip
    labels += ["invariance", "equivariance", "floor"]
    fig.legend(handles, labels, loc="lower center", ncol=5, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig


EXPERIMENT = Experiment("layers", "Layer by layer: where invariance is made", run, work)
