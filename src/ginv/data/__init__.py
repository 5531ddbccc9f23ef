"""Datasets: verified IDX files, the Transforming datasets and distribution drift."""

from ginv.data.drift import drift_split, pair_by_class
from ginv.data.idx import DataFileError, parse_idx, read_idx
from ginv.data.sources import default_cache_dir, default_data_dir, download, find_file
from ginv.data.transforming import (
    DataConfig,
    Split,
    TransformingDataset,
    load_pooled,
    load_transforming,
    source_name,
    training_stats,
)

__all__ = [
    "DataConfig",
    "DataFileError",
    "Split",
    "TransformingDataset",
    "default_cache_dir",
    "default_data_dir",
    "download",
    "drift_split",
    "find_file",
    "load_pooled",
    "load_transforming",
    "pair_by_class",
    "parse_idx",
    "read_idx",
    "source_name",
    "training_stats",
]
