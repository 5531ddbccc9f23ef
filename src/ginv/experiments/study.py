"""The shared state of a reproduction: data, the run cache, cached measures and ν calibration.

Every training run is stored under ``OUT/runs/<hash of its config>``; finished runs are
reused and interrupted ones resume from their checkpoint, so a killed ``reproduce``
restarted with the same command loses at most the current epoch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ginv.data import DataConfig, TransformingDataset, load_transforming
from ginv.groups import PermutationGroup, get_group
from ginv.measures import SaliencyConfig, measure
from ginv.training import TrainConfig, Trainer, load_run, resolve_device
from ginv.training.checkpoint import atomic_write_json


@dataclass
class Run:
    """A finished training run: its config, folder and ``run.json`` record."""

    config: TrainConfig
    folder: Path
    record: dict[str, Any]

    def model(self, device: torch.device) -> nn.Module:
        return load_run(self.folder, device)[0]


class Study:
    """Data, runs and measures of one reproduction in ``out``."""

    def __init__(
        self,
        config: Any,
        out: Path,
        data_dir: Path | None = None,
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.data_dir = data_dir
        self.device = resolve_device(device)
        self.progress = progress
        self._data: dict[str, TransformingDataset] = {}
        self.status = tqdm(disable=True)  # replaced by reproduce's overall bar

    # --- data ------------------------------------------------------------
    def data(self, name: str | None = None) -> TransformingDataset:
        name = name or self.config.dataset
        if name not in self._data:
            self._data[name] = load_transforming(
                DataConfig(name), self.data_dir, device=self.device
            )
        return self._data[name]

    def saliency(self) -> SaliencyConfig:
        return SaliencyConfig(steps=self.config.ig_steps, rule=self.config.ig_rule)

    # --- runs ------------------------------------------------------------
    def train_config(self, group: str, kind: str, seed: int, reg: str = "none", nu: float = 0.0,
                     epochs: int | None = None) -> TrainConfig:  # fmt: skip
        """The config of a DA (``mlp``), WT or IR (``mlp`` + ``reg``) run."""
        c = self.config
        return TrainConfig(
            dataset=c.dataset, group=group, model="wt" if kind == "WT" else "mlp",
            pool=c.wt_pool, reg=reg if kind == "IR" else "none", nu=nu if kind == "IR" else 0.0,
            epochs=epochs or c.epochs, batch_size=c.batch_size, lr=c.lr, seed=seed,
            n_train=c.n_train, n_val=c.n_val,
        ).validate()  # fmt: skip

    def run_dir(self, config: TrainConfig) -> Path:
        return self.out / "runs" / config.key()

    def runs(self, configs: Sequence[TrainConfig]) -> list[Run]:
        """Finished runs for ``configs``: cached ones reused, the rest trained together where
        they differ only in seed and ν, resuming any interrupted training."""
        missing = [c for c in configs if not (self.run_dir(c) / "run.json").is_file()]
        while missing:
            batch = [c for c in missing if c.batchable_with(missing[0])]
            missing = [c for c in missing if not c.batchable_with(missing[0])]
            key = hashlib.sha256("".join(c.key() for c in batch).encode()).hexdigest()[:12]
            self.status.set_postfix_str(f"training {batch[0].family} ×{len(batch)}")
            trainer = Trainer(
                batch, self.data(), self.out / "runs" / f"_batch-{key}", self.device,
                progress=self.progress, member_dirs=[self.run_dir(c) for c in batch],
            )  # fmt: skip
            trainer.fit(resume=True)
            trainer.checkpoint_path.unlink(missing_ok=True)
            trainer.out_dir.rmdir()
        return [
            Run(c, self.run_dir(c), json.loads((self.run_dir(c) / "run.json").read_text()))
            for c in configs
        ]

    def family(
        self, group: str, kind: str, reg: str | None = None, nu: float | None = None
    ) -> list[Run]:
        """The runs of one model kind over the study's seeds (IR with the calibrated ν)."""
        if kind == "IR":
            reg = reg or self.config.reg
            nu = nu if nu is not None else self.calibrate(group, reg)["chosen_nu"]
        configs = [
            self.train_config(group, kind, s, reg or "none", nu or 0.0) for s in self.config.seeds
        ]
        return self.runs(configs)

    # --- measures --------------------------------------------------------
    def measure_run(self, run: Run, group: PermutationGroup, metrics: Sequence[str],
                    split: str = "test", samples: int = 0, si_samples: int = 0,
                    sensitivity_samples: int = 0) -> dict[str, Any]:  # fmt: skip
        """``measure`` on a run, cached in the run's folder under a hash of the settings."""
        settings = {
            "group": group.name, "metrics": list(metrics), "split": split, "samples": samples,
            "si_samples": si_samples, "sensitivity_samples": sensitivity_samples,
            "saliency": asdict(self.saliency()),
        }  # fmt: skip
        key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        path = run.folder / f"measure-{key}.json"
        if path.is_file():
            return json.loads(path.read_text())
        self.status.set_postfix_str(f"measuring {run.config.name}")
        data_split = getattr(self.data(), split).head(samples or None)
        report = measure(
            run.model(self.device), data_split.images, data_split.labels, group, metrics,
            self.saliency(), si_subset=si_samples or None,
            sensitivity_subset=sensitivity_samples or None,
        )  # fmt: skip
        result = {**report.to_dict(), "settings_key": settings}
        atomic_write_json(result, path)
        return result

    # --- ν calibration ---------------------------------------------------
    def calibrate(self, group_name: str, loss: str) -> dict[str, Any]:
        """The smallest ν on the grid whose validation SI reaches the target (cached)."""
        from ginv.experiments.calibration import calibrate

        return calibrate(self, group_name, loss)

    def group(self, name: str) -> PermutationGroup:
        return get_group(name)
