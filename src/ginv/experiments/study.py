"""The state of one reproduction on top of the run cache: the study's families, their
measures, where the work runs, and the calibration of ν.

Runs and measures live in the :class:`ginv.runs.RunCache` under ``OUT`` (its description
says how many writers share it); the :class:`ginv.cluster.Executor` decides where the tasks
that fill it run. :class:`Study` only knows what the study asks for: the WT, DA and IR
families of a group over the seeds, IR at its calibrated ν, and measures with the study's
saliency and memory settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ginv.cluster.executor import Executor, LocalExecutor
from ginv.data import TransformingDataset
from ginv.experiments.config import StudyConfig
from ginv.experiments.kinds import Kind
from ginv.experiments.nu_search import (
    READING,
    Point,
    SearchResult,
    SearchSpec,
    deciding_seeds,
    reached,
    search,
    search_grid,
)
from ginv.experiments.spec import CalibratedIR, Request, Sizes, Train, Work
from ginv.groups import Group, get_group
from ginv.progress import tqdm
from ginv.records import read_cache
from ginv.runs import MeasureSettings, MeasureTask, Run, RunCache, training_tasks
from ginv.training import TrainConfig

__all__ = ["Run", "Study"]


class Study:
    """Data, runs and measures of one reproduction in ``out``, under ``config``."""

    def __init__(
        self,
        config: StudyConfig,
        out: Path,
        data_dir: Path | None = None,
        device: str | None = None,
        progress: bool = True,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out)
        self.cache = RunCache(self.out, data_dir, device, progress)
        self.cache.status = self.say
        self.device = self.cache.device
        self.progress = progress
        self.executor = executor or LocalExecutor()
        self.status = tqdm(disable=True)  # replaced by reproduce's overall bar
        # ν searches started by presubmit, side by side, on an executor that allows it
        self._ahead: dict[tuple[str, str], Future[SearchResult]] = {}
        # each IR family once per study: the experiments of `reproduce all` share them
        self._families: dict[tuple[str, str], tuple[list[Run], dict[str, Any]]] = {}

    def say(self, text: str) -> None:
        """Show what the study is doing on its progress bar."""
        self.status.set_postfix_str(text)

    # --- data and groups ---------------------------------------------------
    def data(self, name: str | None = None) -> TransformingDataset:
        """Dataset ``name`` (the study's own by default), loaded once."""
        return self.cache.data(name or self.config.dataset)

    def group(self, name: str) -> Group:
        """The group named ``name`` (one object per name, from :func:`get_group`)."""
        return get_group(name)

    def sizes(self) -> Sizes:
        """How many test and validation images the study's measures use."""
        c = self.config
        data = self.data()
        return Sizes(c.test_samples or len(data.test), min(c.train.n_val, len(data.val)))

    # --- runs ------------------------------------------------------------
    def runs(self, configs: Sequence[TrainConfig]) -> list[Run]:
        """Finished runs for ``configs``: cached ones reused, the rest trained together where
        they differ only in seed and ν (by the executor: all batches handed over at once, so
        that SLURM runs them side by side), resuming any interrupted training."""
        tasks = training_tasks(self.cache, configs)
        if tasks:
            self.say(", ".join(f"training {t.label}" for t in tasks))
            self.executor.run(self.cache, tasks)
        # batch checkpoints of finished runs, also those that a kill before this line left
        self.cache.clean_batches()
        return self.cache.finished_runs(configs)

    def presubmit(self, works: Sequence[Work]) -> None:
        """Hand the executor, without waiting, every training that the experiments' ``works``
        (each an :attr:`~ginv.experiments.experiment.Experiment.work`) declare
        whatever ν turns out to be (see :meth:`submit_requests`)."""
        sizes = self.sizes() if self.executor.submits_jobs else None
        searches: list[tuple[str, str]] = []
        for group in self.config.groups:
            if sizes is not None:
                requests = [r for work in works for r in work(self.config, group, sizes)]
                self.submit_requests(group, requests)
                searches += [(group, r.loss) for r in requests if isinstance(r, CalibratedIR)]
        self.search_ahead(list(dict.fromkeys(searches)))

    def search_ahead(self, searches: Sequence[tuple[str, str]]) -> None:
        """Start the ν searches of ``searches`` (group, loss) side by side in driver threads,
        where the executor allows several waiting threads (:attr:`Executor.concurrent`) and
        there is more than one: their rounds are sequential, but two searches are
        independent, so one group's rounds need not wait for another's. :meth:`calibrate`
        takes its own search's result when it ends (or raises its error)."""
        if not self.executor.concurrent or len(searches) < 2:
            return
        threads = ThreadPoolExecutor(len(searches), thread_name_prefix="nu-search")
        for group, loss in searches:
            self._ahead[group, loss] = threads.submit(self._search, group, loss)
        threads.shutdown(wait=False)  # each thread ends with its search

    def submit_requests(self, group: str, requests: Sequence[Request]) -> None:
        """Submit the runs that ``requests`` make known before any result: those of each
        :class:`Train` and the first ν round of each :class:`CalibratedIR`. With SLURM they run
        side by side from the start; locally this does nothing."""
        if not self.executor.submits_jobs:
            return
        c = self.config
        presearch = 0 < c.presearch_epochs < c.epochs
        epochs = c.presearch_epochs if presearch else c.epochs
        # the seeds of the first round, in the order calibrate() trains them
        seeds = (
            [c.calibration_seed] if presearch
            else deciding_seeds(c.calibration_seed, c.seeds, c.nu_seeds)
        )  # fmt: skip
        configs: list[TrainConfig] = []
        for request in requests:
            if isinstance(request, Train) and request.upfront:
                configs += request.configs
            elif isinstance(request, CalibratedIR):
                first = search_grid(self.search_spec(), c.nu_grid)
                configs += [c.run(group, Kind.IR, s, request.loss, nu, epochs)
                            for nu in first for s in seeds]  # fmt: skip
        self.executor.submit(self.cache, training_tasks(self.cache, configs))

    def family(
        self, group: str, kind: Kind | str, reg: str | None = None, nu: float | None = None
    ) -> list[Run]:
        """The runs of one model kind over the study's seeds (IR with the calibrated ν unless
        ``nu`` is given)."""
        kind = Kind(kind)
        if kind is Kind.IR and nu is None:
            return self.ir_family(group, reg or self.config.reg)[0]
        c = self.config
        return self.runs([c.run(group, kind, s, reg or "none", nu or 0.0) for s in c.seeds])

    def ir_family(self, group: str, loss: str) -> tuple[list[Run], dict[str, Any]]:
        """IR with ``loss`` at its calibrated ν over the study's seeds, and the calibration
        record with every member's validation SI added (``members``, each with whether that
        seed reached the target) and the family's verdict in the sense of
        :data:`~ginv.experiments.nu_search.READING` (``final_si``: the seed mean;
        ``final_reached``). Asked for again, the same objects."""
        if (group, loss) in self._families:
            return self._families[group, loss]
        cal = self.calibrate(group, loss, figure=False)
        runs = self.family(group, Kind.IR, loss, cal["chosen_nu"])
        target = self.config.si_target
        members = []
        for run in runs:
            p = self.validation_point(run)
            members.append(
                {"seed": run.config.seed, "val_si": p.si, "val_si_se": p.si_se,
                 "val_acc": p.val_acc, "reached": p.si >= target}
            )  # fmt: skip
        values = [m["val_si"] for m in members]
        verdict = {"members": members, "final_si": sum(values) / len(values),
                   "final_reached": reached(values, target)}  # fmt: skip
        cal = {**cal, **verdict}
        from ginv.experiments.calibration import write_calibration

        # always: the figure was left to here, and a kill before it must not leave a stale one
        write_calibration(self.out / "calibration", cal)
        self._families[group, loss] = runs, cal
        return runs, cal

    # --- measures --------------------------------------------------------
    def measure_settings(
        self, group: str | Group, metrics: Sequence[str], split: str = "test", samples: int = 0,
        si_samples: int = 0, sensitivity_samples: int = 0, wrapper: str | None = None,
    ) -> MeasureSettings:  # fmt: skip
        """:class:`MeasureSettings` with the study's saliency and memory budget."""
        return MeasureSettings(
            get_group(group) if isinstance(group, str) else group, tuple(metrics), split,
            samples, si_samples, sensitivity_samples, self.config.saliency, wrapper,
            self.config.memory_budget_mb,
        )  # fmt: skip

    def submit_measures(self, runs: Sequence[Run], settings: MeasureSettings) -> None:
        """Start the job that :meth:`measure_runs` will wait for, where the executor measures
        in jobs; otherwise nothing (the driver measures when asked)."""
        if self.executor.measures_as_jobs and runs:
            task = MeasureTask.of([r.config for r in runs], settings)
            self.executor.submit(self.cache, [task])

    def measure_runs(self, runs: Sequence[Run], settings: MeasureSettings) -> list[dict[str, Any]]:
        """The cache's measures of each of a family's ``runs``; where the executor measures in
        jobs (SLURM), the missing ones are first made by one job for the family."""
        if self.executor.measures_as_jobs and runs:
            task = MeasureTask.of([r.config for r in runs], settings)
            if not task.done(self.cache):
                self.say(task.label)
                self.executor.run(self.cache, [task])
        return [self.cache.measure_run(r, settings) for r in runs]

    # --- ν calibration ---------------------------------------------------
    def search_spec(self) -> SearchSpec:
        """The ν search's settings from the study's (``si_target``, ``nu_*``) and the data's
        class count (chance accuracy)."""
        c = self.config
        return SearchSpec(
            target=c.si_target, resolution=c.nu_resolution, round_size=c.nu_round,
            nu_min=c.nu_min, nu_max=c.nu_max, num_classes=self.data().num_classes,
            min_accuracy_share=c.nu_min_accuracy_share, max_rounds=c.nu_max_rounds,
            seeds=c.nu_seeds, final_seeds=tuple(c.seeds), noise_sd=c.nu_noise_sd,
            noise_df=c.nu_noise_df, confidence=c.nu_confidence,
        )  # fmt: skip

    def validation_settings(self, group: str, wrapper: str | None = None) -> MeasureSettings:
        """The ν search's measures: accuracy and SI on the validation orbit."""
        c = self.config
        return self.measure_settings(
            group, ("accuracy", "si"), split="val", samples=c.calibration_val_samples,
            si_samples=c.calibration_val_samples, wrapper=wrapper,
        )  # fmt: skip

    def validation_point(self, run: Run, wrapper: str | None = None) -> Point:
        """A run's validation SI (± standard error) and accuracy, on the validation orbit."""
        m = self.cache.measure_run(run, self.validation_settings(run.config.group, wrapper))
        se = m["std_over_samples"]["si"] / math.sqrt(m["subsets"]["si"])
        return Point(run.config.nu, m["metrics"]["si"], se, m["metrics"]["accuracy"],
                     run.config.epochs, run.config.seed)  # fmt: skip

    def _points(self, group: str, loss: str, nus: Sequence[float], epochs: int,
                seeds: Sequence[int]) -> list[Point]:  # fmt: skip
        """One round: IR runs of each seed at each ν, trained as one batched model."""
        c = self.config
        configs = [c.run(group, Kind.IR, s, loss, nu, epochs) for nu in nus for s in seeds]
        runs = self.runs(configs)
        if self.executor.concurrent:
            # one measure task for the round on a worker: searches side by side in driver
            # threads then never compute in the driver (under SLURM a job per round would
            # wait in the queue, so there the driver measures, as locally)
            self.measure_runs(runs, self.validation_settings(group))
        return [self.validation_point(run) for run in runs]

    def _search(self, group: str, loss: str) -> SearchResult:
        """The ν search for IR with ``loss`` on ``group`` (:func:`nu_search.search`), its
        rounds trained and measured through the caches."""
        c = self.config
        presearch = 0 < c.presearch_epochs < c.epochs
        rounds = {False: 0, True: 0}
        # the full-length candidates' seeds, which are final members (the run cache makes it so)
        seeds = deciding_seeds(c.calibration_seed, c.seeds, c.nu_seeds)

        def evaluate(nus: list[float], final: bool) -> list[Point]:
            rounds[final] += 1
            stage = "search" if final else "pre-search"
            self.say(f"ν {stage} {group}/{loss} round {rounds[final]}")
            if final:
                return self._points(group, loss, nus, c.epochs, seeds)
            return self._points(group, loss, nus, c.presearch_epochs, [c.calibration_seed])

        return search(evaluate, self.search_spec(), c.nu_grid, presearch)

    def calibrate(self, group: str, loss: str, figure: bool = True) -> dict[str, Any]:
        """ν for IR with ``loss``: a short pre-search proposes, then runs trained exactly
        as the final models decide. Every run and measure comes from the caches when present,
        so repeating it costs nothing; the record goes to ``calibration/nu-*.json``, with its
        figure unless ``figure`` is false (:meth:`ir_family` draws it once, with the members)."""
        ahead = self._ahead.pop((group, loss), None)  # the search presubmit started, if any
        found = ahead.result() if ahead is not None else self._search(group, loss)
        c = self.config
        spec = self.search_spec()
        seeds = deciding_seeds(c.calibration_seed, c.seeds, c.nu_seeds)
        decision = found.decision
        reason = decision.reason
        if not found.resolved:
            reason += f"; stopped after {found.rounds} rounds (nu_max_rounds) before the resolution"
        record = {
            "dataset": c.dataset, "group": group, "loss": loss, "chosen_nu": decision.nu,
            "reached": decision.reached, "miss_below": decision.miss_below,
            "resolved": found.resolved, "reason": reason, "rounds": found.rounds,
            "reading": READING, "predicted_si": decision.predicted, "margin": decision.margin,
            "noise_sd": decision.noise_sd, "calibration_seeds": seeds,
            "curve": [{**asdict(p), "stage": "presearch"} for p in found.presearch]
            + [{**asdict(p), "stage": "final"} for p in found.points],
            "settings": {
                **asdict(spec), "final_seeds": list(spec.final_seeds),
                "presearch_epochs": c.presearch_epochs, "epochs": c.epochs,
                "grid": list(c.nu_grid), "seed": c.calibration_seed,
                "val_samples": c.calibration_val_samples, "saliency": asdict(c.saliency),
            },
        }  # fmt: skip
        # imported here: matplotlib costs a SLURM job a second, and jobs never write records
        from ginv.experiments.calibration import calibration_path, write_calibration

        path = calibration_path(self.out / "calibration", c.dataset, group, loss)
        previous = read_cache(path, "calibration") or {}  # damaged: moved aside, rewritten
        if previous.get("members") and all(previous.get(k) == v for k, v in record.items()):
            for k in ("members", "final_si", "final_reached"):  # measured for these settings
                if k in previous:
                    record[k] = previous[k]
        write_calibration(self.out / "calibration", record, figure)
        return record
