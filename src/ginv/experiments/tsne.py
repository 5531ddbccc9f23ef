"""Experiment 3: T-SNE of the penultimate layer of the R4 DA model; each
point is one image of a sample's orbit, coloured by class; a few orbits are drawn as stars
from their centre."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ginv.errors import GinvError
from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.results import Results
from ginv.experiments.spec import Measure, Request, Sizes
from ginv.experiments.table import family_requests

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.config import StudyConfig
    from ginv.experiments.study import Study


def penultimate_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model.features(x)`` flattened to ``(B, D)``: any model that exposes ``features``
    (every ginv architecture); one :class:`GinvError` line for a model that does not."""
    features = getattr(model, "features", None)
    if not callable(features):
        raise GinvError(
            f"T-SNE reads a model's penultimate layer, and {type(model).__name__} has no "
            "features() method"
        )
    return features(x).flatten(1)


def shown_group(c: StudyConfig) -> str:
    """The group whose orbits the figure shows: R4 where the study has it."""
    return "R4" if "R4" in c.groups else c.groups[0]


def work(c: StudyConfig, group: str, sizes: Sizes) -> list[Request]:
    """The DA family of the shown group, and its penultimate features on the orbits."""
    if group != shown_group(c):
        return []
    return [*family_requests(c, group, Kind.DA, c.reg),
            Measure("tsne maps", "wt", 1, c.tsne_samples, 0)]  # fmt: skip


def run(study: Study, folder: Path) -> Results:
    """A t-SNE of the DA model's penultimate features of test images and their orbits."""
    from sklearn.manifold import TSNE

    c = study.config
    group_name = shown_group(c)
    group = study.group(group_name)
    results = Results(
        "tsne", f"T-SNE of the DA model's penultimate layer ({group_name})",
        f"{c.tsne_samples} test samples and their orbits (seed {c.seeds[0]}). For a few "
        "samples lines join each image of the orbit to its centre: a genuinely invariant "
        "representation collapses each orbit to a point.",
    )  # fmt: skip
    study.say(f"t-sne {group_name} DA")
    model = study.family(group_name, Kind.DA)[0].model(study.device)
    split = study.data().test.head(c.tsne_samples)
    with torch.no_grad():
        features = penultimate_features(model, group.orbit(split.images)).cpu().double()
    n, order = len(split), len(group)
    perplexity = float(min(30, max(5, (n * order - 1) // 4)))
    embedding = TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(
        features.numpy()
    )
    points = torch.from_numpy(embedding).view(order, n, 2)
    labels = split.labels.cpu()
    spread = (points - points.mean(0)).norm(dim=-1).mean().item()
    scale = points.reshape(-1, 2).std(0).norm().item()
    results.data = {"orbit_spread_over_embedding_scale": spread / scale, "perplexity": perplexity}
    results.notes.append(
        f"Mean distance of an orbit's points to their centre: {spread / scale:.3f} of the embedding's scale."
    )
    rows = [
        [g, i, int(labels[i]), float(points[g, i, 0]), float(points[g, i, 1])]
        for g in range(order)
        for i in range(n)
    ]
    results.add_csv(folder, "tsne", ["element", "sample", "label", "x", "y"], rows)
    fig = _plot(points, labels, group_name)
    results.add_figure(
        folder,
        "tsne",
        fig,
        f"Penultimate features of each test image under every group element, coloured by "
        f"class; for {min(HIGHLIGHT, n)} samples (one per class, marked ×) lines join each "
        "image of the orbit to the orbit's centre.",
    )
    return results


HIGHLIGHT = 5
"""Orbits drawn as stars to their centre: the first sample of each of the first classes."""


@style.styled
def _plot(points: torch.Tensor, labels: torch.Tensor, group_name: str):
    """``points`` ``(|G|, N, 2)``: every orbit image as a small class-coloured dot; a handful
    of orbits (one per class, the first samples) as black stars from their centre, so that
    an orbit's spread reads against the class clusters without a tangle of lines."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(style.COLUMN, 3.4))
    cmap = plt.get_cmap("tab10")
    for cls in labels.unique().tolist():
        mask = labels == cls
        ax.scatter(points[:, mask, 0].flatten(), points[:, mask, 1].flatten(), s=4,
                   color=cmap(cls % 10), alpha=0.55, linewidths=0, label=str(cls))  # fmt: skip
    chosen: list[int] = []
    for i, cls in enumerate(labels.tolist()):
        if len(chosen) < HIGHLIGHT and cls not in [labels[j] for j in chosen]:
            chosen.append(i)
    for i in chosen:
        centre = points[:, i].mean(0)
        for g in range(points.shape[0]):
            ax.plot([centre[0], points[g, i, 0]], [centre[1], points[g, i, 1]], color="black",
                    lw=0.6, zorder=3)  # fmt: skip
        ax.scatter(points[:, i, 0], points[:, i, 1], s=10, color=cmap(int(labels[i]) % 10),
                   edgecolors="black", linewidths=0.5, zorder=4)  # fmt: skip
        ax.scatter([centre[0]], [centre[1]], marker="x", s=16, color="black", linewidths=0.8,
                   zorder=5)  # fmt: skip
    handles, names = ax.get_legend_handles_labels()
    star = Line2D([], [], color="black", lw=0.6, marker="x", ms=3, mew=0.8)
    legend = ax.legend([*handles, star], [*names, "orbit → centre"], title="class",
                       loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=6,
                       markerscale=1.6, handlelength=1.0, handletextpad=0.3,
                       columnspacing=0.8)  # fmt: skip
    for handle in legend.legend_handles[:-1]:
        if handle is not None:
            handle.set_alpha(1.0)
    ax.set_axis_off()  # t-SNE's axes have no units
    ax.set_title(f"DA model, penultimate layer, {group_name} orbits")
    fig.tight_layout()
    return fig


EXPERIMENT = Experiment("tsne", "T-SNE of the DA model's penultimate layer", run, work)
