"""A toy experiment registered from outside ginv: one file, one registry call.

It trains the study's DA family of each group and tabulates each run's orbit accuracy.
"""

from __future__ import annotations

from ginv.experiments.experiment import Experiment
from ginv.experiments.kinds import Kind
from ginv.experiments.registry import EXPERIMENTS, register_experiment
from ginv.experiments.results import Results
from ginv.experiments.spec import Measure, Train


def work(config, group, sizes):
    runs = tuple(config.run(group, Kind.DA, s) for s in config.seeds)
    return [Train("toy DA", runs), Measure("toy accuracy", "mlp", len(runs), sizes.test)]


def run(study, folder):
    results = Results("toy", "A toy experiment", "Orbit accuracy of the DA runs.")
    rows = []
    for group in study.config.groups:
        runs = study.family(group, Kind.DA)
        settings = study.measure_settings(group, ("accuracy",), samples=50)
        for r, m in zip(runs, study.measure_runs(runs, settings), strict=True):
            rows.append([group, r.config.seed, f"{m['metrics']['accuracy']:.3f}"])
    results.add_table(folder, "toy", "Orbit accuracy per run", ["group", "seed", "accuracy"], rows)
    return results


if "toy" not in EXPERIMENTS:
    register_experiment(Experiment("toy", "A toy experiment", run, work, in_all=False))
