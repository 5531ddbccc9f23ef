"""SI speed: ginv's batched integrated gradients against Captum's, in the same run.

Both compute saliency invariance similarity over ``--samples`` test images and the R4
orbit with 50 Gauss–Legendre steps from the zero baseline; Captum's
``IntegratedGradients`` is called batch by batch, and both share the post-processing
(threshold, realignment, filter). Prints both times, their ratio, the largest difference
between the maps, and each side's peak memory (resident set growth).

    python bench/saliency_speed.py [--samples 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
from captum.attr import IntegratedGradients
from common import bench_data

from ginv.groups import R4
from ginv.measures import SaliencyConfig, aligned_orbit_maps, saliency_similarity
from ginv.measures.saliency import blur, threshold_map
from ginv.training import TrainConfig, Trainer


def rss_mb(field: str) -> float:
    """A memory field of /proc/self/status in MiB: VmRSS (now) or VmHWM (peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measured(fn):
    reset_peak()
    before = rss_mb("VmRSS")
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start, rss_mb("VmHWM") - before


def captum_maps(model, images, labels, group, config, batch: int) -> torch.Tensor:
    """The same aligned maps, with Captum computing the attributions batch by batch."""
    ig = IntegratedGradients(model)
    out = []
    for i in range(0, len(images), batch):
        x, y = images[i : i + batch], labels[i : i + batch]
        orbit = group.orbit(x)
        attributions = ig.attribute(
            orbit,
            baselines=0.0,
            target=y.repeat(len(group)),
            n_steps=config.steps,
            method=config.rule,
        )
        elements = torch.arange(len(group)).repeat_interleave(len(x))
        realigned = group.act_inverse(elements, threshold_map(attributions, config.threshold))
        maps = blur(realigned, config.blur_size, config.blur_sigma)
        out.append(maps.view(len(group), len(x), *x.shape[1:]))
    return torch.cat(out, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--captum-batch", type=int, default=64, help="samples per Captum call")
    args = parser.parse_args()
    data = bench_data()
    group, config = R4(), SaliencyConfig()
    with tempfile.TemporaryDirectory() as tmp:  # a DA model trained for 3 epochs
        trainer = Trainer([TrainConfig(epochs=3)], data, tmp, device="cpu", progress=False)
        trainer.fit()
        model = trainer.template
        model.load_state_dict(trainer.members[0].best_state)
    model.eval()
    x, y = data.test.images[: args.samples], data.test.labels[: args.samples]
    print(
        f"SI over {len(x)} samples × |R4| = {4 * len(x)} maps, {config.steps} {config.rule} steps"
    )
    print(f"ginv memory budget: {config.memory_budget_mb} MiB of working memory")
    ours, t_ours, mem_ours = measured(lambda: aligned_orbit_maps(model, x, y, group, config))
    ref, t_ref, mem_ref = measured(
        lambda: captum_maps(model, x, y, group, config, args.captum_batch)
    )
    si_ours = float(saliency_similarity(ours)[1:].mean())
    si_ref = float(saliency_similarity(ref)[1:].mean())
    out_mb = ours.numel() * ours.element_size() / 2**20
    print(f"peak memory: growth of the resident set, less the {out_mb:.0f} MiB of returned maps")
    mem_ours, mem_ref = mem_ours - out_mb, mem_ref - out_mb
    print(f"{'':8}{'seconds':>10}{'peak MiB':>10}{'SI':>10}")
    print(f"{'ginv':8}{t_ours:10.2f}{mem_ours:10.0f}{si_ours:10.5f}")
    print(f"{'Captum':8}{t_ref:10.2f}{mem_ref:10.0f}{si_ref:10.5f}")
    print(f"ratio Captum / ginv: {t_ref / t_ours:.2f}× (target ≥ 1)")
    print(f"max |map difference|: {float((ours - ref).abs().max()):.2e} (target ≤ 1e-5)")


if __name__ == "__main__":
    main()
