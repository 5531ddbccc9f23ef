"""The shared state of a reproduction: data, the run cache, cached measures and ν calibration.

Every training run is stored under ``OUT/runs/<hash of its config>``; finished runs are
reused and interrupted ones resume from their checkpoint, so a killed ``reproduce``
restarted with the same command loses at most the current epoch.

Many writers share the cache: drivers on one ``OUT``, and the SLURM jobs of
:mod:`ginv.cluster`. A run is finished when its ``run.json`` exists (written atomically, after
``model.pt``), whoever wrote it. Training takes a lock per member run
(``OUT/locks/run-<key>.lock``) and re-checks ``run.json`` under it, so nothing is trained
twice; the batch's folder ``_batch-<key>`` is locked too while it is trained in, and is
removed only by a writer holding that lock once every member has its ``run.json``. Each
measure is locked likewise, and re-checked under its lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ginv.cluster.executor import Executor, LocalExecutor, MeasureTask, TrainTask, batch_key
from ginv.cluster.locks import FileLock, locked, try_locked
from ginv.data import DataConfig, TransformingDataset, load_transforming
from ginv.experiments.nu_search import Point, SearchSpec, search, search_grid
from ginv.groups import PermutationGroup, get_group
from ginv.io import atomic_write_json, load_json, stable_hash
from ginv.measures import SaliencyConfig, measure
from ginv.models import OrbitAverage
from ginv.progress import tqdm
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
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.data_dir = data_dir
        self.device_name = device  # as asked: a SLURM job resolves "auto" on its own node
        self.device = resolve_device(device)
        self.progress = progress
        self.executor = executor or LocalExecutor()
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

    def lock_path(self, name: str) -> Path:
        return self.out / "locks" / f"{name}.lock"

    def finished(self, config: TrainConfig) -> bool:
        """Whether ``config``'s run is in the cache: its ``run.json``, the last file written."""
        return (self.run_dir(config) / "run.json").is_file()

    def finished_runs(self, configs: Sequence[TrainConfig]) -> list[Run]:
        return [Run(c, self.run_dir(c), load_json(self.run_dir(c) / "run.json")) for c in configs]

    def training_tasks(self, configs: Sequence[TrainConfig]) -> list[TrainTask]:
        """The batches that ``configs`` still need: the missing runs, those that differ only in
        seed and ν together, in the order given."""
        # each once: two experiments' (or methods') runs may coincide
        missing = [c for c in dict.fromkeys(configs) if not self.finished(c)]
        tasks = []
        while missing:
            batch = [c for c in missing if c.batchable_with(missing[0])]
            missing = [c for c in missing if not c.batchable_with(missing[0])]
            tasks.append(TrainTask(tuple(batch)))
        return tasks

    def runs(self, configs: Sequence[TrainConfig]) -> list[Run]:
        """Finished runs for ``configs``: cached ones reused, the rest trained together where
        they differ only in seed and ν (by the executor: all batches handed over at once, so
        that SLURM runs them side by side), resuming any interrupted training."""
        tasks = self.training_tasks(configs)
        if tasks:
            self.status.set_postfix_str(", ".join(f"training {t.label}" for t in tasks))
            self.executor.run(self, tasks)
        # batch checkpoints of finished runs, also those that a kill before this line left
        self.clean_batches()
        return self.finished_runs(configs)

    def train_batch(self, configs: Sequence[TrainConfig]) -> None:
        """Train the members of ``configs`` that are not finished, as one batched model, under
        their run locks (taken in order; ``run.json`` is re-checked under them, since another
        writer may have finished some) and the lock of the batch's folder."""

        def waiting(path: Path) -> None:
            self.status.set_postfix_str(f"waiting for another writer of {configs[0].family}")

        with locked([self.lock_path(f"run-{c.key()}") for c in configs], waiting):
            todo = [c for c in configs if not self.finished(c)]
            if not todo:
                return
            key = batch_key(todo)
            with FileLock(self.lock_path(f"batch-{key}")):
                self.status.set_postfix_str(f"training {todo[0].family} ×{len(todo)}")
                trainer = Trainer(
                    todo, self.data(), self.out / "runs" / f"_batch-{key}", self.device,
                    progress=self.progress, member_dirs=[self.run_dir(c) for c in todo],
                )  # fmt: skip
                trainer.fit(resume=True)

    def clean_batches(self) -> None:
        """Remove each ``_batch-<key>`` folder whose members all have their ``run.json``,
        taking the folder's lock first: one that another writer trains in (or cleans) is left."""
        for folder in sorted((self.out / "runs").glob("_batch-*")):
            key = folder.name.removeprefix("_batch-")
            with try_locked(self.lock_path(f"batch-{key}")) as held:
                if held and folder.is_dir():
                    remove_finished_checkpoints([folder], self.run_dir)

    def presubmit(self, names: Sequence[str]) -> None:
        """Hand the executor, without waiting, every training that experiments ``names`` need
        whatever ν turns out to be: the WT and DA families and each IR loss's first ν round
        (the pre-search grid). With SLURM they run side by side from the start; locally this
        does nothing."""
        c = self.config
        needs: dict[str, tuple[set[str], set[str]]] = {
            "table": ({"WT", "DA"}, {c.reg}), "saliency": ({"DA", "WT"}, {c.reg}),
            "tsne": ({"DA"}, set()), "drift": ({"DA", "WT"}, {c.reg}),
            "spectral": ({"DA"}, set(c.spectral_losses)),
        }  # fmt: skip
        kinds: set[str] = set()
        losses: set[str] = set()
        for name in names:
            k, lo = needs.get(name, (set(), set()))
            kinds |= k
            losses |= lo
        self.submit_known(c.groups, sorted(kinds), sorted(losses))

    def submit_known(
        self, groups: Sequence[str], kinds: Sequence[str], losses: Sequence[str]
    ) -> None:
        """Submit (see :meth:`presubmit`) the families ``kinds`` (WT, DA) of ``groups`` and
        the first ν round of each IR loss in ``losses``."""
        if not self.executor.submits_jobs:
            return
        c = self.config
        presearch = 0 < c.presearch_epochs < c.epochs
        first = search_grid(self.search_spec(), c.nu_grid) if losses else []
        epochs = c.presearch_epochs if presearch else c.epochs
        configs = []
        for group in groups:
            for kind in kinds:
                configs += [self.train_config(group, kind, s) for s in c.seeds]
            for loss in losses:
                configs += [self.train_config(group, "IR", c.calibration_seed, loss, nu, epochs)
                            for nu in first]  # fmt: skip
        tasks = self.training_tasks(configs)  # the batches that runs() will ask for
        self.executor.submit(self, tasks)

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
            from ginv.experiments.calibration import write_calibration

            write_calibration(self.out / "calibration", cal)
        return runs, cal

    # --- measures --------------------------------------------------------
    def _measure_settings(self, group: PermutationGroup, metrics: Sequence[str], split: str,
                          samples: int, si_samples: int, sensitivity_samples: int,
                          wrapper: str | None = None) -> dict[str, Any]:  # fmt: skip
        settings = {
            "group": group.name, "metrics": list(metrics), "split": split, "samples": samples,
            "si_samples": si_samples, "sensitivity_samples": sensitivity_samples,
            "saliency": asdict(self.saliency()),
        }  # fmt: skip
        if wrapper is not None:  # added only when set: every earlier key stays valid
            settings["wrapper"] = wrapper
        return settings

    def measure_path(self, config: TrainConfig, group: PermutationGroup, metrics: Sequence[str],
                     split: str = "test", samples: int = 0, si_samples: int = 0,
                     sensitivity_samples: int = 0, wrapper: str | None = None) -> Path:  # fmt: skip
        """Where :meth:`measure_run` caches these settings' measures of ``config``'s run."""
        settings = self._measure_settings(group, metrics, split, samples, si_samples,
                                          sensitivity_samples, wrapper)  # fmt: skip
        return self.run_dir(config) / f"measure-{stable_hash(settings, 12)}.json"

    def measure_run(self, run: Run, group: PermutationGroup, metrics: Sequence[str],
                    split: str = "test", samples: int = 0, si_samples: int = 0,
                    sensitivity_samples: int = 0, wrapper: str | None = None) -> dict[str, Any]:  # fmt: skip
        """``measure`` on a run (inside ``wrapper``, a :data:`POST_HOC` name, if given), cached
        in the run's folder under a hash of the settings (and computed under a lock, so that
        two writers never measure the same thing twice)."""
        settings = self._measure_settings(group, metrics, split, samples, si_samples,
                                          sensitivity_samples, wrapper)  # fmt: skip
        key = stable_hash(settings, 12)
        path = run.folder / f"measure-{key}.json"
        if path.is_file():
            return load_json(path)
        with FileLock(self.lock_path(f"measure-{run.config.key()}-{key}")):
            if path.is_file():  # measured by another writer while this one waited
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

    def _measure_task(self, runs: Sequence[Run], group: PermutationGroup,
                      metrics: Sequence[str], **kwargs: Any) -> MeasureTask:  # fmt: skip
        return MeasureTask(tuple(r.config for r in runs), group.name, tuple(metrics), **kwargs)

    def submit_measures(self, runs: Sequence[Run], group: PermutationGroup,
                        metrics: Sequence[str], **kwargs: Any) -> None:  # fmt: skip
        """Start the job that :meth:`measure_runs` will wait for, where the executor measures
        in jobs; otherwise nothing (the driver measures when asked)."""
        if self.executor.measures_as_jobs and runs:
            self.executor.submit(self, [self._measure_task(runs, group, metrics, **kwargs)])

    def measure_runs(self, runs: Sequence[Run], group: PermutationGroup, metrics: Sequence[str],
                     split: str = "test", samples: int = 0, si_samples: int = 0,
                     sensitivity_samples: int = 0,
                     wrapper: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """:meth:`measure_run` on each of a family's ``runs``; where the executor measures in
        jobs (SLURM), the missing measures are first made by one job for the family."""
        kwargs: dict[str, Any] = {"split": split, "samples": samples, "si_samples": si_samples,
                                  "sensitivity_samples": sensitivity_samples,
                                  "wrapper": wrapper}  # fmt: skip
        if self.executor.measures_as_jobs and runs:
            task = self._measure_task(runs, group, metrics, **kwargs)
            if not task.done(self):
                self.status.set_postfix_str(task.label)
                self.executor.run(self, [task])
        return [self.measure_run(r, group, metrics, **kwargs) for r in runs]

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
        # imported here: matplotlib costs a SLURM job a second, and jobs never write records
        from ginv.experiments.calibration import calibration_path, write_calibration

        path = calibration_path(self.out / "calibration", c.dataset, group, loss)
        previous = load_json(path) if path.is_file() else {}
        if previous.get("members") and all(previous.get(k) == v for k, v in record.items()):
            record["members"] = previous["members"]  # measured for these very settings
        write_calibration(self.out / "calibration", record)
        return record

    def group(self, name: str) -> PermutationGroup:
        return get_group(name)
