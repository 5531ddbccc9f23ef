"""Experiment 2 (SPEC §6): saliency maps over the orbit, realigned to a common orientation,
DA beside IR and WT. Rows are samples; each block's columns are the group elements."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from ginv.experiments.results import Results
from ginv.measures import aligned_orbit_maps, saliency_similarity

if TYPE_CHECKING:
    from ginv.experiments.study import Study

KINDS = ("DA", "IR", "WT")


def run(study: Study, folder) -> Results:
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
            study.status.set_postfix_str(f"saliency {group_name} {kind}")
            model = study.family(group_name, kind)[0].model(study.device)
            maps[kind] = aligned_orbit_maps(
                model, split.images, split.labels, group, study.saliency()
            )
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
        fig = _grid(split.images.cpu(), maps, sims, group_name, len(group))
        results.add_figure(
            folder,
            f"saliency-{group_name}",
            fig,
            f"{group_name}: input, then g⁻¹ m(g·x) for each g, per model; SI per row in the block title.",
        )
    results.add_table(
        folder,
        "saliency",
        "Per-sample SI of the shown maps",
        ["group", "model", "sample", "label", "SI"],
        rows,
    )
    return results


def _grid(images, maps, sims, group_name: str, order: int):
    n = images.shape[0]
    cols = 1 + len(KINDS) * order
    fig, axes = plt.subplots(n, cols, figsize=(0.9 * cols, 0.95 * n + 0.4), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i, 0], cmap="gray")
        for b, kind in enumerate(KINDS):
            for g in range(order):
                ax = axes[i, 1 + b * order + g]
                ax.imshow(maps[kind][g, i, 0].cpu(), cmap="inferno")
                if g == 0:
                    ax.set_title(
                        f"{kind} SI={float(sims[kind][1:, i].mean()):.2f}", fontsize=6, loc="left"
                    )
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"{group_name}: realigned saliency maps, columns g = 0…{order - 1} per model", fontsize=8
    )
    fig.tight_layout()
    return fig
