"""Experiment 3 (SPEC §6): T-SNE of the penultimate layer of the R4 DA model; each
sample's orbit is joined by lines, points coloured by class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from sklearn.manifold import TSNE

from ginv.errors import GinvError
from ginv.experiments.results import Results

if TYPE_CHECKING:
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


def run(study: Study, folder) -> Results:
    c = study.config
    group_name = "R4" if "R4" in c.groups else c.groups[0]
    group = study.group(group_name)
    results = Results(
        "tsne", f"T-SNE of the DA model's penultimate layer ({group_name})",
        f"{c.tsne_samples} test samples and their orbits (seed {c.seeds[0]}). Lines join the "
        "images of one orbit: a genuinely invariant representation collapses each to a point.",
    )  # fmt: skip
    study.status.set_postfix_str(f"t-sne {group_name} DA")
    model = study.family(group_name, "DA")[0].model(study.device)
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
    fig, ax = plt.subplots(figsize=(6, 5.5))
    cmap = plt.get_cmap("tab10")
    for i in range(n):
        loop = torch.cat([points[:, i], points[:1, i]])
        ax.plot(loop[:, 0], loop[:, 1], color=cmap(int(labels[i])), lw=0.4, alpha=0.5)
    for cls in labels.unique().tolist():
        mask = labels == cls
        ax.scatter(
            points[:, mask, 0].flatten(),
            points[:, mask, 1].flatten(),
            s=6,
            color=cmap(cls),
            label=str(cls),
        )
    ax.legend(title="class", fontsize=7, markerscale=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"T-SNE, DA model, {group_name} orbits joined", fontsize=9)
    results.add_figure(
        folder, "tsne", fig, "Penultimate features of each test image under every group element."
    )
    return results
