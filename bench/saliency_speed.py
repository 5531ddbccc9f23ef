"""SI speed: ginv's batched integrated gradients against Captum's, in the same run.

Both compute saliency invariance similarity over ``--samples`` test images and the R4
orbit with 50 Gauss–Legendre steps from the zero baseline; Captum's
``IntegratedGradients`` is called batch by batch, and both share the post-processing
(threshold, realignment, filter). The two are called alternately ``--rounds`` times and
the medians kept, as this machine's speed drifts. Prints both times, their ratio, how far
the maps differ (relative to each map's peak: see the comment in ``main``), the SI of each,
and each side's peak memory (resident set growth).

    python bench/saliency_speed.py [--samples 1000] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch
from captum.attr import IntegratedGradients
from common import add_threads_option, bench_data, use_threads

from ginv.groups import R4
from ginv.measures import SaliencyConfig, aligned_orbit_maps, saliency_similarity
from ginv.measures.saliency import DEFAULT_BUDGET_MB, blur, threshold_map
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
    parser.add_argument("--rounds", type=int, default=3, help="timed calls of each, alternated")
    add_threads_option(parser)
    args = parser.parse_args()
    use_threads(args.threads)
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
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; SI over {len(x)} samples "
        f"× |R4| = {4 * len(x)} maps, {config.steps} {config.rule} steps, "
        f"{args.rounds} alternated calls each"
    )
    print(f"ginv memory budget: {DEFAULT_BUDGET_MB} MiB of working memory")
    jobs = {
        "ginv": lambda: aligned_orbit_maps(model, x, y, group, config),
        "Captum": lambda: captum_maps(model, x, y, group, config, args.captum_batch),
    }
    seconds: dict[str, list[float]] = {k: [] for k in jobs}
    peak: dict[str, float] = dict.fromkeys(jobs, 0.0)
    maps: dict[str, torch.Tensor] = {}
    for r in range(args.rounds):  # alternate, and alternate who goes first
        for name in list(jobs)[:: 1 if r % 2 == 0 else -1]:
            maps[name], t, mem = measured(jobs[name])
            seconds[name].append(t)
            peak[name] = max(peak[name], mem)
    ours, ref = maps["ginv"], maps["Captum"]
    si_ours = float(saliency_similarity(ours)[1:].mean())
    si_ref = float(saliency_similarity(ref)[1:].mean())
    out_mb = ours.numel() * ours.element_size() / 2**20
    print(f"peak memory: growth of the resident set, less the {out_mb:.0f} MiB of returned maps")
    t_ours, t_ref = statistics.median(seconds["ginv"]), statistics.median(seconds["Captum"])
    print(f"{'':8}{'median s':>10}{'peak MiB':>10}{'SI':>10}")
    for name, t, si in (("ginv", t_ours, si_ours), ("Captum", t_ref, si_ref)):
        print(f"{name:8}{t:10.2f}{peak[name] - out_mb:10.0f}{si:10.5f}")
    ratios = [c / g for g, c in zip(seconds["ginv"], seconds["Captum"], strict=True)]
    print(f"ratio Captum / ginv: {statistics.median(ratios):.2f}× (median of rounds; target ≥ 1)")
    # Why relative, and why 2e-2: both sides evaluate the same integral in float32 with
    # different batchings, so matmul summation orders differ (they depend on batch size and
    # on the thread count), and a ReLU whose pre-activation is ~0 at some path point can open
    # on one side and stay shut on the other. That node's gradient then jumps, and the
    # attribution moves by a few 1e-3 of the map's peak: with the bench's model, 300 samples
    # and 2 threads, 3.9e-3 of the peak, 7.19e-05 absolute (the failed rerun's figure, which
    # also differs from a float64 evaluation by as much); at 1 thread ≤ 5e-7, as in the run
    # that gave 5.96e-08. An absolute 1e-5 fails whenever a gate flips on a large map; a bug
    # (a wrong realignment, rule or filter) moves maps by O(1) of their peak. Rarer still, a
    # shifted pixel lies that close to the 0.9·max threshold and crosses it, and the filter
    # spreads it: such maps are counted, not failed, while they stay rare (≤ 0.1 %).
    scale = ours.flatten(2).amax(2).clamp_min(1e-30)
    rel = (ours - ref).abs().flatten(2).amax(2) / scale
    off, touched = int((rel > 2e-2).sum()), int((rel > 1e-5).sum())
    print(
        f"max |map difference|: {float((ours - ref).abs().max()):.2e} absolute, "
        f"{float(rel.max()):.2e} of the map's peak (target ≤ 2e-2 but for ≤ 0.1 % of maps: "
        f"{off} of {rel.numel()} over it; {touched} over 1e-5, i.e. touched by a ReLU flip); "
        f"|SI difference| {abs(si_ours - si_ref):.1e} (target ≤ 1e-4)"
    )


if __name__ == "__main__":
    main()
