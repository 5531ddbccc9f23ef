"""The typed configuration of one training run; defaults are the study's."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ginv.errors import GinvError
from ginv.groups import get_group
from ginv.io import stable_hash
from ginv.models import MODEL_KINDS, architecture_of, get_factory, is_factory_model, model_parts
from ginv.regularizers import REGULARIZERS as _REGULARIZERS
from ginv.regularizers import regularizer_class

REGULARIZERS = ("none", *_REGULARIZERS)

# The settings of the first release: always in the run-cache key. A setting added later is
# hashed only when it differs from its default, so that adding one keeps every cached key.
_KEYED_ALWAYS = frozenset(
    ("dataset", "group", "model", "pool", "depth", "width", "reg", "nu", "epochs",
     "batch_size", "lr", "seed", "n_train", "n_val", "split_seed")
)  # fmt: skip


DEFAULT_NU = 1.0  # the weight of an invariance regularizer when none is asked for

# What `ginv train --help` says of each setting (the defaults come from the dataclass).
HELP = {
    "dataset": "mnist or fmnist (Transforming-), a PATH.npz or an image-folder PATH",
    "group": "the group of the augmentation and of WT",
    "model": "an architecture (DA / IR) or an invariant wrapper of it (wt: WT, canon: "
    "canonicalised), or package.module:factory, factory(in_shape, num_classes) → nn.Module "
    "(wt-package.module:factory for a ginv Network)",
    "pool": "WT pooling over the group: mean or max",
    "depth": "hidden layers (MLP) or convolutions (CNN)",
    "width": "hidden units (MLP) or last convolution's channels (CNN)",
    "first_width": "the first layer's units or channels (0: as width gives)",
    "track_si": "also measure validation SI after every epoch, on the first N validation images "
    "(50-step integrated gradients), into run.json's history as val_si (0: not measured)",
    "reg": "the regularizer, IR with an output loss or one of the frontier's methods (docs: "
    "the frontier)",
    "teacher": "with --reg teacher: the finished run to distil from, a run folder (in the "
    "run's settings: that run's key)",
    "nu": f"weight ν of the regularizer, comma list trains each (with --reg: default {DEFAULT_NU})",
    "epochs": "training epochs",
    "batch_size": "batch size",
    "lr": "Adam's learning rate",
    "seed": "seeds, comma list, trained together",
    "n_train": "use the first N training samples",
    "n_val": "use the first N validation samples",
    "split_seed": "seed of the train / test / validation split",
}


@dataclass(frozen=True)
class TrainConfig:
    """One run: data, group, model, optional invariance regularizer ``ν·I(f)``, optimisation.

    ``model`` is a name of :data:`ginv.models.MODEL_KINDS`; ``depth`` and ``width`` are its
    architecture's (the MLP: hidden layers and units, 5 and 128; the CNN: convolutions and
    the channels of the last one, 3 and 64), and 0 stands for the architecture's default,
    filled in at construction. ``pool`` is the WT twins' pooling over the group. A factory's
    model (``package.module:factory``, :mod:`ginv.models.factory`) has no depth and width
    (both stay 0), and validates only once its factory is loaded in this process."""

    dataset: str = "mnist"
    group: str = "R4"
    model: str = "mlp"
    pool: str = "mean"
    depth: int = 0
    width: int = 0
    reg: str = "none"
    nu: float = 0.0
    epochs: int = 300
    batch_size: int = 512
    lr: float = 8e-4
    seed: int = 0
    n_train: int = 10_000
    n_val: int = 2_000
    split_seed: int = 0
    first_width: int = 0
    track_si: int = 0
    teacher: str = ""

    def __post_init__(self) -> None:
        if self.model in MODEL_KINDS:  # an unknown model is validate's to name
            cls, _ = architecture_of(self.model)
            for name, default in (("depth", cls.default_depth), ("width", cls.default_width)):
                if getattr(self, name) == 0:
                    object.__setattr__(self, name, default)

    def validate(self) -> TrainConfig:
        """Raise a :class:`GinvError` naming the first bad setting; return ``self``."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise GinvError(f"{f.name} must be finite, got {value}")
        get_group(self.group)
        from ginv.data import get_source

        get_source(self.dataset)
        reg = regularizer_class(self.reg) if self.reg in _REGULARIZERS else None
        wants_teacher = reg is not None and reg.needs_teacher
        allowed = reg.architectures if reg is not None else None
        factory = is_factory_model(self.model)
        if factory:
            get_factory(model_parts(self.model)[0])  # loaded, or one line on how to allow it
        checks = [
            (
                self.model in MODEL_KINDS or factory,
                f"unknown model {self.model!r} (known: {', '.join(MODEL_KINDS)}, or "
                "package.module:factory)",
            ),
            (
                not factory or self.depth == self.width == self.first_width == 0,
                f"a factory's model {self.model} takes no depth, width or first_width",
            ),
            (
                self.reg in REGULARIZERS,
                f"unknown regularizer {self.reg!r} (known: {', '.join(REGULARIZERS)})",
            ),
            (
                allowed is None or self.model in allowed,
                f"regularizer {self.reg!r} applies to {', '.join(allowed or ())} models only, "
                f"not {self.model!r}",
            ),
            (
                reg is None or not reg.decoupled or self.lr * self.nu <= 1,
                f"regularizer {self.reg!r} steps lr·ν of the way to its subspace: need lr·ν ≤ 1, "
                f"got {self.lr * self.nu:g}",
            ),
            (self.pool in ("mean", "max"), f"pool must be 'mean' or 'max', got {self.pool!r}"),
            (self.nu >= 0, f"ν must be ≥ 0, got {self.nu}"),
            (self.epochs >= 1, f"epochs must be ≥ 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be ≥ 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (factory or (self.depth >= 1 and self.width >= 1), "depth and width must be ≥ 1"),
            (self.first_width >= 0, f"first_width must be ≥ 0, got {self.first_width}"),
            (
                0 <= self.track_si <= self.n_val,
                f"track_si must lie in [0, n_val = {self.n_val}], got {self.track_si}",
            ),
            (
                wants_teacher == bool(self.teacher),
                f"regularizer {self.reg!r} needs a teacher (a finished run)"
                if wants_teacher
                else f"a teacher is read only by a regularizer that needs one, not {self.reg!r}",
            ),
            (
                not self.teacher or re.fullmatch(r"[0-9a-f]{16}", self.teacher) is not None,
                f"teacher must be a run's key (16 hex digits), got {self.teacher!r}",
            ),
            (self.n_train >= 1 and self.n_val >= 1, "n_train and n_val must be ≥ 1"),
            # torch generators take seeds in [0, 2⁶³); a larger one is a traceback deep inside
            (0 <= self.seed < 2**63, f"seed must be in [0, 2⁶³), got {self.seed}"),
            (
                0 <= self.split_seed < 2**63,
                f"split seed must be in [0, 2⁶³), got {self.split_seed}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise GinvError(message)
        return self

    @property
    def family(self) -> str:
        """The run name without seed and ν: what members trained together share."""
        from ginv.data import dataset_label

        reg = "" if self.reg == "none" else f"-{self.reg}"
        return f"{dataset_label(self.dataset)}-{self.group}-{self._model_label}{reg}"

    @property
    def _model_label(self) -> str:
        """The model in run names and folders: a factory's ``:`` read as ``-`` (a ``:`` is
        no part of a portable file name)."""
        return self.model.replace(":", "-")

    @property
    def name(self) -> str:
        """A readable run name, e.g. ``mnist-R4-mlp-logit-nu1-seed0``."""
        from ginv.data import dataset_label

        reg = "" if self.reg == "none" else f"-{self.reg}-nu{self.nu:g}"
        return (
            f"{dataset_label(self.dataset)}-{self.group}-{self._model_label}{reg}-seed{self.seed}"
        )

    def key(self) -> str:
        """A hash of every setting: equal keys mean the same run. Settings added after the
        first release enter it only when they differ from their default, so every key
        computed before them is unchanged. A file dataset enters as the sha256 of its
        content (:func:`ginv.data.dataset_identity`), not its path: a moved copy keeps its
        key, a changed file gets a new one; a named dataset (mnist) as written."""
        from ginv.data import dataset_identity

        defaults = {f.name: f.default for f in fields(self)}
        settings = {k: v for k, v in asdict(self).items() if k in _KEYED_ALWAYS or v != defaults[k]}
        settings["dataset"] = dataset_identity(self.dataset)
        return stable_hash(settings)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (``run.json``'s ``config``)."""
        return asdict(self)

    def members(
        self, seeds: Sequence[int] = (0,), nus: Sequence[float] | None = None
    ) -> list[TrainConfig]:
        """This run for every seed × ν, validated. Without a regularizer ν is 0 (DA and WT);
        with one and no ν given, :data:`DEFAULT_NU`."""
        if self.reg == "none":
            nus = [0.0]
        elif nus is None:
            nus = [DEFAULT_NU]
        return [replace(self, seed=s, nu=nu).validate() for nu in nus for s in seeds]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The settings in ``data`` (others at their defaults); an unknown setting or a value
        of the wrong type (an int where a float is due is fine) is a :class:`GinvError`."""
        if not isinstance(data, dict):
            raise GinvError(f"training settings must be a mapping, not {type(data).__name__}")
        known = {f.name: str(f.type) for f in fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise GinvError(f"unknown training settings: {', '.join(sorted(unknown))}")
        allowed = {"str": (str,), "int": (int,), "float": (int, float)}
        for name, value in data.items():
            if isinstance(value, bool) or not isinstance(value, allowed[known[name]]):
                raise GinvError(f"setting {name} must be {known[name]}, got {value!r}")
        return cls(**data)

    def batchable_with(self, other: TrainConfig) -> bool:
        """Whether two runs can train as members of one batched model (same all but seed, ν
        and teacher: each member may distil from its own)."""
        return replace(self, seed=0, nu=0.0, teacher="") == replace(other, seed=0, nu=0.0,
                                                                    teacher="")  # fmt: skip
