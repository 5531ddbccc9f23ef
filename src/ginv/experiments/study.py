"""The shared state of a reproduction: data, the run cache, cached measures and ν calibration.

Every training run is stored under ``OUT/runs/<hash of its config>``; finished runs are
reused and interrupted ones resume from their checkpoint, so a killed ``reproduce``
restarted with the same command loses at most the current epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ginv.data import DataConfig, TransformingDataset, load_transforming
from ginv.experiments.calibration import calibration_path, write_calibration
from ginv.experiments.nu_search import (
    Point,
    SearchSpec,
    search,
)
from ginv.groups import PermutationGroup, get_group
from ginv.io import atomic_write_json, load_json, short_hash, stable_hash
from ginv.measures import SaliencyConfig, measure
from ginv.models import OrbitAverage
from ginv.training import TrainConfig, Trainer, load_run, resolve_device
from ginv.training.trainer import remove_finished_checkpoints

POST_HOC: dict[str, Callable[[nn.Module, PermutationGroup], nn.Module]] = {
    "orbit-average": OrbitAverage,
}
"""Wrappers put around a trained run's model when it is measured (not trained inside them)."""


@dataclass
class Run:
    """A finished training run: its config, folder and ``run.json`` record."""

    config: TrainConfig
    folder: Path
    record: dict[str, Any]

    def model(self, device: torch.device, wrapper: str | None = None) -> nn.Module:
        """The selected model, inside ``wrapper`` (a name of :data:`POST_HOC`) if given."""
        model = load_run(self.folder, device)[0]
        if wrapper is None:
            return model
        return POST_HOC[wrapper](model, get_group(self.config.group)).to(device).eval()


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
        """The config of a DA (``mlp``), WT or IR (``mlp`` + ``reg``) run: :meth:`StudyConfig.run`."""
        return self.config.run(group, kind, seed, reg, nu, epochs)

    def run_dir(self, config: TrainConfig) -> Path:
        return self.out / "runs" / config.key()

    def runs(self, configs: Sequence[TrainConfig]) -> list[Run]:
        """Finished runs for ``configs``: cached ones reused, the rest trained together where
        they differ only in seed and ν, resuming any interrupted training."""
        # each once: two experiments' (or methods') runs may coincide
        missing = [
            c for c in dict.fromkeys(configs) if not (self.run_dir(c) / "run.json").is_file()
        ]
        while missing:
            batch = [c for c in missing if c.batchable_with(missing[0])]
            missing = [c for c in missing if not c.batchable_with(missing[0])]
            key = short_hash("".join(c.key() for c in batch), 12)
            self.status.set_postfix_str(f"training {batch[0].family} ×{len(batch)}")
            trainer = Trainer(
                batch, self.data(), self.out / "runs" / f"_batch-{key}", self.device,
                progress=self.progress, member_dirs=[self.run_dir(c) for c in batch],
            )  # fmt: skip
            trainer.fit(resume=True)
        # batch checkpoints of finished runs, also those that a kill before this line left
        remove_finished_checkpoints((self.out / "runs").glob("_batch-*"), self.run_dir)
        return [Run(c, self.run_dir(c), load_json(self.run_dir(c) / "run.json")) for c in configs]

    def family(
        self, group: str, kind: str, reg: str | None = None, nu: float | None = None
    ) -> list[Run]:
        """The runs of one model kind over the study's seeds (IR with the calibrated ν unless
        ``nu`` is given)."""
        if kind == "IR" and nu is None:
            return self.ir_family(group, reg or self.config.reg)[0]
        configs = [
            self.train_config(group, kind, s, reg or "none", nu or 0.0) for s in self.config.seeds
        ]
        return self.runs(configs)

    def ir_family(self, group: str, loss: str) -> tuple[list[Run], dict[str, Any]]:
        """IR with ``loss`` at its calibrated ν over the study's seeds, and the calibration
        record with every member's validation SI added (``members``)."""
        cal = self.calibrate(group, loss)
        runs = self.family(group, "IR", loss, cal["chosen_nu"])
        target = self.config.si_target
        members = []
        for run in runs:
            p = self.validation_point(run)
            members.append(
                {"seed": run.config.seed, "val_si": p.si, "val_si_se": p.si_se,
                 "val_acc": p.val_acc, "reached": p.si >= target}
            )  # fmt: skip
        if cal.get("members") != members:
            cal = {**cal, "members": members}
            write_calibration(self.out / "calibration", cal)
        return runs, cal

    # --- measures --------------------------------------------------------
    def measure_run(self, run: Run, group: PermutationGroup, metrics: Sequence[str],
                    split: str = "test", samples: int = 0, si_samples: int = 0,
                    sensitivity_samples: int = 0, wrapper: str | None = None) -> dict[str, Any]:  # fmt: skip
        """``measure`` on a run (inside ``wrapper`` if given), cached in the run's folder under a
        hash of the settings."""
        settings = {
            "group": group.name, "metrics": list(metrics), "split": split, "samples": samples,
            "si_samples": si_samples, "sensitivity_samples": sensitivity_samples,
            "saliency": asdict(self.saliency()),
        }  # fmt: skip
        if wrapper is not None:  # added only when set: every earlier key stays valid
            settings["wrapper"] = wrapper
        key = stable_hash(settings, 12)
        path = run.folder / f"measure-{key}.json"
        if path.is_file():
            return load_json(path)
        self.status.set_postfix_str(f"measuring {run.config.name}")
        data_split = getattr(self.data(), split).head(samples or None)
        report = measure(
            run.model(self.device, wrapper), data_split.images, data_split.labels, group, metrics,
            self.saliency(), si_subset=si_samples or None,
            sensitivity_subset=sensitivity_samples or None, progress=self.progress,
        )  # fmt: skip
        result = {**report.to_dict(), "settings_key": settings}
        atomic_write_json(result, path)
        return result

    # --- ν calibration ---------------------------------------------------
    def search_spec(self) -> SearchSpec:
        c = self.config
        return SearchSpec(
            target=c.si_target, resolution=c.nu_resolution, round_size=c.nu_round,
            nu_min=c.nu_min, nu_max=c.nu_max, num_classes=self.data().num_classes,
            min_accuracy_share=c.nu_min_accuracy_share, max_rounds=c.nu_max_rounds,
        )  # fmt: skip

    def validation_point(self, run: Run, wrapper: str | None = None) -> Point:
        """A run's validation SI (± standard error) and accuracy, on the validation orbit."""
        c = self.config
        m = self.measure_run(
            run, self.group(run.config.group), ("accuracy", "si"), split="val",
            samples=c.calibration_val_samples, si_samples=c.calibration_val_samples,
            wrapper=wrapper,
        )  # fmt: skip
        se = m["std_over_samples"]["si"] / math.sqrt(m["subsets"]["si"])
        return Point(run.config.nu, m["metrics"]["si"], se, m["metrics"]["accuracy"],
                     run.config.epochs)  # fmt: skip

    def _points(self, group: str, loss: str, nus: Sequence[float], epochs: int) -> list[Point]:
        """One round: IR runs of the calibration seed at each ν, trained as one batched model."""
        seed = self.config.calibration_seed
        configs = [self.train_config(group, "IR", seed, loss, nu, epochs) for nu in nus]
        return [self.validation_point(run) for run in self.runs(configs)]

    def calibrate(self, group: str, loss: str) -> dict[str, Any]:
        """ν for IR with ``loss`` (SPEC §4): a short pre-search proposes, then runs trained exactly
        as the final models decide. Every run and measure comes from the caches when present,
        so repeating it costs nothing; the record goes to ``calibration/nu-*.json``."""
        c = self.config
        spec = self.search_spec()
        presearch = 0 < c.presearch_epochs < c.epochs
        rounds = {False: 0, True: 0}

        def evaluate(nus: list[float], final: bool) -> list[Point]:
            rounds[final] += 1
            stage = "search" if final else "pre-search"
            self.status.set_postfix_str(f"ν {stage} {group}/{loss} round {rounds[final]}")
            return self._points(group, loss, nus, c.epochs if final else c.presearch_epochs)

        found = search(evaluate, spec, c.nu_grid, presearch)
        decision = found.decision
        reason = decision.reason
        if not found.resolved:
            reason += f"; stopped after {found.rounds} rounds (nu_max_rounds) before the resolution"
        record = {
            "dataset": c.dataset, "group": group, "loss": loss, "chosen_nu": decision.nu,
            "reached": decision.reached, "miss_below": decision.miss_below,
            "resolved": found.resolved, "reason": reason, "rounds": found.rounds,
            "curve": [{**asdict(p), "stage": "presearch"} for p in found.presearch]
            + [{**asdict(p), "stage": "final"} for p in found.points],
            "settings": {
                **asdict(spec), "presearch_epochs": c.presearch_epochs, "epochs": c.epochs,
                "grid": list(c.nu_grid), "seed": c.calibration_seed,
                "val_samples": c.calibration_val_samples, "saliency": asdict(self.saliency()),
            },
        }  # fmt: skip
        path = calibration_path(self.out / "calibration", c.dataset, group, loss)
        previous = load_json(path) if path.is_file() else {}
        if previous.get("members") and all(previous.get(k) == v for k, v in record.items()):
            record["members"] = previous["members"]  # measured for these very settings
        write_calibration(self.out / "calibration", record)
        return record

    def group(self, name: str) -> PermutationGroup:
        return get_group(name)
