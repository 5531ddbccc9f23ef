"""Training DA, WT and IR models, several members at once.

Every member draws, each epoch, its own sample order and one group element per sample
from its own seeded generator, so a member trained with others follows exactly the
trajectory it follows alone. The whole split lives on the device; the group action is
one gather per batch. State is checkpointed atomically after every epoch.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ginv.data import Split, TransformingDataset, check_group_acts
from ginv.errors import GinvError
from ginv.groups import PermutationGroup, get_group
from ginv.io import atomic_torch_save, atomic_write_json, load_torch_file, short_hash
from ginv.measures import measure
from ginv.models import Ensemble, build_model, is_factory_model, load_factory, model_parts
from ginv.models.base import Pool
from ginv.progress import tqdm
from ginv.records import (
    CHECKPOINT,
    FACTORY_MODEL_ARGS,
    MODEL_ARGS,
    RUN,
    check_record,
    read_record,
)
from ginv.regularizers import get_regularizer
from ginv.training.config import TrainConfig
from ginv.training.index import update_index
from ginv.training.loggers import make_logger


class TrainingDiverged(GinvError):
    """A non-finite loss, weight or validation logit; the last good checkpoint is kept."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``'auto'``/None → CUDA when present, else CPU; otherwise ``cpu``, ``cuda`` or ``cuda:N``
    that exists here (``mps`` where available): ginv runs on nothing else."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    usage = f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise GinvError(usage) from None
    if resolved.type == "mps" and torch.backends.mps.is_available():
        return resolved
    if resolved.type not in ("cpu", "cuda") or (resolved.type == "cpu" and resolved.index):
        raise GinvError(usage)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise GinvError(f"device {device!r} asked for, but CUDA is not available here")
        if (resolved.index or 0) >= torch.cuda.device_count():
            raise GinvError(
                f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA "
                "device(s) are here"
            )
    return resolved


def model_args(
    config: TrainConfig, in_shape: int | Sequence[int], num_classes: int
) -> dict[str, Any]:
    """The arguments that rebuild ``config``'s model (``run.json``'s ``model_args``): image
    shape ``(C, H, W)``, width, depth, number of classes and the WT pooling."""
    shape = [in_shape] if isinstance(in_shape, int) else [int(n) for n in in_shape]
    return {
        "in_shape": shape,
        "width": config.width,
        "depth": config.depth,
        "num_classes": int(num_classes),
        "pool": config.pool,
        "first_width": config.first_width,
    }


def model_for(
    config: TrainConfig,
    in_shape: int | Sequence[int] | None = None,
    num_classes: int | None = None,
    args: dict[str, Any] | None = None,
    shapes_only: bool = False,
) -> nn.Module:
    """A freshly initialised model for ``config`` on images ``in_shape`` with ``num_classes``
    classes (the data's; or as ``args``, a :func:`model_args` record, says: then neither): the initialisation that ``torch.manual_seed(config.seed)``
    gives, drawn without touching the global RNG. A model of more than
    :data:`MAX_PARAMETERS` is refused before it is allocated; ``shapes_only`` returns it
    unallocated (on the meta device), to compare with a state dict before building it."""
    group = get_group(config.group)
    if args is None:
        if in_shape is None or num_classes is None:
            raise GinvError("model_for needs the data's in_shape and num_classes, or args")
        args = model_args(config, in_shape, num_classes)
    pool: Pool = "max" if args["pool"] == "max" else "mean"

    def build() -> nn.Module:
        return build_model(
            config.model, group, args["in_shape"], args["width"], args["depth"],
            num_classes=args["num_classes"], pool=pool, first_width=args.get("first_width", 0),
        )  # fmt: skip

    # nn.init draws from the global CPU generator only; fork it so that callers (a script
    # loading a run, a caller's own seeding) see their RNG stream unchanged.
    with torch.random.fork_rng(devices=[]):
        skeleton = _skeleton(build, group, args["in_shape"])
        size = sum(p.numel() for p in skeleton.parameters()) if skeleton is not None else 0
        if size > MAX_PARAMETERS:
            raise GinvError(
                f"{config.name}: the model would have {size:,} parameters, more than "
                f"{MAX_PARAMETERS:,}; lower width, depth or first_width"
            )
        if shapes_only:
            if skeleton is None:
                raise GinvError(f"{config.model}: cannot be sized without building it")
            return skeleton
        torch.random.default_generator.manual_seed(config.seed)
        return build()


MAX_PARAMETERS = 1_000_000_000
"""A model above this (4 GB of float32 weights, before gradients and Adam's moments) is
refused before anything is allocated."""


def _skeleton(
    build: Callable[[], nn.Module], group: Any, in_shape: Sequence[int]
) -> nn.Module | None:
    """``build()`` on the meta device: every parameter's shape, no memory. The group's
    permutations are made first, outside it (they are data); None where a model cannot be
    built there."""
    shape = [in_shape] if isinstance(in_shape, int) else list(in_shape)
    if len(shape) == 3 and hasattr(group, "action"):
        group.action(int(shape[1]), int(shape[2]))
    try:
        with torch.device("meta"):
            return build()
    except RuntimeError:  # also the error for an op that the meta device lacks (a subclass)
        return None


@torch.no_grad()
def orbit_accuracy(
    forward: Any, split: Split, group: PermutationGroup, chunk: int = 2048
) -> Tensor:
    """Accuracy on the whole orbit of ``split`` of a model returning ``(..., B, K)`` logits;
    NaN for a model whose logits are not all finite (argmax of those means nothing)."""
    correct: Tensor | float = 0.0
    finite: Tensor | bool = True
    for start in range(0, len(split), chunk):
        x, y = split.images[start : start + chunk], split.labels[start : start + chunk]
        logits = forward(group.orbit(x))
        correct = correct + (logits.argmax(-1) == y.repeat(len(group))).sum(-1)
        finite = torch.isfinite(logits).flatten(-2).all(-1) & finite
    accuracy = torch.as_tensor(correct).double() / (len(split) * len(group))
    return accuracy.where(torch.as_tensor(finite), torch.nan)


@dataclass
class MemberState:
    """Per-member bookkeeping that survives a resume."""

    config: TrainConfig
    generator: torch.Generator
    best_val_acc: float = -1.0
    best_epoch: int = -1
    best_state: dict[str, Tensor] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Trains ``configs`` (identical but for seed and ν) together as one batched model.

    The training orbit is precomputed when it fits ``orbit_budget_bytes`` (2 GiB default).
    The checkpoint lives in ``out_dir``; each member's results in ``member_dirs[i]``
    (default ``out_dir/<run name>``). ``logger`` (a name of
    :data:`ginv.training.loggers.LOGGERS`, e.g. ``"csv"`` or ``"tensorboard"``) also logs each
    member's epochs in its folder; by default only ``run.json`` records them.
    """

    def __init__(
        self,
        configs: Sequence[TrainConfig],
        data: TransformingDataset,
        out_dir: Path | str,
        device: str | torch.device | None = None,
        progress: bool = True,
        orbit_budget_bytes: int = 2 << 30,
        member_dirs: Sequence[Path] | None = None,
        logger: str | None = None,
        teacher_dirs: Sequence[Path] | None = None,
    ) -> None:
        if not configs:
            raise GinvError("nothing to train: no configurations")
        for c in configs:
            c.validate()
            if not c.batchable_with(configs[0]):
                raise GinvError("members trained together must differ only in seed and ν")
        self.configs = list(configs)
        self.base = configs[0]
        self.device = resolve_device(device)
        self.group = get_group(self.base.group)
        check_group_acts(self.group, data.spec)  # a clear error, naming sizes that would work
        # a run records n_train and n_val: it must get exactly that many samples
        for what, n, split in (("n_train", self.base.n_train, data.train),
                               ("n_val", self.base.n_val, data.val)):  # fmt: skip
            if n > len(split):
                raise GinvError(f"{what} = {n}, but the split holds only {len(split)} samples")
        self.train_split = data.train.head(self.base.n_train).to(self.device)
        self.val_split = data.val.head(self.base.n_val).to(self.device)
        self.out_dir = Path(out_dir)
        self.member_dirs = list(member_dirs) if member_dirs is not None else None
        if self.member_dirs is not None and len(self.member_dirs) != len(self.configs):
            raise GinvError(f"{len(self.configs)} members, but {len(self.member_dirs)} folders")
        # members writing to one folder would overwrite each other while reporting two runs
        # (seeds 0,0; ν 0.1 and 0.1000001, both named nu0.1)
        folders = [str(self.member_dir(i)) for i in range(len(self.configs))]
        if len(set(folders)) < len(folders):
            twice = sorted({f for f in folders if folders.count(f) > 1})
            raise GinvError(
                f"two runs would write to {', '.join(twice)}: give each member its own seed "
                "and ν (ν values are told apart by their 6 significant digits, as in run names)"
            )
        self.progress, self.logger = progress, logger
        in_shape = tuple(self.train_split.images.shape[1:])
        self.model_args = model_args(self.base, in_shape, data.num_classes)
        models = [model_for(c, args=self.model_args) for c in self.configs]
        self.template = models[0]
        self.model = Ensemble(models).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.base.lr, fused=True)
        self.nus = torch.tensor([c.nu for c in self.configs], device=self.device)
        self.members = [MemberState(c, torch.Generator().manual_seed(c.seed)) for c in self.configs]
        self.epoch = 0
        self.train_orbit = self._orbit_table(orbit_budget_bytes)
        h, w = self.train_split.images.shape[-2:]
        self.cayley = self.group.action(h, w).table.to(self.device)  # cayley[h, g] = h∘g
        self.regularizer = (
            None if self.base.reg == "none" else get_regularizer(self.base.reg, self.group)
        )
        if self.regularizer is not None and self.regularizer.needs_teacher:
            self.regularizer.teacher = self._teachers(teacher_dirs)

    def _teachers(self, folders: Sequence[Path] | None) -> Ensemble:
        """Each member's teacher, the finished run in ``folders[i]`` whose key is the member's
        ``teacher``, as one batched model that is never trained."""
        if folders is None or len(folders) != len(self.configs):
            raise GinvError(f"{self.base.reg}: give the folder of each member's teacher run")
        models = []
        for c, folder in zip(self.configs, folders, strict=True):
            model, run = load_run(folder, self.device)  # its record, read and checked once
            if (key := TrainConfig.from_dict(run["config"]).key()) != c.teacher:
                raise GinvError(f"{folder}: run {key} is not {c.name}'s teacher {c.teacher}")
            models.append(model)
        try:
            teachers = Ensemble(models).to(self.device).eval().requires_grad_(False)
            probe = teachers(self.val_split.images[:1], shared_input=True)
        except (RuntimeError, ValueError) as e:  # stacked or run on these images
            raise GinvError(
                f"the teachers of {self.base.family} do not fit it: one architecture for all, "
                f"on {tuple(self.val_split.images.shape[1:])} images ({str(e).splitlines()[0]})"
            ) from None
        if probe.shape[-1] != self.model_args["num_classes"]:
            raise GinvError(f"the teachers of {self.base.family} give {probe.shape[-1]} classes, "
                            f"not {self.model_args['num_classes']}")  # fmt: skip
        return teachers

    def _orbit_table(self, budget: int) -> Tensor | None:
        """The whole training orbit, rows ``g·N + i = g·x_i``, when it fits the budget: then every
        augmented batch (and the orbit of one, for IR) is a row gather, with no pixel shuffling."""
        images = self.train_split.images
        if images.numel() * images.element_size() * len(self.group) > budget:
            return None
        return self.group.orbit(images)

    def _batch(self, idx: Tensor, elements: Tensor, with_orbit: bool) -> Tensor:
        """Augmented images ``g·x`` for samples ``idx``, elements ``elements`` (both ``(M, B)``);
        with ``with_orbit``, all ``h·g·x`` as ``(M, |G|·B, ...)``, ``h`` major, identity first."""
        m, b = idx.shape
        shape = self.train_split.images.shape[1:]
        if self.train_orbit is not None:
            n = len(self.train_split)
            if with_orbit:
                elements = self.cayley[:, elements].transpose(0, 1)  # (M, |G|, B): h∘g
                idx = idx.unsqueeze(1).expand_as(elements)
            rows = (elements * n + idx).flatten()
            # Rows of a 2-D view: CPU index_select copies them whole, ~3× faster than on (N, C, H, W).
            return self.train_orbit.flatten(1).index_select(0, rows).view(m, -1, *shape)
        x = self.group.act(
            elements, self.train_split.images.index_select(0, idx.flatten()).view(m, b, *shape)
        )
        if not with_orbit:
            return x
        orbit = self.group.orbit(x.flatten(0, 1)).view(len(self.group), m, b, *shape)
        return orbit.transpose(0, 1).flatten(1, 2)

    # --- one epoch -------------------------------------------------------
    def _draws(self) -> tuple[Tensor, Tensor]:
        """Each member's sample order and group elements for this epoch, ``(M, N)`` each."""
        n, order = len(self.train_split), len(self.group)
        orders, elements = [], []
        for m in self.members:
            orders.append(torch.randperm(n, generator=m.generator))
            elements.append(torch.randint(order, (n,), generator=m.generator))
        return torch.stack(orders).to(self.device), torch.stack(elements).to(self.device)

    def _loss(self, idx: Tensor, elements: Tensor) -> tuple[Tensor, Tensor]:
        """Per-member cross-entropy on ``x̃ = g·x`` and the regulariser's penalty (e.g. IR's
        invariance error between ``f(x̃)`` and every ``f(h·x̃)``), for samples ``idx`` drawn
        with elements ``elements`` (both ``(M, B)``)."""
        m, b = idx.shape
        y = self.train_split.labels[idx]
        reg = self.regularizer
        if reg is None:
            logits = self.model(self._batch(idx, elements, with_orbit=False))
            inv = torch.zeros(m, device=idx.device)
        else:
            logits, inv = reg(self.model, self._batch(idx, elements, reg.needs_orbit), y)
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(m, b).mean(1)
        return ce, inv

    def train_epoch(self) -> dict[str, Tensor]:
        """One pass over the training data for every member at once; the mean loss, CE and
        penalty per member, left on the device (read once per epoch by :meth:`fit`)."""
        orders, elements = self._draws()
        n, bs = len(self.train_split), self.base.batch_size
        totals = torch.zeros(3, len(self.members), device=self.device)
        steps = math.ceil(n / bs)
        reg = self.regularizer
        decoupled = reg is not None and reg.decoupled
        if reg is not None:
            reg.start_epoch(self.epoch, self.base.epochs)
        for s in range(steps):
            batch = slice(s * bs, (s + 1) * bs)
            ce, inv = self._loss(orders[:, batch], elements[:, batch])
            # a decoupled regulariser acts in after_step: its penalty is reported, not added
            loss = ce if decoupled else ce + self.nus * inv
            self.optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()
            self.optimizer.step()
            if reg is not None and decoupled:
                shape = self.train_split.images.shape[1:]
                reg.after_step(self.model, self.base.lr * self.nus, shape)
            totals += torch.stack([loss, ce, inv]).detach()
        totals /= steps
        return {"loss": totals[0], "ce": totals[1], "inv": totals[2]}

    # --- checkpoints -----------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        """One checkpoint per set of members, so several trainings can share ``out_dir``."""
        key = short_hash("".join(c.key() for c in self.configs), 12)
        return self.out_dir / f"checkpoint-{key}.pt"

    def state(self) -> dict[str, Any]:
        """Everything a resume needs: weights, optimiser, RNG, epoch, histories, configs."""
        return {
            "configs": [c.to_dict() for c in self.configs],
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "members": [
                {
                    "generator": m.generator.get_state(),
                    "best_val_acc": m.best_val_acc,
                    "best_epoch": m.best_epoch,
                    "best_state": m.best_state,
                    "history": m.history,
                }
                for m in self.members
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` (checked as a checkpoint record first)."""
        check_record(state, CHECKPOINT, self.checkpoint_path)
        if state.get("configs") != [c.to_dict() for c in self.configs]:
            raise GinvError(f"{self.checkpoint_path}: checkpoint belongs to other settings")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.epoch = int(state["epoch"])
            for m, s in zip(self.members, state["members"], strict=True):
                m.generator.set_state(s["generator"].cpu())  # a CPU generator, wherever loaded
                m.best_val_acc, m.best_epoch = s["best_val_acc"], s["best_epoch"]
                m.best_state, m.history = s["best_state"], s["history"]
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            detail = str(e).splitlines()[0][:120] if str(e) else ""
            raise GinvError(
                f"{self.checkpoint_path}: damaged checkpoint ({type(e).__name__}: {detail})"
            ) from None

    def resume(self) -> bool:
        """Load the checkpoint in ``out_dir`` if there is one; return whether it did."""
        if not self.checkpoint_path.is_file():
            return False
        self.load_state(load_torch_file(self.checkpoint_path, self.device))
        return True

    def member_si(self) -> list[float]:
        """Each member's SI (:func:`ginv.measures.measure`, the default saliency map) on the
        orbits of the first ``track_si`` validation images: the training curve of invariance.
        It reads each value from the device, and draws nothing from the members' generators."""
        n = self.base.track_si
        x, y = self.val_split.images[:n], self.val_split.labels[:n]
        return [
            measure(self.model.member(i), x, y, self.group, metrics="si").si
            for i in range(len(self.members))
        ]

    # --- the loop --------------------------------------------------------
    def fit(self, resume: bool = True) -> list[dict[str, Any]]:
        """Train to ``epochs``, keep each member's best-validation epoch, write results."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.resume()
        total = self.base.epochs
        bar = tqdm(
            total=total, initial=self.epoch, disable=not self.progress, unit="epoch",
            desc=f"{self.base.family} ×{len(self.members)}", leave=False,
        )  # fmt: skip
        forward = lambda x: self.model(x, shared_input=True)  # noqa: E731
        loggers = [
            make_logger(self.logger or "none", self.member_dir(i), self.epoch, c.name, c.to_dict())
            for i, c in enumerate(self.configs if self.logger else ())
        ]
        while self.epoch < total:
            start = time.perf_counter()
            self.model.train()
            losses = self.train_epoch()
            self.model.eval()
            val_acc = orbit_accuracy(forward, self.val_split, self.group)
            self._check_finite(losses["loss"], val_acc)
            val_si = self.member_si() if self.base.track_si else None
            self.epoch += 1
            seconds = time.perf_counter() - start
            reg = self.regularizer  # a warm-up's epochs before full strength are not selected
            selectable = reg is None or reg.selectable(self.epoch - 1, total)
            # the epoch's one read from the device: the steps above never wait for it
            read = torch.stack([losses["loss"], losses["ce"], losses["inv"],
                                val_acc.to(losses["loss"])]).tolist()  # fmt: skip
            for i, m in enumerate(self.members):
                acc = read[3][i]
                m.history.append(
                    {
                        "epoch": self.epoch,
                        "loss": read[0][i],
                        "ce": read[1][i],
                        "inv": read[2][i],
                        "val_acc": acc,
                        "seconds": seconds,
                        **({} if val_si is None else {"val_si": val_si[i]}),
                    }
                )
                if acc > m.best_val_acc and selectable:
                    m.best_val_acc, m.best_epoch = acc, self.epoch
                    m.best_state = self.model.member_state(i)
                if loggers:  # before the checkpoint: a resume drops what it did not keep
                    loggers[i].log_metrics(self.epoch, m.history[-1])
            atomic_torch_save(self.state(), self.checkpoint_path)
            bar.set_postfix(
                loss=f"{sum(read[0]) / len(read[0]):.3f}",
                val_acc=f"{sum(read[3]) / len(read[3]):.4f}",
            )
            bar.update(1)
        bar.close()
        for logger in loggers:
            logger.close()
        return self.write_results()

    def _check_finite(self, loss: Tensor, val_acc: Tensor) -> None:
        """Raise :class:`TrainingDiverged` before a member with a non-finite epoch loss, weight or
        validation logit (NaN accuracy) is selected, checkpointed or written. A weight can turn
        non-finite in the epoch's last steps, after the loss was taken: both are checked."""
        weights = torch.stack([torch.isfinite(w.flatten(1)).all(1) for w in self.model.stacked])
        checks = {"loss": torch.isfinite(loss), "weights": weights.all(0)}
        checks["validation logits"] = torch.isfinite(val_acc).to(loss.device)
        bad = {
            m.config.name: [what for what, ok in checks.items() if not ok[i]]
            for i, m in enumerate(self.members)
        }
        bad = {name: whats for name, whats in bad.items() if whats}
        if not bad:
            return
        found = "; ".join(f"{name} ({', '.join(whats)})" for name, whats in bad.items())
        kept = (
            f"the last good checkpoint is {self.checkpoint_path} (epoch {self.epoch})"
            if self.epoch >= 1
            else "no checkpoint was written"
        )
        raise TrainingDiverged(f"non-finite values at epoch {self.epoch + 1}: {found}; {kept}")

    def member_dir(self, i: int) -> Path:
        """Where member ``i`` writes ``run.json`` and ``model.pt``."""
        if self.member_dirs is not None:
            return self.member_dirs[i]
        return self.out_dir / self.configs[i].name

    def write_results(self) -> list[dict[str, Any]]:
        """Per member: ``model.pt`` (best-validation weights) and ``run.json``."""
        results = []
        for i, m in enumerate(self.members):
            folder = self.member_dir(i)
            atomic_torch_save(m.best_state, folder / "model.pt")
            run = {
                "config": m.config.to_dict(),
                "name": m.config.name,
                "model_args": self.model_args,
                "selected_epoch": m.best_epoch,
                "best_val_acc": m.best_val_acc,
                "epochs_trained": self.epoch,
                "history": m.history,
                "device": str(self.device),
                "torch": torch.__version__,
            }
            atomic_write_json(run, folder / "run.json")
            update_index(folder, run)  # the readable runs/index.csv beside the run folders
            results.append(run)
        return results


def remove_finished_checkpoints(
    folders: Iterable[Path], member_dir: Callable[[TrainConfig], Path]
) -> None:
    """Delete each training folder in ``folders`` once every member of its checkpoints has its
    ``run.json`` in ``member_dir(config)``: also the folders that a kill left after the results."""
    for folder in folders:
        finished = True
        for path in folder.glob("checkpoint-*.pt"):
            try:  # mapped, not read: only the small list of configs is looked at
                meta = check_record(load_torch_file(path, "cpu", mmap=True), CHECKPOINT, path)
                finished &= all(
                    (member_dir(TrainConfig.from_dict(c)) / "run.json").is_file()
                    for c in meta["configs"]
                )
            except GinvError:
                finished = False  # kept: resuming its members will name the damage
        if finished:
            shutil.rmtree(folder, ignore_errors=True)


def _allow_factory(config: dict[str, Any], record: Path, factory: str | None) -> None:
    """Load the factory a record names only when the caller named the same one (importing
    a module named in a file would run code from the file: :mod:`ginv.models.factory`)."""
    model = config.get("model")
    named = model_parts(model)[0] if isinstance(model, str) and is_factory_model(model) else None
    if factory is None:
        return  # a factory loaded in this process still validates; any other is refused
    if named != factory:
        raise GinvError(f"{record}: the run's model is {model!r}, not the factory {factory} given")
    load_factory(factory)


def state_mismatch(expected: dict[str, Tensor], state: dict[str, Tensor]) -> str:
    """How ``state`` fails to fit a model whose state dict is ``expected``: the keys either
    lacks and the shapes that differ, the first four (``""``: it fits)."""
    mismatched = sorted(expected.keys() ^ state.keys()) + [
        f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    return ", ".join(mismatched[:4]) + (", ..." if len(mismatched) > 4 else "")


def teacher_key(folder: Path | str) -> str:
    """The key of the finished run in ``folder`` (its settings' hash, :meth:`TrainConfig.key`):
    what a run that distils from it records as its ``teacher``."""
    record = Path(folder) / "run.json"
    if not record.is_file():
        raise GinvError(f"{folder}: not a finished run (no run.json)")
    try:
        return TrainConfig.from_dict(read_record(record, RUN)["config"]).key()
    except GinvError as e:
        raise GinvError(f"{record}: {e}") from None


def load_run(
    folder: Path | str, device: str | torch.device = "cpu", factory: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """The selected model of a finished run folder (``run.json`` + ``model.pt``) and its record.
    A missing, corrupt or mismatched file is one :class:`GinvError` line naming it.

    A run of a factory's model (``"package.module:factory"``) loads when that factory is
    loaded in this process, or when ``factory`` names it (then it is imported); a record
    never makes ginv import a module by itself (:mod:`ginv.models.factory`)."""
    folder = Path(folder)
    record, weights = folder / "run.json", folder / "model.pt"
    if not record.is_file():
        raise GinvError(f"{folder}: not a finished run (no run.json)")
    run = read_record(record, RUN)
    _allow_factory(run["config"], record, factory)
    try:
        config = TrainConfig.from_dict(run["config"]).validate()
    except GinvError as e:
        raise GinvError(f"{record}: {e}") from None
    state = load_torch_file(weights, device)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise GinvError(f"{weights}: not a state dict of tensors")
    args = run.get("model_args")
    if args is None:  # a run from before model_args: an MLP or WT, read off its weights
        first, head = state.get("first.weight"), state.get("head.weight")
        if first is None or head is None or first.dim() != 2 or head.dim() != 2:
            raise GinvError(f"{weights}: no first.weight and head.weight matrices")
        args = model_args(config, int(first.shape[1]), int(head.shape[0]))
    schema = FACTORY_MODEL_ARGS if is_factory_model(config.model) else MODEL_ARGS
    args = check_record(args, schema, record, "model_args")
    differ = [f"{k} {args.get(k, 0)!r} ≠ {getattr(config, k)!r}"
              for k in ("width", "depth", "pool", "first_width")
              if args.get(k, 0) != getattr(config, k)]  # fmt: skip
    if differ:
        raise GinvError(
            f"{record}: model_args disagree with the run's settings ({', '.join(differ)})"
        )
    try:  # the recorded sizes are compared with the weights' before anything is allocated
        expected = model_for(config, args=args, shapes_only=True).state_dict()
    except GinvError as e:
        raise GinvError(f"{record}: {e}") from None
    mismatch = state_mismatch(expected, state)
    if mismatch:
        raise GinvError(f"{weights}: does not fit the run's {config.model} settings ({mismatch})")
    model = model_for(config, args=args)
    model.load_state_dict(state)
    return model.to(device).eval(), run
