"""The study's settings as one typed config, three profiles, and ``key=value`` overrides."""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ginv.errors import GinvError

BETAS = tuple(round(0.1 * i, 1) for i in range(11))


@dataclass(frozen=True)
class StudyConfig:
    """Everything ``ginv reproduce`` needs; defaults are the quick profile."""

    profile: str = "quick"
    dataset: str = "mnist"
    drift_target: str = "fmnist"
    groups: tuple[str, ...] = ("R4", "T3")
    # training (SPEC §4)
    epochs: int = 50
    seeds: tuple[int, ...] = (0, 1)
    batch_size: int = 512
    lr: float = 8e-4
    n_train: int = 10_000
    n_val: int = 2_000
    wt_pool: str = "mean"
    # IR and the calibration of ν
    reg: str = "logit"
    nu_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    nu_max: float = 3000.0  # the search extends the grid upwards to here if needed
    si_target: float = 0.95
    calibration_epochs: int = 20
    calibration_seed: int = 0
    calibration_val_samples: int = 500
    spectral_losses: tuple[str, ...] = ("logit", "kl", "nlogit")
    # measures (SPEC §5); 0 means the whole test split
    test_samples: int = 0
    si_samples: int = 2_000
    sensitivity_samples: int = 2_000
    ig_steps: int = 50
    ig_rule: str = "gausslegendre"
    # figures
    saliency_grid_samples: int = 4
    tsne_samples: int = 300
    drift_betas: tuple[float, ...] = BETAS
    drift_mode: str = "blend"
    drift_samples: int = 10_000
    # Proposition 3.1
    prop31_dim: int = 64
    prop31_outputs: int = 9
    prop31_samples: int = 200
    prop31_time: float = 5.0
    prop31_step: float = 1e-3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, assignments: list[str]) -> StudyConfig:
        """Apply ``key=value`` strings, parsed by each field's type (tuples comma-separated)."""
        hints = typing.get_type_hints(StudyConfig)
        names = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in names:
                raise GinvError(
                    f"--set expects key=value with a known key, got {assignment!r} "
                    f"(keys: {', '.join(sorted(names))})"
                )
            changes[key] = _parse(hints[key], text.strip(), key)
        return replace(self, **changes)


def _parse(kind: Any, text: str, key: str) -> Any:
    try:
        if typing.get_origin(kind) is tuple:
            (item,) = {a for a in typing.get_args(kind) if a is not Ellipsis}
            return tuple(item(v) for v in text.split(",") if v.strip())
        return kind(text)
    except (TypeError, ValueError):
        raise GinvError(f"--set {key}: cannot read {text!r} as {kind}") from None


PROFILES: dict[str, StudyConfig] = {
    "smoke": StudyConfig(
        profile="smoke", epochs=3, seeds=(0,), n_train=300, n_val=100,
        nu_grid=(0.1, 1.0, 10.0), nu_max=10.0, calibration_epochs=3, calibration_val_samples=30,
        test_samples=200, si_samples=20, sensitivity_samples=50, ig_steps=16,
        saliency_grid_samples=2, tsne_samples=40, drift_samples=200,
        prop31_dim=16, prop31_samples=20, prop31_time=1.0, prop31_step=1e-3,
    ),
    "quick": StudyConfig(),
    "paper": StudyConfig(
        profile="paper", epochs=300, seeds=(0, 1, 2, 3), calibration_epochs=100,
        calibration_val_samples=2_000, test_samples=0, si_samples=0, sensitivity_samples=0,
        drift_samples=0, tsne_samples=500,
    ),
}  # fmt: skip


def profile(name: str, overrides: list[str] | None = None) -> StudyConfig:
    """A profile by name, with ``key=value`` overrides applied."""
    if name not in PROFILES:
        raise GinvError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return PROFILES[name].with_overrides(overrides or [])
