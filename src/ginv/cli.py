"""The ``ginv`` command line. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ginv import __version__
from ginv.cluster import EXECUTORS, WorkerConfig
from ginv.errors import GinvError


def _data_check(args: argparse.Namespace) -> int:
    from ginv.data import DataConfig, DataFileError, data_spec, find_file, load_transforming
    from ginv.data.idx import FILE_NAMES

    if args.dataset is not None:  # one dataset, any source: its spec
        cfg = DataConfig(args.dataset)
        spec = data_spec(cfg, args.group, args.data_dir, args.cache_dir)
        ds = load_transforming(cfg, args.data_dir, args.cache_dir)
        print(spec.describe())
        print(f"  splits train/test/val {len(ds.train)}/{len(ds.test)}/{len(ds.val)}")
        for name, origin in ds.sources.items():
            print(f"  {name:<26} {origin}")
        if args.group is not None:
            print(f"  {args.group} acts on the {spec.shape[1]}×{spec.shape[2]} canvas")
        print("data check: ok")
        return 0

    failed = False
    for dataset, source in (("mnist", "mnist"), ("fmnist", "fashion-mnist")):
        print(f"{dataset} ({source})")
        ok = True
        for name in FILE_NAMES:
            try:
                found = find_file(source, name, args.data_dir, args.cache_dir)
                print(f"  {name:<26} checksum ok   {found.origin}: {found.path}")
            except DataFileError as e:
                print(f"  {name:<26} FAILED        {e}")
                ok = False
        if ok:
            ds = load_transforming(dataset, args.data_dir, args.cache_dir)
            shape = "×".join(map(str, ds.train.images.shape[1:]))
            print(
                f"  splits train/test/val {len(ds.train)}/{len(ds.test)}/{len(ds.val)}, "
                f"images {shape}, {ds.num_classes} classes, "
                f"train mean {float(ds.train.images.mean()):+.4f} "
                f"std {float(ds.train.images.std()):.4f}"
            )
        failed |= not ok
    print("data check: " + ("FAILED" if failed else "all files verified"))
    return 1 if failed else 0


def _sources() -> list[Any]:
    from ginv.data import SOURCES

    return list(SOURCES.values())


def _number_list(kind: type) -> Callable[[str], list]:
    """An argparse type reading comma-separated numbers of ``kind``."""

    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated numbers, got {text!r}"
            ) from None

    return parse


def writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".ginv-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise GinvError(f"cannot write to {path}: {e.strerror or e}") from None
    return path


def _train_options(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, its default and type read from the dataclass (``seed``
    and ``nu`` take comma lists: ``--seeds``, ``--nu``)."""
    import typing
    from dataclasses import fields

    from ginv.groups import GROUPS
    from ginv.models import ARCHITECTURES, MODEL_KINDS
    from ginv.training.config import HELP, REGULARIZERS, TrainConfig

    choices = {
        "model": MODEL_KINDS,
        "group": (*GROUPS, "Tn", "Tny"),
        "reg": REGULARIZERS,
    }
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        kind, metavar = hints[f.name], None
        flag, shown = "--" + f.name.replace("_", "-"), f"{f.default}"
        if f.name in ("seed", "nu"):  # comma lists: the members trained together
            flag = "--seeds" if f.name == "seed" else "--nu"
            kind, metavar = _number_list(hints[f.name]), f.name.upper() + ",..."
            shown = "0" if f.name == "seed" else ""
        elif f.name in ("depth", "width"):  # 0 in the config: the architecture's own
            shown = "the architecture's: " + ", ".join(
                f"{k} {getattr(a, f'default_{f.name}')}" for k, a in ARCHITECTURES.items()
            )
        text = HELP[f.name]
        if f.name in choices:
            text += f": {', '.join(choices[f.name])}"
        if shown:
            text += f" (default: {shown})"
        parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=metavar,
                            help=text)  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from ginv.data import DataConfig, load_transforming
    from ginv.training import TrainConfig, Trainer, resolve_device

    device = resolve_device(args.device)
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    seeds, nus = given.pop("seed") or [0], given.pop("nu")
    for flag in ("depth", "width"):  # 0 would silently mean the architecture's default
        if given[flag] is not None and given[flag] < 1:
            raise GinvError(
                f"{flag} must be ≥ 1 (leave it out for the model's default), got {given[flag]}"
            )
    base = TrainConfig(**{k: v for k, v in given.items() if v is not None})
    configs = base.members(seeds, nus)
    out = writable_dir(args.out)
    data = load_transforming(
        DataConfig(base.dataset, split_seed=base.split_seed), args.data_dir, device="cpu"
    )
    start = time.perf_counter()
    trainer = Trainer(configs, data, out, device=device, progress=not args.quiet)
    results = trainer.fit(resume=args.resume)
    for i, run in enumerate(results):
        print(
            f"{run['name']}: best val acc {run['best_val_acc']:.4f} at epoch "
            f"{run['selected_epoch']}/{run['epochs_trained']} → {trainer.member_dir(i)}"
        )
    print(f"trained {len(results)} run(s) in {time.perf_counter() - start:.1f}s")
    return 0


def _measure(args: argparse.Namespace) -> int:
    """``ginv measure``. Measures of other packages are registered by the modules named by
    ``--plugin package.module`` (imported by :func:`main` before the parser is built, see
    :mod:`ginv.plugins`); each calls ``ginv.measures.register_measure(MyMeasure())``."""
    from ginv.data import DataConfig, load_transforming, training_stats
    from ginv.groups import get_group
    from ginv.measures import SaliencyConfig, layer_equivariance, measure
    from ginv.measures.registry import measures_named
    from ginv.training import load_run, resolve_device

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    measures_named(metrics)  # known measures, at least one
    for flag in ("subset", "si_subset", "sensitivity_subset"):
        n = getattr(args, flag)
        if n is not None and n < 1:
            raise GinvError(
                f"--{flag.replace('_', '-')} must be ≥ 1 (leave it out for all), got {n}"
            )
        if flag != "subset" and n is not None and args.subset is not None and n > args.subset:
            raise GinvError(
                f"--{flag.replace('_', '-')} {n} is larger than the data (--subset {args.subset})"
            )
    if args.out is not None:  # checked before the measuring, which can take hours
        if args.out.is_dir():
            raise GinvError(f"--out {args.out} is a folder; name the JSON file to write")
        writable_dir(args.out.parent)
    device = resolve_device(args.device)
    model, run = load_run(args.checkpoint, device)
    layers = [n.strip() for n in (args.layers or "").split(",") if n.strip()]
    names = dict(model.named_modules())
    for name in layers:  # checked before the measuring
        if name not in names and layers != ["all"]:
            known = ", ".join(n for n in names if n)
            raise GinvError(f"--layers: no layer named {name!r} (the model has: {known})")
    config = run["config"]
    dataset = args.dataset or config["dataset"]
    group = get_group(args.group or config["group"], interpolated=True)
    # Inputs are normalised as the model saw them in training: with the statistics of the
    # run's training data, whichever dataset is measured (as the drift experiment does).
    split_seed = config.get("split_seed", 0)
    stats = training_stats(DataConfig(config["dataset"], split_seed=split_seed), args.data_dir)
    data = load_transforming(
        DataConfig(dataset, split_seed=split_seed), args.data_dir, device=device, stats=stats
    )
    split = getattr(data, args.split).head(args.subset)
    baseline = 0.0 if args.baseline == "zero" else data.black
    saliency = SaliencyConfig(
        **{f: getattr(args, f) for f in _SALIENCY_FLAGS}, baseline=baseline
    ).validate()
    report = measure(
        model, split.images, split.labels, group, metrics, saliency,
        si_subset=args.si_subset, sensitivity_subset=args.sensitivity_subset,
        batch_size=args.batch_size, sensitivity_method=args.sensitivity_method,
        memory_budget_mb=args.memory_budget_mb, progress=not args.quiet,
    )  # fmt: skip
    report.settings.update(
        checkpoint=str(args.checkpoint), dataset=dataset, split=args.split,
        baseline=args.baseline, device=str(device),
        normalisation={"dataset": config["dataset"], "mean": stats[0], "std": stats[1]},
    )  # fmt: skip
    print(f"{run['name']} on {dataset} {args.split} orbit under {group.name}")
    print(report.table())
    if layers:
        per_layer = layer_equivariance(
            model, split.images, group, "all" if layers == ["all"] else layers,
            memory_budget_mb=args.memory_budget_mb,
        )  # fmt: skip
        report.layers = per_layer.to_dict()
        print(per_layer.table())
    if args.out is not None:
        report.write_json(args.out)
        print(f"wrote {args.out}")
    return 0


_SALIENCY_FLAGS = ("steps", "rule", "target", "threshold", "blur_size", "blur_sigma")
"""The SaliencyConfig fields that are ``ginv measure`` flags as they are (the baseline is
``--baseline zero|black``)."""


def _measure_options(parser: argparse.ArgumentParser) -> None:
    """``ginv measure``'s measure settings, defaults and types read from one source each:
    :class:`~ginv.measures.SaliencyConfig` (its fields and ``HELP``) and the signature of
    :func:`~ginv.measures.measure` (batch size, sensitivity method, memory budget)."""
    import inspect
    import typing
    from dataclasses import fields

    from ginv.measures import MEASURES, METRICS, SaliencyConfig
    from ginv.measures.run import SENSITIVITY_METHODS, measure
    from ginv.measures.saliency import HELP, RULES

    choices: dict[str, Sequence[str]] = {"rule": RULES, "target": ("label", "predicted")}
    hints = typing.get_type_hints(SaliencyConfig)
    for f in fields(SaliencyConfig):
        if f.name not in _SALIENCY_FLAGS:
            continue
        kind = hints[f.name]
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                            type=kind if kind in (int, float) else str, default=f.default,
                            choices=choices.get(f.name),
                            help=f"SI: {HELP[f.name]} (default: {f.default})")  # fmt: skip
    defaults = inspect.signature(measure).parameters
    parser.add_argument("--metrics", default=",".join(METRICS),
                        help="comma-separated measures of the registry: "
                        f"{', '.join(MEASURES)}, and those of --plugin modules (default: {','.join(METRICS)})")  # fmt: skip
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import this module first (repeatable): a package.module that "
                        "calls ginv.measures.register_measure(...), e.g. --plugin mypkg.measures")  # fmt: skip
    parser.add_argument("--sensitivity-method", default=defaults["sensitivity_method"].default,
                        choices=SENSITIVITY_METHODS,
                        help="σmax(J): exact Jacobian or power iteration (many outputs) "
                        f"(default: {defaults['sensitivity_method'].default})")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"].default,
                        help="at most this many samples through the model at once "
                        f"(default: {defaults['batch_size'].default})")  # fmt: skip
    parser.add_argument("--memory-budget-mb", type=int,
                        default=defaults["memory_budget_mb"].default,
                        help="working memory of a pass, MiB (the model's activations included) "
                        f"(default: {defaults['memory_budget_mb'].default})")  # fmt: skip


def _study_config(args: argparse.Namespace):
    from ginv.experiments import profile

    return profile(args.profile, args.set)


def _slurm_config(args: argparse.Namespace):
    """``--slurm`` settings, checked before any work; they need ``--executor slurm``."""
    from ginv.cluster.config import SlurmConfig

    if args.slurm and args.executor != "slurm":
        raise GinvError("--slurm settings need --executor slurm")
    return SlurmConfig().with_overrides(args.slurm)


def _workers(args: argparse.Namespace):
    """``--workers`` and ``--threads-per-job``; the driver runs torch with as many threads as a
    worker, so that what it computes itself (and ``--workers 1``) matches the workers' floats."""
    from ginv.cluster import WorkerConfig

    config = WorkerConfig(args.workers, args.threads_per_job).validate()
    if args.executor != "slurm":
        import torch

        torch.set_num_threads(config.threads)
    return config


def _executor(args: argparse.Namespace, out: Path):
    """The executor of ``--executor``; for slurm, submitit and a cluster that answers."""
    from ginv.cluster import make_executor

    return make_executor(args.executor, out, _slurm_config(args), progress=not args.quiet,
                         workers=_workers(args))  # fmt: skip


@contextlib.contextmanager
def _closing(executor):
    """Close ``executor`` after the work, or abort it (its workers killed) on an error or Ctrl-C."""
    try:
        yield executor
    except BaseException:
        executor.abort()
        raise
    executor.close()


def _reproduce(args: argparse.Namespace) -> int:
    from ginv.experiments.registry import get_experiment, require_study, study_experiments
    from ginv.io import load_json

    names = list(study_experiments()) if args.experiment == "all" else [args.experiment]
    config = _study_config(args)
    _slurm_config(args)
    if args.plan:
        from ginv.experiments.plan import format_plan, make_plan
        from ginv.training import resolve_device

        print(f"plan: reproduce {args.experiment}, {config.profile} profile (nothing is trained)")
        plan = make_plan(names, config, args.out, resolve_device(args.device))
        print(format_plan(plan, _workers(args).resolved_workers()))
        return 0
    require_study()
    from ginv.experiments.reproduce import reproduce

    out = writable_dir(args.out)
    executor = _executor(args, out)
    start = time.perf_counter()
    with _closing(executor):
        timings = reproduce(
            names, config, out, args.data_dir, args.device, not args.quiet, executor=executor
        )
    print(f"reproduce {args.experiment} ({config.profile} profile, {args.executor}) → {out}")
    for name, seconds in timings.items():
        print(f"  {name:<10}{seconds:8.1f}s")
    print(f"  {'total':<10}{time.perf_counter() - start:8.1f}s; report: {out / 'report.html'}")
    for name in names:
        results = load_json(out / name / "results.json")
        summary = get_experiment(name).summary
        if summary is not None:
            print("\n".join(summary(results["data"])))
        for note in results["notes"]:
            print(f"  {name}: {note}")
        if results.get("passed") is not None:
            print(f"  {name}: check {'passed' if results['passed'] else 'FAILED'}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ginv.experiments.registry import require_study

    require_study()
    from ginv.experiments.calibration import calibration_results
    from ginv.experiments.spec import CalibratedIR
    from ginv.experiments.study import Study
    from ginv.groups import get_group
    from ginv.losses import INVARIANCE_ERRORS

    config = _study_config(args)
    groups = [g.strip() for g in args.group.split(",") if g.strip()]
    losses = [loss.strip() for loss in args.loss.split(",") if loss.strip()]
    for group in groups:  # every name checked before hours of work on the first
        get_group(group)
    for loss in losses:
        if loss not in INVARIANCE_ERRORS:
            raise GinvError(f"unknown loss {loss!r} (known: {', '.join(INVARIANCE_ERRORS)})")
    if not groups or not losses:
        raise GinvError("--group and --loss each need at least one name")
    out = writable_dir(args.out)
    executor = _executor(args, out)
    study = Study(config, out, args.data_dir, args.device, not args.quiet, executor)
    for group in groups:  # every first ν round at once, with SLURM or workers
        study.submit_requests(group, [CalibratedIR(loss) for loss in losses])
    with _closing(executor):
        found = {(g, loss): study.calibrate(g, loss) for g in groups for loss in losses}
    for group in groups:
        for loss in losses:
            cal = found[group, loss]
            verdict = "reached" if cal["reached"] else "NOT reached"
            print(f"{group} / {loss}: ν = {cal['chosen_nu']:g}, target {verdict}: {cal['reason']}")
            for p in sorted(cal["curve"], key=lambda p: (p["stage"] != "presearch", p["nu"])):
                print(
                    f"  {p['stage']:>9} {p['epochs']:>4} epochs  ν = {p['nu']:<8g} "
                    f"SI {p['si']:.3f} ± {p['si_se']:.3f}  acc {p['val_acc']:.3f}"
                )
    calibration_results(out / "calibration", config.si_target).write(
        out / "calibration", config.to_dict(), 0.0
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from ginv.reports import write_report

    md, page = write_report(args.dir)
    print(f"wrote {md} and {page}")
    return 0


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="ginv", description="Measure and learn genuine group invariance."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE first (repeatable; also $GINV_PLUGINS): its registered measures, "
        "experiments, data sources, groups and models join the choices below",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset files and splits")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="verify the dataset files and build the splits")
    check.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
    check.add_argument("--cache-dir", type=Path, help="cache folder ($GINV_CACHE_DIR)")
    check.add_argument("--dataset", help="check this dataset only and report its spec: "
                       + "; ".join(f"{k.name}: {k.help}" for k in _sources()))  # fmt: skip
    check.add_argument("--group", help="with --dataset: check that this group acts on it")
    check.set_defaults(func=_data_check)

    train = sub.add_parser(
        "train", help="train DA, WT or IR models (several seeds at once)",
        epilog="Every setting defaults to TrainConfig's; e.g. ginv train --group T3 --model wt "
        "--seeds 0,1,2,3, or --reg logit --nu 0.1,1,10 for IR.",
    )  # fmt: skip
    _train_options(train)
    train.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    train.add_argument("--out", type=Path, default=Path("runs"), help="output folder")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    meas = sub.add_parser("measure", help="accuracy, DI, LI, SI and σmax(J) of a trained run")
    meas.add_argument(
        "--checkpoint", type=Path, required=True, help="a run folder (run.json, model.pt)"
    )
    meas.add_argument("--dataset", help="mnist or fmnist (default: the run's); always "
                      "normalised with the statistics of the run's training data")  # fmt: skip
    meas.add_argument(
        "--group",
        help="group of the orbit (default: the run's); Rot<n> for n interpolated rotations (inexact)",
    )
    meas.add_argument("--split", default="test", choices=("test", "val", "train"),
                      help="the split measured (default: test)")  # fmt: skip
    meas.add_argument("--subset", type=int, help="use the first N samples (default: all)")
    meas.add_argument("--si-subset", type=int, help="SI on the first N samples (default: all)")
    meas.add_argument("--sensitivity-subset", type=int,
                      help="σmax(J) on the first N samples (default: all)")  # fmt: skip
    _measure_options(meas)
    meas.add_argument("--baseline", default="zero", choices=("zero", "black"),
                      help="SI: the baseline image, 0 or the normalised black pixel (default: zero)")  # fmt: skip
    meas.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
    meas.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: auto)"
    )
    meas.add_argument("--layers", help="also the equivariance and invariance errors of these "
                      "layers: all, or comma-separated names from named_modules(), e.g. "
                      "first,hidden.0 (printed, and in the --out JSON)")  # fmt: skip
    meas.add_argument("--out", type=Path, help="write the report as JSON")
    meas.add_argument("--quiet", action="store_true", help="no progress bar")
    meas.set_defaults(func=_measure)

    def study_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default="quick", help="smoke, quick or paper")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a study setting (repeatable), e.g. --set epochs=10")  # fmt: skip
        p.add_argument("--out", type=Path, default=Path("results"), help="output folder")
        p.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
        p.add_argument("--device", default="auto")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="where training and family measures run: here (in --workers "
                       "processes; parallel: in worker processes even for one), or as "
                       "SLURM jobs through submitit (pip install 'ginv[cluster]')")  # fmt: skip
        workers = WorkerConfig()
        p.add_argument("--workers", type=int, default=workers.workers, metavar="N",
                       help="local worker processes; 1: in this process, one task after the "
                       f"other (default: {workers.workers}, the cores ÷ --threads-per-job, "
                       f"here {workers.resolved_workers()})")  # fmt: skip
        p.add_argument("--threads-per-job", type=int, default=workers.threads, metavar="T",
                       help="torch threads of each local worker and of this process; floats "
                       f"depend on it (default: {workers.threads})")  # fmt: skip
        p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                       help="a SLURM job setting (repeatable): partition, gpus_per_job, "
                       "cpus_per_job, mem_gb, time_min, max_retries, poll_s, measure_jobs, "
                       "threads, or sbatch.OPTION=VALUE, e.g. --slurm partition=gpu")  # fmt: skip

    from ginv.experiments.registry import EXPERIMENTS

    repro = sub.add_parser("reproduce", help="the study's table and figures, then the report")
    repro.add_argument("experiment", choices=[*EXPERIMENTS, "all"],
                       help="one experiment, or all of the paper's (all but frontier)")  # fmt: skip
    repro.add_argument("--plan", action="store_true",
                       help="print the runs, measures, FLOPs, floor and time estimate, then exit")  # fmt: skip
    study_options(repro)
    repro.set_defaults(func=_reproduce)

    cal = sub.add_parser("calibrate", help="calibrate ν so that validation SI reaches the target")
    cal.add_argument("--group", default="R4", help="group(s), comma-separated")
    cal.add_argument("--loss", default="logit", help="invariance loss(es): logit, kl, nlogit, jsd")
    study_options(cal)
    cal.set_defaults(func=_calibrate)

    rep = sub.add_parser("report", help="write report.md and report.html for a results folder")
    rep.add_argument("dir", type=Path)
    rep.set_defaults(func=_report)
    return parser


class _OutputStream:
    """Wraps stdout or stderr so that a failed write (the reader of a pipe gone: ``| head``,
    a full disk) is dropped instead of raised: output is a report on the work, never a reason
    to abandon it. ``lost`` tells afterwards whether anything was dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._drop()

    def _drop(self) -> None:
        self.lost = True
        # the descriptor now writes to /dev/null, so that nothing (Python's flush at exit
        # included) meets the dead pipe again
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit status: 0 done, 2 error (one line), 130 interrupted, and 141
    (as a process killed by SIGPIPE) for work that completed but whose output was lost."""
    from ginv.plugins import load_plugins, plugin_names

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins(plugin_names(argv))
    except GinvError as e:
        print(f"ginv: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    saved = sys.stdout, sys.stderr
    out, err = _OutputStream(sys.stdout), _OutputStream(sys.stderr)
    sys.stdout, sys.stderr = out, err
    try:
        status = int(args.func(args))
    except GinvError as e:
        print(f"ginv: error: {e}", file=sys.stderr)
        status = 2
    except OSError as e:  # a file that could not be read or written: name it, one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"ginv: error: {where}{e.strerror or e}", file=sys.stderr)
        status = 2
    except KeyboardInterrupt:
        print("ginv: interrupted", file=sys.stderr)
        status = 130
    finally:
        out.flush()
        err.flush()
        sys.stdout, sys.stderr = saved
    return 141 if status == 0 and (out.lost or err.lost) else status


if __name__ == "__main__":
    sys.exit(main())
