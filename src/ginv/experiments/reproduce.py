"""``ginv reproduce``: run the study's experiments from one driver process, with one overall
progress bar, a summary of wall times, and the report at the end. The training (and the
family measures) run where the executor says: in this process, or as SLURM jobs
(:mod:`ginv.cluster`), whose results the driver assembles exactly as it does its own."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ginv.cluster.executor import Executor
from ginv.experiments.calibration import calibration_results
from ginv.experiments.config import PROFILES, StudyConfig
from ginv.experiments.fidelity import fidelity_results
from ginv.experiments.registry import EXPERIMENTS, get_experiment, report_order, require_study
from ginv.experiments.study import Study
from ginv.io import atomic_write_json
from ginv.progress import tqdm
from ginv.provenance import source_state
from ginv.records import read_record

__all__ = ["EXPERIMENTS", "environment", "reproduce"]


def environment(device: torch.device) -> dict[str, str]:
    """Software versions and the machine, for the report."""
    import matplotlib
    import numpy
    import sklearn

    import ginv

    return {
        "ginv": ginv.__version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "numpy": numpy.__version__, "matplotlib": matplotlib.__version__,
        "scikit-learn": sklearn.__version__, "platform": platform.platform(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "threads": str(torch.get_num_threads()),
        # ginv leaves these as the user set them (TF32 is off by default) and records them:
        # a TF32 run's floats differ from a CPU run's by more (docs/benchmarks.md)
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda.matmul.allow_tf32": str(torch.backends.cuda.matmul.allow_tf32),
        "cudnn.allow_tf32": str(torch.backends.cudnn.allow_tf32),
    } | ({"commit": commit} if (commit := source_state()) else {})  # fmt: skip


def _executor_text(executor: Executor) -> str:
    config = getattr(executor, "config", None)
    if config is None:
        return executor.name
    return f"{executor.name} ({config.job_threads} torch thread(s) per job)"


def reproduce(
    names: Sequence[str],
    config: StudyConfig,
    out: Path,
    data_dir: Path | None = None,
    device: str | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> dict[str, float]:
    """Run ``names`` (experiment keys) into ``out``; return wall seconds per experiment. With an
    executor that runs jobs, every training known in advance is submitted first."""
    require_study()
    source_state()  # the commit as the run starts (environment.json is written at the end)
    experiments = [get_experiment(name) for name in names]
    order = {name: i for i, name in enumerate(report_order())}
    study = Study(config, out, data_dir, device, progress, executor)
    study.presubmit([e.work for e in experiments])
    timings: dict[str, float] = {}
    bar = tqdm(total=len(names), desc="reproduce", unit="experiment", disable=not progress)
    study.status = bar
    try:
        for experiment in experiments:
            name = experiment.name
            bar.set_description(f"reproduce: {name}")
            start = time.perf_counter()
            results = experiment.run(study, out / name)
            timings[name] = time.perf_counter() - start
            results.write(out / name, config.to_dict(), timings[name], order[name])
            bar.update(1)
    finally:
        bar.close()
    # Written once every experiment has finished, so that a failed run leaves the previous
    # run's labels; each experiment's results.json carries its own settings besides, which
    # the report shows wherever they differ from these.
    atomic_write_json(config.to_dict(), out / "config.json")
    paper = PROFILES["paper"]  # what the report's scale warning compares with
    atomic_write_json({"paper": {"epochs": paper.epochs, "seeds": list(paper.seeds)}},
                      out / "scale.json")  # fmt: skip
    atomic_write_json(
        {**environment(study.device), "executor": _executor_text(study.executor)},
        out / "environment.json",
    )
    table_path = out / "table" / "results.json"
    # the fidelity section reads the table, so it carries the table's settings
    table_config = (
        read_record(table_path, "results").get("config") if table_path.is_file() else None
    )
    table_config = table_config or config.to_dict()
    fidelity = fidelity_results(out, table_config.get("profile", config.profile))
    if fidelity is not None:
        fidelity.write(out / "fidelity", table_config, 0.0, order["fidelity"])
    if (out / "calibration").is_dir():
        calibration_results(out / "calibration", config.si_target).write(
            out / "calibration", config.to_dict(), 0.0, order["calibration"]
        )
    summary_path = out / "summary.json"
    previous = read_record(summary_path, "summary") if summary_path.is_file() else {}
    atomic_write_json({**previous, **timings}, summary_path)
    from ginv.reports import write_report

    write_report(out)
    return timings
