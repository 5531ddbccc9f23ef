"""DA training speed: a naive PyTorch loop against ginv's trainer, in the same run.

(a) naive: a ``Dataset`` that rotates each sample in ``__getitem__``, a ``DataLoader``,
an ``nn.Sequential`` MLP and Adam; (b) ginv's ``Trainer`` for one seed and for four
seeds trained as one batched model. Same model (233,225 parameters), same batch 512,
same number of steps. Prints epochs per second, ratios and achieved GFLOP/s.

    python bench/train_speed.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from common import bench_data, matmul_gflops, median_time
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ginv.data import Split
from ginv.training import TrainConfig, Trainer


class RotatingDataset(Dataset):
    """The naive way: one random rotation per sample, drawn in ``__getitem__``."""

    def __init__(self, split: Split) -> None:
        self.images, self.labels = split.images, split.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(torch.randint(4, ()))
        return torch.rot90(self.images[i], k, dims=(-2, -1)), self.labels[i]


def naive_mlp() -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(1296, 128), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Linear(128, 128), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 9))


def naive_epochs(split: Split, epochs: int) -> float:
    """Seconds per epoch of the naive loop."""
    torch.manual_seed(0)
    model = naive_mlp()
    opt = torch.optim.Adam(model.parameters(), lr=8e-4)
    loader = DataLoader(RotatingDataset(split), batch_size=512, shuffle=True)

    def epoch() -> None:
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    return median_time(epoch, epochs)


def ginv_epochs(data, seeds: int, epochs: int) -> float:
    """Seconds per training epoch of ginv's trainer (validation excluded)."""
    configs = [TrainConfig(seed=s, epochs=epochs) for s in range(seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(configs, data, tmp, device="cpu", progress=False)
        return median_time(trainer.train_epoch, epochs)


def epoch_flops(n: int) -> float:
    """Matmul FLOPs of one training epoch over ``n`` samples: forward 2·in·out per layer,
    backward 2·in·out for the weight gradient plus 2·in·out for the input gradient, which
    the first layer does not need (its input requires no gradient)."""
    first, rest = 1296 * 128, 4 * 128 * 128 + 128 * 9
    return (4 * first + 6 * rest) * n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per variant")
    args = parser.parse_args()
    data = bench_data()
    n = len(data.train)
    peak = matmul_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n} training samples")
    print(f"dense float32 matmul: {peak:.1f} GFLOP/s")
    naive = naive_epochs(data.train, args.epochs)
    one = ginv_epochs(data, 1, args.epochs)
    four = ginv_epochs(data, 4, args.epochs)
    flops = epoch_flops(n)
    rows = [
        ("naive DataLoader, 1 seed", naive, 1),
        ("ginv, 1 seed", one, 1),
        ("ginv, 4 seeds batched", four, 4),
    ]
    print(f"{'':28}{'s/epoch':>10}{'seed-epochs/s':>15}{'GFLOP/s':>10}{'% matmul':>10}")
    for name, seconds, seeds in rows:
        rate = seeds * flops / seconds / 1e9
        print(
            f"{name:28}{seconds:10.3f}{seeds / seconds:15.2f}{rate:10.1f}{100 * rate / peak:9.0f}%"
        )
    print(f"ratio, 1 seed: ginv is {naive / one:.2f}× the naive loop")
    print(
        f"ratio, 4 seeds: ginv batched is {4 * naive / four:.2f}× four naive runs (target ≥ 2.5×)"
    )


if __name__ == "__main__":
    main()
