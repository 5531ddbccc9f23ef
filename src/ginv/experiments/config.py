"""The study's settings as one typed config, three profiles, and ``key=value`` overrides."""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ginv.data.drift import DriftMode
from ginv.errors import GinvError
from ginv.experiments.kinds import Kind
from ginv.experiments.methods import METHODS, REFERENCE
from ginv.experiments.nu_search import SearchSpec
from ginv.measures import SaliencyConfig
from ginv.measures.saliency import DEFAULT_BUDGET_MB
from ginv.models import (
    ARCHITECTURES,
    is_factory_name,
    load_factory,
    model_parts,
    wrapped_name,
)
from ginv.settings import parse_bool
from ginv.training.config import TrainConfig

_SEARCH = SearchSpec()  # the ν search's defaults, stated once, in nu_search
# TrainConfig fields a study sets for all its runs (the rest: group, reg, ν, seed); `model`
# is the architecture of DA and IR, and WT is its twin (StudyConfig.model_of)
TRAIN_KEYS = ("dataset", "model", "pool", "epochs", "batch_size", "lr", "n_train", "n_val",
              "split_seed")  # fmt: skip
TRAIN_ALIASES = {"wt_pool": "pool"}
# SaliencyConfig fields a study sets for all its measures, by their --set keys
SALIENCY_KEYS = {"ig_steps": "steps", "ig_rule": "rule", "ig_target": "target",
                 "ig_baseline": "baseline", "ig_threshold": "threshold"}  # fmt: skip
BETAS = tuple(round(0.1 * i, 1) for i in range(11))
DRIFT_MODES: tuple[str, ...] = typing.get_args(DriftMode)


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``ginv reproduce`` needs; defaults are the quick profile."""

    profile: str = "quick"
    # training: every run's settings but its group, model, loss, ν and seed, which
    # the study sets; ``--set epochs=…`` (or any TRAIN_KEYS) reaches this config
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=50))
    seeds: tuple[int, ...] = (0, 1)
    groups: tuple[str, ...] = ("R4", "T3")
    drift_target: str = "fmnist"
    # IR and the calibration of ν
    reg: str = "logit"
    si_target: float = _SEARCH.target
    # the pre-search: short runs on this grid (extended upwards while no ν reaches the
    # target) propose where the full-length search looks; 0 epochs skips it
    nu_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    presearch_epochs: int = 10
    # the search proper trains for `epochs`, as the final models, until the chosen ν and the
    # largest miss below it differ by at most `nu_resolution`; `nu_round` candidates a round
    nu_resolution: float = _SEARCH.resolution
    nu_round: int = _SEARCH.round_size
    nu_min: float = _SEARCH.nu_min
    nu_max: float = _SEARCH.nu_max
    nu_max_rounds: int = _SEARCH.max_rounds
    # a model keeping less than this share of the curve's best accuracy above chance never
    # decides ν (its saliency can be stable for the wrong reason)
    nu_min_accuracy_share: float = _SEARCH.min_accuracy_share
    calibration_seed: int = 0
    calibration_val_samples: int = 2_000  # the whole validation split
    # training noise (nu_search's docstring): each full-length candidate trains `nu_seeds`
    # seeds (calibration_seed, then `seeds` in order; never more than those), batched; it
    # passes when the final models' seed mean (nu_search.READING) is predicted to reach
    # si_target with probability `nu_confidence`, the spread between runs estimated within ν
    # and shrunk towards `nu_noise_sd` (measured: R4, 300 epochs) with `nu_noise_df` weight
    nu_seeds: int = _SEARCH.seeds
    nu_noise_sd: float = _SEARCH.noise_sd
    nu_noise_df: float = _SEARCH.noise_df
    nu_confidence: float = _SEARCH.confidence
    spectral_losses: tuple[str, ...] = ("logit", "kl", "nlogit")
    # the frontier (ginv.experiments.frontier): IR with each output loss at its ν grid, the
    # orbit structure at these lr·ν, saliency IR. The losses differ in scale: KL and JSD are
    # small where logits differ a little; the normalised logit divides by ‖f(x)‖², and from
    # ν ≈ 300 (R4, 10 epochs) it drives training to chance by shrinking the logits.
    frontier_nus_logit: tuple[float, ...] = (3.0, 10.0, 30.0)
    frontier_nus_kl: tuple[float, ...] = (30.0, 100.0, 300.0)
    frontier_nus_nlogit: tuple[float, ...] = (3.0, 30.0)
    frontier_nus_jsd: tuple[float, ...] = (100.0, 1000.0)
    frontier_orbit_rates: tuple[float, ...] = (0.1, 0.5, 1.0)
    frontier_saliency_nus: tuple[float, ...] = (3.0, 30.0)
    # the new input-only methods: distillation towards the orbit mean (a KL, as small as
    # IR-kl's), the logit IR with a ν warm-up (the logit IR's grid), scale-free feature IR
    # (a relative error in [0, 4], as the saliency IR's)
    frontier_nus_distill: tuple[float, ...] = (30.0, 100.0, 300.0)
    frontier_nus_warmup: tuple[float, ...] = (3.0, 10.0, 30.0)
    frontier_nus_features: tuple[float, ...] = (3.0, 10.0, 30.0)
    # the logit IR switched on halfway through training (the logit IR's grid)
    frontier_nus_late: tuple[float, ...] = (3.0, 10.0, 30.0)
    # distillation from the orbit-averaged DA run (a KL to confident soft labels; ν 3-30 left
    # R4 SI at 0.37-0.41, quick profile, seed 0)
    frontier_nus_teacher: tuple[float, ...] = (30.0, 100.0, 300.0)
    # the same on logits (the logit IR's error against a target of DA's scale)
    frontier_nus_teacher_logit: tuple[float, ...] = (1.0, 3.0, 10.0)
    # the logit IR on the orbits and on mixed images between them (the logit IR's grid)
    frontier_nus_vicinal: tuple[float, ...] = (3.0, 10.0, 30.0)
    # teacher-logit on the orbits and on mixed images (teacher-logit's SI did not move with ν
    # from 1 to 10: a wider grid)
    frontier_nus_teacher_vicinal: tuple[float, ...] = (3.0, 30.0, 300.0)
    frontier_methods: tuple[str, ...] = ()  # a subset of the frontier's methods (): all
    # every input-only method also at WT's first-layer capacity (|G|·width units), its gap
    # read against DA-wide: equal parameters
    frontier_wide: bool = True
    # the evidence at each input-only method's calibrated point: its first seed trained again
    # with validation SI measured after every epoch, on this many validation images
    frontier_curve_samples: int = 200
    # measures; 0 means the whole test split. SI is a mean over samples whose
    # per-sample spread is about 0.3 (DA) and 0.1 (IR): n samples give a standard error of
    # about 0.3/√n, 0.007 at 2,000 and 0.003 at 10,000; the report prints it beside SI
    test_samples: int = 0
    si_samples: int = 2_000
    sensitivity_samples: int = 2_000
    # the saliency map of SI (``--set ig_steps=…``, ``ig_rule=…``: SALIENCY_KEYS)
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    # working memory a measure may use beyond its inputs (batching only: results are equal)
    memory_budget_mb: int = DEFAULT_BUDGET_MB
    # figures
    saliency_grid_samples: int = 4
    tsne_samples: int = 300
    drift_betas: tuple[float, ...] = BETAS
    drift_mode: str = "blend"
    drift_samples: int = 10_000
    # layer by layer (ginv.experiments.layers): test images whose orbits are measured at
    # every layer, and the architectures whose DA, IR, WT and wrappers are measured
    layers_samples: int = 300
    layers_architectures: tuple[str, ...] = ("mlp", "cnn")
    # WT's ablation (ginv.experiments.wt_ablation): each variant changes WT's training
    # settings, `key=value` of a training setting, several joined by `+`
    wt_variants: tuple[str, ...] = ("pool=max", "epochs=100", "lr=0.0002")
    # Proposition 3.1
    prop31_dim: int = 64
    prop31_outputs: int = 9
    prop31_samples: int = 200
    prop31_time: float = 5.0
    prop31_step: float = 1e-3

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (``config.json``, each ``results.json``'s ``config``)."""
        return asdict(self)

    @property
    def dataset(self) -> str:
        """The study's dataset (its runs' ``TrainConfig.dataset``)."""
        return self.train.dataset

    @property
    def epochs(self) -> int:
        """The final models' epochs, which the ν search trains for too."""
        return self.train.epochs

    def model_of(self, kind: Kind | str) -> str:
        """The model name of a family: the study's architecture (``train.model``: ``mlp``, any
        :data:`~ginv.models.ARCHITECTURES` name or a ``package.module:factory``) for DA and
        IR, its WT twin for WT (``wt``, ``wt-cnn``, ``wt-package.module:factory``)."""
        return wrapped_name("wt", self.train.model) if Kind(kind) is Kind.WT else self.train.model

    def run(self, group: str, kind: Kind | str, seed: int, reg: str = "none", nu: float = 0.0,
            epochs: int | None = None) -> TrainConfig:  # fmt: skip
        """The config of one of the study's runs: DA (``mlp``), WT or IR (``mlp`` + ``reg``)."""
        t = self.train
        kind = Kind(kind)
        ir = kind is Kind.IR
        return replace(
            t, group=group, model=self.model_of(kind), pool=t.pool if kind is Kind.WT else "mean",
            reg=reg if ir else "none", nu=nu if ir else 0.0, epochs=epochs or t.epochs, seed=seed,
        ).validate()  # fmt: skip

    def with_overrides(self, assignments: list[str]) -> StudyConfig:
        """Apply ``key=value`` strings, parsed by each field's type (tuples comma-separated)."""
        hints = typing.get_type_hints(StudyConfig)
        train_hints = typing.get_type_hints(TrainConfig)
        saliency_hints = typing.get_type_hints(SaliencyConfig)
        names = {f.name for f in fields(self)} - {"train", "saliency"}
        changes: dict[str, Any] = {}
        train: dict[str, Any] = {}
        saliency: dict[str, Any] = {}
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key = TRAIN_ALIASES.get(key.strip().replace("-", "_"), key.strip().replace("-", "_"))
            if sep and key in TRAIN_KEYS:
                train[key] = _parse(train_hints[key], text.strip(), key)
                if key == "model" and is_factory_name(train[key]):
                    load_factory(train[key])  # a name the user gave: imported (ginv.models.factory)
                continue
            if sep and key in SALIENCY_KEYS:
                name = SALIENCY_KEYS[key]
                saliency[name] = _parse(saliency_hints[name], text.strip(), key)
                continue
            if not sep or key not in names:
                raise GinvError(
                    f"--set expects key=value with a known key, got {assignment!r} "
                    f"(keys: {', '.join(sorted(names | set(TRAIN_KEYS) | set(SALIENCY_KEYS)))})"
                )
            changes[key] = _parse(hints[key], text.strip(), key)
        if train:
            if "model" in train:  # another architecture: its own depth and width defaults
                train.update(depth=0, width=0)
            changes["train"] = replace(self.train, **train)
        if saliency:
            changes["saliency"] = replace(self.saliency, **saliency)
        return replace(self, **changes).validate()

    def validate(self) -> StudyConfig:
        """Raise a :class:`GinvError` naming the first setting out of range; return ``self``."""
        from ginv.losses import INVARIANCE_ERRORS

        self.train.validate()
        self.saliency.validate()
        if model_parts(self.train.model)[1] is not None or self.train.reg != "none":
            raise GinvError(
                "the study trains an architecture (model: mlp, cnn or package.module:factory) "
                "and its WT twin; set group, loss and ν through groups, reg and the calibration"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            items = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in items):
                raise GinvError(f"{f.name} must be finite, got {value}")
        for key in choice_keys():
            values = _setting(self, key)
            for value in values if isinstance(values, tuple) else (values,):
                _check_choice(key, value)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and len({_label(v) for v in value}) != len(value):
                raise GinvError(
                    f"{f.name} must be distinct as the tables label them (numbers as :g), "
                    f"got {', '.join(map(_label, value))}"
                )
        losses = (self.reg, *self.spectral_losses)
        checks = [
            (bool(self.groups), "groups: name at least one group"),
            (bool(self.seeds) and len(set(self.seeds)) == len(self.seeds)
             and min(self.seeds) >= 0 and max(self.seeds) < 2**63,
             f"seeds must be distinct and in [0, 2⁶³), got {self.seeds}"),
            (0 <= self.calibration_seed < 2**63, "calibration_seed must be in [0, 2⁶³)"),
            (all(loss in INVARIANCE_ERRORS for loss in losses),
             f"invariance losses must be among {', '.join(INVARIANCE_ERRORS)}, got {losses}"),
            (self.presearch_epochs >= 0, "presearch_epochs must be ≥ 0"),
            (all(m.values(self) and min(m.values(self)) > 0 for m in METHODS.values() if m.settings),
             "the frontier's settings grids (frontier_nus_*, frontier_saliency_nus, "
             "frontier_orbit_rates) must each hold at least one value, all > 0"),
            (all(m in METHODS for m in self.frontier_methods)
             and (not self.frontier_methods or REFERENCE in self.frontier_methods),
             f"frontier_methods must be among {', '.join(METHODS)} and include {REFERENCE}, "
             f"the reference of every gap; got {self.frontier_methods}"),
            (bool(self.frontier_orbit_rates) and all(0 < r <= 1 for r in self.frontier_orbit_rates),
             f"frontier_orbit_rates (lr·ν) must lie in (0, 1], got {self.frontier_orbit_rates}"),
            (0 < self.si_target <= 1, f"si_target must be in (0, 1], got {self.si_target}"),
            (bool(self.nu_grid) and min(self.nu_grid) > 0, f"nu_grid must be ν > 0, got {self.nu_grid}"),
            (0 < self.nu_min <= self.nu_max, "need 0 < nu_min ≤ nu_max"),
            (self.nu_resolution > 1, f"nu_resolution must be > 1, got {self.nu_resolution}"),
            (self.nu_round >= 1 and self.nu_max_rounds >= 1, "nu_round and nu_max_rounds must be ≥ 1"),
            (0 <= self.nu_min_accuracy_share <= 1, "nu_min_accuracy_share must be in [0, 1]"),
            (self.calibration_val_samples >= 1, "calibration_val_samples must be ≥ 1"),
            (self.frontier_curve_samples >= 1, "frontier_curve_samples must be ≥ 1"),
            (self.nu_seeds >= 1, f"nu_seeds must be ≥ 1, got {self.nu_seeds}"),
            (self.nu_noise_sd >= 0 and self.nu_noise_df >= 0,
             "nu_noise_sd and nu_noise_df must be ≥ 0"),
            (0.5 <= self.nu_confidence < 1,
             f"nu_confidence must be in [0.5, 1), got {self.nu_confidence}"),
            (min(self.test_samples, self.si_samples, self.sensitivity_samples, self.drift_samples) >= 0,
             "sample counts must be ≥ 0 (0: the whole split)"),
            (self.memory_budget_mb >= 1, "memory_budget_mb must be ≥ 1"),
            (self.saliency_grid_samples >= 1 and self.tsne_samples >= 2,
             "saliency_grid_samples must be ≥ 1 and tsne_samples ≥ 2"),
            (bool(self.drift_betas) and all(0 <= b <= 1 for b in self.drift_betas),
             "drift_betas must lie in [0, 1]"),
            (self.layers_samples >= 1, "layers_samples must be ≥ 1"),
            (bool(self.layers_architectures), "layers_architectures: name at least one"),
            (self.drift_mode in DRIFT_MODES, f"drift_mode must be one of {', '.join(DRIFT_MODES)}"),
            (min(self.prop31_dim, self.prop31_outputs, self.prop31_samples) >= 1
             and self.prop31_time > 0 and self.prop31_step > 0,
             "prop31 sizes must be ≥ 1, its time and step > 0"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise GinvError(message)
        return self


def _label(value: Any) -> str:
    """How the tables and figures print a value: numbers as ``:g`` (so 1 and 1.0000001 are
    one label, and two settings with one label are refused)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _known(names: Any, what: str) -> Callable[[str], object]:
    def check(value: str) -> None:
        if value not in names:
            raise GinvError(f"unknown {what} {value!r} (known: {', '.join(map(str, names))})")

    return check


def _train_override(variant: str) -> None:
    """A :data:`StudyConfig.wt_variants` item: ``key=value`` of a training setting (one of
    :data:`TRAIN_KEYS`), several joined by ``+``; else one :class:`GinvError`."""
    for part in variant.split("+"):
        key, eq, value = part.partition("=")
        if (
            not (eq and value.strip())
            or TRAIN_ALIASES.get(key.strip(), key.strip()) not in TRAIN_KEYS
        ):
            raise GinvError(f"{part!r} is not key=value of a training setting "
                            f"({', '.join(TRAIN_KEYS)}; several joined by +)")  # fmt: skip


def _registries() -> dict[str, Callable[[str], object]]:
    """Every choice-valued ``--set`` key, and the registry that its values come from: each
    function raises a :class:`GinvError` for a name it does not know."""
    from ginv.data import get_source
    from ginv.groups import get_group
    from ginv.losses import INVARIANCE_ERRORS
    from ginv.measures.saliency import RULES

    return {
        "profile": _known(PROFILES, "profile"), "dataset": get_source,
        "drift_target": get_source, "groups": get_group,
        "reg": _known(INVARIANCE_ERRORS, "invariance loss"),
        "spectral_losses": _known(INVARIANCE_ERRORS, "invariance loss"),
        "frontier_methods": _known(METHODS, "frontier method"),
        "drift_mode": _known(DRIFT_MODES, "drift mode"), "wt_pool": _known(("mean", "max"), "pool"),
        "ig_rule": _known(RULES, "quadrature rule"),
        "ig_target": _known(("label", "predicted"), "saliency target"),
        "layers_architectures": _known(ARCHITECTURES, "architecture"),
        "model": model_parts,  # an architecture, a wrapper of one, or package.module:factory
        "wt_variants": _train_override,
    }  # fmt: skip


def set_keys() -> dict[str, Any]:
    """Every ``--set`` key and its type (tuples: comma lists)."""
    hints = typing.get_type_hints(StudyConfig)
    train_hints = typing.get_type_hints(TrainConfig)
    saliency_hints = typing.get_type_hints(SaliencyConfig)
    aliases = {v: k for k, v in TRAIN_ALIASES.items()}
    keys = {k: t for k, t in hints.items() if k not in ("train", "saliency")}
    keys |= {aliases.get(k, k): train_hints[k] for k in TRAIN_KEYS}
    keys |= {k: saliency_hints[name] for k, name in SALIENCY_KEYS.items()}
    return keys


def choice_keys() -> list[str]:
    """The ``--set`` keys whose values are names (text, or tuples of text): each is checked
    against its registry (:func:`_registries`) by :meth:`StudyConfig.validate`."""
    return [k for k, t in set_keys().items() if t is str or typing.get_args(t)[:1] == (str,)]


def _setting(config: StudyConfig, key: str) -> Any:
    if key in SALIENCY_KEYS:
        return getattr(config.saliency, SALIENCY_KEYS[key])
    key = TRAIN_ALIASES.get(key, key)
    return getattr(config.train, key) if key in TRAIN_KEYS else getattr(config, key)


def _check_choice(key: str, value: str) -> None:
    registries = _registries()
    if key not in registries:  # a new text setting: name its registry in _registries
        raise GinvError(f"--set {key}: no registry says which values it takes")
    try:
        registries[key](value)
    except GinvError as e:
        raise GinvError(f"--set {key}: {e}") from None


def _parse_one(kind: Any, text: str) -> Any:
    return parse_bool(text) if kind is bool else kind(text)


def _parse(kind: Any, text: str, key: str) -> Any:
    try:
        if typing.get_origin(kind) is tuple:
            (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
            return tuple(_parse_one(item, v) for v in text.split(",") if v.strip())
        return _parse_one(kind, text)
    except (TypeError, ValueError):
        raise GinvError(f"--set {key}: cannot read {text!r} as {kind}") from None


PROFILES: dict[str, StudyConfig] = {
    "smoke": StudyConfig(
        profile="smoke", train=TrainConfig(epochs=3, n_train=300, n_val=100), seeds=(0,),
        nu_grid=(0.1, 1.0, 10.0), nu_max=10.0, presearch_epochs=1, nu_round=2, nu_max_rounds=3,
        calibration_val_samples=30,
        test_samples=200, si_samples=20, sensitivity_samples=50, saliency=SaliencyConfig(steps=16),
        saliency_grid_samples=2, tsne_samples=40, drift_samples=200, layers_samples=24,
        prop31_dim=16, prop31_samples=20, prop31_time=1.0, prop31_step=1e-3,
        frontier_wide=False, frontier_curve_samples=10,
        frontier_nus_logit=(1.0,), frontier_nus_kl=(10.0,), frontier_nus_nlogit=(100.0,),
        frontier_nus_jsd=(30.0,), frontier_orbit_rates=(0.5, 1.0), frontier_saliency_nus=(1.0,),
        frontier_nus_distill=(10.0,), frontier_nus_warmup=(1.0,), frontier_nus_features=(3.0,),
        frontier_nus_late=(1.0,), frontier_nus_teacher=(10.0,),
        frontier_nus_teacher_logit=(1.0,), frontier_nus_vicinal=(1.0,),
        frontier_nus_teacher_vicinal=(1.0,),
    ),
    "quick": StudyConfig(),
    "paper": StudyConfig(
        profile="paper", train=TrainConfig(epochs=300), seeds=(0, 1, 2, 3), presearch_epochs=50, test_samples=0, si_samples=10_000, sensitivity_samples=0,
        drift_samples=0, tsne_samples=500,
    ),
}  # fmt: skip


def profile(name: str, overrides: list[str] | None = None) -> StudyConfig:
    """A profile by name, with ``key=value`` overrides applied."""
    if name not in PROFILES:
        raise GinvError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return PROFILES[name].with_overrides(overrides or [])
