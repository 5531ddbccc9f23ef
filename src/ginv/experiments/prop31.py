"""Experiment 6: Proposition 3.1 — for a linear network ``h(x) = Wx`` under the
gradient flow of the logit invariance error, ``W(t) = W(0)·exp(−Σt)`` with ``Σ = Σᵢ εᵢεᵢᵀ``,
``εᵢ = xᵢ − G xᵢ``, and ``σmax(W(t))`` never increases. Both are checked numerically on
gradient descent: its iterates against the closed form, and σmax along its iterates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ginv.experiments import style
from ginv.experiments.experiment import Experiment
from ginv.experiments.results import Results, fmt

if TYPE_CHECKING:
    from pathlib import Path

    from ginv.experiments.study import Study


SIGMA = "Σ = Σᵢ εᵢεᵢᵀ, εᵢ = xᵢ − G·xᵢ (G a pixel permutation)"
"""What Σ is, for the figure and its caption."""


def closed_form(w0: Tensor, sigma: Tensor, t: float) -> Tensor:
    """``W(t) = W(0)·exp(−Σt)``."""
    return w0 @ torch.linalg.matrix_exp(-sigma * t)


def gradient_descent(w0: Tensor, sigma: Tensor, step: float, steps: int) -> list[Tensor]:
    """``W ← W − η·WΣ``: gradient descent on ``½Σᵢ‖Wεᵢ‖²``; all iterates."""
    path = [w0]
    for _ in range(steps):
        path.append(path[-1] - step * path[-1] @ sigma)
    return path


def check(
    dim: int, outputs: int, samples: int, time: float, step: float, seed: int = 0
) -> dict[str, Any]:
    """Closed form against gradient descent, and ``σmax`` non-increasing along the
    gradient-descent iterates, for ``samples`` data points and a random pixel permutation
    ``G`` (one sample is ``Σ = εεᵀ``). ``σmax(W_{k+1}) ≤ ‖I − ηΣ‖·σmax(W_k)`` holds for
    ``η ≤ 2/‖Σ‖`` only, so this can fail, unlike ``σmax`` of the closed form."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, dim, generator=gen, dtype=torch.float64)
    perm = torch.randperm(dim, generator=gen)
    eps = x - x[:, perm]
    sigma = eps.T @ eps
    scale = float(torch.linalg.matrix_norm(sigma, ord=2))
    sigma = sigma / scale  # time in units of 1/‖Σ‖, so one setting fits every dataset
    w0 = torch.randn(outputs, dim, generator=gen, dtype=torch.float64)
    steps = round(time / step)
    path = gradient_descent(w0, sigma, step, steps)
    path_sigma_max = torch.linalg.matrix_norm(torch.stack(path), ord=2)  # every iterate
    increases = path_sigma_max.diff()
    every = max(1, steps // 100)
    times, gd_error = [], []
    for k in range(0, steps + 1, every):
        exact = closed_form(w0, sigma, k * step)
        times.append(k * step)
        gd_error.append(float((path[k] - exact).norm() / exact.norm().clamp_min(1e-300)))
    return {
        "samples": samples, "dim": dim, "outputs": outputs, "sigma_scale": scale,
        "times": times, "gd_relative_error": gd_error,
        "sigma_max": path_sigma_max[::every].tolist(),
        "max_gd_error": max(gd_error), "largest_sigma_increase": max(0.0, float(increases.max())),
    }  # fmt: skip


def run(study: Study, folder: Path) -> Results:
    """Proposition 3.1 checked numerically: gradient descent on the logit invariance of a
    linear network against the closed-form flow, and σmax along the path."""
    c = study.config
    results = Results(
        "prop31", "Proposition 3.1: the logit-invariance flow of a linear network",
        f"h(x) = Wx, W of size {c.prop31_outputs}×{c.prop31_dim}; {SIGMA}, normalised to "
        f"‖Σ‖ = 1; "
        f"gradient descent with step {c.prop31_step:g} to t = {c.prop31_time:g}.",
    )  # fmt: skip
    tolerance = 10 * c.prop31_step  # Euler's global error is O(η)
    cases = {
        "one sample": check(c.prop31_dim, c.prop31_outputs, 1, c.prop31_time, c.prop31_step),
        f"{c.prop31_samples} samples": check(
            c.prop31_dim, c.prop31_outputs, c.prop31_samples, c.prop31_time, c.prop31_step, seed=1
        ),
    }
    rows = []
    passed = True
    for name, r in cases.items():
        ok = r["max_gd_error"] <= tolerance and r["largest_sigma_increase"] <= 1e-12
        passed &= ok
        rows.append([name, fmt(r["max_gd_error"]), fmt(r["largest_sigma_increase"]),
                     f"{fmt(r['sigma_max'][0])} → {fmt(r['sigma_max'][-1])}",
                     "pass" if ok else "FAIL"])  # fmt: skip
    results.passed = passed
    results.data = cases
    results.add_table(folder, "prop31", f"Closed form vs gradient descent (tolerance {fmt(tolerance)}) and monotone σmax along gradient descent",
                      ["case", "max relative error", "largest σmax increase", "σmax(W(0)) → σmax(W(T))", "check"], rows,
                      tidy=(["case", "samples", "max_relative_error", "tolerance", "largest_sigma_max_increase",
                             "sigma_max_start", "sigma_max_end", "passed"],
                            [[name, r["samples"], r["max_gd_error"], tolerance, r["largest_sigma_increase"],
                              r["sigma_max"][0], r["sigma_max"][-1], row[-1] == "pass"]
                             for (name, r), row in zip(cases.items(), rows, strict=True)]))  # fmt: skip
    results.notes.append(
        "Largest violation of σmax(Wₖ₊₁) ≤ σmax(Wₖ) along gradient descent: "
        + ", ".join(f"{n}: {fmt(r['largest_sigma_increase'])}" for n, r in cases.items())
    )
    fig = _plot(cases)
    results.add_figure(
        folder,
        "prop31",
        fig,
        f"σmax along gradient descent (left) and gradient descent's distance to the closed form "
        f"(right). {SIGMA}; time in units of 1/‖Σ‖.",
    )
    return results


@style.styled
def _plot(cases: dict[str, dict[str, Any]]):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(style.PAGE, 2.2))
    for (name, r), ls in zip(cases.items(), ("-", "--", "-.", ":"), strict=False):
        axes[0].plot(r["times"], r["sigma_max"], color="black", ls=ls, label=name)
        axes[1].semilogy(r["times"][1:], r["gd_relative_error"][1:], color="black", ls=ls,
                         label=name)  # fmt: skip
    axes[0].set_ylabel("σmax(W$_k$)")
    axes[0].set_title("σmax along gradient descent")
    axes[1].set_ylabel("relative error (log)")
    axes[1].yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes[1].yaxis.set_major_formatter(
        LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(9, 9))
    )
    axes[1].yaxis.set_minor_formatter(NullFormatter())
    axes[1].set_title("gradient descent vs W(0)·exp(−Σt)")
    for ax in axes:
        ax.set_xlabel("t (units of 1/‖Σ‖)")
        ax.legend()
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.text(0.5, 0.01, SIGMA, ha="center", va="bottom", fontsize=7, color=style.NEUTRAL)
    return fig


EXPERIMENT = Experiment(
    "prop31", "Proposition 3.1: the logit-invariance flow of a linear network", run
)
