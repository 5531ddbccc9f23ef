"""The typed settings of SLURM jobs, with ``key=value`` overrides (``--slurm``)."""

from __future__ import annotations

import math
import re
import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ginv.errors import GinvError
from ginv.settings import parse_bool

_OPTION = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class SlurmConfig:
    """How ``--executor slurm`` asks for its jobs. The defaults fit a one-node test cluster:
    the default partition, no GPU, one CPU and 4 GB per job.

    ``sbatch`` holds extra ``#SBATCH`` options as ``(option, value)`` pairs (``--slurm
    sbatch.account=abc`` gives ``#SBATCH --account=abc``; the value ``true`` gives a bare
    flag). ``threads`` is the number of torch threads in a job, 0 for ``cpus_per_job``: floats
    from a job and from a local run are bit-identical when both use the same thread count."""

    partition: str = ""  # "" = the cluster's default partition
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    mem_gb: float = 4.0
    time_min: int = 60  # each job's time limit; a job that reaches it is resubmitted
    max_retries: int = 2  # resubmissions of a killed, preempted or timed-out job
    poll_s: float = 2.0  # how often the driver looks at the queue
    measure_jobs: bool = True  # test-orbit measures of a family as a job (else in the driver)
    threads: int = 0
    sbatch: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (for records and the report)."""
        return asdict(self)

    @property
    def job_threads(self) -> int:
        """Torch threads in each job: ``threads``, or one per CPU the job asks for."""
        return self.threads or self.cpus_per_job

    def with_overrides(self, assignments: list[str]) -> SlurmConfig:
        """Apply ``key=value`` strings (``sbatch.OPTION=value`` adds an sbatch option)."""
        hints = typing.get_type_hints(SlurmConfig)
        names = sorted(f.name for f in fields(self) if f.name != "sbatch")
        changes: dict[str, Any] = {}
        extra = dict(self.sbatch)
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key, text = key.strip(), text.strip()
            if _control(assignment):
                # a newline would end the #SBATCH line and start a shell line in the job script
                raise GinvError(f"--slurm {key}: control characters are refused, got {text!r}")
            if sep and key.startswith("sbatch."):
                option = key.removeprefix("sbatch.")
                if not _OPTION.match(option):
                    raise GinvError(
                        f"--slurm {key}: an sbatch option is lower-case letters, digits and "
                        f"dashes, e.g. sbatch.account=abc"
                    )
                extra[option] = text
                continue
            key = key.replace("-", "_")
            if not sep or key not in names:
                raise GinvError(
                    f"--slurm expects key=value with a known key, got {assignment!r} "
                    f"(keys: {', '.join(names)}, sbatch.OPTION)"
                )
            changes[key] = _parse(hints[key], text, key)
        return replace(self, **changes, sbatch=tuple(sorted(extra.items()))).validate()

    def validate(self) -> SlurmConfig:
        """Raise one :class:`GinvError` line naming the first bad setting; return ``self``."""
        checks = [
            (self.gpus_per_job >= 0, f"gpus_per_job must be ≥ 0, got {self.gpus_per_job}"),
            (self.cpus_per_job >= 1, f"cpus_per_job must be ≥ 1, got {self.cpus_per_job}"),
            (math.isfinite(self.mem_gb) and self.mem_gb > 0, f"mem_gb must be > 0, got {self.mem_gb}"),
            (self.time_min >= 1, f"time_min must be ≥ 1, got {self.time_min}"),
            (self.max_retries >= 0, f"max_retries must be ≥ 0, got {self.max_retries}"),
            (math.isfinite(self.poll_s) and self.poll_s > 0, f"poll_s must be > 0, got {self.poll_s}"),
            (self.threads >= 0, f"threads must be ≥ 0 (0: cpus_per_job), got {self.threads}"),
            (not any(c.isspace() for c in self.partition), f"partition {self.partition!r} has spaces"),
            (not any(_control(v) for pair in self.sbatch for v in pair),
             f"sbatch options must not hold control characters, got {self.sbatch!r}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise GinvError(f"--slurm {message}")
        return self


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _parse(kind: Any, text: str, key: str) -> Any:
    if kind is bool:
        try:
            return parse_bool(text)
        except ValueError as e:
            raise GinvError(f"--slurm {key}: {e}") from None
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise GinvError(f"--slurm {key}: cannot read {text!r} as {kind.__name__}") from None
