"""Every record ginv reads back from disk, read through one schema-checked reader.

A record is a JSON object that ginv wrote itself (``run.json``, ``measure-*.json``, …), but
a folder can be damaged, edited or planted, so nothing read back is trusted: each record has
a :class:`Schema` (its keys, their JSON types, ranges and sizes) in :data:`RECORDS`, and
:func:`read_record` returns a record only once it fits. What happens to one that does not
depends on what the record is (the ``cache`` flag of its schema):

- a **cache** (``measure``, ``calibration``, ``slurm-job``: each can be computed again from
  the runs) is read with :func:`read_cache`: a damaged one is moved aside to
  ``NAME.damaged`` (the evidence kept, one warning line naming it) and treated as absent,
  so it is recomputed and rewritten atomically;
- every other record (``run``, ``results``, ``summary``, ``config``, ``environment``,
  ``scale``, ``checkpoint``: results, or the inputs of results) is one
  :class:`~ginv.errors.GinvError` line naming the file and the first thing wrong with it:
  guessing would hide tampering or a failing disk, and recomputing a run costs its training.

Files larger than :data:`MAX_BYTES` and documents nested deeper than Python can parse are
refused before they are parsed. A schema's ``example`` is a valid record; the tests feed
every schema's reader a list, a wrong type, a missing key and an oversized value, so a new
record type added to :data:`RECORDS` is covered without a test of its own.

Example:
    >>> check_record({"a": 1}, Schema("toy", {"a": Field(int, high=9)}, {"a": 1}), "x")
    {'a': 1}
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ginv.errors import GinvError, warn_once
from ginv.io import load_json

MAX_BYTES = 64 * 2**20
"""No record ginv writes comes near this (a paper-scale ``run.json`` is ~100 kB)."""
MAX_TEXT = 100_000
"""The longest string or list a record may hold unless its field says otherwise."""
MAX_INT = 2**63 - 1
MAX_SIZE = 1_000_000
"""A model's width, depth or input side: far beyond any network ginv trains."""

JSON = type[Any] | tuple[type[Any] | None, ...]


@dataclass(frozen=True)
class Field:
    """One key of a record: its JSON ``kind`` (``int`` never admits ``bool``; ``float``
    admits ``int``; ``None`` in a tuple admits ``null``), bounds ``low``/``high`` for
    numbers, ``choices`` for text, ``max_len`` for text and lists, the :class:`Schema` of
    an object (``schema``) or of each item of a list (``items``: a schema or a kind)."""

    kind: JSON
    required: bool = True
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    max_len: int = MAX_TEXT
    schema: Schema | None = None
    items: Schema | JSON | Field | None = None
    valid: Callable[[Any], bool] | None = None
    """A last check of the value (e.g. the form of a SLURM job id), ``what`` naming it."""
    what: str = ""


@dataclass(frozen=True)
class Schema:
    """A record: its ``fields``; ``values``, the field every value of a free mapping must fit
    (``summary.json``: seconds per experiment); whether it is a ``cache`` (see the module);
    a valid ``example``."""

    name: str
    fields: Mapping[str, Field]
    example: dict[str, Any]
    values: Field | None = None
    cache: bool = False
    description: str = ""
    keys: Field = field(default_factory=lambda: Field(str, max_len=1_000))


def _kinds(kind: JSON) -> tuple[Any, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(kind: JSON) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "text",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        type(None): "null",
        None: "null",
    }
    return " or ".join(names.get(k, getattr(k, "__name__", str(k))) for k in _kinds(kind))


def _fits(value: Any, kind: JSON) -> bool:
    for k in _kinds(kind):
        if k is None or k is type(None):
            if value is None:
                return True
        elif k is bool:
            if isinstance(value, bool):
                return True
        elif isinstance(value, bool):
            continue
        elif k is float:
            if isinstance(value, int | float):
                return True
        elif isinstance(value, k):
            return True
    return False


def _n(x: float) -> str:
    """A bound or a value as read: whole numbers in full (1000000), others as ``:.6g``."""
    if isinstance(x, int) or float(x).is_integer():
        text = str(int(x))
        return text if len(text) <= 24 else f"{x:.6g}"
    return f"{x:.6g}"


class _Bad(Exception):
    """What is wrong, at which key path; :func:`check_record` adds the file's name."""


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _check_value(value: Any, spec: Field, at: str) -> None:
    name = f"'{at}'"
    if not _fits(value, spec.kind):
        raise _Bad(f"{name} must be {_name(spec.kind)}, got {type(value).__name__}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Bad(f"{name} must be finite, got {value}")
        if spec.low is not None and value < spec.low:
            raise _Bad(f"{name} must be ≥ {_n(spec.low)}, got {_n(value)}")
        if spec.high is not None and value > spec.high:
            raise _Bad(f"{name} must be ≤ {_n(spec.high)}, got {_n(value)}")
    if isinstance(value, str | list) and len(value) > spec.max_len:
        raise _Bad(f"{name} is too long ({len(value)} > {spec.max_len})")
    if spec.choices is not None and value not in spec.choices:
        raise _Bad(f"{name} must be one of {', '.join(map(str, spec.choices))}, got {value!r:.60}")
    if spec.valid is not None and not spec.valid(value):
        raise _Bad(f"{name} must be {spec.what}, got {value!r:.60}")
    if isinstance(value, dict) and spec.schema is not None:
        _check_object(value, spec.schema, at)
    if isinstance(value, list) and spec.items is not None:
        items = spec.items
        for i, v in enumerate(value):
            if isinstance(items, Schema):
                if not isinstance(v, dict):
                    raise _Bad(f"'{at}[{i}]' must be an object, got {type(v).__name__}")
                _check_object(v, items, f"{at}[{i}]")
            else:
                _check_value(v, items if isinstance(items, Field) else Field(items), f"{at}[{i}]")


def _check_object(record: dict[str, Any], schema: Schema, at: str) -> None:
    if len(record) > MAX_TEXT:
        raise _Bad(f"'{at or schema.name}' has too many keys ({len(record)})")
    for key, spec in schema.fields.items():
        if key not in record:
            if spec.required:
                raise _Bad(f"'{_join(at, key)}' is missing")
            continue
        _check_value(record[key], spec, _join(at, key))
    if schema.values is not None:
        for key, value in record.items():
            _check_value(key, schema.keys, _join(at, "<key>"))
            if key not in schema.fields:
                _check_value(value, schema.values, _join(at, key[:60]))


def check_record(record: Any, schema: Schema, where: str | Path, key: str = "") -> dict[str, Any]:
    """``record`` if it fits ``schema``; else one :class:`GinvError` line starting with
    ``where`` (the file) and naming the first key that is wrong (``a.b[2]``; ``key``: the
    record's own place in its file, ``model_args``)."""
    if not isinstance(record, dict):
        raise GinvError(
            f"{where}: a {schema.name} record must be a JSON object, got {type(record).__name__}"
        )
    try:
        _check_object(record, schema, key)
    except _Bad as e:
        raise GinvError(f"{where}: {e}") from None
    return record


def _parse(path: Path) -> Any:
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise GinvError(f"{path}: missing") from None
    except OSError as e:
        raise GinvError(f"{path}: unreadable ({e.strerror})") from None
    if size > MAX_BYTES:
        raise GinvError(f"{path}: {size} bytes, more than any record ginv writes; refused")
    return load_json(path)  # a RecursionError (nesting) is one line there


def read_record(path: Path | str, schema: Schema | str) -> dict[str, Any]:
    """The record in ``path``, checked against ``schema`` (a :data:`RECORDS` name or a
    :class:`Schema`); a missing, unreadable, oversized or ill-formed file is one
    :class:`GinvError` line naming it.

    Example:
        >>> read_record(out / "summary.json", "summary")  # doctest: +SKIP
        {'table': 31.2}
    """
    schema = RECORDS[schema] if isinstance(schema, str) else schema
    return check_record(_parse(Path(path)), schema, path)


def read_cache(
    path: Path | str,
    schema: Schema | str,
    holds: Callable[[dict[str, Any]], str | None] | None = None,
    move_aside: bool = True,
) -> dict[str, Any] | None:
    """The cached record in ``path``, or ``None`` when there is none to use: absent, or
    damaged (not fitting ``schema``, or ``holds(record)`` naming what it lacks), in which
    case it is moved aside to ``NAME.damaged`` (a warning names both) so that the caller
    recomputes it and writes it again atomically. Only a caller holding the record's lock
    moves it (``move_aside``): another might otherwise move the good file that a writer has
    just put in its place."""
    schema = RECORDS[schema] if isinstance(schema, str) else schema
    path = Path(path)
    if not path.is_file():
        return None
    try:
        record = read_record(path, schema)
        lacking = holds(record) if holds is not None else None
        if lacking:
            raise GinvError(f"{path}: {lacking}")
        return record
    except GinvError as e:
        if not move_aside:
            return None
        aside = path.with_name(path.name + ".damaged")
        with contextlib.suppress(OSError):  # gone meanwhile, or a read-only folder
            os.replace(path, aside)
        warn_once(f"{str(e)[:300]}; moved to {aside.name} and computed again")
        return None


# --- the records -----------------------------------------------------------------------
def _int(low: float = 0, high: float = MAX_INT, **kw: Any) -> Field:
    return Field(int, low=low, high=high, **kw)


def _num(low: float | None = None, high: float | None = None, **kw: Any) -> Field:
    return Field(float, low=low, high=high, **kw)


def _job_id(text: str) -> bool:
    head, _, tail = text.partition("_")
    return head.isascii() and head.isdigit() and (not tail or (tail.isascii() and tail.isdigit()))


_TEXT = Field(str, max_len=1_000)
_MAYBE_NUM = Field((float, None), required=False)
_NUMBERS = Schema("numbers", {}, {}, values=Field((float, None)))

MODEL_ARGS = Schema(
    "model_args",
    {
        "in_shape": Field(
            list, max_len=3, items=Field(int, low=1, high=MAX_SIZE), valid=bool, what="1 to 3 sizes"
        ),
        "width": _int(1, MAX_SIZE),
        "depth": _int(1, 1_000),
        "num_classes": _int(1, MAX_SIZE),
        "pool": Field(str, choices=("mean", "max")),
        "first_width": _int(0, MAX_SIZE, required=False),
    },
    {"in_shape": [1, 36, 36], "width": 128, "depth": 5, "num_classes": 10, "pool": "mean"},
)

FACTORY_MODEL_ARGS = Schema(
    "model_args",
    {**MODEL_ARGS.fields, "width": _int(0, 0), "depth": _int(0, 0)},
    {**MODEL_ARGS.example, "width": 0, "depth": 0},
)
"""A factory's model (``package.module:factory``): its size is the factory's, width and depth 0."""

RUN = Schema(
    "run",
    {
        "config": Field(dict),
        "name": _TEXT,
        # checked by load_run against MODEL_ARGS or FACTORY_MODEL_ARGS, by the run's model
        "model_args": Field(dict, required=False),
        "selected_epoch": _int(required=False),
        "best_val_acc": _num(0, 1, required=False),
        "epochs_trained": _int(required=False),
        "history": Field(list, required=False, max_len=10_000_000),
    },
    {
        "config": {"group": "R4"},
        "name": "mnist-R4-mlp-seed0",
        "model_args": MODEL_ARGS.example,
        "selected_epoch": 3,
        "best_val_acc": 0.9,
        "epochs_trained": 3,
        "history": [],
    },
    description="OUT/runs/<key>/run.json: a finished run (results: a GinvError line)",
)

MEASURE = Schema(
    "measure",
    {
        "group": _TEXT,
        "n_samples": _int(),
        "metrics": Field(dict, schema=_NUMBERS),
        "std_over_samples": Field(dict, schema=_NUMBERS),
        "subsets": Field(dict, schema=Schema("subsets", {}, {}, values=_int(0))),
        "per_element": Field(dict, required=False),
        "per_element_std": Field(dict, required=False),
        "elements": Field(list, required=False, items=str),
        "settings_key": Field(dict, required=False),
    },
    {
        "group": "R4",
        "n_samples": 20,
        "metrics": {"si": 0.5},
        "std_over_samples": {"si": 0.1},
        "subsets": {"si": 20},
    },
    cache=True,
    description="OUT/runs/<key>/measure-<key>.json: measured again when damaged",
)

_POINT = Schema(
    "calibration point",
    {
        "nu": _num(0),
        "si": _num(),
        "si_se": _num(0),
        "val_acc": _num(0, 1),
        "epochs": _int(1),
        "seed": _int(),
        "stage": Field(str, choices=("presearch", "final")),
    },
    {"nu": 1.0, "si": 0.9, "si_se": 0.01, "val_acc": 0.8, "epochs": 3, "seed": 0, "stage": "final"},
)
_MEMBER = Schema(
    "calibration member",
    {
        "seed": _int(),
        "val_acc": _num(0, 1),
        "val_si": _num(),
        "val_si_se": _num(0),
        "reached": Field(bool),
    },
    {"seed": 0, "val_acc": 0.8, "val_si": 0.96, "val_si_se": 0.01, "reached": True},
)
CALIBRATION = Schema(
    "calibration",
    {
        "dataset": _TEXT,
        "group": _TEXT,
        "loss": _TEXT,
        "chosen_nu": _num(0),
        "reached": Field(bool),
        "reason": _TEXT,
        "curve": Field(list, items=_POINT),
        "settings": Field(
            dict, schema=Schema("settings", {"target": _num(0, 1)}, {"target": 0.95})
        ),
        "members": Field(list, required=False, items=_MEMBER),
        "final_si": _MAYBE_NUM,
        "final_reached": Field((bool, None), required=False),
    },
    {
        "dataset": "mnist",
        "group": "R4",
        "loss": "logit",
        "chosen_nu": 1.0,
        "reached": True,
        "reason": "reached",
        "curve": [_POINT.example],
        "settings": {"target": 0.95},
        "members": [_MEMBER.example],
    },
    cache=True,
    description="OUT/calibration/nu-*.json: searched again when damaged",
)

_TABLE = Schema(
    "table",
    {
        "caption": Field(str),
        "columns": Field(list),
        "rows": Field(list, items=list, max_len=10_000_000),
    },
    {"caption": "c", "columns": ["a"], "rows": [[1]]},
)
_FIGURE = Schema(
    "figure",
    {"caption": Field(str), "png": Field(str, required=False), "pdf": Field(str, required=False)},
    {"caption": "c", "png": "f.png", "pdf": "f.pdf"},
)
RESULTS = Schema(
    "results",
    {
        "title": Field(str),
        "description": Field(str),
        "tables": Field(list, required=False, items=_TABLE),
        "figures": Field(list, required=False, items=_FIGURE),
        "notes": Field(list, required=False, items=str),
        "files": Field(list, required=False, items=str),
        "passed": Field((bool, None), required=False),
        "config": Field(dict, required=False),
        "order": Field((int, None), low=0, required=False),
        "seconds": _num(0, required=False),
        "experiment": Field(str, required=False, max_len=1_000),
        "data": Field((dict, list, None), required=False),
    },
    {
        "title": "t",
        "description": "d",
        "tables": [_TABLE.example],
        "figures": [_FIGURE.example],
        "notes": ["n"],
        "files": ["table.csv"],
        "passed": True,
        "config": {},
        "order": 1,
    },
    description="OUT/<experiment>/results.json: an experiment's results",
)

SUMMARY = Schema(
    "summary",
    {},
    {"table": 31.2},
    values=_num(0),
    description="OUT/summary.json: seconds per experiment",
)
CONFIG = Schema(
    "config",
    {"profile": Field(str, required=False, max_len=1_000), "train": Field(dict, required=False)},
    {"profile": "smoke", "train": {"epochs": 3}},
    description="OUT/config.json: the study's settings",
)
ENVIRONMENT = Schema(
    "environment",
    {"executor": Field(str, required=False, max_len=1_000)},
    {"torch": "2.13.0", "executor": "local"},
    values=Field((str, float, bool, None, list, dict)),
    description="OUT/environment.json: where the results were computed",
)
SCALE = Schema(
    "scale",
    {
        "paper": Field(
            dict,
            required=False,
            schema=Schema(
                "paper",
                {"epochs": _int(1), "seeds": Field(list, items=Field(int, low=0))},
                {"epochs": 300, "seeds": [0]},
            ),
        )
    },
    {"paper": {"epochs": 300, "seeds": [0, 1, 2, 3]}},
)
SLURM_JOB = Schema(
    "slurm-job",
    {
        # digits, `_` (array jobs) only: the id reaches squeue / sacct as an argument
        "job_id": Field(str, max_len=64, valid=_job_id, what="a SLURM job id (digits[_digits])"),
        "attempt": _int(1, 10_000),
        "stderr": Field(str, max_len=4_096),
        "stdout": Field(str, required=False, max_len=4_096),
        "task": Field(str, required=False, max_len=1_000),
        "kind": Field(str, required=False, max_len=100),
        "submitted_at": _num(0, required=False),
        "by": Field(str, required=False, max_len=1_000),
    },
    {"job_id": "1234", "attempt": 1, "stderr": "/x/1234_0_log.err"},
    cache=True,
    description="OUT/slurm/jobs/<task>.json: the job is submitted again when damaged",
)
CHECKPOINT = Schema(
    "checkpoint",
    {
        "configs": Field(list, items=dict, max_len=100_000),
        "epoch": _int(0),
        "members": Field(list, required=False),
        "model": Field(dict, required=False),
        "optimizer": Field(dict, required=False),
    },
    {"configs": [{"group": "R4"}], "epoch": 2},
    description="a batch's checkpoint-<key>.pt, its metadata (the tensors are torch's)",
)

RECORDS: dict[str, Schema] = {
    s.name: s
    for s in (
        RUN,
        MEASURE,
        CALIBRATION,
        RESULTS,
        SUMMARY,
        CONFIG,
        ENVIRONMENT,
        SCALE,
        SLURM_JOB,
        CHECKPOINT,
    )
}
"""Every record ginv reads back, by name."""
