"""The ``ginv`` command line. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import signal
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


def out_path(text: str) -> Path:
    """An output folder as typed: never empty (``Path("")`` is the current folder, which
    ``--out ""`` did not ask for) and without control characters."""
    if not text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: not a folder name")
    return Path(text)


def writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and check that files can be written there."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        # a probe of its own: two drivers on one folder must not delete each other's
        with tempfile.NamedTemporaryFile(dir=path, prefix=".ginv-write-test-"):
            pass
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
    if given["model"] is not None:
        _load_model_factory(given["model"])
    teacher = given["teacher"]
    if teacher:  # a run folder on the command line; its key in the settings
        from ginv.training.trainer import teacher_key

        given["teacher"] = teacher_key(teacher)
    base = TrainConfig(**{k: v for k, v in given.items() if v is not None})
    configs = base.members(seeds, nus)
    out = writable_dir(args.out)
    data = load_transforming(
        DataConfig(base.dataset, split_seed=base.split_seed), args.data_dir, device="cpu"
    )
    start = time.perf_counter()
    trainer = Trainer(
        configs,
        data,
        out,
        device=device,
        progress=not args.quiet,
        logger=args.logger,
        teacher_dirs=[Path(teacher)] * len(configs) if teacher else None,
    )
    results = trainer.fit(resume=args.resume)
    for i, run in enumerate(results):
        print(
            f"{run['name']}: best val acc {run['best_val_acc']:.4f} at epoch "
            f"{run['selected_epoch']}/{run['epochs_trained']} → {trainer.member_dir(i)}"
        )
    print(f"trained {len(results)} run(s) in {time.perf_counter() - start:.1f}s")
    return 0


def _load_model_factory(model: str) -> None:
    """Import the factory of a ``--model package.module:factory`` the user typed (only a name
    given on the command line is imported: :mod:`ginv.models.factory`)."""
    from ginv.models import is_factory_model, load_factory, model_parts

    if is_factory_model(model):
        load_factory(model_parts(model)[0])


def _weights_model(args: argparse.Namespace, device: Any) -> tuple[Any, dict[str, Any]]:
    """``--model`` with ``--weights``: a model ginv did not train, built for ``--dataset``'s
    images and classes and loaded with tensors only; and a record like a run's."""
    from ginv.data import data_spec
    from ginv.groups import get_group
    from ginv.io import load_weights
    from ginv.models import build_model

    if args.model is None or args.dataset is None or args.group is None:
        raise GinvError("--weights needs --model, --dataset and --group (there is no run record)")
    _load_model_factory(args.model)
    spec = data_spec(args.dataset, None, args.data_dir)
    model = build_model(args.model, get_group(args.group), spec.shape, num_classes=spec.num_classes)
    state = load_weights(args.weights)
    from ginv.training.trainer import state_mismatch

    mismatch = state_mismatch(model.state_dict(), state)
    if mismatch:
        raise GinvError(f"{args.weights}: does not fit {args.model} on {args.dataset} ({mismatch})")
    model.load_state_dict(state)
    config = {"dataset": args.dataset, "group": args.group, "model": args.model, "split_seed": 0}
    return model.to(device).eval(), {
        "name": f"{args.model} ({args.weights.name})",
        "config": config,
    }


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
    if (args.checkpoint is None) == (args.weights is None):
        raise GinvError("give a run folder (--checkpoint) or a model's weights (--weights), one")
    device = resolve_device(args.device)
    if args.weights is not None:
        model, run = _weights_model(args, device)
    else:
        from ginv.models import is_factory_model, model_parts

        factory = None
        if args.model is not None:  # it must be the record's: load_run checks
            if not is_factory_model(args.model):
                raise GinvError("--model with --checkpoint names the run's factory only")
            factory = model_parts(args.model)[0]
        model, run = load_run(args.checkpoint, device, factory=factory)
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
        checkpoint=str(args.checkpoint or args.weights), dataset=dataset, split=args.split,
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
    from ginv.records import read_record

    names = list(study_experiments()) if args.experiment == "all" else [args.experiment]
    config = _study_config(args)
    _slurm_config(args)
    if args.plan or args.plan_json:
        from ginv.experiments.plan import format_plan, make_plan, plan_record
        from ginv.io import atomic_write_json
        from ginv.training import resolve_device

        print(f"plan: reproduce {args.experiment}, {config.profile} profile (nothing is trained)")
        plan = make_plan(
            names, config, args.out, resolve_device(args.device), data_dir=args.data_dir
        )
        print(format_plan(plan, _workers(args).resolved_workers()))
        if args.plan_json:
            atomic_write_json(plan_record(plan, names, config.profile), args.plan_json)
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
        results = read_record(out / name / "results.json", "results")
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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless the help already says it, or there is none
    to say: ``None``, a flag's ``False``, an empty list); epilogs keep their line breaks."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        default = action.default
        if default is None or default is False or default == [] or default is argparse.SUPPRESS:
            return False
        return bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, "*")

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default:" in text or "default " in text:
            return text
        return text + " (default: %(default)s)" if self._shows_default(action) else text

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._shows_default(action):  # no help text, but a default
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


class _Parser(argparse.ArgumentParser):
    """ginv's parsers, subcommands included: :class:`_HelpFormatter` for every ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


# One example per command, shown at the end of its --help (after any epilog of its own).
EXAMPLES = {
    "ginv": "ginv train --epochs 5 && ginv reproduce all --profile smoke --out results",
    "ginv data": "ginv data check --data-dir ~/data/mnist-idx",
    "ginv data check": "GINV_DATA_DIR=~/data ginv data check",
    "ginv train": "ginv train --group T3 --model wt --seeds 0,1,2,3 --epochs 20 --out runs "
    "--logger tensorboard",
    "ginv measure": "ginv measure --checkpoint runs/mnist-R4-mlp-seed0 --subset 500 "
    "--out report.json",
    "ginv reproduce": "ginv reproduce all --profile smoke --out results --set epochs=5 "
    "--set seeds=0,1",
    "ginv calibrate": "ginv calibrate --group R4,T3 --loss logit --profile quick --out results",
    "ginv report": "ginv report results",
}


def _type_name(kind: Any) -> str:
    import typing

    if typing.get_origin(kind) is tuple:
        (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
        return f"{item.__name__},..."
    return getattr(kind, "__name__", str(kind))


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def set_keys_help() -> str:
    """The ``--set`` keys of ``ginv reproduce`` / ``calibrate``, with their types and the quick
    profile's defaults (and where the smoke and paper profiles differ), read from
    :class:`~ginv.experiments.config.StudyConfig` and ``TRAIN_KEYS`` of its ``train``."""
    import typing
    from dataclasses import fields
    from functools import partial

    from ginv.experiments.config import PROFILES, SALIENCY_KEYS, TRAIN_KEYS, StudyConfig
    from ginv.measures import SaliencyConfig
    from ginv.training.config import TrainConfig

    rows: list[tuple[str, str, str]] = []

    def add(name: str, kind: Any, read: Callable[[StudyConfig], Any]) -> None:
        default = read(PROFILES["quick"])
        others = [f"{p} {_shown(read(c))}" for p, c in PROFILES.items()
                  if p != "quick" and read(c) != default]  # fmt: skip
        shown = _shown(default) + (f" ({'; '.join(others)})" if others else "")
        rows.append((name, _type_name(kind), shown))

    train_hints = typing.get_type_hints(TrainConfig)
    for key in TRAIN_KEYS:
        add(key, train_hints[key], partial(lambda k, c: getattr(c.train, k), key))
    hints = typing.get_type_hints(StudyConfig)
    for f in fields(StudyConfig):
        if f.name not in ("profile", "train", "saliency"):
            add(f.name, hints[f.name], partial(lambda k, c: getattr(c, k), f.name))
    # the saliency settings are --set keys one by one (ig_steps, ...), as with_overrides reads them
    saliency_hints = typing.get_type_hints(SaliencyConfig)
    for key, name in SALIENCY_KEYS.items():
        add(key, saliency_hints[name], partial(lambda n, c: getattr(c.saliency, n), name))
    width = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    lines = [f"  {n:<{width[0]}}  {t:<{width[1]}}  {d}" for n, t, d in rows]
    return (
        "--set keys (KEY=VALUE; type; the quick profile's default, and the other profiles' "
        "where they differ):\n" + "\n".join(lines)
    )


def _add_examples(parser: argparse.ArgumentParser, path: str = "ginv") -> None:
    """Append :data:`EXAMPLES`' line to each command's epilog, subcommands included."""
    example = EXAMPLES.get(path)
    if example:
        parser.epilog = (parser.epilog + "\n\n" if parser.epilog else "") + f"example:\n  {example}"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _add_examples(sub, f"{path} {name}")


def _verbosity_options(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` / ``--verbose``: the progress bars of :mod:`ginv.progress`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    group.add_argument("--verbose", "-v", action="store_true",
                       help="every progress bar, also the nested ones in a log file (when "
                       "stderr is not a terminal a bar is one line per finished step)")  # fmt: skip


def _set_verbosity(args: argparse.Namespace) -> None:
    from ginv import progress

    if getattr(args, "quiet", False):
        progress.set_verbosity(progress.QUIET)
    elif getattr(args, "verbose", False):
        progress.set_verbosity(progress.VERBOSE)
    else:
        progress.set_verbosity(progress.NORMAL)


def build_parser() -> argparse.ArgumentParser:
    """The ``ginv`` command line: its choices from the registries (experiments, measures,
    data sources, groups, models, executors), its defaults from the config dataclasses."""

    parser = _Parser(prog="ginv", description="Measure and learn genuine group invariance.")
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
        epilog="Every setting defaults to TrainConfig's; e.g. ginv train --group T3 --model wt\n"
        "--seeds 0,1,2,3, or --reg logit --nu 0.1,1,10 for IR.",
    )  # fmt: skip
    _train_options(train)
    train.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    train.add_argument("--out", type=out_path, default=Path("runs"), help="output folder")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    _verbosity_options(train)
    from ginv.training.loggers import LOGGERS

    train.add_argument("--logger", choices=list(LOGGERS), default="csv",
                       help="also log each epoch in the run folder: metrics.csv, TensorBoard "
                       "events (ginv[tensorboard]), an offline wandb run (ginv[wandb]), or none")  # fmt: skip
    train.set_defaults(func=_train)

    meas = sub.add_parser("measure", help="accuracy, DI, LI, SI and σmax(J) of a trained run")
    meas.add_argument("--checkpoint", type=Path, help="a run folder (run.json, model.pt)")
    meas.add_argument("--weights", type=Path,
                      help="instead of --checkpoint: a state dict (.pt, loaded as tensors only, "
                      "or .safetensors) of --model, measured on --dataset under --group and "
                      "normalised with the dataset's training statistics")  # fmt: skip
    meas.add_argument("--model", help="with --weights: a model name or package.module:factory, "
                      "factory(in_shape, num_classes) → nn.Module; with --checkpoint: the run's "
                      "factory, which allows ginv to import it")  # fmt: skip
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
    meas.add_argument("--out", type=out_path, help="write the report as JSON")
    _verbosity_options(meas)
    meas.set_defaults(func=_measure)

    def study_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--profile", default="quick", help="smoke, quick or paper")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a study setting (repeatable), e.g. --set epochs=10")  # fmt: skip
        p.add_argument("--out", type=out_path, default=Path("results"), help="output folder")
        p.add_argument("--data-dir", type=Path, help="folder with the IDX files ($GINV_DATA_DIR)")
        p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
        _verbosity_options(p)
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

    repro = sub.add_parser("reproduce", help="the study's table and figures, then the report",
                           epilog=set_keys_help())  # fmt: skip
    repro.add_argument("experiment", choices=[*EXPERIMENTS, "all"],
                       help="one experiment, or all of the paper's (all but frontier)")  # fmt: skip
    repro.add_argument("--plan", action="store_true",
                       help="print the runs, measures, FLOPs, floor and time estimate, then exit")  # fmt: skip
    repro.add_argument("--plan-json", type=out_path, metavar="FILE",
                       help="with --plan (implied): also write the plan, its FLOPs per "
                       "experiment and the probed rates, as JSON to FILE")  # fmt: skip
    study_options(repro)
    repro.set_defaults(func=_reproduce)

    cal = sub.add_parser("calibrate", help="calibrate ν so that validation SI reaches the target",
                         epilog=set_keys_help())  # fmt: skip
    cal.add_argument("--group", default="R4", help="group(s), comma-separated")
    cal.add_argument("--loss", default="logit", help="invariance loss(es): logit, kl, nlogit, jsd")
    study_options(cal)
    cal.set_defaults(func=_calibrate)

    rep = sub.add_parser("report", help="write report.md and report.html for a results folder")
    rep.add_argument("dir", type=out_path)
    rep.set_defaults(func=_report)
    _add_examples(parser)
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
    """Run one command and return its exit status, never raising ``SystemExit``: 0 done
    (``--help`` and ``--version`` included), 2 error (one line; argparse's usage errors too),
    130 interrupted, and 141 (as a process killed by SIGPIPE) for work that completed but
    whose output was lost. Called in-process it is what the ``ginv`` command would exit with:

    >>> main(["--version"])  # doctest: +ELLIPSIS
    ginv ...
    0
    """
    from ginv import progress
    from ginv.plugins import load_plugins, plugin_names

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins(plugin_names(argv))
    except GinvError as e:
        print(f"ginv: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse printed the help, the version or a usage error
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    verbosity = progress.verbosity()  # restored at the end: main() is also called in-process
    _set_verbosity(args)
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
        progress.set_verbosity(verbosity)
    return 141 if status == 0 and (out.lost or err.lost) else status


def entry() -> None:
    """The ``ginv`` command: :func:`main`, then exit with its status. After Ctrl-C (130) the
    process ends at once: the workers are killed and every file was written atomically, so
    nothing is left to finish, and the interpreter's exit would otherwise wait for the
    threads of a worker pool whose processes are gone. ``kill -USR1 PID`` prints the stack of
    every thread of a running ``ginv`` to standard error (:mod:`faulthandler`), for a run that
    seems stuck."""
    import faulthandler

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    status = main()
    if status == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status)


if __name__ == "__main__":
    entry()
