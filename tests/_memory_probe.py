"""Run by test_measures in a subprocess: the peak resident memory that ``measure`` adds on
256 RGB 128×128 images under D4. Prints ``<MiB of peak RSS growth> <seconds>``."""

import inspect
import resource
import sys
import time

import torch
from torch import nn

import ginv
from ginv.measures import SaliencyConfig

torch.manual_seed(0)
metrics = sys.argv[1].split(",") if len(sys.argv) > 1 else list(ginv.measures.METRICS)
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
    nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
).eval()  # fmt: skip
images, labels = torch.randn(256, 3, 128, 128), torch.randint(10, (256,))
kwargs = {"si_subset": 8, "sensitivity_subset": 8, "saliency": SaliencyConfig(steps=8)}
if "memory_budget_mb" in inspect.signature(ginv.measure).parameters:
    kwargs["memory_budget_mb"] = 256
model(images[:2])  # load the kernels before the baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
ginv.measure(model, images, labels, ginv.D4(), metrics, **kwargs)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{(after - before) / 1024:.0f} {time.perf_counter() - start:.1f}")
