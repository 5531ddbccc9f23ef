"""Experiment 2: saliency maps over the orbit, realigned to a common orientation,
DA beside IR and WT. Rows are samples; each block's columns are the group elements."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.results import Results
from ginv.experiments.spec import Measure, Request, Sizes
from ginv.experiments.table import family_requests
from ginv.measures import aligned_orbit_maps, saliency_similarity

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.colors import ListedColormap

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study

KINDS = (Kind.DA, Kind.IR, Kind.WT)


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """DA, IR and WT, and the saliency maps of the first test images' orbits."""
    requests: list[Request] = []
    for kind in KINDS:
        requests += family_requests(c, group, kind, c.reg)
    requests.append(Measure("saliency maps", "wt", 3, 0, c.saliency_grid_samples))
    return requests


def run(study: Study, folder: Path) -> Results:
    """The realigned saliency maps across the orbit of the first test images, for DA, IR
    and WT, with each image's saliency similarity."""
    c = study.config
    results = Results(
        "saliency", "Saliency maps across the orbit",
        "Integrated-gradients saliency m(g·x), realigned by g⁻¹, for the first test samples "
        f"(seed {c.seeds[0]}). A genuinely invariant model shows the same map in every column.",
    )  # fmt: skip
    rows = []
    split = study.data().test.head(c.saliency_grid_samples)
    for group_name in c.groups:
        group = study.group(group_name)
        maps, sims = {}, {}
        for kind in KINDS:
            study.say(f"saliency {group_name} {kind}")
            model = study.family(group_name, kind)[0].model(study.device)
            maps[kind] = aligned_orbit_maps(model, split.images, split.labels, group, c.saliency)
            sims[kind] = saliency_similarity(maps[kind])
            for i in range(len(split)):
                rows.append(
                    [
                        group_name,
                        kind,
                        i,
                        int(split.labels[i]),
                        round(float(sims[kind][1:, i].mean()), 4),
                    ]
                )
        fig = _grid(split.images.cpu(), maps, sims, group_name, group.element_names)
        results.add_figure(
            folder,
            f"saliency-{group_name}",
            fig,
            f"{group_name}: each sample's input, then per model (DA, IR, WT) the realigned map "
            "g⁻¹ m(g·x) for each g (framed: g = id, the map m(x) itself) over the grey digit, "
            "each map scaled to its own maximum; beneath each block the row's SI, the mean "
            "cosine similarity of m(x) with the other maps.",
        )
    results.add_table(
        folder,
        "saliency",
        "Per-sample SI of the shown maps",
        ["group", "model", "sample", "label", "SI"],
        rows,
    )
    return results


def _heat_cmap() -> ListedColormap:
    """Dark red with opacity rising with the value: low saliency leaves the digit visible
    (Captum's ``blended_heat_map`` idea); over white the colourbar shows what the maps show."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colors = plt.get_cmap("Reds")(np.linspace(0.5, 1.0, 256))
    colors[:, 3] = np.linspace(0.0, 1.0, 256) ** 0.7
    return ListedColormap(colors, name="saliency")


def _unit(x) -> np.ndarray:
    """``x`` scaled to [0, 1] by its own range (all-zero stays zero)."""
    a = np.asarray(x, dtype=float)
    a = a - a.min()
    return a / a.max() if a.max() > 0 else a


@style.styled
def _grid(images, maps, sims, group_name: str, names: list[str]):
    """Rows are samples; the input, then one block per model (DA, IR, WT) with a column per
    group element ``g``: ``g⁻¹ m(g·x)`` over the grey digit, each map scaled to its maximum.
    The identity column is framed; each block's mean SI of the row is written beneath it."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    n, order = images.shape[0], len(names)
    gap, bar = 0.35, 0.22
    ratios = [1.0, *([gap] + [1.0] * order) * len(KINDS), gap / 2, bar]
    cell = style.PAGE / sum(ratios)
    fig = plt.figure(figsize=(style.PAGE, n * cell * 1.28 + 0.45))
    grid = fig.add_gridspec(n, len(ratios), width_ratios=ratios, wspace=0.06, hspace=0.28,
                            left=0.01, right=0.93, top=1 - 0.4 / fig.get_figheight(),
                            bottom=0.2 / fig.get_figheight())  # fmt: skip
    cmap = _heat_cmap()
    for i in range(n):
        digit = _unit(images[i, 0])
        ax = fig.add_subplot(grid[i, 0])
        ax.imshow(digit, cmap="gray")
        ax.set_axis_off()
        if i == 0:
            ax.set_title(f"{group_name} input", pad=3, fontsize=7)
        for b, kind in enumerate(KINDS):
            first = 2 + b * (order + 1)
            cells = []
            for g in range(order):
                ax = fig.add_subplot(grid[i, first + g])
                cells.append(ax)
                ax.imshow(digit, cmap="Greys", vmin=0, vmax=2.2)  # a light grey digit on white
                ax.imshow(_unit(maps[kind][g, i, 0].cpu()), cmap=cmap, vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(g == 0)  # the identity column (g = id) is framed
                    spine.set_linewidth(1.0)
                if i == 0:
                    ax.set_title(names[g], pad=3, fontsize=7,
                                 fontweight="bold" if g == 0 else "normal")  # fmt: skip
            left, right = cells[0].get_position(), cells[-1].get_position()
            x_mid = (left.x0 + right.x1) / 2
            if i == 0:
                fig.text(x_mid, left.y1 + 0.22 / fig.get_figheight(), kind, ha="center",
                         va="bottom", fontsize=8, fontweight="bold", color=style.color(kind))  # fmt: skip
            fig.text(x_mid, left.y0 - 0.02 / fig.get_figheight(),
                     f"SI = {float(sims[kind][1:, i].mean()):.2f}", ha="center", va="top",
                     fontsize=7)  # fmt: skip
    cax = fig.add_subplot(grid[:, -1])
    cbar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), cax=cax)
    cbar.set_label("saliency ÷ map's max", fontsize=7)
    cbar.outline.set_linewidth(0.4)
    return fig


EXPERIMENT = Experiment("saliency", "Saliency maps across the orbit", run, work)
