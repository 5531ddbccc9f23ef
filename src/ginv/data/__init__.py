"""Datasets: sources (IDX, ``.npz``, image folders), their specs, the Transforming datasets
and distribution drift.

A dataset string (``mnist``, ``fmnist``, a ``.npz`` path, an image-folder path) names a
:class:`Source` through :data:`SOURCES`; :func:`load_transforming` pads, normalises and
caches its splits; :class:`DataSpec` (``dataset.spec``, or :func:`data_spec` without loading
the normalised splits) says its canvas shape, classes and statistics.
"""

from ginv.data import registry as _registry  # noqa: F401  (registers the sources)
from ginv.data.drift import drift_split, pair_by_class
from ginv.data.idx import DataFileError, parse_idx, read_idx
from ginv.data.mnist import load_pooled
from ginv.data.source import (
    SOURCES,
    Source,
    SourceKind,
    dataset_identity,
    dataset_label,
    get_source,
    register_source,
)
from ginv.data.sources import default_cache_dir, default_data_dir, download, find_file
from ginv.data.spec import DataSpec, canvas_shape, check_group_acts
from ginv.data.transforming import (
    DataConfig,
    Split,
    TransformingDataset,
    data_spec,
    load_transforming,
    source_name,
    training_stats,
)

__all__ = [
    "SOURCES",
    "DataConfig",
    "DataFileError",
    "DataSpec",
    "Source",
    "SourceKind",
    "Split",
    "TransformingDataset",
    "canvas_shape",
    "check_group_acts",
    "data_spec",
    "dataset_identity",
    "dataset_label",
    "default_cache_dir",
    "default_data_dir",
    "download",
    "drift_split",
    "find_file",
    "get_source",
    "load_pooled",
    "load_transforming",
    "pair_by_class",
    "parse_idx",
    "read_idx",
    "register_source",
    "source_name",
    "training_stats",
]
